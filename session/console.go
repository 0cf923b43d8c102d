package session

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"vmdap/x86/paging"
)

// Debug-console commands, for lines that are not expressions: gdb's
// examine (x/NFU EXPR), QEMU's physical examine (xp/NFU EXPR) and
// address translation (gva2gpa EXPR), the hypervisor's monitor
// (monitor CMD, monitor.go), and the machine written to a core dump
// (dump FILE, coredump.go).

// IsConsoleCommand reports whether a debug-console line is a command. Only
// "x/…", "xp/…", "gva2gpa …", "monitor …", "dump FILE", "info dump" and
// the type commands are: a variable named x stays an expression. (Session.IsCommand adds the Linux commands.)
func IsConsoleCommand(line string) bool {
	l := strings.TrimSpace(line)
	return l == "help" || strings.HasPrefix(l, "x/") || strings.HasPrefix(l, "xp/") || strings.HasPrefix(l, "gva2gpa ") ||
		l == "info dump" || isMonitorCommand(l) || isDumpCommand(l) || isTypeCommand(l) || isGDBCommand(l)
}

// consoleHelp is what help says: the console's commands and the forms an
// expression can take.
const consoleHelp = `The debug console evaluates C expressions in the selected frame
(locals, globals, enumerators, functions, registers as $rip, $pc, $sp, $fp, casts,
sizeof, ->, [], &, *, and gdb's artificial arrays: *ptr@8), and
assignments (counter = 3, $rax = 0).
After a step out, $_retval is what the function returned.
A ,x suffix or a /x prefix shows integers in hex (counter,x  /x counter).
gdb's print works too: p counter, print/x counter.
Commands:
  x/NFU ADDR       examine memory, as gdb's x (x/8xb &counter, x/4gx $rsp, x/s msg, x/5i $rip)
  xp/NFU PADDR     examine guest-physical memory (vmdap's own VMM, QEMU)
  gva2gpa ADDR     translate a virtual address through the page tables (vmdap's own VMM, QEMU)
  whatis EXPR|TYPE the type's name
  ptype EXPR|TYPE  the type spelled out (a struct's members, an enum's values)
  ptype/o TYPE     a struct's layout: offsets, sizes, holes, padding (as pahole shows it)
  bt [N]           the selected thread's frames (also backtrace, where; p bt prints a variable bt)
  info registers [NAME…]  the frame's registers, or those named (also i r)
  info symbol ADDR  the symbol ADDR is in, and its section (info symbol $pc)
  info address NAME where NAME lives: a register, static storage, a function
  info line [LOC]   the code of a line: N, FILE:N, FUNCTION or *ADDR (default: the frame's)
  monitor CMD      QEMU's monitor, over its GDB stub (monitor info mem, info tlb, info mtree, system_reset)
  dump FILE        write the stopped machine to an ELF core (QEMU's dump-guest-memory layout, with a Linux
                   kernel's VMCOREINFO): open it later with an attach of "coreFile", drgn -c or crash
  info dump        the core dump a session shows: its file, format and what its kernel recorded
  help             this text
`

// linuxHelp is help's part for a Linux kernel image.
const linuxHelp = `Linux (scripts/gdb's lx- names work too):
  dmesg [N]        the kernel log (its last N records)
  tasks            the tasks: pid, tgid, parent, state, CPU, task_struct, name (also ps)
  lsmod            the loaded modules
  version          the kernel's banner (also uname)
  cmdline          the command line it booted with
  iomem, ioports   its physical memory and I/O port maps, as /proc/iomem and /proc/ioports
  mounts           the initial namespace's mounts, as /proc/mounts
In expressions:
  per_cpu(var, cpu), per_cpu_ptr(ptr, cpu), this_cpu(var), this_cpu_ptr(ptr)
  current          the task running on the selected vCPU
  container_of(ptr, type, member)
  gdb's $lx_current([cpu]), $lx_per_cpu(var[, cpu]), $lx_per_cpu_ptr(ptr[, cpu]),
  $container_of(ptr, "type", "member"), $lx_task_by_pid(pid), $lx_thread_info(task),
  $lx_thread_info_by_pid(pid), $lx_module("name")
Module symbols load by themselves when the "modules" setting names their folder (no lx-symbols).
`

// Console runs a debug-console command in a frame and returns its output.
func (s *Session) Console(thread, frame int, line string) (string, error) {
	return s.ConsoleProgress(context.Background(), thread, frame, line, nil)
}

// Progress hears how far a long console command is: what it does (a
// title, and its object: a file name), and done of total units (bytes of
// a dump). It is called with Session.mu held: it must not call back.
type Progress func(title, object string, done, total int64)

// ConsoleProgress is Console for a command that may take long (dump
// FILE), reporting how far it is to progress (nil: nobody listens); when
// ctx is done such a command stops, undoing what it did (a dump's file
// is not left half-written).
func (s *Session) ConsoleProgress(ctx context.Context, thread, frame int, line string, progress Progress) (string, error) {
	if progress == nil {
		progress = func(string, string, int64, int64) {}
	}
	out, err := s.console(ctx, thread, frame, line, progress)
	return boundOutput(out, false, ""), err
}

