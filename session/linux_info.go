package session

import (
	"fmt"
	"strings"
)

// The kernel's identity and its resource trees, as scripts/gdb's
// lx-version, lx-cmdline, lx-iomem and lx-ioports show them (and
// /proc/version, /proc/cmdline, /proc/iomem, /proc/ioports do on a
// running system): read from linux_banner, saved_command_line and the
// struct resource trees under iomem_resource and ioport_resource.

const (
	maxResources     = 1 << 14 // entries shown of a resource tree
	maxResourceDepth = 32
)

// versionCommand prints the kernel's banner.
func (s *Session) versionCommand(v int) (string, error) {
	k := s.kview(v)
	a, err := k.sym("linux_banner")
	if err != nil {
		return "", err
	}
	b, err := k.str(a, 1024)
	if err != nil {
		return "", fmt.Errorf("reading linux_banner: %w", err)
	}
	return strings.TrimRight(b, "\n") + "\n", nil
}

// cmdlineCommand prints the command line the kernel booted with.
func (s *Session) cmdlineCommand(v int) (string, error) {
	k := s.kview(v)
	a, err := k.sym("saved_command_line")
	if err != nil {
		return "", err
	}
	p, err := k.u64(a)
	if err != nil {
		return "", fmt.Errorf("reading saved_command_line: %w", err)
	}
	if p == 0 {
		return "", fmt.Errorf("saved_command_line is not set yet (the kernel sets it in start_kernel's setup_command_line)")
	}
	b, err := k.str(p, 4096)
	if err != nil {
		return "", fmt.Errorf("reading the command line at %#x: %w", p, err)
	}
	return b + "\n", nil
}

// maxIORESLevel is kernel/resource.c's MAX_IORES_LEVEL: /proc/iomem
// indents no deeper.
const maxIORESLevel = 5

// resourcesCommand prints a resource tree (root: "iomem_resource" or
// "ioport_resource") as /proc/iomem does: each range and its name,
// indented by depth.
func (s *Session) resourcesCommand(v int, root string) (string, error) {
	k := s.kview(v)
	a, err := k.sym(root)
	if err != nil {
		return "", err
	}
	t, err := k.typ("resource")
	if err != nil {
		return "", err
	}
	width := 8
	if root == "ioport_resource" {
		width = 4
	}
	var b strings.Builder
	n := 0
	var walk func(addr uint64, depth int) error
	walk = func(addr uint64, depth int) error {
		for addr != 0 {
			if n++; n > maxResources {
				return fmt.Errorf("more than %d entries", maxResources)
			}
			r, err := k.object(addr, t, "start", "end", "name", "sibling", "child")
			if err != nil {
				return err
			}
			name := "<BAD>" // what r_show prints for a resource with no name
			if p := r.uint("name"); p != 0 {
				if nm, err := k.str(p, 128); err == nil {
					name = nm
				}
			}
			// r_show indents by depth, no deeper than MAX_IORES_LEVEL.
			fmt.Fprintf(&b, "%s%0*x-%0*x : %s\n", strings.Repeat("  ", min(depth, maxIORESLevel)), width, r.uint("start"), width, r.uint("end"), name)
			if c := r.uint("child"); c != 0 {
				if depth+1 >= maxResourceDepth {
					return fmt.Errorf("deeper than %d levels", maxResourceDepth)
				}
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
			addr = r.uint("sibling")
		}
		return nil
	}
	root0, err := k.object(a, t, "child")
	if err != nil {
		return "", err
	}
	if err := walk(root0.uint("child"), 0); err != nil {
		fmt.Fprintf(&b, "(the tree is cut short: %v)\n", err)
	}
	if n == 0 {
		b.WriteString("(empty)\n")
	}
	return b.String(), nil
}
