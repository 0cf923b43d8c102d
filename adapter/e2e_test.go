package adapter_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
)

func TestBreakpointStepAndInspect(t *testing.T) {
	e := launchExample(t, nil)
	call := e.line("int total = sum_squares(5);")
	bps, err := e.c.SetBreakpoints(e.src, daptest.Line(call))
	e.must(err)
	if b := bps.Body.Breakpoints[0]; !b.Verified || b.Line != call || b.Id == 0 {
		t.Fatalf("breakpoint %+v", b)
	}
	e.must(e.c.ConfigurationDone())
	ev := e.stopped("breakpoint")
	if ev.Body.ThreadId != 1 || len(ev.Body.HitBreakpointIds) != 1 || ev.Body.HitBreakpointIds[0] != bps.Body.Breakpoints[0].Id || !ev.Body.AllThreadsStopped {
		t.Fatalf("stopped %+v", ev.Body)
	}
	f := e.at("kmain", call)
	if f.InstructionPointerReference == "" || f.Source == nil || filepath.Base(f.Source.Path) != "main.c" {
		t.Fatalf("frame %+v", f)
	}
	// Loaded Sources: the line table's files, on disk here.
	ls, err := e.c.Request("loadedSources", map[string]any{})
	e.must(err)
	srcs := map[string]dap.Source{}
	for _, x := range ls.(*dap.LoadedSourcesResponse).Body.Sources {
		srcs[x.Name] = x
	}
	for _, n := range []string{"main.c", "io.c", "start.S"} {
		x := srcs[n]
		_, statErr := os.Stat(x.Path)
		if !strings.HasSuffix(x.Path, "examples/kernel/"+n) || (statErr == nil) != (x.PresentationHint == "") {
			t.Fatalf("loaded source %s: %+v (on disk: %v)", n, x, statErr == nil)
		}
	}
	if os.Getenv("VMDAP_LANE") == "" && srcs["main.c"].Path != e.src {
		t.Fatalf("main.c is %s, want this checkout's %s", srcs["main.c"].Path, e.src)
	}
	// The serial output so far arrived as output events.
	if !strings.Contains(e.c.Output("stdout"), "hello from the vmdap example guest") {
		t.Fatalf("stdout = %q", e.c.Output("stdout"))
	}
	// Globals and expressions.
	g := e.vars(f.Id, "Globals")
	if g["origin"] != "{x: 3, y: 4}" || g["favourite"] != "GREEN (1)" || !strings.Contains(g["greeting"], `"hello from the vmdap example guest"`) {
		t.Fatalf("globals %v", g)
	}
	for expr, want := range map[string]string{
		"origin.x * 10 + origin.y":                "34",
		"sizeof(struct point)":                    "8",
		"(origin.y > origin.x) && !counter":       "1",
		"*(unsigned int *)&origin":                "3",
		"greeting[1]":                             "101 'e'",
		"origin.x * 10 + origin.y,x":              "0x22", // Visual Studio's format suffix
		"/x origin.y":                             "0x4",  // gdb's print/x
		"origin, h":                               "{x: 0x3, y: 0x4}",
		"-origin.x,X":                             "0xfffffffd", // C's int, not widened
		"sizeof(origin.x + 1)":                    "4",
		"sizeof(origin.x + 1L)":                   "8",
		"(unsigned char)200 + (unsigned char)100": "300", // promoted to int
		"(unsigned int)1 > -1":                    "0",   // -1 converted to unsigned int
		"(long)1 > -1":                            "1",
		"1 << 31":                                 "-2147483648",
	} {
		if got := e.eval(f.Id, expr); got != want {
			t.Errorf("evaluate %q = %q, want %q", expr, got, want)
		}
	}
	if got := e.eval(f.Id, "$rip"); mustHex(t, got) != mustHex(t, f.InstructionPointerReference) {
		t.Errorf("$rip = %s, frame pc %s", got, f.InstructionPointerReference)
	}
	// gdb's types: $rip is code (void (*)()), $rsp data (void *).
	if got := e.eval(f.Id, "$rip + 0"); !strings.HasPrefix(got, f.InstructionPointerReference+" <kmain+") {
		t.Errorf("$rip + 0 = %s (a code pointer, as gdb shows it), frame pc %s", got, f.InstructionPointerReference)
	}
	if got := e.eval(f.Id, "(unsigned long)$pc"); got != fmt.Sprint(mustHex(t, f.InstructionPointerReference)) {
		t.Errorf("(unsigned long)$pc = %s (in decimal), frame pc %s", got, f.InstructionPointerReference)
	}
	if r, err := e.c.Evaluate(f.Id, "$sp"); err != nil || r.Body.Type != "void *" {
		t.Errorf("$sp: %+v %v, want a void *", r, err)
	}
	// A hex struct's members are hex too, and keep plain evaluate names.
	hx, err := e.c.Evaluate(f.Id, "origin,x")
	e.must(err)
	vr, err := e.c.Variables(hx.Body.VariablesReference)
	e.must(err)
	if kids := vr.Body.Variables; len(kids) != 2 || kids[0].Value != "0x3" || kids[0].EvaluateName != "(origin).x" {
		t.Fatalf("members of origin,x: %+v", vr.Body.Variables)
	}
	// The extension's hex toggle: variables, watch and hover in hex.
	_, err = e.c.Request("vmdap.hexDisplay", map[string]any{"hex": true})
	e.must(err)
	if _, err := e.c.WaitEvent("invalidated"); err != nil {
		t.Fatal(err)
	}
	if g := e.vars(f.Id, "Globals"); g["origin"] != "{x: 0x3, y: 0x4}" || e.eval(f.Id, "origin.y + 1") != "0x5" {
		t.Fatalf("hex display: globals %v", g)
	}
	_, err = e.c.Request("vmdap.hexDisplay", map[string]any{"hex": false})
	e.must(err)
	if e.eval(f.Id, "origin.y + 1") != "5" {
		t.Fatal("decimal display did not come back")
	}
	if _, err := e.c.Request("vmdap.hexDisplay", map[string]any{"hex": "yes"}); err == nil {
		t.Fatal("a malformed hexDisplay succeeded")
	}

	// gdb's examine command in the debug console.
	origin := mustHex(t, e.eval(f.Id, "/x &origin"))
	rip := mustHex(t, f.InstructionPointerReference)
	kmain := mustHex(t, e.eval(f.Id, "/x (unsigned long)&kmain"))
	for cmd, want := range map[string]string{
		"x/4xb &origin":      fmt.Sprintf("%#x <origin>:\t0x03\t0x00\t0x00\t0x00", origin),
		"x/2dw &origin":      fmt.Sprintf("%#x <origin>:\t3\t4", origin),
		"x/3uh &origin":      fmt.Sprintf("%#x <origin>:\t3\t0\t4", origin),
		"x/s greeting":       `"hello from the vmdap example guest"`,
		"x/2i $rip":          fmt.Sprintf("=> %#x <kmain+%d>", rip, rip-kmain), // gdb's offset: decimal
		"x/xg 0xdead0000000": "Cannot access memory at address 0xdead0000000",
	} {
		if got := e.eval(f.Id, cmd); !strings.Contains(got, want) {
			t.Errorf("%s:\n%s\nwant it to contain %q", cmd, got, want)
		}
	}
	// QEMU monitor's physical examine and translation (vmdap's VMM reads
	// guest-physical memory; the example kernel is identity-mapped).
	gpa := e.eval(f.Id, "gva2gpa &origin")
	if !strings.HasPrefix(gpa, fmt.Sprintf("gpa: %#x (4-level paging; the page ends at virtual", origin)) {
		t.Errorf("gva2gpa &origin: %q", gpa)
	}
	if got := e.eval(f.Id, "xp/2dw &origin"); got != fmt.Sprintf("%#x:\t3\t4", origin) {
		t.Errorf("xp/2dw &origin: %q", got)
	}
	if _, err := e.c.Evaluate(f.Id, "gva2gpa 0xdead00000000"); err == nil || !strings.Contains(err.Error(), "not mapped") {
		t.Errorf("gva2gpa of an unmapped address: %v", err)
	}
	// gdb's print, typed from habit.
	for expr, want := range map[string]string{"p/x 255": "0xff", "print 1 + 2": "3", "p &origin == &*&origin": "1", "output -1": "-1"} {
		if r, err := e.c.Evaluate(f.Id, expr); err != nil || r.Body.Result != want {
			t.Errorf("evaluate %q: %+v %v, want %s", expr, r, err, want)
		}
	}
	// Dereferencing an unmapped address fails, as gdb's print does, and
	// doesn't answer its fault as a value.
	if r, err := e.c.Evaluate(f.Id, "*(int *)0xdead00000000"); err == nil || !strings.Contains(err.Error(), "cannot read guest memory at 0xdead00000000") {
		t.Errorf("evaluate *(int *)0xdead00000000: %+v %v", r, err)
	}
	if _, err := e.c.Evaluate(f.Id, "xp/s 0x1000"); err == nil {
		t.Error("xp/s succeeded")
	}
	if got := e.eval(f.Id, "x/2i $rip"); strings.Count(got, "\n") != 1 {
		t.Errorf("x/2i: %q, want two lines", got)
	}
	if _, err := e.c.Evaluate(f.Id, "x/4q &origin"); err == nil || !strings.Contains(err.Error(), "unknown format letter") {
		t.Errorf("x/4q: %v", err)
	}

	// Debug-console completions: names in scope, members, registers.
	complete := func(text string) map[string]dap.CompletionItem {
		t.Helper()
		r, err := e.c.Request("completions", map[string]any{"frameId": f.Id, "text": text, "column": len(text) + 1})
		e.must(err)
		m := map[string]dap.CompletionItem{}
		for _, it := range r.(*dap.CompletionsResponse).Body.Targets {
			m[it.Label] = it
		}
		return m
	}
	if c := complete("1 + ori"); c["origin"].Start != 5 || c["origin"].Length != 3 || c["origin"].Type != "variable" {
		t.Fatalf("completions of ori: %+v", c)
	}
	if c := complete("sum_sq"); c["sum_squares"].Type != "function" {
		t.Fatalf("completions of sum_sq: %+v", c)
	}
	for text, want := range map[string][]string{"origin.": {"x", "y"}, "(&origin)->": {"x", "y"}, "$ri": {"rip"}, "origin.q": nil, "counter >": nil,
		"x/": nil, "x/8g": nil, "xp/4": nil, "x/8gx ori": {"origin"}, "x/2i $ri": {"rip"}, // (no names in examine's format word)
		"origin.x": {"x"}, "$rip": {"rip"}} { // a name typed in full is offered too, as gdb's complete lists it
		c := complete(text)
		if len(c) != len(want) {
			t.Fatalf("completions of %q: %+v, want %v", text, c, want)
		}
		for _, w := range want {
			if _, ok := c[w]; !ok {
				t.Fatalf("completions of %q: %+v, want %v", text, c, want)
			}
		}
	}
	if _, err := e.c.Evaluate(f.Id, "no_such_thing + 1"); err == nil {
		t.Error("evaluating an unknown name succeeded")
	}

	// step in: stops after sum_squares' prologue, at its first statement.
	f = e.seq(seqStep{"stepIn", "sum_squares", "int total = 0;", 0})
	if a := e.vars(f.Id, "Arguments"); a["n"] != "5" {
		t.Fatalf("arguments %v", a)
	}
	const loop = "squares[i] = square(i);"
	// over two lines, into square, then out again (TestStepSequences
	// has more such tables)
	e.seq(seqStep{"next", "sum_squares", "for (int i = 0; i < n; i++) {", 0},
		seqStep{"next", "sum_squares", loop, 0},
		seqStep{"stepIn", "square", "int result = x * x;", 0})
	st, _ := e.c.StackTrace(1)
	if len(st.Body.StackFrames) < 3 || st.Body.StackFrames[1].Name != "sum_squares" || st.Body.StackFrames[2].Name != "kmain" {
		t.Fatalf("stack %+v", st.Body.StackFrames)
	}
	if l := e.vars(st.Body.StackFrames[1].Id, "Locals"); l["i"] != "0" || l["total"] != "0" {
		t.Fatalf("caller locals %v", l)
	}
	e.seq(seqStep{"stepOut", "sum_squares", loop, 0})
	// setVariable: a local and a register
	f = e.top()
	sc, _ := e.c.Scopes(f.Id)
	var localsRef int
	for _, s := range sc.Body.Scopes {
		if s.Name == "Locals" {
			localsRef = s.VariablesReference
		}
	}
	r, err := e.c.Request("setVariable", map[string]any{"variablesReference": localsRef, "name": "total", "value": "100"})
	e.must(err)
	if v := r.(*dap.SetVariableResponse).Body.Value; v != "100" {
		t.Fatalf("setVariable total = %s", v)
	}
	if got := e.eval(f.Id, "total"); got != "100" {
		t.Fatalf("total after setVariable = %s", got)
	}
	e.eval(f.Id, "total") // still fine
	r, err = e.c.Request("setVariable", map[string]any{"variablesReference": localsRef, "name": "total", "value": "0"})
	e.must(err)
	// setExpression: the watch view's Set Value (a member, a local in hex,
	// a register), read back from the guest; non-lvalues refused.
	setExpr := func(expr, value string) (string, error) {
		r, err := e.c.Request("setExpression", map[string]any{"expression": expr, "value": value, "frameId": f.Id})
		if err != nil {
			return "", err
		}
		return r.(*dap.SetExpressionResponse).Body.Value, nil
	}
	for _, c := range []struct{ expr, value, want string }{
		{"origin.y", "origin.x * 3", "9"}, {"origin.y", "4", "4"},
		{"total,x", "0x10", "0x10"}, {"total", "0", "0"},
	} {
		if got, err := setExpr(c.expr, c.value); err != nil || got != c.want {
			t.Fatalf("setExpression %s = %s: %q %v, want %q", c.expr, c.value, got, err, c.want)
		}
	}
	rbx := e.eval(f.Id, "$rbx")
	if got, err := setExpr("$rbx", "0x1234"); err != nil || got != "0x0000000000001234" || e.eval(f.Id, "$rbx + 0") != "4660" {
		t.Fatalf("setExpression $rbx: %q %v", got, err)
	}
	if _, err := setExpr("$rbx", rbx); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"origin.x + 1", "origin", "no_such_thing"} {
		if _, err := setExpr(bad, "1"); err == nil {
			t.Fatalf("setExpression %s succeeded", bad)
		}
	}

	// instruction step
	pc := mustHex(t, e.top().InstructionPointerReference)
	e.must(e.c.Step("stepIn", 1, "instruction"))
	e.stopped("step")
	if npc := mustHex(t, e.top().InstructionPointerReference); npc == pc {
		t.Fatal("instruction step did not move")
	}
	if code := e.runToExit(); code != 1 {
		t.Fatalf("exit status %d, want 1 (guest wrote 0)", code)
	}
	if out := e.c.Output("stdout"); !strings.Contains(out, "sum of squares: 30") {
		t.Fatalf("stdout %q", out)
	}
}