// maxConsoleOutput bounds what a console command answers, and a kernel
// log output event: a response over 4 MiB ends a go-dap based client's
// connection, and no console shows that much usefully.
const maxConsoleOutput = 1 << 20

// boundOutput cuts text to at most maxConsoleOutput bytes at a line
// boundary, keeping its start (or its end: keepEnd, as a log's newest
// records), with a line that says how many lines were left out and, when
// given, how to see them (hint).
func boundOutput(text string, keepEnd bool, hint string) string {
	if len(text) <= maxConsoleOutput {
		return text
	}
	room := maxConsoleOutput - 200 // the note's
	if hint != "" {
		hint = "; " + hint
	}
	if keepEnd {
		cut := len(text) - room
		if i := strings.IndexByte(text[cut:], '\n'); i >= 0 {
			cut += i + 1
		}
		return fmt.Sprintf("(vmdap: %d earlier lines left out, the console shows at most %d bytes%s)\n", strings.Count(text[:cut], "\n"), maxConsoleOutput, hint) + text[cut:]
	}
	cut := room
	if i := strings.LastIndexByte(text[:cut], '\n'); i >= 0 {
		cut = i + 1
	}
	left := strings.Count(text[cut:], "\n")
	if !strings.HasSuffix(text, "\n") {
		left++
	}
	return text[:cut] + fmt.Sprintf("(vmdap: %d more lines left out, the console shows at most %d bytes%s)\n", left, maxConsoleOutput, hint)
}

func (s *Session) console(ctx context.Context, thread, frame int, line string, progress Progress) (string, error) {
	l := strings.TrimSpace(line)
	switch {
	case l == "help":
		if s.IsCommand("tasks") {
			return consoleHelp + linuxHelp, nil
		}
		return consoleHelp, nil
	case isLinuxCommand(l):
		return s.linuxCommand(thread, l)
	case isMonitorCommand(l):
		return s.monitor(l)
	case isDumpCommand(l):
		return s.dumpCommand(ctx, l, progress)
	case l == "info dump":
		if s.dump == nil {
			return "", errors.New("info dump: this session shows a live machine, not a core dump (an attach of \"coreFile\" opens one)")
		}
		return strings.Join(s.dumpLines(), "\n"), nil
	case strings.HasPrefix(l, "gva2gpa "):
		return s.gva2gpa(thread, frame, strings.TrimSpace(strings.TrimPrefix(l, "gva2gpa ")))
	case strings.HasPrefix(l, "xp/"):
		return s.examine(thread, frame, "x/"+strings.TrimPrefix(l, "xp/"), true)
	case isTypeCommand(l):
		return s.typeCommand(thread, frame, l)
	case isGDBCommand(l):
		return s.gdbCommand(thread, frame, l)
	}
	return s.examine(thread, frame, l, false)
}

// physReader reads guest-physical memory for the page walker.
type physReader struct {
	pm interface {
		ReadPhysical([]byte, uint64) (int, error)
	}
}

func (r physReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.pm.ReadPhysical(p, uint64(off))
	if err == nil && n < len(p) {
		err = fmt.Errorf("guest-physical %#x is outside guest memory", uint64(off)+uint64(n))
	}
	return n, err
}

var errNoPhysical = errors.New("this backend cannot read guest-physical memory (vmdap's own VMM and QEMU's GDB stub can)")

// gva2gpa translates a guest-virtual address through the vCPU's page
// tables.
func (s *Session) gva2gpa(thread, frame int, expr string) (string, error) {
	if expr == "" {
		return "", errors.New("gva2gpa: an address expression is needed, as in gva2gpa $rip")
	}
	pm, ok := s.t.PhysicalMemory()
	if !ok {
		return "", errNoPhysical
	}
	var out string
	err := s.atAddress(thread, frame, expr, func(sc *frameScope, va uint64) error {
		st := paging.FromSRegs(sc.sregs)
		pa, remain, err := paging.Translate(physReader{pm}, st, va)
		if err != nil {
			return err
		}
		out = fmt.Sprintf("gpa: %#x (%s paging; the page ends at virtual %#x)", pa, st.Mode(), va+remain)
		return nil
	})
	return out, err
}

// atAddress evaluates an address expression in a frame and runs fn with
// the frame's scope and the address, the session stopped.
func (s *Session) atAddress(thread, frame int, expr string, fn func(sc *frameScope, addr uint64) error) error {
	return s.inFrame(thread, frame, func(sc *frameScope) error {
		val, err := evalExpr(expr, sc)
		if err != nil {
			return err
		}
		addr, err := val.u64(sc)
		if err != nil {
			return err
		}
		return fn(sc, addr)
	})
}

// inFrame calls fn with the scope of a thread's frame, the guest stopped.
func (s *Session) inFrame(thread, frame int, fn func(sc *frameScope) error) error {
	v, err := s.vcpuOrCurrent(thread)
	if err != nil {
		return err
	}
	return s.stopped(func() error {
		sc, err := s.scopeOf(v, frame)
		if err != nil {
			return err
		}
		return fn(sc)
	})
}
