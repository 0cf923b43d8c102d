package adapter_test

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/session"
	"vmdap/vmm/vmmtest"
)

// TestRunBeforeConfigurationDone: the guest starts at configurationDone;
// a continue or step before it is refused (it would run the guest, and
// the entry stop configurationDone sends would come after, and be false).
func TestRunBeforeConfigurationDone(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	for _, cmd := range []string{"continue", "next", "stepIn", "stepOut"} {
		_, err := e.c.Request(cmd, map[string]any{"threadId": 1})
		if err == nil || !strings.Contains(err.Error(), "configurationDone") {
			t.Errorf("%s before configurationDone: %v, want refused", cmd, err)
		}
	}
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	e.must(e.c.Continue(1))
	e.c.WaitEvent("terminated")
}

// TestInitializeTwice: a second initialize would change the line and
// column bases under the client; it is refused and changes nothing.
func TestInitializeTwice(t *testing.T) {
	e := launchExample(t, nil)
	busy := e.line("unsigned long work = busy_work(")
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(busy))
	e.must(err)
	if _, err := e.c.Request("initialize", map[string]any{"adapterID": "vmdap", "linesStartAt1": false}); err == nil {
		t.Fatal("a second initialize was accepted")
	}
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	if f := e.top(); f.Line != busy {
		t.Fatalf("after a refused initialize the stop is at line %d, want %d (lines still from 1)", f.Line, busy)
	}
}

// TestBreakpointLineZero: line 0 is not a line (lines count from 1): the
// breakpoint is refused, not moved to the first line with code.
func TestBreakpointLineZero(t *testing.T) {
	e := launchExample(t, nil)
	r, err := e.c.SetBreakpoints(e.src, daptest.Line(0))
	e.must(err)
	if b := r.Body.Breakpoints[0]; b.Verified || !strings.Contains(b.Message, "before the first line") {
		t.Fatalf("breakpoint at line 0: %+v", b)
	}
}

// TestDetachFromOwnVMM: vmdap's own VMM cannot let its guest run on
// after the session: a disconnect asking for that ends the guest, and
// says so with exited before terminated.
func TestDetachFromOwnVMM(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	if _, err := e.c.Request("disconnect", map[string]any{"terminateDebuggee": false}); err != nil {
		t.Fatal(err)
	}
	var ends []string
	for _, n := range e.c.EventNames() {
		if n == "exited" || n == "terminated" {
			ends = append(ends, n)
		}
	}
	if strings.Join(ends, " ") != "exited terminated" {
		t.Fatalf("events at the end: %v, want exited then terminated", ends)
	}
}

// TestReadMemoryAtTheTop: bytes past the top of the address space are
// unreadable, not the bottom's.
func TestReadMemoryAtTheTop(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	m, err := e.c.Request("readMemory", map[string]any{"memoryReference": "0xfffffffffffffff8", "count": 16})
	e.must(err)
	b := m.(*dap.ReadMemoryResponse).Body
	if b.UnreadableBytes != 16 || b.Data != "" {
		t.Fatalf("16 bytes from 0xfffffffffffffff8: %+v, want 16 unreadable", b)
	}
}

// TestModulesOptimized: the image's module says whether its code was
// optimised, from its DWARF (the example is built -O0).
func TestModulesOptimized(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	m, err := e.c.Request("modules", map[string]any{})
	e.must(err)
	mods := m.(*dap.ModulesResponse).Body.Modules
	if len(mods) == 0 || mods[0].IsOptimized {
		t.Fatalf("modules of the -O0 example: %+v", mods)
	}
}

// TestPauseNamesItsThread: every vCPU stops at a pause; the stop is
// reported on the thread the pause named.
func TestPauseNamesItsThread(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true, "vcpus": 2})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	_, err := e.c.Request("setExpression", map[string]any{"expression": "busy_iterations", "value": "0x7fffffffffffffff"})
	e.must(err)
	e.must(e.c.Continue(1))
	_, err = e.c.Request("pause", map[string]any{"threadId": 2})
	e.must(err)
	if ev := e.stopped("pause"); ev.Body.ThreadId != 2 {
		t.Fatalf("pause of thread 2 stopped on thread %d", ev.Body.ThreadId)
	}
	st, err := e.c.StackTrace(2)
	e.must(err)
	if len(st.Body.StackFrames) == 0 {
		t.Fatal("no frames on the paused thread")
	}
}

