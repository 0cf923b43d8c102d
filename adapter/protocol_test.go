package adapter_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

// Protocol conformance: what the adapter answers to requests that cannot
// be carried out, to malformed input, and the events on every path.
// Every message it sends is also checked against the DAP schema
// (newClient).

// refused asserts that a request failed with a message containing want.
func refused(t *testing.T, what string, err error, want string) {
	t.Helper()
	var er *daptest.ErrorResponse
	if !errors.As(err, &er) || !strings.Contains(er.Message, want) {
		t.Fatalf("%s: %v, want a refusal saying %q", what, err, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// outputs returns the text of the buffered output events of a category.
func outputs(evs []dap.Message, category string) string {
	s := ""
	for _, e := range evs {
		if o, ok := e.(*dap.OutputEvent); ok && o.Body.Category == category {
			s += o.Body.Output
		}
	}
	return s
}

// count counts buffered events by name.
func count(evs []dap.Message, name string) int {
	n := 0
	for _, e := range evs {
		if e.(dap.EventMessage).GetEvent().Event == name {
			n++
		}
	}
	return n
}

// TestBadHeadersAnsweredAndResynced: a base-protocol header that cannot be
// read gets an "important" output event (never a response with the
// schema-invalid request_seq 0), and the session reads on: a length
// beyond int64, a header line that never ends (answered before its end
// arrives, so it cannot grow), a header with no Content-Length.
func TestBadHeadersAnsweredAndResynced(t *testing.T) {
	c, _ := newClient(t)
	c.Timeout = 10 * time.Second
	for _, bad := range []string{
		"Content-Length: 99999999999999999999999\r\n\r\n{}",
		"Content-Length: twelve\r\n\r\n",
		"Content-Type: application/json\r\n\r\n",
		strings.Repeat("A", 64<<10), // no CR: answered before any more bytes come
	} {
		if err := c.WriteRaw([]byte(bad)); err != nil {
			t.Fatal(err)
		}
		m, err := c.WaitEvent("output")
		if err != nil {
			t.Fatalf("after %.40q: %v", bad, err)
		}
		if o := m.(*dap.OutputEvent); o.Body.Category != "important" || !strings.Contains(o.Body.Output, "header") {
			t.Fatalf("after %.40q: output %+v, want an important message about the header", bad, o.Body)
		}
		// The next well-formed request is read and answered.
		_, err = c.Request("threads", nil)
		refused(t, "threads after a bad header", err, "launch or attach first")
	}
	// A body that is not JSON, or has no seq: nothing to answer, so an
	// output event; a request with a seq and bad arguments: its error.
	for _, body := range []string{`{"seq": 1, "type": "request", "command": "initialize", "arguments": `, `{"type":"request","command":"threads"}`} {
		if err := c.SendRaw([]byte(body)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitEvent("output"); err != nil {
			t.Fatalf("after body %q: %v", body, err)
		}
	}
	_, err := c.Request("stackTrace", map[string]any{"threadId": "one"})
	refused(t, "stackTrace with a string threadId", err, "threadId")
	// "arguments": null is no arguments: fine where none are required.
	_, err = c.Request("threads", map[string]any(nil))
	refused(t, "threads with null arguments", err, "launch or attach first")
	_, err = c.Request("continue", map[string]any(nil))
	refused(t, "continue with null arguments", err, "arguments is required")
}

// TestRequestsThatCannotRunFail: requests naming threads that do not
// exist, missing required arguments, or run-control while the guest runs
// fail; no made-up stop follows.
func TestRequestsThatCannotRunFail(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	for _, r := range []struct {
		cmd  string
		args map[string]any
		want string
	}{
		{"next", map[string]any{"threadId": 5}, "no thread 5"},
		{"stepIn", map[string]any{"threadId": 0}, "no thread 0"},
		{"stepOut", map[string]any{"threadId": 99}, "no thread 99"},
		{"continue", map[string]any{"threadId": -3}, "no thread -3"},
		{"pause", map[string]any{"threadId": 7}, "no thread 7"},
		{"stackTrace", map[string]any{"threadId": 2}, "no thread 2"},
		{"exceptionInfo", map[string]any{"threadId": 3}, "no thread 3"},
		{"goto", map[string]any{"threadId": 4, "targetId": 1}, "no thread 4"},
	} {
		_, err := e.c.Request(r.cmd, r.args)
		refused(t, fmt.Sprintf("%s %v", r.cmd, r.args), err, r.want)
	}
	// Each request the spec gives required arguments, sent without them.
	for _, cmd := range []string{"continue", "next", "stepIn", "stepOut", "pause", "stackTrace", "scopes", "variables",
		"setVariable", "evaluate", "setExpression", "stepInTargets", "gotoTargets", "goto", "completions", "exceptionInfo",
		"readMemory", "writeMemory", "disassemble", "setBreakpoints", "setFunctionBreakpoints", "setInstructionBreakpoints",
		"setExceptionBreakpoints", "dataBreakpointInfo", "setDataBreakpoints", "breakpointLocations"} {
		_, err := e.c.Request(cmd, map[string]any{})
		refused(t, cmd+" without its arguments", err, "is required")
	}
	if n := count(e.c.Events(), "stopped"); n != 0 {
		t.Fatalf("%d stopped events after refused requests", n)
	}
	// A step: the response comes before the stop, which names thread 1.
	seq, ch, err := e.c.Send("next", map[string]any{"threadId": 1})
	e.must(err)
	resp, err := e.c.Wait("next", ch)
	e.must(err)
	ev := e.stopped("step")
	if ev.Body.ThreadId != 1 || ev.Seq < resp.(*dap.NextResponse).Seq {
		t.Fatalf("stop %+v (seq %d) for next (request %d, response seq %d)", ev.Body, ev.Seq, seq, resp.(*dap.NextResponse).Seq)
	}
	// While the guest runs, a step fails and no stop is invented.
	e.must(e.c.Continue(1))
	_, err = e.c.Request("next", map[string]any{"threadId": 1})
	refused(t, "next while running", err, "running")
	_, err = e.c.Request("gotoTargets", map[string]any{"source": map[string]any{"path": e.src}, "line": e.line("counter++;")})
	refused(t, "gotoTargets while running", err, "running")
	_, err = e.c.Request("pause", map[string]any{"threadId": 1})
	e.must(err)
	ev = e.stopped("pause")
	if ev.Body.ThreadId != 1 {
		t.Fatalf("pause stop %+v", ev.Body)
	}
}

// TestExitedThenTerminatedOnce: every way a session ends sends exactly
// one exited, then one terminated.
func TestExitedThenTerminatedOnce(t *testing.T) {
	once := func(t *testing.T, c *daptest.Client, terminated bool) {
		t.Helper()
		if _, err := c.WaitEvent("terminated"); err != nil {
			t.Fatal(err)
		}
		// Requests after the end fail and send nothing more.
		_, err := c.Request("continue", map[string]any{"threadId": 1})
		if err == nil {
			t.Fatal("continue after the guest exited succeeded")
		}
		_, err = c.Request("next", map[string]any{"threadId": 1})
		if err == nil {
			t.Fatal("next after the guest exited succeeded")
		}
		// A view's request that crosses the end of a session ended by
		// terminate (VS Code asks for scopes as Shift+F5 tears it down)
		// fails without a word to the user (VS Code pops up what it is
		// to show).
		_, raw, err := c.RequestRaw("scopes", map[string]any{"frameId": 1})
		if err == nil || strings.Contains(string(raw), "the debug session has ended") && strings.Contains(string(raw), `"showUser":true`) {
			t.Fatalf("scopes after the end: %v %s, want a failure, not shown to the user once the session is gone", err, raw)
		}
		if terminated && !strings.Contains(string(raw), "the debug session has ended") {
			t.Fatalf("scopes after terminate: %s, want the session's end", raw)
		}
		must(t, c.Disconnect())
		var ends []string
		for _, n := range c.EventNames() {
			if n == "exited" || n == "terminated" {
				ends = append(ends, n)
			}
		}
		if !slices.Equal(ends, []string{"exited", "terminated"}) {
			t.Fatalf("the session's end events were %v, want one exited then one terminated", ends)
		}
	}
	t.Run("guest exits", func(t *testing.T) {
		e := launchExample(t, nil)
		e.must(e.c.ConfigurationDone())
		if _, err := e.c.WaitEvent("exited"); err != nil {
			t.Fatal(err)
		}
		once(t, e.c, false)
	})
	t.Run("terminate request", func(t *testing.T) {
		e := launchExample(t, map[string]any{"stopOnEntry": true})
		e.must(e.c.ConfigurationDone())
		e.stopped("entry")
		_, err := e.c.Request("terminate", nil)
		e.must(err)
		if _, err := e.c.WaitEvent("exited"); err != nil {
			t.Fatalf("terminate: %v", err)
		}
		once(t, e.c, true)
	})
	t.Run("triple fault, filter off", func(t *testing.T) {
		vmmtestRequire(t)
		g := vmmtestGuest(t, "mech")
		c, _ := newClient(t)
		_, err := c.Initialize()
		must(t, err)
		must(t, c.Launch(map[string]any{"program": g, "memory": 64}))
		_, err = c.WaitEvent("initialized")
		must(t, err)
		_, err = c.Request("setExceptionBreakpoints", map[string]any{"filters": []string{}})
		must(t, err)
		must(t, c.ConfigurationDone())
		if _, err := c.Stopped(); err != nil { // halted at "ready"
			t.Fatal(err)
		}
		st, err := c.StackTrace(1)
		must(t, err)
		_, err = c.Request("setExpression", map[string]any{"expression": "$rip", "value": "&case_triple", "frameId": st.Body.StackFrames[0].Id})
		must(t, err)
		must(t, c.Continue(1))
		if _, err := c.WaitEvent("exited"); err != nil {
			t.Fatalf("triple fault: %v", err)
		}
		// The console says the session ends, and what would have kept it
		// (not that registers stay readable: nothing is, once it ends).
		if out := c.Output("important"); !strings.Contains(out, "triple-faulted") || strings.Contains(out, "stay readable") || !strings.Contains(out, `"Triple fault" exception breakpoint`) {
			t.Fatalf("the console at a triple fault with its filter off: %q", out)
		}
		once(t, c, false)
	})
}

// TestExceptionFiltersAnsweredPerFilter: an unknown filter is answered
// unverified with a reason; the valid ones stay set.
func TestExceptionFiltersAnsweredPerFilter(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	r, err := e.c.Request("setExceptionBreakpoints", map[string]any{"filters": []string{"DE", "bogus"}})
	e.must(err)
	bs := r.(*dap.SetExceptionBreakpointsResponse).Body.Breakpoints
	if len(bs) != 2 || !bs[0].Verified || bs[1].Verified || !strings.Contains(bs[1].Message, "bogus") {
		t.Fatalf("answer %+v, want DE verified and bogus refused with a reason", bs)
	}
	e.must(e.c.ConfigurationDone())
	f := e.stopped("entry")
	_ = f
	_, err = e.c.Request("setExpression", map[string]any{"expression": "scenario", "value": "1", "frameId": e.top().Id})
	e.must(err)
	e.must(e.c.Continue(1))
	if ev := e.stopped("exception"); ev.Body.Text != "#DE" {
		t.Fatalf("stop %+v, want #DE", ev.Body)
	}
}

// TestZeroBasedLinesAndColumns: a client that counts lines and columns
// from 0 gets them so everywhere.
func TestZeroBasedLinesAndColumns(t *testing.T) {
	vmmtestRequire(t)
	e := launchAs(t, buildExample(t), exampleSource(t), map[string]any{"linesStartAt1": false, "columnsStartAt1": false}, nil)
	call := e.line("int total = sum_squares(5);") // 1-based
	bps, err := e.c.SetBreakpoints(e.src, daptest.Line(call-1))
	e.must(err)
	if b := bps.Body.Breakpoints[0]; !b.Verified || b.Line != call-1 {
		t.Fatalf("breakpoint %+v, want verified at 0-based line %d", b, call-1)
	}
	r, err := e.c.Request("breakpointLocations", map[string]any{"source": map[string]any{"path": e.src}, "line": call - 1})
	e.must(err)
	if l := r.(*dap.BreakpointLocationsResponse).Body.Breakpoints; len(l) != 1 || l[0].Line != call-1 {
		t.Fatalf("breakpointLocations %+v, want line %d", l, call-1)
	}
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	f := e.top()
	if f.Line != call-1 || f.Column != 0 {
		t.Fatalf("frame at %d:%d, want %d:0", f.Line, f.Column, call-1)
	}
	r, err = e.c.Request("gotoTargets", map[string]any{"source": map[string]any{"path": e.src}, "line": call - 1})
	e.must(err)
	if g := r.(*dap.GotoTargetsResponse).Body.Targets; len(g) != 1 || g[0].Line != call-1 {
		t.Fatalf("gotoTargets %+v, want line %d", g, call-1)
	}
	r, err = e.c.Request("completions", map[string]any{"frameId": f.Id, "text": "1 + ori", "column": 7})
	e.must(err)
	found := false
	for _, it := range r.(*dap.CompletionsResponse).Body.Targets {
		if it.Label == "origin" {
			found = it.Start == 4 && it.Length == 3
		}
	}
	if !found {
		t.Fatalf("completions %+v, want origin at 0-based column 4", r.(*dap.CompletionsResponse).Body.Targets)
	}
	r, err = e.c.Request("stepInTargets", map[string]any{"frameId": f.Id})
	e.must(err)
	if ts := r.(*dap.StepInTargetsResponse).Body.Targets; len(ts) != 1 || ts[0].Line != call-1 {
		t.Fatalf("stepInTargets %+v, want line %d", ts, call-1)
	}
	dis, err := e.c.Disassemble(f.InstructionPointerReference, 0, 1)
	e.must(err)
	if in := dis.Body.Instructions[0]; in.Line != call-1 {
		t.Fatalf("disassembly line %d, want %d", in.Line, call-1)
	}
}

// TestFrameIdsRefusedAndUnique: an unknown frame id is refused (it never
// means the top frame); with no frame id, evaluate sees the global scope;
// frame and target ids are never reused in a session.
func TestFrameIdsRefusedAndUnique(t *testing.T) {
	e := launchExample(t, nil)
	loop := e.line("squares[i] = square(i);")
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(loop))
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	st1, err := e.c.StackTrace(1)
	e.must(err)
	f1 := st1.Body.StackFrames[0]
	for _, r := range []struct {
		cmd  string
		args map[string]any
	}{
		{"evaluate", map[string]any{"expression": "i", "frameId": 999999}},
		{"setExpression", map[string]any{"expression": "i", "value": "1", "frameId": 999999}},
		{"completions", map[string]any{"text": "i", "column": 2, "frameId": 999999}},
		{"scopes", map[string]any{"frameId": 999999}},
		{"stepInTargets", map[string]any{"frameId": 999999}},
		{"dataBreakpointInfo", map[string]any{"name": "i", "frameId": 999999}},
	} {
		_, err := e.c.Request(r.cmd, r.args)
		refused(t, r.cmd+" with an unknown frame", err, "frame")
	}
	// No frame: globals yes, the locals of the stop no.
	r, err := e.c.Request("evaluate", map[string]any{"expression": "origin.x", "context": "watch"})
	e.must(err)
	if v := r.(*dap.EvaluateResponse).Body.Result; v != "3" {
		t.Fatalf("origin.x without a frame = %s", v)
	}
	_, err = e.c.Request("evaluate", map[string]any{"expression": "i", "context": "watch"})
	refused(t, "a local without a frame", err, "no variable")
	// The next stop: fresh ids; the old ones are refused.
	e.must(e.c.Continue(1))
	e.stopped("breakpoint")
	st2, err := e.c.StackTrace(1)
	e.must(err)
	old := map[int]bool{}
	for _, f := range st1.Body.StackFrames {
		old[f.Id] = true
	}
	for _, f := range st2.Body.StackFrames {
		if old[f.Id] {
			t.Fatalf("frame id %d reused at the next stop", f.Id)
		}
	}
	_, err = e.c.Request("setExpression", map[string]any{"expression": "total", "value": "77", "frameId": f1.Id})
	refused(t, "setExpression with a stale frame", err, "frame")
	if got := e.eval(st2.Body.StackFrames[0].Id, "total"); got == "77" {
		t.Fatal("a stale frame id wrote a local")
	}
	// Goto target ids: unique across answers.
	g := func() int {
		r, err := e.c.Request("gotoTargets", map[string]any{"source": map[string]any{"path": e.src}, "line": loop})
		e.must(err)
		return r.(*dap.GotoTargetsResponse).Body.Targets[0].Id
	}
	if a, b := g(), g(); a == b {
		t.Fatalf("goto target id %d given twice", a)
	}
}

// TestVariablesFilterAndSourcelessFrames: variables honours filter; a
// frame without a source has column 0; setBreakpoints without a source
// path fails.
func TestVariablesFilterAndSourcelessFrames(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.top()
	get := func(expr, filter string) []dap.Variable {
		t.Helper()
		r, err := e.c.Evaluate(f.Id, expr)
		e.must(err)
		args := map[string]any{"variablesReference": r.Body.VariablesReference}
		if filter != "" {
			args["filter"] = filter
		}
		v, err := e.c.Request("variables", args)
		e.must(err)
		return v.(*dap.VariablesResponse).Body.Variables
	}
	if n := len(get("squares", "")); n != 8 {
		t.Fatalf("squares has %d elements", n)
	}
	if n := len(get("squares", "named")); n != 0 {
		t.Fatalf("named children of an array: %d", n)
	}
	if n := len(get("origin", "indexed")); n != 0 {
		t.Fatalf("indexed children of a struct: %d", n)
	}
	if n := len(get("origin", "named")); n != 2 {
		t.Fatalf("named children of origin: %d", n)
	}
	_, err := e.c.Request("setBreakpoints", map[string]any{"source": map[string]any{}, "breakpoints": []any{map[string]any{"line": 3}}})
	refused(t, "setBreakpoints without a path", err, "path")
	// A guest without line information: frames have no source, column 0.
	e2 := launchProgram(t, strippedExample(t), map[string]any{"stopOnEntry": true})
	e2.must(e2.c.ConfigurationDone())
	e2.stopped("entry")
	if f := e2.top(); f.Source != nil || f.Column != 0 || f.Line != 0 {
		t.Fatalf("frame without a source: %+v", f)
	}
}

// TestSetVariableSendsMemoryEvent: a value written to guest memory by
// setVariable or setExpression is announced with a memory event, as
// writeMemory does.
func TestSetVariableSendsMemoryEvent(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.top()
	addr := mustHex(t, e.eval(f.Id, "/x &origin.y"))
	var gref int
	sc, err := e.c.Scopes(f.Id)
	e.must(err)
	for _, s := range sc.Body.Scopes {
		if s.Name == "Globals" {
			gref = s.VariablesReference
		}
	}
	e.c.Events()
	_, err = e.c.Request("setVariable", map[string]any{"variablesReference": gref, "name": "counter", "value": "5"})
	e.must(err)
	m, err := e.c.WaitEvent("memory")
	e.must(err)
	if b := m.(*dap.MemoryEvent).Body; mustHex(t, b.MemoryReference) != mustHex(t, e.eval(f.Id, "/x &counter"))+uint64(b.Offset) || b.Count != 8 {
		t.Fatalf("memory event %+v after setVariable counter", b)
	}
	_, err = e.c.Request("setExpression", map[string]any{"expression": "origin.y", "value": "9", "frameId": f.Id})
	e.must(err)
	m, err = e.c.WaitEvent("memory")
	e.must(err)
	if b := m.(*dap.MemoryEvent).Body; mustHex(t, b.MemoryReference)+uint64(b.Offset) != addr || b.Count != 4 {
		t.Fatalf("memory event %+v after setExpression origin.y (at %#x)", b, addr)
	}
}

// TestRegistersAgreeWithEvaluate: register group rows carry a value and
// a type; evaluating a register shows what the Registers view shows ($cs
// a segment with its parts, $rax the same hex text).
func TestRegistersAgreeWithEvaluate(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.top()
	regs, err := e.c.ScopeVars(f.Id, "Registers")
	e.must(err)
	view := map[string]dap.Variable{}
	for _, g := range regs {
		if g.Value == "" || g.Type == "" {
			t.Errorf("register group %s: value %q, type %q", g.Name, g.Value, g.Type)
		}
		kids, err := e.c.Variables(g.VariablesReference)
		e.must(err)
		for _, k := range kids.Body.Variables {
			view[k.Name] = k
		}
	}
	for _, r := range []string{"rax", "rip", "rflags", "cs", "cr0"} {
		ev, err := e.c.Evaluate(f.Id, "$"+r)
		e.must(err)
		v := view[r]
		if ev.Body.Result != v.Value || ev.Body.Type != v.Type || (ev.Body.VariablesReference == 0) != (v.VariablesReference == 0) {
			t.Errorf("$%s evaluates to %q (%s, children %v); the Registers view shows %q (%s, children %v)", r,
				ev.Body.Result, ev.Body.Type, ev.Body.VariablesReference != 0, v.Value, v.Type, v.VariablesReference != 0)
		}
	}
	// Arithmetic on a register is an expression, in the display base.
	if got := e.eval(f.Id, "$cs & 3"); got != "0" {
		t.Errorf("$cs & 3 = %s", got)
	}
}

// TestHugeExpressionsRefused: expressions nested or long enough to
// exhaust the stack are refused, in evaluate, setExpression, conditions
// and console commands.
func TestHugeExpressionsRefused(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	deep := strings.Repeat("(", 200000) + "1" + strings.Repeat(")", 200000)
	minus := strings.Repeat("-", 4000000) + "1"
	bps, err := e.c.SetBreakpoints(e.src, map[string]any{"line": e.line("int total = 0;"), "condition": deep})
	e.must(err)
	if b := bps.Body.Breakpoints[0]; b.Verified {
		t.Fatalf("a breakpoint with a 200,000-deep condition verified: %+v", b)
	}
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.top()
	for _, x := range []string{deep, minus, "x/4x " + deep} {
		_, err := e.c.Evaluate(f.Id, x)
		refused(t, fmt.Sprintf("evaluate of %d bytes", len(x)), err, "too")
	}
	_, err = e.c.Request("setExpression", map[string]any{"expression": "origin.x", "value": minus, "frameId": f.Id})
	refused(t, "setExpression of a 4,000,000-deep value", err, "too")
	if got := e.eval(f.Id, "((((1))))+-(-2)"); got != "3" {
		t.Fatalf("a plain expression after the refusals: %s", got)
	}
}

// TestNegativeStartsRefused: stackTrace's startFrame and variables' start
// are unsigned; a negative one is refused, not a crash.
func TestNegativeStartsRefused(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	_, err := e.c.Request("stackTrace", map[string]any{"threadId": 1, "startFrame": -1})
	refused(t, "startFrame -1", err, "startFrame")
	r, err := e.c.Evaluate(e.top().Id, "squares")
	e.must(err)
	_, err = e.c.Request("variables", map[string]any{"variablesReference": r.Body.VariablesReference, "start": -1})
	refused(t, "start -1", err, "start")
	_, err = e.c.Request("variables", map[string]any{"variablesReference": r.Body.VariablesReference, "count": -2})
	refused(t, "count -2", err, "count")
	// An offset that takes a memory reference out of the address space
	// is refused, not wrapped around.
	for _, q := range []struct {
		cmd  string
		args map[string]any
	}{
		{"readMemory", map[string]any{"memoryReference": "0xffffffffffffffff", "offset": 16, "count": 16}},
		{"readMemory", map[string]any{"memoryReference": "0x1000", "offset": -8192, "count": 16}},
		{"writeMemory", map[string]any{"memoryReference": "0x10", "offset": -32, "data": "AA=="}},
		{"disassemble", map[string]any{"memoryReference": "0xfffffffffffffff0", "offset": 32, "instructionCount": 1}},
	} {
		_, err := e.c.Request(q.cmd, q.args)
		refused(t, fmt.Sprintf("%s %v", q.cmd, q.args), err, "leaves the address space")
	}
}

// TestConditionsCheckedWhenSet: a malformed condition, hit condition or
// logpoint expression leaves its breakpoint unverified, with the reason,
// when it is set (not at the first hit).
func TestConditionsCheckedWhenSet(t *testing.T) {
	e := launchExample(t, nil)
	loop := e.line("squares[i] = square(i);")
	total := e.line("total += squares[i];")
	bps, err := e.c.SetBreakpoints(e.src,
		map[string]any{"line": loop, "hitCondition": "% 0"},
		map[string]any{"line": total, "condition": "i =="},
		map[string]any{"line": e.line("counter++;"), "condition": "no_such_variable > 2"},
		map[string]any{"line": e.line("return total;"), "condition": "total > 0 && n == 5"},
		map[string]any{"line": e.line("int total = 0;"), "logMessage": "total is {total +}"},
		map[string]any{"line": e.line("int total = sum_squares(5);"), "logMessage": "total {total} and {no_such_name}"},
		map[string]any{"line": e.line("for (int i = 0; i < n; i++) {"), "logMessage": "sum_squares n={n}"})
	e.must(err)
	b := bps.Body.Breakpoints
	for i, want := range []string{"hit condition", "condition", "no_such_variable", "", "log message: {total +}", "no_such_name", ""} {
		switch {
		case want == "" && (!b[i].Verified || b[i].Message != ""):
			t.Errorf("breakpoint %d: %+v, want verified", i, b[i])
		case want != "" && (b[i].Verified || !strings.Contains(b[i].Message, want)):
			t.Errorf("breakpoint %d: %+v, want unverified saying %q", i, b[i], want)
		}
	}
	r, err := e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []any{map[string]any{"name": "square", "condition": "x +"}}})
	e.must(err)
	if fb := r.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints[0]; fb.Verified {
		t.Fatalf("function breakpoint with a malformed condition verified: %+v", fb)
	}
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	if f := e.top(); f.Line != e.line("return total;") {
		t.Fatalf("stopped at line %d, want only the valid breakpoint", f.Line)
	}
	if out := e.c.Output("console"); !strings.Contains(out, "sum_squares n=5\n") || strings.Contains(out, "total is") {
		t.Errorf("console: %q, want the valid logpoint's line only", out)
	}
}

// TestOutOfOrderRequestsRefused: a launch before initialize, a pause
// before configurationDone or after the guest exited, and vcpus or memory
// given as 0 are refused, never carried out on defaults or answered with
// a success no stop follows.
func TestOutOfOrderRequestsRefused(t *testing.T) {
	vmmtest.RequireKVM(t)
	program := vmmtest.BuildExample(t, "kernel").Path
	c, _ := newClient(t)
	c.Timeout = 30 * time.Second
	refused(t, "launch before initialize", c.Launch(map[string]any{"program": program}), "send initialize first")
	_, err := c.Request("attach", map[string]any{"gdbServer": "127.0.0.1:1"})
	refused(t, "attach before initialize", err, "send initialize first")
	_, err = c.Initialize()
	must(t, err)
	for _, k := range []string{"vcpus", "memory"} {
		refused(t, k+" 0", c.Launch(map[string]any{"program": program, k: 0}), fmt.Sprintf("%q is 0", k))
	}
	must(t, c.Launch(map[string]any{"program": program, "memory": 64}))
	_, err = c.WaitEvent("initialized")
	must(t, err)
	_, err = c.Request("pause", map[string]any{"threadId": 1})
	refused(t, "pause before configurationDone", err, "send configurationDone first")
	must(t, c.ConfigurationDone())
	if _, err := c.WaitEvent("exited"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Request("pause", map[string]any{"threadId": 1})
	if err == nil {
		t.Fatal("pause after the guest exited: success")
	}
}

// TestDisassembleWindowBeforeTheReference: a window that starts and ends
// before the reference is the instructions at its offsets, not those just
// before the reference.
func TestDisassembleWindowBeforeTheReference(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.runToLine("total += squares[i];")
	pc := f.InstructionPointerReference
	all, err := e.c.Disassemble(pc, -60, 70)
	e.must(err)
	for _, w := range []struct{ off, n int }{{-60, 20}, {-50, 1}, {-20, 5}, {-5, 3}} {
		got, err := e.c.Disassemble(pc, w.off, w.n)
		e.must(err)
		want := all.Body.Instructions[w.off+60 : w.off+60+w.n]
		if len(got.Body.Instructions) != w.n {
			t.Fatalf("offset %d count %d: %d instructions", w.off, w.n, len(got.Body.Instructions))
		}
		for i := range want {
			if got.Body.Instructions[i].Address != want[i].Address {
				t.Fatalf("offset %d count %d: instruction %d at %s, want %s", w.off, w.n, i, got.Body.Instructions[i].Address, want[i].Address)
			}
		}
	}
}

// TestResyncFindsHeaderInAnyCase: after input that is skipped, a request
// whose header is spelled in another case (as the header parser accepts)
// is found and answered, not skipped with the junk.
func TestResyncFindsHeaderInAnyCase(t *testing.T) {
	c, _ := newClient(t)
	got := make(chan struct{}, 1)
	c.Log = func(dir string, raw []byte) {
		if strings.Contains(string(raw), `"request_seq":900`) {
			got <- struct{}{}
		}
	}
	body := `{"seq":900,"type":"request","command":"threads"}`
	if err := c.WriteRaw([]byte(fmt.Sprintf("X-Bad: 1\r\n\r\ncontent-length: %d\r\n\r\n%s", len(body), body))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the request after the skipped input was not answered")
	}
}

// TestCompletionsOnALaterLine: the debug console's input can span lines
// (VS Code sends the cursor's line and column); the column counts in the
// line named, so completing "sq" on the second line offers square, not
// every name as at the start of the first line.
func TestCompletionsOnALaterLine(t *testing.T) {
	e := launchExample(t, nil)
	e.startAtLine("squares[i] = square(i);")
	f := e.top()
	for _, base := range []int{1, 0} {
		if base == 0 {
			// The same from a client that counts lines and columns from 0.
			e = launchAs(t, buildExample(t), e.src, map[string]any{"linesStartAt1": false, "columnsStartAt1": false}, nil)
			_, err := e.c.SetBreakpoints(e.src, daptest.Line(e.line("squares[i] = square(i);")-1))
			e.must(err)
			e.must(e.c.ConfigurationDone())
			e.stopped("breakpoint")
			f = e.top()
		}
		r, err := e.c.Request("completions", map[string]any{"frameId": f.Id, "text": "1 +\nsq", "line": 1 + base, "column": 2 + base})
		e.must(err)
		var labels []string
		for _, it := range r.(*dap.CompletionsResponse).Body.Targets {
			labels = append(labels, it.Label)
			if it.Start != 4+base || it.Length != 2 {
				t.Errorf("base %d: %s at %d+%d, want at %d+2 (\"sq\" in the text)", base, it.Label, it.Start, it.Length, 4+base)
			}
		}
		if !slices.Equal(labels, []string{"square", "squares"}) {
			t.Fatalf("base %d: completions of \"sq\" on the second line: %v, want [square squares]", base, labels)
		}
	}
}

// TestZeroBasedFirstLine: to a client that counts lines from 0, a
// breakpoint on a file's first line is at line 0, and says so: the
// field is not left out (as go-dap's Breakpoint omits a 0 line), nor is
// a disassembled instruction's.
func TestZeroBasedFirstLine(t *testing.T) {
	vmmtestRequire(t)
	dir := filepath.Join(t.TempDir(), "kernel")
	root, err := guests.RepoRoot()
	must(t, err)
	if b, err := exec.Command("cp", "-r", filepath.Join(root, "examples", "kernel"), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, b)
	}
	src := filepath.Join(dir, "main.c")
	b, err := os.ReadFile(src)
	must(t, err)
	must(t, os.WriteFile(src, append([]byte("int one(volatile int *p) { return *p + 1; }\n"), b...), 0o644))
	g, err := guests.Build(dir, guests.ELF64)
	must(t, err)
	e := launchAs(t, g.Path, src, map[string]any{"linesStartAt1": false, "columnsStartAt1": false}, nil)
	var body struct {
		Body struct {
			Breakpoints []struct {
				Verified bool
				Line     *int
			}
			Instructions []struct {
				Address string
				Line    *int
			}
		}
	}
	_, raw, err := e.c.RequestRaw("setBreakpoints", map[string]any{"source": map[string]any{"path": src}, "breakpoints": []any{map[string]any{"line": 0}}})
	e.must(err)
	must(t, json.Unmarshal(raw, &body))
	if bp := body.Body.Breakpoints; len(bp) != 1 || !bp[0].Verified || bp[0].Line == nil || *bp[0].Line != 0 {
		t.Fatalf("breakpoint on the first line: %s, want verified at line 0", raw)
	}
	addr := "0x0"
	m, err := e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []any{map[string]any{"name": "one"}}})
	e.must(err)
	if fb := m.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints; len(fb) == 1 {
		addr = fb[0].InstructionReference
	}
	_, raw, err = e.c.RequestRaw("disassemble", map[string]any{"memoryReference": addr, "instructionCount": 1})
	e.must(err)
	must(t, json.Unmarshal(raw, &body))
	if in := body.Body.Instructions; len(in) != 1 || in[0].Line == nil || *in[0].Line != 0 {
		t.Fatalf("disassembly of one: %s, want its instruction at line 0", raw)
	}
}

