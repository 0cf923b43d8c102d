package main

// vmdap's stepping and gdb's, from the same breakpoint stops of the
// corpus guest on the same machine (QEMU TCG): gdb's next, step and
// finish against vmdap's next, stepIn and stepOut over DAP. After each
// command both sides name the newest frame (an inlined call's, as gdb
// shows it), its file and line, the pc and the frame depth (frames above
// kmain's); the oracle is gdb, not a hand-written line.

import (
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/session/symbols"
	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

// stepScenarios are the stepping scenarios of the corpus guest, in the
// order kmain reaches their breakpoints.
func stepScenarios(t *testing.T, dir string) []vmmtest.StepScenario {
	kernel := func(marker string) string { return lineSpec(t, dir, "kernel.c", marker) }
	n, cat := vmmtest.Times, slices.Concat[[]string]
	return []vmmtest.StepScenario{
		// Through kmain: step into everything it calls, and next over it.
		{Break: "kmain", Cmds: n(40, "step")},
		{Break: "kmain", Cmds: n(14, "next")},
		// Inlined squares before and after a call.
		{Break: "scale", Cmds: n(12, "step")},
		// Over a call, into an inlined function (account at -O2), out of
		// it by next, into scale, and finish back into kmain mid-line.
		{Break: kernel("list_add(&init_task.node"), Cmds: cat(n(1, "next"), n(1, "step"), n(3, "next"), n(2, "step"), n(1, "next"), n(1, "finish"))},
		// next off the end of level3 into level2, finish out of it.
		{Break: "level3", Cmds: cat(n(3, "next"), n(1, "finish"), n(1, "next"))},
		// Called back from assembly without CFI: finish into asm_add,
		// next through it (assembly lines) back to kmain.
		{Break: kernel("bp:callback"), Cmds: cat(n(1, "finish"), n(3, "next"))},
		// Into a function whose code sets up a frame (push %rbp; mov
		// %rsp,%rbp at -O2 with frame pointers): after it, as gdb.
		{Break: kernel("show_types(current, pkt"), Cmds: cat(n(2, "step"), n(1, "finish"))},
		// step through calls by pointer and an inlined square.
		{Break: "show_types", Cmds: n(8, "step")},
		// step down a call chain, finish back up it.
		{Break: "level1", Cmds: cat(n(4, "step"), n(2, "finish"), n(1, "next"))},
		// finish out of a function whose caller was tail-called.
		{Break: "twice", Cmds: cat(n(2, "finish"), n(1, "next"))},
		// A tail call at -O2: step into relay and on into sink, finish.
		{Break: "relay", Cmds: cat(n(2, "step"), n(1, "finish"), n(1, "next"))},
		// An always_inline function and a call it makes.
		{Break: "implicit_user", Cmds: cat(n(1, "next"), n(4, "step"), n(2, "next"))},
		// finish out of an inlined call (pair_sum, always_inline).
		{Break: kernel("bp:implicit"), Cmds: cat(n(1, "finish"), n(2, "next"))},
		// A clone (cloned.constprop at -O2), its two calls on one line.
		{Break: "cloned", Cmds: cat(n(3, "next"), n(1, "step"), n(2, "next"))},
		// A loop: next goes round it.
		{Break: "vla_sum", Cmds: n(5, "next")},
		// Nested inlined calls at the function's entry and on one line
		// with a call.
		{Break: "nest", Cmds: cat(n(8, "step"), n(1, "finish"), n(2, "next"))},
		// finish out of nested inlined calls, next over inlined calls on
		// the line of a call.
		{Break: kernel("bp:sameline"), Cmds: cat(n(1, "step"), n(2, "finish"), n(1, "next"))},
		// A block's variable shadows the parameter.
		{Break: "shadow", Cmds: n(3, "next")},
		// Assembly without CFI: step in, next through it, out.
		{Break: kernel("asm_marker();"), Cmds: cat(n(1, "step"), n(2, "next"), n(1, "finish"))},
	}
}

// dapStep is the DAP request for a gdb command.
var dapStep = map[string]string{"next": "next", "step": "stepIn", "finish": "stepOut"}

// stepPlay says how vmdap plays the scenarios of a guest.
type stepPlay struct {
	outer string // the function the depth counts frames up to
	mode  string // the scenario breakpoints' mode ("": the default)
}

// corpusPlay: the corpus guest's scenarios.
var corpusPlay = stepPlay{outer: "kmain"}

// vmdapSteps plays each scenario over DAP on its own boot of the guest;
// start launches or attaches the session (stopped at its entry).
func vmdapSteps(t *testing.T, scs []vmmtest.StepScenario, p stepPlay, start func(c *daptest.Client)) [][]vmmtest.StepStop {
	t.Helper()
	out := make([][]vmmtest.StepStop, len(scs))
	for k, sc := range scs {
		out[k] = vmdapScenario(t, k, sc, p, start)
	}
	return out
}

func vmdapScenario(t *testing.T, k int, sc vmmtest.StepScenario, p stepPlay, start func(c *daptest.Client)) []vmmtest.StepStop {
	t.Helper()
	c := stdioClient(t)
	defer c.Disconnect()
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	start(c)
	if _, err := c.WaitEvent("initialized"); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigurationDone(); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("attach stop: %+v %v", ev, err)
	}
	setBreak := func(spec string, on bool) {
		i := strings.LastIndexByte(spec, ':')
		if i < 0 {
			bps := []map[string]any{}
			if on {
				bp := map[string]any{"name": spec}
				if p.mode != "" {
					bp["mode"] = p.mode
				}
				bps = append(bps, bp)
			}
			m, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": bps})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range m.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints {
				if !b.Verified {
					t.Fatalf("function breakpoint %s not verified: %s", spec, b.Message)
				}
			}
			return
		}
		line, _ := strconv.Atoi(spec[i+1:])
		var bps []map[string]any
		if on {
			bp := daptest.Line(line)
			if p.mode != "" {
				bp["mode"] = p.mode
			}
			bps = append(bps, bp)
		}
		resp, err := c.SetBreakpoints(spec[:i], bps...)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range resp.Body.Breakpoints {
			if !b.Verified {
				t.Fatalf("breakpoint %s not verified: %s", spec, b.Message)
			}
		}
	}
	var out []vmmtest.StepStop
	setBreak(sc.Break, true)
	if err := c.Continue(1); err != nil {
		t.Fatal(err)
	}
	ev, err := c.WaitAnyEvent("stopped", "exited", "terminated")
	if err != nil {
		t.Fatalf("scenario %d (%s): %v", k, sc.Break, err)
	}
	if st, ok := ev.(*dap.StoppedEvent); !ok || !strings.Contains(st.Body.Reason, "breakpoint") {
		t.Fatalf("scenario %d: running to %s: %#v", k, sc.Break, ev)
	}
	setBreak(sc.Break, false)
	out = append(out, vmdapWhere(t, c, p.outer, k, 0, ""))
	for i, cmd := range sc.Cmds {
		if err := c.Step(dapStep[cmd], 1, ""); err != nil {
			t.Fatalf("scenario %d (%s): %s %d: %v", k, sc.Break, cmd, i+1, err)
		}
		ev, err := c.WaitAnyEvent("stopped", "exited", "terminated")
		if err != nil {
			t.Fatalf("scenario %d (%s): %s %d: %v", k, sc.Break, cmd, i+1, err)
		}
		// A step that ends otherwise (the guest exited, a pause) is a
		// stop gdb did not make.
		if st, ok := ev.(*dap.StoppedEvent); !ok || st.Body.Reason != "step" {
			what := ev.(dap.EventMessage).GetEvent().Event
			if ok {
				what += " " + st.Body.Reason
			}
			return append(out, vmmtest.StepStop{Scenario: k, Index: i + 1, Cmd: cmd, Func: "<" + what + ">", Depth: -1})
		}
		out = append(out, vmdapWhere(t, c, p.outer, k, i+1, cmd))
	}
	return out
}