// TestRegisterRows: the Registers view's rows say what can be set (the
// innermost frame's general registers) and what cannot (groups, segments,
// a caller's registers); a narrow register shows its own width; a char
// in hex shows its code in hex.
func TestRegisterRows(t *testing.T) {
	e := launchExample(t, nil)
	e.startAtLine("squares[i] = square(i);")
	st, err := e.c.StackTrace(1)
	e.must(err)
	frames := st.Body.StackFrames
	if len(frames) < 2 {
		t.Fatalf("frames: %+v", frames)
	}
	readOnly := func(v dap.Variable) bool {
		return v.PresentationHint != nil && slices.Contains(v.PresentationHint.Attributes, "readOnly")
	}
	rows := func(frame int) map[string]dap.Variable {
		groups, err := e.c.ScopeVars(frame, "Registers")
		e.must(err)
		out := map[string]dap.Variable{}
		for _, g := range groups {
			out[g.Name] = g
			m, err := e.c.Request("variables", map[string]any{"variablesReference": g.VariablesReference})
			e.must(err)
			for _, v := range m.(*dap.VariablesResponse).Body.Variables {
				out[g.Name+"."+v.Name] = v
			}
		}
		return out
	}
	top := rows(frames[0].Id)
	for _, g := range []string{"General", "Segments", "Control"} {
		if v := top[g]; v.NamedVariables == 1 || !readOnly(v) {
			t.Errorf("group %s: %+v (want no namedVariables guess, read-only)", g, v)
		}
	}
	if v := top["General.rax"]; readOnly(v) {
		t.Errorf("rax of the innermost frame is marked read-only: %+v", v)
	}
	if v := top["Segments.cs"]; !readOnly(v) {
		t.Errorf("cs is not marked read-only: %+v", v)
	}
	if v := rows(frames[1].Id)["General.rax"]; !readOnly(v) {
		t.Errorf("rax of a caller's frame is not marked read-only: %+v", v)
	}
	if got := e.eval(frames[0].Id, "$eflags"); len(got) != len("0x")+8 {
		t.Errorf("$eflags = %q, want 8 hex digits", got)
	}
	r, err := e.c.Request("evaluate", map[string]any{"expression": "(unsigned char)200", "frameId": frames[0].Id, "format": map[string]any{"hex": true}})
	e.must(err)
	if got := r.(*dap.EvaluateResponse).Body.Result; !strings.HasPrefix(got, "0xc8 ") {
		t.Errorf("(unsigned char)200 in hex = %q", got)
	}
}

// TestConsoleHelp: help lists the debug console's commands (not the Linux
// ones for a guest that is not Linux).
func TestConsoleHelp(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	r, err := e.c.Request("evaluate", map[string]any{"expression": "help", "context": "repl"})
	e.must(err)
	out := r.(*dap.EvaluateResponse).Body.Result
	if !strings.Contains(out, "x/NFU ADDR") || !strings.Contains(out, "ptype/o") || !strings.Contains(out, "dump FILE") || strings.Contains(out, "dmesg") {
		t.Fatalf("help:\n%s", out)
	}
	// The type commands are commands in the console (session's tests
	// compare their text with gdb's).
	for expr, want := range map[string]string{"whatis counter": "type = volatile unsigned long",
		"ptype &origin": "type = struct point {", "ptype/o struct point": "/* total size (bytes):"} {
		r, err := e.c.Request("evaluate", map[string]any{"expression": expr, "context": "repl"})
		if err != nil || !strings.Contains(r.(*dap.EvaluateResponse).Body.Result, want) {
			t.Errorf("%s: %+v %v, want %q", expr, r, err, want)
		}
	}
}

