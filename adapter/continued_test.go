package adapter_test

import (
	"testing"

	"github.com/google/go-dap"
)

// TestStepThatRunsTheGuestSaysSo: a next over a call runs the whole guest
// to the call's return (a temporary breakpoint), and a continued event
// with allThreadsContinued says so before the step's stop, as a client
// shows only the stepped thread running after a next (VS Code showed
// Linux's other vCPUs "paused" while a long step ran them); an
// instruction step runs no other vCPU and sends none.
func TestStepThatRunsTheGuestSaysSo(t *testing.T) {
	e := launchExample(t, nil)
	e.startAtLine("int total = sum_squares(5);")
	count := func(from int) int {
		n := 0
		for _, name := range e.c.EventNames()[from:] {
			if name == "continued" {
				n++
			}
		}
		return n
	}
	before := len(e.c.EventNames())
	_, err := e.c.Request("stepIn", map[string]any{"threadId": 1, "granularity": "instruction"})
	e.must(err)
	e.stopped("step")
	if n := count(before); n != 0 {
		t.Errorf("an instruction step sent %d continued events", n)
	}
	before = len(e.c.EventNames())
	_, err = e.c.Request("next", map[string]any{"threadId": 1})
	e.must(err)
	m, err := e.c.WaitEvent("continued") // before the stop: WaitEvent drops what precedes what it finds
	e.must(err)
	if c := m.(*dap.ContinuedEvent).Body; c.ThreadId != 1 || !c.AllThreadsContinued {
		t.Errorf("a next over sum_squares(5): continued %+v, want thread 1, all threads continued", c)
	}
	e.stopped("step")
	if n := count(before); n != 1 {
		t.Errorf("a next over sum_squares(5) sent %d continued events, want 1", n)
	}
}