// TestZeroBasedCompletionStart: to a client that counts columns from 0, a
// completion that replaces the text from its first column starts at 0,
// and says so (an item without start is inserted at the cursor).
func TestZeroBasedCompletionStart(t *testing.T) {
	vmmtestRequire(t)
	e := launchAs(t, buildExample(t), exampleSource(t), map[string]any{"linesStartAt1": false, "columnsStartAt1": false}, nil)
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(e.line("squares[i] = square(i);")-1))
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	_, raw, err := e.c.RequestRaw("completions", map[string]any{"frameId": e.top().Id, "text": "sq", "column": 2})
	e.must(err)
	var body struct {
		Body struct {
			Targets []struct {
				Label  string
				Start  *int
				Length int
			}
		}
	}
	must(t, json.Unmarshal(raw, &body))
	if len(body.Body.Targets) == 0 {
		t.Fatalf("no completions of \"sq\": %s", raw)
	}
	for _, it := range body.Body.Targets {
		if it.Start == nil || *it.Start != 0 || it.Length != 2 {
			t.Fatalf("completions of \"sq\": %s, want each to start at column 0 and replace 2", raw)
		}
	}
}

// TestNullArgumentsAreAbsent: an optional argument sent as null (Emacs
// clients serialize nil so) reads as not given, as go-dap decodes it and
// other adapters take it; it does not refuse the request (a disconnect
// with "restart": null left the session and its guest running). A
// required argument sent as null is missing.
func TestNullArgumentsAreAbsent(t *testing.T) {
	e := launchExample(t, nil)
	_, err := e.c.Request("setBreakpoints", map[string]any{"source": map[string]any{"path": e.src, "sourceReference": nil},
		"breakpoints": []any{map[string]any{"line": e.line("squares[i] = square(i);"), "condition": nil, "column": nil}}, "sourceModified": nil})
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	_, err = e.c.Request("stackTrace", map[string]any{"threadId": 1, "startFrame": nil, "levels": nil, "format": nil})
	e.must(err)
	_, err = e.c.Request("evaluate", map[string]any{"expression": "counter", "frameId": nil, "context": "repl", "format": nil})
	e.must(err)
	_, err = e.c.Request("next", map[string]any{"threadId": 1, "granularity": nil, "singleThread": nil})
	e.must(err)
	e.stopped("step")
	_, err = e.c.Request("scopes", map[string]any{"frameId": nil})
	refused(t, "scopes with frameId null", err, "frameId")
	_, err = e.c.Request("disconnect", map[string]any{"restart": nil, "terminateDebuggee": nil, "suspendDebuggee": nil})
	e.must(err)
	if _, err := e.c.WaitEvent("terminated"); err != nil {
		t.Fatalf("disconnect with null arguments: %v", err)
	}
}