// TestConsoleAssignAndPrint: the debug console takes gdb's forms: p EXPR,
// p/x EXPR, LHS = RHS, LHS += RHS and set var LHS = RHS (the watch and
// hover contexts do not assign).
func TestConsoleAssignAndPrint(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	repl := func(expr string) string {
		t.Helper()
		r, err := e.c.Request("evaluate", map[string]any{"expression": expr, "context": "repl"})
		e.must(err)
		return r.(*dap.EvaluateResponse).Body.Result
	}
	if got := repl("counter = 40"); got != "40" {
		t.Errorf("counter = 40: %q", got)
	}
	if got := repl("counter += 2"); got != "42" {
		t.Errorf("counter += 2: %q", got)
	}
	if got := repl("p counter"); got != "42" {
		t.Errorf("p counter: %q", got)
	}
	if got := repl("p/x counter"); got != "0x2a" {
		t.Errorf("p/x counter: %q", got)
	}
	if got := repl("set var counter = 7"); got != "7" {
		t.Errorf("set var counter = 7: %q", got)
	}
	if got := repl("counter == 7"); got != "1" {
		t.Errorf("counter == 7: %q", got)
	}
	if _, err := e.c.Request("evaluate", map[string]any{"expression": "counter = 1", "context": "watch"}); err == nil {
		t.Error("a watch expression assigned")
	}
	if got := repl("counter"); got != "7" {
		t.Errorf("counter after the watch: %q", got)
	}
}

// TestReadMemoryBounded: a read of more than session.MaxReadMemory bytes
// is refused with a message saying so (its response would be over the
// 4 MiB message go-dap based clients accept), and one of exactly that
// much is answered in one response that stays under it.
func TestReadMemoryBounded(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	_, err := e.c.Request("readMemory", map[string]any{"memoryReference": "0x0", "count": 16 << 20})
	if err == nil || !strings.Contains(err.Error(), "too large") || !strings.Contains(err.Error(), "1 MiB") {
		t.Fatalf("16 MiB read: %v, want refused as too large", err)
	}
	m, raw, err := e.c.RequestRaw("readMemory", map[string]any{"memoryReference": "0x0", "count": session.MaxReadMemory})
	e.must(err)
	b := m.(*dap.ReadMemoryResponse).Body
	if n := base64.StdEncoding.DecodedLen(len(b.Data)); n+b.UnreadableBytes < session.MaxReadMemory-2 || len(raw) >= 4<<20 {
		t.Fatalf("1 MiB read: %d bytes and %d unreadable in a %d-byte response", n, b.UnreadableBytes, len(raw))
	}
}

// TestConsoleBacktraceAndRegisters: gdb's bt and info registers in the
// console print what the Call Stack and the Registers scope show, as gdb
// prints them.
func TestConsoleBacktraceAndRegisters(t *testing.T) {
	e := launchExample(t, nil)
	e.startAt("square")
	st, err := e.c.StackTrace(1)
	e.must(err)
	frames := st.Body.StackFrames
	repl := func(expr string) string {
		t.Helper()
		r, err := e.c.Request("evaluate", map[string]any{"expression": expr, "context": "repl", "frameId": frames[0].Id})
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return r.(*dap.EvaluateResponse).Body.Result
	}
	bt := strings.Split(strings.TrimSpace(repl("bt")), "\n")
	if len(bt) != len(frames) {
		t.Fatalf("bt printed %d frames, the stack has %d:\n%s", len(bt), len(frames), strings.Join(bt, "\n"))
	}
	for i, f := range frames {
		// gdb's: the pc in full where the frame is mid-line (every
		// caller's), the arguments as print shows them.
		want := fmt.Sprintf("#%-2d ", i)
		if i > 0 {
			want += fmt.Sprintf("0x%016x in ", mustHex(t, f.InstructionPointerReference))
		}
		var args []string
		sc, err := e.c.Scopes(f.Id)
		e.must(err)
		for _, scope := range sc.Body.Scopes {
			if scope.Name == "Arguments" {
				vs, err := e.c.Variables(scope.VariablesReference)
				e.must(err)
				for _, v := range vs.Body.Variables {
					args = append(args, v.Name+"="+v.Value)
				}
			}
		}
		want += fmt.Sprintf("%s (%s) at %s:%d", f.Name, strings.Join(args, ", "), f.Source.Path, f.Line)
		if bt[i] != want {
			t.Errorf("bt's line %d: %q, want %q", i, bt[i], want)
		}
	}
	if got := strings.Split(strings.TrimSpace(repl("bt 1")), "\n"); len(got) != 2 || got[0] != bt[0] || !strings.Contains(got[1], "More stack frames") {
		t.Errorf("bt 1: %q", got)
	}
	regs := repl("info registers")
	rip := fmt.Sprintf("rip            %#-19x%#x <square", mustHex(t, frames[0].InstructionPointerReference), mustHex(t, frames[0].InstructionPointerReference))
	if !strings.Contains(regs, rip) || !strings.Contains(regs, "\nrflags ") || !strings.Contains(regs, "\ncr3 ") || !strings.Contains(regs, "\ncs ") {
		t.Errorf("info registers:\n%s\nwant a line %q, rflags, cs and cr3", regs, rip)
	}
	rax := e.eval(frames[0].Id, "$rax")
	if got, want := repl("i r rax $pc"), fmt.Sprintf("rax            %#-19x%d\nrip ", mustHex(t, rax), int64(mustHex(t, rax))); !strings.HasPrefix(got, want) {
		t.Errorf("i r rax $pc:\n%s\nwant it to start %q", got, want)
	}
	if _, err := e.c.Request("evaluate", map[string]any{"expression": "info registers nosuch", "context": "repl", "frameId": frames[0].Id}); err == nil || !strings.Contains(err.Error(), `no register "nosuch"`) {
		t.Errorf("info registers nosuch: %v", err)
	}
}