func mustHex(t *testing.T, s string) uint64 {
	t.Helper()
	var v uint64
	if _, err := fmt.Sscanf(s, "0x%x", &v); err != nil {
		t.Fatalf("bad address %q", s)
	}
	return v
}

func TestRegistersScope(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.top()
	sc, err := e.c.Scopes(f.Id)
	e.must(err)
	var regRef int
	for _, s := range sc.Body.Scopes {
		if s.Name == "Registers" {
			regRef = s.VariablesReference
		}
	}
	groups, err := e.c.Variables(regRef)
	e.must(err)
	byName := map[string]dap.Variable{}
	for _, g := range groups.Body.Variables {
		byName[g.Name] = g
	}
	for _, n := range []string{"General", "Segments", "Control", "Debug"} {
		if byName[n].VariablesReference == 0 {
			t.Fatalf("no %s register group: %+v", n, groups.Body.Variables)
		}
	}
	ctl, err := e.c.Variables(byName["Control"].VariablesReference)
	e.must(err)
	found := false
	for _, v := range ctl.Body.Variables {
		if v.Name == "cr0" {
			found = strings.Contains(v.Value, "PE") && strings.Contains(v.Value, "PG")
		}
	}
	if !found {
		t.Fatalf("cr0 not decoded: %+v", ctl.Body.Variables)
	}
	gen, err := e.c.Variables(byName["General"].VariablesReference)
	e.must(err)
	var raxRef int
	for _, v := range gen.Body.Variables {
		if v.Name == "rip" && mustHex(t, v.Value) != mustHex(t, f.InstructionPointerReference) {
			t.Fatalf("rip %s vs frame %s", v.Value, f.InstructionPointerReference)
		}
	}
	raxRef = byName["General"].VariablesReference
	_, err = e.c.Request("setVariable", map[string]any{"variablesReference": raxRef, "name": "rax", "value": "0x1234"})
	e.must(err)
	if got := e.eval(f.Id, "$rax"); got != "0x0000000000001234" {
		t.Fatalf("$rax = %s after setVariable", got)
	}
	// A value the CPU refuses is refused with the rule it breaks.
	// (CR4's bit 31 is reserved on every CPU: KVM checks CR4 on every host.)
	if _, err := e.c.Request("setExpression", map[string]any{"expression": "$cr4", "value": "$cr4 | 0x80000000", "frameId": f.Id}); err == nil || !strings.Contains(err.Error(), "bits the CPU does not support cannot be set") {
		t.Fatalf("$cr4 with a reserved bit: %v, want a refusal that says why", err)
	}
	// The same reference, asked again (as a client that takes no
	// invalidated event does), shows the new value too.
	gen, err = e.c.Variables(raxRef)
	e.must(err)
	for _, v := range gen.Body.Variables {
		if v.Name == "rax" && mustHex(t, v.Value) != 0x1234 {
			t.Fatalf("the General group's reference, asked again after setVariable rax: rax %s", v.Value)
		}
	}
	th, err := e.c.Request("threads", nil)
	e.must(err)
	if ts := th.(*dap.ThreadsResponse).Body.Threads; len(ts) != 1 || ts[0].Id != 1 || ts[0].Name != "vCPU 0" {
		t.Fatalf("threads %+v", ts)
	}
}

