package adapter_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
)

// TestGotoJumpsBack: "Jump to Cursor" moves the vCPU to a line's code in
// the same function without running it; running on re-executes what lies
// between. The example guest calls sum_squares once (counter 5); jumping
// back over the call runs it twice (counter 10). A jump into another
// function, a line without code and a stale target id are refused with a
// reason, and the guest is unharmed.
func TestGotoJumpsBack(t *testing.T) {
	e := launchExample(t, nil)
	call := e.line("int total = sum_squares(5);")
	after := e.line(`puts("sum of squares: ");`)
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(after))
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	e.at("kmain", after)

	targets := func(line int) []dap.GotoTarget {
		t.Helper()
		r, err := e.c.Request("gotoTargets", map[string]any{"source": map[string]any{"path": e.src}, "line": line})
		e.must(err)
		return r.(*dap.GotoTargetsResponse).Body.Targets
	}
	jump := func(id int) (*dap.GotoResponse, error) {
		r, err := e.c.Request("goto", map[string]any{"threadId": 1, "targetId": id})
		if err != nil {
			return nil, err
		}
		return r.(*dap.GotoResponse), nil
	}
	refused := func(what string, err error, want string) {
		t.Helper()
		var er *daptest.ErrorResponse
		if !errors.As(err, &er) || !strings.Contains(er.Message, want) {
			t.Fatalf("%s: %v, want a refusal saying %q", what, err, want)
		}
	}

	// Another function: refused, nothing moved.
	inner := targets(e.line("acc += i ^ (acc >> 3);"))
	if len(inner) != 1 || !strings.Contains(inner[0].Label, "busy_work") {
		t.Fatalf("targets in busy_work: %+v", inner)
	}
	_, err = jump(inner[0].Id)
	refused("a jump into busy_work", err, "wrong stack frame")
	e.at("kmain", after)
	// A line without code has no target.
	if ts := targets(e.line("unsigned long busy_work(") - 1); len(ts) != 0 {
		t.Fatalf("targets on a blank line: %+v", ts)
	}
	_, err = jump(7)
	refused("a target id never offered", err, "no target 7")

	// Back over the call.
	back := targets(call)
	if len(back) != 1 || back[0].Line != call || back[0].InstructionPointerReference == "" {
		t.Fatalf("targets on the call line: %+v", back)
	}
	resp, err := jump(back[0].Id)
	e.must(err)
	ev := e.stopped("goto")
	if ev.Body.ThreadId != 1 || ev.Seq < resp.Seq {
		t.Fatalf("stopped %+v (seq %d) after the goto response (seq %d): want thread 1, after the response", ev.Body, ev.Seq, resp.Seq)
	}
	f := e.at("kmain", call)
	if f.InstructionPointerReference != back[0].InstructionPointerReference {
		t.Fatalf("pc %s, want the target's %s", f.InstructionPointerReference, back[0].InstructionPointerReference)
	}
	if c := e.eval(f.Id, "counter"); c != "5" {
		t.Fatalf("counter = %s before the second call, want 5 (the jump ran nothing)", c)
	}
	// Run: the breakpoint after the call is hit again, with the call run twice.
	e.must(e.c.Continue(1))
	e.stopped("breakpoint")
	f = e.at("kmain", after)
	if c := e.eval(f.Id, "counter"); c != "10" {
		t.Fatalf("counter = %s after jumping back over sum_squares, want 10", c)
	}
	_, err = e.c.SetBreakpoints(e.src)
	e.must(err)
	if code := e.runToExit(); code != 1 {
		t.Fatalf("exit status %d, want 1 (total is still 30)", code)
	}
	if out := e.c.Output("stdout"); !strings.Contains(out, "counter: 10") {
		t.Fatalf("stdout %q, want counter: 10", out)
	}
}