// TestInstructionBreakpointOffsetStaysInTheAddressSpace: an instruction
// breakpoint whose offset moves it past either end of the address space
// is refused, as readMemory and disassemble refuse such an offset; it is
// not placed at the wrapped-around address.
func TestInstructionBreakpointOffsetStaysInTheAddressSpace(t *testing.T) {
	e := launchExample(t, nil)
	m, err := e.c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []any{
		map[string]any{"instructionReference": "0x10", "offset": -32},
		map[string]any{"instructionReference": "0x100400", "offset": 7},
		map[string]any{"instructionReference": "0xffffffffffffffff", "offset": 2}}})
	e.must(err)
	b := m.(*dap.SetInstructionBreakpointsResponse).Body.Breakpoints
	if len(b) != 3 || b[0].Verified || !strings.Contains(b[0].Message, "leaves the address space") ||
		!b[1].Verified || b[1].InstructionReference != "0x100407" || b[2].Verified || !strings.Contains(b[2].Message, "leaves the address space") {
		t.Fatalf("instruction breakpoints %+v, want the first and last refused as leaving the address space", b)
	}
}

// TestCompletionsStartForVSCode: VS Code's debug console filters a
// completion by text.substring(start, start+length) + label, reading start
// as a 0-based offset although it counts columns from 1
// (microsoft/vscode#101623): with a 1-based start ("1 + ori" → "ri" +
// "origin") every item was filtered out and the console said "No
// suggestions". VS Code gets the offset its console reads.
func TestCompletionsStartForVSCode(t *testing.T) {
	vmmtestRequire(t)
	e := launchAs(t, buildExample(t), exampleSource(t), map[string]any{"clientID": "vscode", "linesStartAt1": true, "columnsStartAt1": true, "pathFormat": "path"}, nil)
	e.startAtLine("int total = sum_squares(5);")
	f := e.top()
	for text, want := range map[string]string{"cou": "counter", "1 + ori": "origin", "p cou": "counter"} {
		r, err := e.c.Request("completions", map[string]any{"frameId": f.Id, "text": text, "column": len(text) + 1, "line": 1})
		e.must(err)
		ok := false
		for _, it := range r.(*dap.CompletionsResponse).Body.Targets {
			// What VS Code's console filters the item by, as it does.
			filter := it.Label
			if it.Start != 0 && it.Length != 0 {
				from, to := min(it.Start, len(text)), min(it.Start+it.Length, len(text)) // JavaScript's substring
				filter = text[from:to] + it.Label
			}
			word := text[len(text)-it.Length:]
			if it.Label == want && strings.HasPrefix(filter, word) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("completions of %q: %+v: VS Code's console filters %q out", text, r.(*dap.CompletionsResponse).Body.Targets, want)
		}
	}
}