func TestLineFixupConditionsHitCountsLogpoints(t *testing.T) {
	e := launchExample(t, nil)
	blank := e.line("/* the global counter */") // a line with no code
	loop := e.line("squares[i] = square(i);")
	total := e.line("total += squares[i];")
	bps, err := e.c.SetBreakpoints(e.src,
		map[string]any{"line": blank},
		map[string]any{"line": loop, "condition": "i == 3"},
		map[string]any{"line": total, "hitCondition": ">=4"},
		map[string]any{"line": e.line("counter++;"), "logMessage": "i={i} total={total}"})
	e.must(err)
	b := bps.Body.Breakpoints
	if len(b) != 4 {
		t.Fatalf("%d breakpoints", len(b))
	}
	// A line without code in a declaration region moves to the next line
	// with code; here that line holds no code until a function: it is
	// either moved (verified, with the new line) or refused with a reason.
	if b[0].Verified && b[0].Line <= blank {
		t.Fatalf("breakpoint on a line without code: %+v", b[0])
	}
	for _, x := range b[1:] {
		if !x.Verified {
			t.Fatalf("breakpoint %+v", x)
		}
	}
	// Drop the first (it may sit at a function start) to keep the sequence clear.
	bps, err = e.c.SetBreakpoints(e.src,
		map[string]any{"line": loop, "condition": "i == 3"},
		map[string]any{"line": total, "hitCondition": ">=4"},
		map[string]any{"line": e.line("counter++;"), "logMessage": "i={i} total={total} ({total,x}) \\{i} {{i}}"})
	e.must(err)
	if bps.Body.Breakpoints[0].Id != b[1].Id {
		t.Fatalf("unchanged breakpoint got a new id: %d vs %d", bps.Body.Breakpoints[0].Id, b[1].Id)
	}
	e.must(e.c.ConfigurationDone())
	ev := e.stopped("breakpoint")
	f := e.at("sum_squares", loop)
	if got := e.eval(f.Id, "i"); got != "3" {
		t.Fatalf("condition i == 3 stopped with i = %s", got)
	}
	if ev.Body.HitBreakpointIds[0] != b[1].Id {
		t.Fatalf("hit ids %v", ev.Body.HitBreakpointIds)
	}
	e.must(e.c.Continue(1))
	e.stopped("breakpoint")
	f = e.at("sum_squares", total)
	if got := e.eval(f.Id, "i"); got != "3" { // 4th hit of the total line is i == 3
		t.Fatalf("hit condition >=4 stopped with i = %s", got)
	}
	e.must(e.c.Continue(1))
	e.stopped("breakpoint")
	if got := e.eval(e.top().Id, "i"); got != "4" {
		t.Fatalf("5th hit with i = %s", got)
	}
	out := e.c.Output("console")
	if !strings.Contains(out, "i=0 total=0 (0x0) {i} {i}") || !strings.Contains(out, "i=2 total=5 (0x5)") {
		t.Fatalf("logpoint output %q", out)
	}
	// remove all; run to the end
	_, err = e.c.SetBreakpoints(e.src)
	e.must(err)
	e.runToExit()
}

