package adapter_test

import (
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
)

// TestStepIntoTarget: "Step Into Target" on a line with two calls lists
// both callees and enters the chosen one, stepping over the other; a
// frame without calls has no targets.
func TestStepIntoTarget(t *testing.T) {
	e := launchExample(t, nil)
	line := e.line("p.y = square(p.y) - divide(9, 1);")
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(line))
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	f := e.at("kmain", line)

	targets := func(frame int) []dap.StepInTarget {
		t.Helper()
		r, err := e.c.Request("stepInTargets", map[string]any{"frameId": frame})
		e.must(err)
		return r.(*dap.StepInTargetsResponse).Body.Targets
	}
	ts := targets(f.Id)
	var labels []string
	divide := 0
	for _, x := range ts {
		labels = append(labels, x.Label)
		if x.Label == "divide" {
			divide = x.Id
		}
		if x.Line != line {
			t.Errorf("target %+v: line %d, want %d", x, x.Line, line)
		}
	}
	if len(ts) != 2 || divide == 0 || !strings.Contains(strings.Join(labels, " "), "square") {
		t.Fatalf("step-in targets %q, want square and divide", labels)
	}
	_, err = e.c.Request("stepIn", map[string]any{"threadId": 1, "targetId": divide})
	e.must(err)
	e.stopped("step")
	f = e.at("divide", e.line("return a / b;"))
	if a := e.vars(f.Id, "Arguments"); a["a"] != "9" || a["b"] != "1" {
		t.Fatalf("arguments of divide %v", a)
	}
	// square ran (stepped over), divide has not returned yet.
	st, err := e.c.StackTrace(1)
	e.must(err)
	if len(st.Body.StackFrames) < 2 || st.Body.StackFrames[1].Name != "kmain" {
		t.Fatalf("stack %+v", st.Body.StackFrames)
	}
	if ts := targets(st.Body.StackFrames[1].Id); len(ts) != 0 {
		t.Fatalf("an outer frame offered targets %+v", ts)
	}
	f = e.seq(seqStep{"stepOut", "kmain", "p.y = square(p.y) - divide(9, 1);", 0},
		seqStep{"next", "kmain", "unsigned long work = busy_work(", 0})
	if py := e.eval(f.Id, "p.y"); py != "7" {
		t.Fatalf("p.y = %s, want 16 - 9", py)
	}
	if _, err := e.c.Request("stepIn", map[string]any{"threadId": 1, "targetId": 99}); err == nil {
		t.Fatal("a step in to a target never offered succeeded")
	}
	_, err = e.c.SetBreakpoints(e.src)
	e.must(err)
	if code := e.runToExit(); code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
}