// TestPathFormatURI: a client that asked for pathFormat "uri" names its
// sources by file:// URIs, and gets them so: a breakpoint set by URI
// binds, and the stack names the frame's file by URI.
func TestPathFormatURI(t *testing.T) {
	vmmtestRequire(t)
	e := launchAs(t, buildExample(t), exampleSource(t), map[string]any{"pathFormat": "uri"}, nil)
	uri := (&url.URL{Scheme: "file", Path: e.src}).String()
	m, err := e.c.Request("setBreakpoints", map[string]any{"source": map[string]any{"path": uri},
		"breakpoints": []any{map[string]any{"line": e.line("int total = sum_squares(5);")}}})
	e.must(err)
	if b := m.(*dap.SetBreakpointsResponse).Body.Breakpoints; len(b) != 1 || !b[0].Verified || b[0].Source == nil || b[0].Source.Path != uri {
		t.Fatalf("breakpoint by URI: %+v, want verified in %s", b, uri)
	}
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	if f := e.top(); f.Source == nil || f.Source.Path != uri || f.Source.Name != "main.c" {
		t.Fatalf("frame's source: %+v, want %s", f.Source, uri)
	}
}

// TestTypesOnlyWhenAsked: a variable's type goes to a client that
// announced supportsVariableType, as the spec says, and to no other.
func TestTypesOnlyWhenAsked(t *testing.T) {
	vmmtestRequire(t)
	for _, announce := range []bool{false, true} {
		e := launchAs(t, buildExample(t), exampleSource(t), map[string]any{"supportsVariableType": announce}, map[string]any{"stopOnEntry": true})
		e.must(e.c.ConfigurationDone())
		e.stopped("entry")
		r, err := e.c.Evaluate(e.top().Id, "origin")
		e.must(err)
		vs, err := e.c.Variables(r.Body.VariablesReference)
		e.must(err)
		if typed := r.Body.Type != "" && vs.Body.Variables[0].Type != ""; typed != announce || (!announce && (r.Body.Type != "" || vs.Body.Variables[0].Type != "")) {
			t.Errorf("supportsVariableType %v: evaluate's type %q, a member's %q", announce, r.Body.Type, vs.Body.Variables[0].Type)
		}
		e.c.Disconnect()
	}
}