func TestFunctionInstructionAndHardwareBreakpoints(t *testing.T) {
	e := launchExample(t, nil)
	r, err := e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "square"}, {"name": "nonexistent_fn"}}})
	e.must(err)
	fb := r.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints
	if !fb[0].Verified || fb[1].Verified || fb[1].Message == "" {
		t.Fatalf("function breakpoints %+v", fb)
	}
	e.must(e.c.ConfigurationDone())
	e.stopped("function breakpoint")
	f := e.at("square", e.line("int result = x * x;"))
	// An instruction breakpoint two instructions further, given as the
	// disassembly view sends it: reference + byte offset.
	dis, err := e.c.Disassemble(f.InstructionPointerReference, 0, 3)
	e.must(err)
	if len(dis.Body.Instructions) != 3 {
		t.Fatalf("%d instructions", len(dis.Body.Instructions))
	}
	target := mustHex(t, dis.Body.Instructions[2].Address)
	off := int(target - mustHex(t, f.InstructionPointerReference))
	// (With one whose reference is no address, answered failed in its
	// place, and set nowhere.)
	r, err = e.c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"instructionReference": "bogus"},
		{"instructionReference": f.InstructionPointerReference, "offset": off}}})
	e.must(err)
	if ib := r.(*dap.SetInstructionBreakpointsResponse).Body.Breakpoints; len(ib) != 2 || ib[0].Verified || !strings.Contains(ib[0].Message, "not an address") ||
		ib[0].InstructionReference != "" || !ib[1].Verified || mustHex(t, ib[1].InstructionReference) != target {
		t.Fatalf("instruction breakpoints %+v, want the bogus one failed and the other at %#x", ib, target)
	}
	_, err = e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []any{}})
	e.must(err)
	e.must(e.c.Continue(1))
	e.stopped("instruction breakpoint")
	if pc := mustHex(t, e.top().InstructionPointerReference); pc != target {
		t.Fatalf("stopped at %#x, want %#x", pc, target)
	}
	_, err = e.c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []any{}})
	e.must(err)
	// Hardware mode: four fit, the fifth is refused with a reason.
	var hw []map[string]any
	for _, m := range []string{"int total = 0;", "squares[i] = square(i);", "total += squares[i];", "counter++;", "return total;"} {
		hw = append(hw, map[string]any{"line": e.line(m), "mode": "hardware"})
	}
	bps, err := e.c.SetBreakpoints(e.src, hw...)
	e.must(err)
	n := 0
	for _, b := range bps.Body.Breakpoints {
		if b.Verified {
			n++
		} else if !strings.Contains(b.Message, "DR0-DR3") {
			t.Fatalf("unverified breakpoint without the reason: %+v", b)
		}
	}
	if n != 4 {
		t.Fatalf("%d hardware breakpoints verified, want 4: %+v", n, bps.Body.Breakpoints)
	}
	e.must(e.c.Continue(1))
	e.stopped("breakpoint")
	if l := e.top().Line; l != e.line("squares[i] = square(i);") && l != e.line("total += squares[i];") && l != e.line("counter++;") {
		t.Fatalf("hardware breakpoint stop at line %d", l)
	}
	_, err = e.c.SetBreakpoints(e.src)
	e.must(err)
	e.runToExit()
}