// vmdapWhere describes vmdap's stop as the oracle does.
func vmdapWhere(t *testing.T, c *daptest.Client, outer string, scenario, index int, cmd string) vmmtest.StepStop {
	t.Helper()
	tr, err := c.StackTrace(1)
	if err != nil {
		t.Fatal(err)
	}
	fs := tr.Body.StackFrames
	s := vmmtest.StepStop{Scenario: scenario, Index: index, Cmd: cmd, Depth: -1}
	if len(fs) == 0 {
		return s
	}
	s.Func, s.Line = fs[0].Name, fs[0].Line
	s.PC, _ = strconv.ParseUint(strings.TrimPrefix(fs[0].InstructionPointerReference, "0x"), 16, 64)
	if s.Func == fmt.Sprintf("%#x", s.PC) {
		s.Func = "" // no symbol: vmdap names the frame by its address, gdb "??"
	}
	if fs[0].Source != nil {
		s.File = fs[0].Source.Path
	}
	for i, f := range fs {
		s.Frames = append(s.Frames, f.Name)
		if f.Name == outer {
			s.Depth = i
			break
		}
	}
	return s
}

func stepKey(s vmmtest.StepStop) string {
	return fmt.Sprintf("%s %s:%d pc %#x depth %d", s.Func, filepath.Base(s.File), s.Line, s.PC, s.Depth)
}

