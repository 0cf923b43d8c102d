package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// `vmdap demo`: build the example guest from its sources and debug it
// through this very binary over stdio, as an editor would, printing what
// happens. It needs Go's toolchain only to be run with `go run`; the
// binary needs gcc and binutils to build the guest.

// exampleCFlags and exampleLDFlags build an example guest as its Makefile
// does (TestDemoBuildsAsTheMakefile holds them equal): freestanding, no
// red zone (interrupt frames), no SSE, full debug information, linked by
// the folder's link.ld.
var (
	exampleCFlags = []string{"-O0", "-g", "-ffreestanding", "-fno-pic", "-fno-pie", "-mno-red-zone", "-mgeneral-regs-only",
		"-fno-stack-protector", "-fcf-protection=none", "-fno-asynchronous-unwind-tables", "-fno-omit-frame-pointer", "-fno-builtin"}
	exampleLDFlags = []string{"-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none", "-Wl,-z,max-page-size=4096", "-Wl,-z,noexecstack", "-Wl,-T,link.ld"}
)

func demo(w io.Writer, name string) int {
	if name == "" {
		name = "kernel"
	}
	dir, err := exampleDir(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmdap demo:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "vmdap-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmdap demo:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(w, "vmdap demo: building %s with gcc\n", dir)
	program, err := buildExample(dir, filepath.Join(tmp, name+".elf"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmdap demo:", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmdap demo:", err)
		return 1
	}
	cmd := exec.Command(self, "--log-level", "warn", "dap")
	cmd.Stderr = os.Stderr
	stdin, err1 := cmd.StdinPipe()
	stdout, err2 := cmd.StdoutPipe()
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintln(os.Stderr, "vmdap demo:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "vmdap demo:", err)
		return 1
	}
	fmt.Fprintf(w, "vmdap demo: started %s dap (pid %d); talking DAP over its stdin/stdout\n\n", filepath.Base(self), cmd.Process.Pid)
	d := &demoScript{c: newDemoClient(stdout, stdin), program: program, source: filepath.Join(dir, "main.c"), out: w}
	code, err := d.run()
	stdin.Close()
	if err != nil {
		cmd.Process.Kill() // it may hang on a request the script gave up on
	}
	werr := cmd.Wait()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmdap demo: session failed:", err)
		return 1
	}
	if werr != nil {
		fmt.Fprintln(os.Stderr, "vmdap demo: adapter exited:", werr)
		return 1
	}
	fmt.Fprintf(w, "\nvmdap demo: done; the guest exited with status %d\n", code)
	if code != 1 {
		return 1
	}
	return 0
}

// exampleDir finds examples/<name> in the vmdap source tree around the
// working directory.
func exampleDir(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		ex := filepath.Join(dir, "examples", name)
		if _, err := os.Stat(filepath.Join(ex, "link.ld")); err == nil {
			return ex, nil
		}
		if ents, err := os.ReadDir(filepath.Join(dir, "examples")); err == nil && len(ents) > 0 {
			// The source tree, without that example: say which it has.
			var have []string
			for _, e := range ents {
				if _, err := os.Stat(filepath.Join(dir, "examples", e.Name(), "link.ld")); err == nil {
					have = append(have, e.Name())
				}
			}
			if len(have) > 0 {
				return "", fmt.Errorf("no example guest %q in %s (there: %s)", name, filepath.Join(dir, "examples"), strings.Join(have, ", "))
			}
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("run it from the vmdap source tree: no examples/%s/link.ld above the working directory", name)
		}
		dir = up
	}
}

// buildExample compiles and links the .S and .c files of dir into out.
func buildExample(dir, out string) (string, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", fmt.Errorf("gcc (and binutils) build the example guest: %w", err)
	}
	args := append(append(append([]string{}, exampleCFlags...), exampleLDFlags...), "-I.", "-o", out)
	for _, pat := range []string{"*.S", "*.c"} {
		srcs, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, s := range srcs {
			args = append(args, filepath.Base(s))
		}
	}
	c := exec.Command(gcc, args...)
	c.Dir = dir // the DWARF names the sources in place, for the session to show
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}