func TestStepOverLongCallAndPause(t *testing.T) {
	e := launchExample(t, nil)
	busy := e.line("unsigned long work = busy_work(")
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(busy))
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	f := e.seq(seqStep{"next", "kmain", `puts("busy work: ");`, 0})
	if got := e.eval(f.Id, "work"); got == "0" {
		t.Fatal("busy_work did not run")
	}
	e.runToExit()

	// Pause a running guest, change breakpoints while it runs. The busy
	// loop is made endless first, so the guest cannot get past it (or
	// exit) whatever the host's speed; where the pause lands in it does
	// not matter.
	e2 := launchExample(t, map[string]any{"stopOnEntry": true})
	_, err = e2.c.Request("setVariable", map[string]any{"variablesReference": 1, "name": "x", "value": "1"}) // no stop yet
	if err == nil {
		t.Fatal("setVariable with no stop succeeded")
	}
	e2.must(e2.c.ConfigurationDone())
	e2.stopped("entry")
	setGlobal := func(name, value string) {
		t.Helper()
		_, err := e2.c.Request("setExpression", map[string]any{"expression": name, "value": value})
		e2.must(err)
	}
	setGlobal("busy_iterations", "0x7fffffffffffffff")
	e2.must(e2.c.Continue(1))
	after := e2.line(`puts("busy work: ");`)
	bps, err := e2.c.SetBreakpoints(e2.src, daptest.Line(after)) // while running
	e2.must(err)
	if !bps.Body.Breakpoints[0].Verified {
		t.Fatalf("breakpoint set while running: %+v", bps.Body.Breakpoints[0])
	}
	e2.must(pauseSoon(e2))
	e2.stopped("pause")
	// End the loop: the global if busy_work has not started, its
	// argument if it has.
	setGlobal("busy_iterations", "1")
	st, err := e2.c.StackTrace(1)
	e2.must(err)
	for _, f := range st.Body.StackFrames {
		if f.Name == "busy_work" {
			_, err := e2.c.Request("setExpression", map[string]any{"expression": "iterations", "value": "0", "frameId": f.Id})
			e2.must(err)
		}
	}
	e2.must(e2.c.Continue(1))
	e2.stopped("breakpoint")
	e2.at("kmain", after)
	_, err = e2.c.SetBreakpoints(e2.src)
	e2.must(err)
	e2.runToExit()
}