// TestNoDebugSetsNoBreakpoints: a launch with noDebug (VS Code's Run
// Without Debugging) runs the guest "without enabling debugging": no
// entry stop, and the breakpoints the client still sends are answered
// unverified, not set, so the guest runs to its end.
func TestNoDebugSetsNoBreakpoints(t *testing.T) {
	e := launchExample(t, map[string]any{"noDebug": true, "stopOnEntry": true})
	r, err := e.c.SetBreakpoints(e.src, daptest.Line(e.line("int total = sum_squares(5);")))
	e.must(err)
	if b := r.Body.Breakpoints; len(b) != 1 || b[0].Verified || !strings.Contains(b[0].Message, "noDebug") {
		t.Fatalf("setBreakpoints under noDebug: %+v, want one unverified breakpoint saying why", b)
	}
	m, err := e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []any{map[string]any{"name": "square"}}})
	e.must(err)
	if b := m.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints; len(b) != 1 || b[0].Verified {
		t.Fatalf("setFunctionBreakpoints under noDebug: %+v, want one unverified breakpoint", b)
	}
	m, err = e.c.Request("setExceptionBreakpoints", map[string]any{"filters": []string{"triple"}})
	e.must(err)
	if b := m.(*dap.SetExceptionBreakpointsResponse).Body.Breakpoints; len(b) != 1 || b[0].Verified {
		t.Fatalf("setExceptionBreakpoints under noDebug: %+v, want the filter unverified", b)
	}
	e.must(e.c.ConfigurationDone())
	ev, err := e.c.WaitAnyEvent("stopped", "exited")
	e.must(err)
	if x, ok := ev.(*dap.ExitedEvent); !ok || x.Body.ExitCode != 1 { // 1: the guest wrote 0, all went well
		t.Fatalf("under noDebug the guest stopped or failed: %+v", ev)
	}
}

// TestConsoleInfoSymbolAddressLine: gdb's info symbol, info address and
// info line in the console print what gdb prints on the same image.
func TestConsoleInfoSymbolAddressLine(t *testing.T) {
	e := launchExample(t, nil)
	fid := e.startAt("square")
	cmds := []string{"info symbol square", "info symbol (char *)square + 3", "info symbol &origin", "info symbol 0x10",
		"info address square", "info address origin", "info line square", "info line *((char *)kmain + 20)",
		fmt.Sprintf("info line main.c:%d", e.line("int total = sum_squares(5);"))}
	want := vmmtest.GDBCommands(t, vmmtest.BuildExample(t, "kernel").Path, cmds)
	for _, c := range cmds {
		r, err := e.c.Request("evaluate", map[string]any{"expression": c, "context": "repl", "frameId": fid})
		if err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		if got := r.(*dap.EvaluateResponse).Body.Result; got != want[c] {
			t.Errorf("%s:\n vmdap %q\n gdb   %q", c, got, want[c])
		}
	}
	// A parameter of the frame (gdb needs the running target for it).
	if got := e.eval(fid, "info address x"); !strings.HasPrefix(got, `Symbol "x" is a variable `) {
		t.Errorf("info address x: %q", got)
	}
	if _, err := e.c.Evaluate(fid, "info address nosuch"); err == nil || !strings.Contains(err.Error(), `no symbol "nosuch"`) {
		t.Errorf("info address nosuch: %v", err)
	}
}
