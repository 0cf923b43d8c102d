package adapter_test

import (
	"testing"

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