// pauseSoon pauses the running guest (wherever it is).
func pauseSoon(e *env) error {
	_, err := e.c.Request("pause", map[string]any{"threadId": 1})
	return err
}

func TestExceptionFilter(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	_, err := e.c.Request("setExceptionBreakpoints", map[string]any{"filters": []string{"DE", "GP", "triple"}})
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.top()
	sc, _ := e.c.Scopes(f.Id)
	var gref int
	for _, s := range sc.Body.Scopes {
		if s.Name == "Globals" {
			gref = s.VariablesReference
		}
	}
	_, err = e.c.Request("setVariable", map[string]any{"variablesReference": gref, "name": "scenario", "value": "1"})
	e.must(err)
	e.must(e.c.Continue(1))
	ev := e.stopped("exception")
	if ev.Body.Text != "#DE" || !strings.Contains(ev.Body.Description, "divide") {
		t.Fatalf("exception stop %+v", ev.Body)
	}
	r, err := e.c.Request("exceptionInfo", map[string]any{"threadId": 1})
	e.must(err)
	info := r.(*dap.ExceptionInfoResponse).Body
	if info.ExceptionId != "#DE" || !strings.Contains(info.Description, "raised at divide") {
		t.Fatalf("exceptionInfo %+v", info)
	}
	if f := e.top(); !strings.HasPrefix(f.Name, "isr0") {
		t.Fatalf("stopped in %s, want the #DE handler", f.Name)
	}
	if code := e.runToExit(); code != (0x7f<<1|1)&0xff {
		t.Fatalf("exit %d", code)
	}
}

