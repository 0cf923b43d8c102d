package session

import (
	"fmt"
	"strings"
)

// Linux's debug-console commands, named as the shell commands (and as
// scripts/gdb's lx- commands, which work too):
//
//	dmesg [N]   the kernel log (its last N records)
//	tasks       the tasks: pid, tgid, parent, state, CPU, task_struct, name (also ps)
//	lsmod       the loaded modules
//	version     the kernel's banner (also uname)
//	cmdline     the command line it booted with
//	iomem       its physical memory map (struct resource), as /proc/iomem
//	ioports     its I/O port map, as /proc/ioports
//	mounts      the initial namespace's mounts, as /proc/mounts

// linuxCommands maps each command word to its canonical name.
var linuxCommands = map[string]string{
	"dmesg": "dmesg", "lx-dmesg": "dmesg",
	"tasks": "tasks", "ps": "tasks", "lx-ps": "tasks",
	"lsmod": "lsmod", "lx-lsmod": "lsmod",
	"version": "version", "uname": "version", "lx-version": "version",
	"cmdline": "cmdline", "lx-cmdline": "cmdline",
	"iomem": "iomem", "lx-iomem": "iomem",
	"ioports": "ioports", "lx-ioports": "ioports",
	"mounts": "mounts", "lx-mounts": "mounts",
}

// isLinuxCommand reports whether a console line is a Linux command (or an
// lx- one vmdap does not have, which says so).
func isLinuxCommand(line string) bool {
	w, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	_, ok := linuxCommands[w]
	return ok || strings.HasPrefix(w, "lx-")
}

// IsCommand reports whether a debug-console line is a command rather than
// an expression: gdb's and QEMU's (IsConsoleCommand), and with a Linux
// kernel image, the Linux commands above.
func (s *Session) IsCommand(line string) bool {
	if IsConsoleCommand(line) {
		return true
	}
	if !isLinuxCommand(line) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isLinux()
}

// linuxCommand runs a Linux console command, reading through the
// thread's vCPU (the last stop's for 0).
func (s *Session) linuxCommand(thread int, line string) (string, error) {
	w, args, _ := strings.Cut(strings.TrimSpace(line), " ")
	var out string
	err := s.stopped(func() error {
		v := s.curVCPU
		if thread > 0 && thread <= s.t.VCPUs() {
			v = thread - 1
		}
		var err error
		switch linuxCommands[w] {
		case "":
			return fmt.Errorf("vmdap has no %s: type help for the console's commands (per-CPU data: per_cpu(var, cpu), this_cpu(var); the running task: current; module symbols load by themselves with the \"modules\" setting)", w)
		case "dmesg":
			out, err = s.dmesgCommand(v, args)
		case "tasks":
			out, err = s.tasksCommand(v)
		case "lsmod":
			out, err = s.lsmodCommand(v)
		case "version":
			out, err = s.versionCommand(v)
		case "cmdline":
			out, err = s.cmdlineCommand(v)
		case "iomem":
			out, err = s.resourcesCommand(v, "iomem_resource")
		case "ioports":
			out, err = s.resourcesCommand(v, "ioport_resource")
		case "mounts":
			out, err = s.mountsCommand(v)
		default:
			err = fmt.Errorf("unknown command %q", w)
		}
		return err
	})
	return out, err
}
