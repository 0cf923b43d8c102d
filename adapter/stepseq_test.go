package adapter_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
)

// TestStepSequences runs tables of stepping commands on the example guest,
// each from a breakpoint, with where every one must stop, as Delve's
// testseq tables do: next over a function's lines, into and out of calls,
// from a function's last line back into its caller mid-line (as Delve
// does), round a loop, and out of two frames.
func TestStepSequences(t *testing.T) {
	const (
		call    = "int total = sum_squares(5);"
		loop    = "squares[i] = square(i);"
		forLine = "for (int i = 0; i < n; i++) {"
		squared = "int result = x * x;"
	)
	for _, tc := range []struct {
		name string
		bp   string // the breakpoint the table starts from
		seq  []seqStep
	}{
		{"next over kmain", call, []seqStep{
			{"next", "kmain", `puts("sum of squares: ");`, 0},
			{"next", "kmain", "put_dec(total);", 0},
			{"next", "kmain", "put_dec(total);", 1}, // puts("\n")
			{"next", "kmain", "struct point p = origin;", 0},
			{"next", "kmain", "p.x += total;", 0},
			{"next", "kmain", "p.y = square(p.y) - divide(9, 1);", 0},
			{"next", "kmain", "unsigned long work = busy_work(", 0},
		}},
		{"into, over, back and round", call, []seqStep{
			{"stepIn", "sum_squares", "int total = 0;", 0},
			{"next", "sum_squares", forLine, 0},
			{"next", "sum_squares", loop, 0},
			{"stepIn", "square", squared, 0},
			{"next", "square", "return result;", 0},
			{"next", "square", "return result;", 1}, // the closing brace
			{"next", "sum_squares", loop, 0},        // back mid-line
			{"next", "sum_squares", "total += squares[i];", 0},
			{"next", "sum_squares", "counter++;", 0},
			{"next", "sum_squares", forLine, 0},
			{"next", "sum_squares", loop, 0},
		}},
		{"out of two frames", squared, []seqStep{
			{"stepOut", "sum_squares", loop, 0},
			{"stepOut", "kmain", call, 0},
			{"next", "kmain", `puts("sum of squares: ");`, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := launchExample(t, nil)
			_, err := e.c.SetBreakpoints(e.src, daptest.Line(e.line(tc.bp)))
			e.must(err)
			e.must(e.c.ConfigurationDone())
			e.stopped("breakpoint")
			_, err = e.c.SetBreakpoints(e.src)
			e.must(err)
			e.seq(tc.seq...)
			e.runToExit()
		})
	}
}

// TestStepOutWhereABreakpointIs: a step out's temporary breakpoint at the
// return address, where an instruction breakpoint of the user's also is,
// is one breakpoint in the guest with two reasons. The step ends there;
// the user's breakpoint stays in the guest when the step's reason goes
// (the session erases an address only with its last reason), so each
// later return from the call stops at it again.
func TestStepOutWhereABreakpointIs(t *testing.T) {
	e := launchExample(t, nil)
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(e.line("squares[i] = square(i);")))
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	e.step("stepIn")
	st, err := e.c.StackTrace(1)
	e.must(err)
	if len(st.Body.StackFrames) < 2 || st.Body.StackFrames[0].Name != "square" {
		t.Fatalf("after stepIn: %+v", st.Body.StackFrames)
	}
	ret := st.Body.StackFrames[1].InstructionPointerReference
	r, err := e.c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"instructionReference": ret}}})
	e.must(err)
	if bp := r.(*dap.SetInstructionBreakpointsResponse).Body.Breakpoints; len(bp) != 1 || !bp[0].Verified {
		t.Fatalf("instruction breakpoint at the return address %s: %+v", ret, bp)
	}
	_, err = e.c.SetBreakpoints(e.src)
	e.must(err)
	pcIs := func(what string) {
		t.Helper()
		pc, err := e.c.PC()
		e.must(err)
		if want, _ := strconv.ParseUint(strings.TrimPrefix(ret, "0x"), 16, 64); pc != want {
			t.Fatalf("%s: pc %#x, want the return address %s", what, pc, ret)
		}
	}
	e.must(e.c.Step("stepOut", 1, ""))
	if ev, err := e.c.Stopped(); err != nil || (ev.Body.Reason != "step" && ev.Body.Reason != "instruction breakpoint") {
		t.Fatalf("stepOut: %+v %v", ev, err)
	}
	pcIs("stepOut")
	// The loop calls square four more times.
	for i := 2; i <= 5; i++ {
		e.must(e.c.Continue(1))
		e.stopped("instruction breakpoint")
		pcIs(fmt.Sprintf("return %d", i))
		if got := e.eval(e.top().Id, "i"); got != strconv.Itoa(i-1) {
			t.Fatalf("return %d: i = %s, want %d", i, got, i-1)
		}
	}
	_, err = e.c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []any{}})
	e.must(err)
	e.runToExit()
}