func TestMemoryAndDisassembly(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.top()
	// The value's memoryReference, as a client takes it (the value text
	// is gdb's: 0x102000 <origin>).
	r, err := e.c.Evaluate(f.Id, "&origin")
	e.must(err)
	addr := r.Body.MemoryReference
	mem, err := e.c.ReadMemory(addr, 0, 8)
	e.must(err)
	b, _ := base64.StdEncoding.DecodeString(mem.Body.Data)
	if len(b) != 8 || b[0] != 3 || b[4] != 4 {
		t.Fatalf("readMemory origin = % x", b)
	}
	_, err = e.c.Request("writeMemory", map[string]any{"memoryReference": addr, "data": base64.StdEncoding.EncodeToString([]byte{9, 0, 0, 0})})
	e.must(err)
	if _, err := e.c.WaitEvent("invalidated"); err != nil {
		t.Fatal(err)
	}
	if got := e.eval(f.Id, "origin.x"); got != "9" {
		t.Fatalf("origin.x after writeMemory = %s", got)
	}
	// Reading past the end of RAM: a readable prefix, then unreadable bytes.
	top := 64 << 20
	mem, err = e.c.ReadMemory(fmt.Sprintf("%#x", top-16), 0, 64)
	e.must(err)
	b, _ = base64.StdEncoding.DecodeString(mem.Body.Data)
	if len(b) != 16 || mem.Body.UnreadableBytes != 48 {
		t.Fatalf("read across the end of RAM: %d bytes, %d unreadable", len(b), mem.Body.UnreadableBytes)
	}
	// A write across it writes nothing without allowPartial (the spec's
	// all or nothing), and the part that fits with it.
	end := fmt.Sprintf("%#x", top-2)
	ff := base64.StdEncoding.EncodeToString([]byte{0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa})
	if _, err := e.c.Request("writeMemory", map[string]any{"memoryReference": end, "data": ff}); err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("writeMemory across the end of RAM: %v, want a refusal that wrote nothing", err)
	}
	if mem, err = e.c.ReadMemory(end, 0, 2); err != nil || mem.Body.Data != "AAA=" {
		t.Fatalf("the last two bytes of RAM after a refused write: %+v, %v: want them as they were (0 0)", mem, err)
	}
	w, err := e.c.Request("writeMemory", map[string]any{"memoryReference": end, "data": ff, "allowPartial": true})
	e.must(err)
	if n := w.(*dap.WriteMemoryResponse).Body.BytesWritten; n != 2 {
		t.Fatalf("writeMemory with allowPartial across the end of RAM wrote %d bytes, want 2", n)
	}
	// Disassembly: exactly the count asked for, backward from a sync point.
	kmain := e.eval(f.Id, "&kmain")
	_ = kmain
	pc := f.InstructionPointerReference
	for _, tc := range []struct{ off, n int }{{0, 10}, {-5, 10}, {-40, 50}, {3, 4}} {
		dis, err := e.c.Disassemble(pc, tc.off, tc.n)
		e.must(err)
		ins := dis.Body.Instructions
		if len(ins) != tc.n {
			t.Fatalf("disassemble off %d count %d gave %d", tc.off, tc.n, len(ins))
		}
		if tc.off <= 0 && -tc.off < tc.n && ins[-tc.off].Address != pc {
			t.Fatalf("disassemble off %d: instruction %d is %s, want the pc %s", tc.off, -tc.off, ins[-tc.off].Address, pc)
		}
	}
	e.runToExit()
}

