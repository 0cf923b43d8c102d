package main

import (
	"os/exec"
	"slices"
	"testing"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// linuxStepScenarios are stepping scenarios early in the boot of Debian's
// cloud kernel: start_kernel by next and by step (into the functions it
// calls: set_task_stack_end_magic with its inlined end_of_stack, a call
// through pv_ops, the __fentry__ call at every entry, which has no line
// information), boot_cpu_init's inlined cpumask helpers, a loop over the
// command line (parse_args), and finish out of nested calls.
func linuxStepScenarios() []vmmtest.StepScenario {
	n, cat := vmmtest.Times, slices.Concat[[]string]
	return []vmmtest.StepScenario{
		{Break: "start_kernel", Cmds: n(12, "next")},
		{Break: "start_kernel", Cmds: n(25, "step")},
		{Break: "boot_cpu_init", Cmds: cat(n(10, "step"), n(1, "finish"), n(1, "next"))},
		{Break: "cgroup_init_early", Cmds: cat(n(6, "next"), n(4, "step"), n(2, "finish"), n(1, "next"))},
		{Break: "parse_early_param", Cmds: cat(n(12, "step"), n(2, "finish"), n(2, "next"))},
		{Break: "parse_args", Cmds: cat(n(12, "next"), n(1, "finish"))},
		// next off the end of a function (its ret a jmp to
		// __x86_return_thunk).
		{Break: "set_task_stack_end_magic", Cmds: n(4, "next")},
		// step into a call through a retpoline (handle_unknown by
		// pointer: call __x86_indirect_thunk_array, the %rax thunk).
		{Break: "kernel/params.c:153", Cmds: cat(n(3, "step"), n(1, "finish"), n(2, "next"))},
		// On through do_early_param's loop over the early parameters.
		{Break: "do_early_param", Cmds: cat(n(8, "next"), n(1, "finish"))},
		// step into a paravirt call (local_irq_disable: call *pv_ops).
		{Break: "init/main.c:884", Cmds: cat(n(1, "next"), n(4, "step"), n(1, "finish"), n(1, "next"))},
		// A line whose code is an inlined call's (local_irq_disable's
		// rows of paravirt.h at the line's address).
		{Break: "init/main.c:886"},
		// next from setup_arch into a static_cpu_has alternative: a jmp
		// to .altinstr_aux, code with no symbol and no lines, where
		// gdb's next stops (and can go no further).
		{Break: "setup_arch", Cmds: n(3, "next")},
		// next through setup_arch: a long function full of inlined code.
		{Break: "parse_early_param", Cmds: cat(n(1, "finish"), n(25, "next"))},
		// step down memblock's allocator, finish back up.
		{Break: "memblock_alloc_try_nid", Cmds: cat(n(15, "step"), n(2, "finish"), n(2, "next"))},
		// next through sched_init's loops over the CPUs and its inlined
		// list and lock initialisers.
		{Break: "sched_init", Cmds: n(20, "next")},
		// step down mm_core_init into a spinlock's inlined helpers, and
		// finish out of them: the last one's function returns through
		// __x86_return_thunk to a caller's row that is no statement.
		{Break: "mm_core_init", Cmds: cat(n(25, "step"), n(2, "finish"), n(2, "next"))},
	}
}

// TestLinuxSteppingMatchesGDB: Debian's cloud kernel booting under QEMU
// TCG (nokaslr), stopped by vmdap and by gdb at the same kernel
// functions early in the boot; from there vmdap's next, stepIn and
// stepOut stop where gdb's next, step and finish stop on the same
// vmlinux (function, inlined calls as gdb shows them, line, pc, frames
// above start_kernel).
func TestLinuxSteppingMatchesGDB(t *testing.T) {
	if testing.Short() {
		t.Skip("boots Linux under QEMU: not with -short")
	}
	k := vmmtest.RequireLinux(t)
	vmmtest.RequireGDB(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("skipping: qemu-system-x86_64 is not installed (the expected stops come from gdb attached to it)")
	}
	r := corpusRun{name: "linux", symbols: k.Vmlinux, qemu: qemu,
		qemuArgs: []string{"-machine", "pc", "-m", "512", "-smp", "1", "-serial", "null",
			"-kernel", k.Vmlinuz, "-append", "console=ttyS0 nokaslr"}}
	scs := linuxStepScenarios()
	want := vmmtest.RunStepOracle(t, vmmtest.StepOracle{QEMU: qemu, Symbols: k.Vmlinux, QEMUArgs: r.qemuArgs,
		Scenarios: scs, Outer: "start_kernel"})
	b := newStepBuild(t, "linux", k.Vmlinux)
	// Hardware breakpoints: a software one set at reset would be
	// overwritten when the kernel loads itself.
	got := vmdapSteps(t, scs, stepPlay{outer: "start_kernel", mode: "hardware"},
		func(c *daptest.Client) { attachCorpus(t, c, qemu, r) })
	reportStepDiffs(t, b, scs, want, got)
}