// stepDiff is a stop where vmdap and gdb differ.
type stepDiff struct {
	build    *stepBuild
	scenario vmmtest.StepScenario
	index    int
	gdb, vmd vmmtest.StepStop
	want     []vmmtest.StepStop // the scenario's stops under gdb
}

func (d stepDiff) String() string {
	return fmt.Sprintf("from %s, after %s #%d: vmdap at %s; gdb at %s", filepath.Base(d.scenario.Break), d.gdb.Cmd, d.index,
		stepKey(d.vmd), stepKey(d.gdb))
}

// stepBuild is what the exceptions know of a build.
type stepBuild struct {
	tag string
	sym *symbols.Table
	// callPCOnly: functions with a tail call site described by
	// DW_AT_call_pc alone (no return address).
	callPCOnly map[string]bool
	// producer is the compiler's DW_AT_producer (of the first unit gas
	// did not assemble).
	producer string
}

func newStepBuild(t *testing.T, tag, path string) *stepBuild {
	t.Helper()
	sym, err := symbols.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	b := &stepBuild{tag: tag, sym: sym, callPCOnly: map[string]bool{}}
	for _, fn := range sym.Funcs() {
		for _, cs := range sym.CallSites(fn) {
			if cs.Tail && cs.ReturnPC == 0 && cs.PC != 0 {
				b.callPCOnly[fn.Name] = true
			}
		}
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if d, err := f.DWARF(); err == nil {
		// The compiler's: the first unit not assembled by gas.
		r := d.Reader()
		for {
			e, err := r.Next()
			if err != nil || e == nil {
				break
			}
			if p, _ := e.Val(dwarf.AttrProducer).(string); p != "" && !strings.HasPrefix(p, "GNU AS") {
				b.producer = p
				break
			}
			r.SkipChildren()
		}
	}
	return b
}

// compareSteps returns the stops where vmdap and gdb differ. A scenario
// is compared on past a known difference only while both sides are at
// the same pc (a difference of frames alone): once they are at different
// places, the stops after it start from different places and say nothing.
func compareSteps(b *stepBuild, scs []vmmtest.StepScenario, want, got [][]vmmtest.StepStop) []stepDiff {
	var out []stepDiff
	for k := range scs {
		for i := range want[k] {
			if i >= len(got[k]) {
				break
			}
			if stepKey(want[k][i]) == stepKey(got[k][i]) {
				continue
			}
			d := stepDiff{build: b, scenario: scs[k], index: i, gdb: want[k][i], vmd: got[k][i], want: want[k]}
			out = append(out, d)
			if want[k][i].PC != got[k][i].PC || knownStep(d) == nil {
				break
			}
		}
	}
	return out
}

// stepException is a known difference between vmdap's stepping and
// gdb's: where gdb is arguably wrong, or vmdap chooses otherwise on
// purpose. A difference that matches none fails the test.
type stepException struct {
	name, why string
	match     func(d stepDiff) bool
}

// knownStep returns the exception that explains d, or nil.
func knownStep(d stepDiff) *stepException {
	for i := range stepExceptions {
		if stepExceptions[i].match(d) {
			return &stepExceptions[i]
		}
	}
	return nil
}

// stepExceptions: where gdb 13 is wrong. (Found by this test and fixed
// in vmdap: an inlined call entered within the line's range was run
// through; a non-statement row of another line became the line being
// stepped; a step into optimised code did not skip its frame setup;
// leaving inlined code by a finish or a next stopped at a non-statement
// row.)
var stepExceptions = []stepException{
	{
		name: "gdb-drops-call-pc-only-tail-callers",
		why:  noteCallPCOnly,
		// Same place; vmdap's frames are gdb's plus the tail callers
		// whose call site gdb dropped.
		match: func(d stepDiff) bool {
			if d.vmd.PC != d.gdb.PC || d.vmd.Func != d.gdb.Func || d.vmd.Line != d.gdb.Line || d.vmd.Depth < 0 {
				return false
			}
			depth := d.vmd.Depth
			for _, f := range d.vmd.Frames[1:] {
				if d.build.callPCOnly[f] {
					depth--
				}
			}
			return depth == d.gdb.Depth && depth != d.vmd.Depth
		},
	},
	{
		name: "gdb-misses-debian-clang",
		why: "a step into a function compiled by Debian's clang (DW_AT_producer \"Debian clang version 14.0.6\"): " +
			"gdb 13's step asks amd64_skip_prologue, which reads the line table only when producer_is_llvm, and that " +
			"wants the producer to begin with \"clang \"; so it falls back to amd64_analyze_prologue, finds no " +
			"push %rbp; mov %rsp,%rbp (-fomit-frame-pointer) and stops at the entry, before the prologue " +
			"(level1's sub $0x38,%rsp), where the locals' %rsp-based locations do not hold yet. Its own break on the " +
			"function stops at the line table's prologue_end, and so does its step once the producer is renamed " +
			"\"clang version 14.0.6 Debian\" (checked by hand: level2 at kernel.c:143, not 141): vmdap stops there",
		match: func(d stepDiff) bool {
			if d.gdb.Cmd != "step" || strings.HasPrefix(d.build.producer, "clang ") ||
				!strings.Contains(d.build.producer, "clang version") {
				return false
			}
			fn := d.build.sym.FuncAt(d.gdb.PC)
			if fn == nil || fn.Low != d.gdb.PC || d.vmd.Func != fn.Name || d.vmd.Depth != d.gdb.Depth {
				return false
			}
			pe, ok := d.build.sym.PrologueEnd(fn)
			return ok && pe == d.vmd.PC && pe != fn.Low
		},
	},
	{
		name: "gdb-misses-linux-rax-thunk",
		why: "a step into a call by pointer through Linux's %rax retpoline: gdb steps through indirect branch " +
			"thunks (x86_in_indirect_branch_thunk: __x86_return_thunk and __x86_indirect_thunk_<register>), but " +
			"names the %rax one by the symbol Linux puts at the same address, __x86_indirect_thunk_array, which it " +
			"does not take for a thunk; so its step stops at the thunk's first line (GEN-for-each-reg.h), as it " +
			"does at no other register's, and its next step goes where vmdap's went: the called function",
		match: func(d stepDiff) bool {
			if d.gdb.Cmd != "step" || d.gdb.Func != "__x86_indirect_thunk_array" || d.index+1 >= len(d.want) {
				return false
			}
			next := d.want[d.index+1]
			return next.Cmd == "step" && stepKey(next) == stepKey(d.vmd)
		},
	},
	{
		name: "gdb-empties-line-at-inlined-code",
		why: "a breakpoint on a line whose first row is where an inlined call's rows (of another file) begin: " +
			"gdb 13 closes the line's file's line-table sequence at the address where the other file's rows start, " +
			"so the line's own row there has no code (\"Line 886 of init/main.c ... contains no code\") and its " +
			"breakpoint goes to the line's next row, after the inlined code has run (start_kernel's " +
			"local_irq_disable(): gdb stops after the call *pv_ops that disables interrupts); vmdap stops at the " +
			"line's first row, before it, as gdb does for lines without inlined code",
		match: func(d stepDiff) bool {
			if d.index != 0 || d.gdb.Func != d.vmd.Func || d.vmd.PC >= d.gdb.PC || d.vmd.Depth != d.gdb.Depth {
				return false
			}
			i := strings.LastIndexByte(d.scenario.Break, ':')
			if i < 0 || strconv.Itoa(d.vmd.Line) != d.scenario.Break[i+1:] {
				return false
			}
			entered := false
			for _, c := range d.build.sym.InlinedAt(d.vmd.PC) {
				entered = entered || c.Entry == d.vmd.PC && c.CallLine == d.vmd.Line
			}
			end, ok := d.build.sym.NextRow(d.vmd.PC)
			return entered && ok && end <= d.gdb.PC
		},
	},
}

// TestSteppingMatchesGDB: from the same breakpoint stops of the corpus
// guest, vmdap's next, stepIn and stepOut stop where gdb's next, step and
// finish stop under QEMU TCG: the same function (inlined calls as gdb
// shows them), line, pc and frame depth. vmdap runs the guest attached
// to QEMU TCG, as gdb, and on its own VMM (KVM). The builds: -O0, -O2,
// -O1 with DWARF 4, -m32, DWARF 2's line tables, -flto.
func TestSteppingMatchesGDB(t *testing.T) {
	if testing.Short() {
		t.Skip("boots guests under QEMU: not with -short")
	}
	vmmtest.RequireGDB(t)
	tags := []string{"O0", "O2", "dwarf4", "m32", "dwarf2", "lto"}
	for _, o := range guests.ClangCorpus {
		tags = append(tags, o.Tag)
	}
	for _, tag := range tags {
		t.Run(tag, func(t *testing.T) {
			if strings.HasPrefix(tag, "clang-") {
				if _, err := exec.LookPath("clang"); err != nil {
					t.Skip("clang is not installed: the clang builds of the corpus are compiled with it")
				}
			}
			r := corpusRunOf(t, tag)
			qemu, err := exec.LookPath(r.qemu)
			if err != nil {
				t.Skipf("skipping: %s is not installed (the expected stops come from gdb attached to it)", r.qemu)
			}
			scs := stepScenarios(t, vmmtest.BuildCorpus(t, tag).Dir)
			b := newStepBuild(t, tag, r.symbols)
			want := vmmtest.RunStepOracle(t, vmmtest.StepOracle{QEMU: qemu, Kernel: r.kernel, Symbols: r.symbols,
				Scenarios: scs, Outer: "kmain"})
			t.Run("qemu", func(t *testing.T) {
				got := vmdapSteps(t, scs, corpusPlay, func(c *daptest.Client) { attachCorpus(t, c, qemu, r) })
				reportStepDiffs(t, b, scs, want, got)
			})
			t.Run("kvm", func(t *testing.T) {
				vmmtest.RequireKVM(t)
				got := vmdapSteps(t, scs, corpusPlay, func(c *daptest.Client) {
					if err := c.Launch(map[string]any{"program": r.kvm, "memory": 64, "stopOnEntry": true}); err != nil {
						t.Fatalf("launch: %v", err)
					}
				})
				reportStepDiffs(t, b, scs, want, got)
			})
		})
	}
}

// reportStepDiffs logs both sides' stops and fails on every difference
// no exception names.
func reportStepDiffs(t *testing.T, b *stepBuild, scs []vmmtest.StepScenario, want, got [][]vmmtest.StepStop) {
	t.Helper()
	for k := range scs {
		var sb strings.Builder
		for i := range want[k] {
			fmt.Fprintf(&sb, "\n  %-6s gdb %-50s", want[k][i].Cmd, stepKey(want[k][i]))
			if i < len(got[k]) {
				fmt.Fprintf(&sb, " vmdap %s", stepKey(got[k][i]))
			}
		}
		t.Logf("%s:%s", filepath.Base(scs[k].Break), sb.String())
	}
	told := map[string]bool{}
	for _, d := range compareSteps(b, scs, want, got) {
		if e := knownStep(d); e != nil {
			if !told[e.name] {
				t.Logf("gdb is wrong: %s: %s", e.name, e.why)
				told[e.name] = true
			}
			t.Logf("gdb is wrong here (%s): %s", e.name, d)
			continue
		}
		t.Errorf("%s", d)
	}
}