func TestBadLaunchConfigs(t *testing.T) {
	vmmtestRequire(t)
	c, _ := newClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	notELF := filepath.Join(dir, "notelf")
	os.WriteFile(notELF, []byte("this is not a kernel"), 0o644)
	trunc := filepath.Join(dir, "trunc.elf")
	ex := buildExample(t)
	data, _ := os.ReadFile(ex)
	os.WriteFile(trunc, data[:len(data)/3], 0o644)
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, `"program" is required`},
		{map[string]any{"program": filepath.Join(dir, "missing")}, "cannot be read"},
		{map[string]any{"program": notELF}, "not an ELF file"},
		{map[string]any{"program": ex, "initrd": filepath.Join(dir, "missing")}, `(initrd) cannot be read`},
		{map[string]any{"program": ex, "args": "console=ttyS0"}, `a kernel command line (args) needs a boot protocol that passes one`},
		{map[string]any{"program": trunc}, "ELF"},
		{map[string]any{"program": ex, "vcpus": 1000}, `"vcpus" must be between`},
		{map[string]any{"program": ex, "memory": 1 << 30}, `"memory" is in MiB`},
		{map[string]any{"program": ex, "boot": "floppy"}, `"boot" must be`},
		{map[string]any{"program": ex, "hypervisor": "qemu", "irqchip": true}, `"irqchip" is for`},
		{map[string]any{"program": ex, "memory": "lots"}, `launch configuration: "memory" must be a whole number, not a string`},
		{map[string]any{"program": ex, "memory": 1.5}, `"memory" must be a whole number, not 1.5`},
		{map[string]any{"program": ex, "stopOnEntry": "yes"}, `"stopOnEntry" must be true or false, not a string`},
		{map[string]any{"program": 7}, `"program" must be a string, not a number`},
		{map[string]any{"program": ex, "taskThreads": 1}, `launch configuration: "taskThreads" must be true or false, not a number`},
		{map[string]any{"program": ex, "modules": []any{"/lib/modules"}}, `launch configuration: "modules" must be a string, not a list`},
	} {
		err := c.Launch(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("launch %v: %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	// After all that, a good launch works; null is "not given" (the
	// default), as a client that writes out every property sends it.
	if err := c.Launch(map[string]any{"program": ex, "memory": nil, "vcpus": nil, "prgram": "typo"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitEvent("initialized"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Output("console"), `unknown launch property "prgram"`) {
		t.Fatal("no warning about the unknown property")
	}
}

func TestMalformedAndUnknownMessages(t *testing.T) {
	c, _ := newClient(t)
	// A message that is not JSON, one with an unknown command, one with
	// wrong argument types: each gets an error response, the session goes on.
	if err := c.SendRaw([]byte(`{"seq": 1, "type": "request", "command": "initialize", "arguments": `)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request("frobnicate", nil); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("unknown command: %v", err)
	}
	if _, err := c.Request("stackTrace", map[string]any{"threadId": "one"}); err == nil {
		t.Fatal("bad arguments accepted")
	}
	if _, err := c.Request("threads", nil); err == nil || !strings.Contains(err.Error(), "launch or attach first") {
		t.Fatalf("threads before launch: %v", err)
	}
	r, err := c.Initialize()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Body.SupportsDataBreakpoints {
		t.Fatal("capabilities missing after errors")
	}
}

func TestDisconnectLeavesNothingBehind(t *testing.T) {
	vmmtestRequire(t)
	ex := buildExample(t)
	runOne := func() {
		c, done := newClient(t)
		c.Initialize()
		if err := c.Launch(map[string]any{"program": ex, "memory": 64, "vcpus": 2}); err != nil {
			t.Fatal(err)
		}
		c.WaitEvent("initialized")
		c.ConfigurationDone()
		c.Request("pause", map[string]any{"threadId": 1})
		if err := c.Disconnect(); err != nil {
			t.Fatal(err)
		}
		c.Close()
		<-done
	}
	checkNoLeaks(t, runOne)
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}
