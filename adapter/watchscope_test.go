package adapter_test

import (
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
)

// TestWatchOfALocalEndsWithItsFrame: a data breakpoint on a local lives
// as long as its frame, as gdb's does: when sum_squares returns, the
// watch on its i is deleted (a breakpoint event says so) and the guest
// stops there, in kmain; the stack slot's later writes (another frame's
// variable) stop nothing.
func TestWatchOfALocalEndsWithItsFrame(t *testing.T) {
	e := launchExample(t, nil)
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(e.line("squares[i] = square(i);")))
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	f := e.top()
	sc, err := e.c.Scopes(f.Id)
	e.must(err)
	var locals int
	for _, s := range sc.Body.Scopes {
		if s.Name == "Locals" {
			locals = s.VariablesReference
		}
	}
	info := e.dataInfo(map[string]any{"variablesReference": locals, "name": "i"})
	if info.DataId == nil {
		t.Fatalf("no data id for i: %+v", info)
	}
	_, err = e.c.SetBreakpoints(e.src)
	e.must(err)
	if bps := e.setData(map[string]any{"dataId": info.DataId, "accessType": "write"}); !bps[0].Verified {
		t.Fatalf("watch on i: %+v", bps[0])
	}
	out := false
	var deleted *dap.Breakpoint // the breakpoint event's
	for n := 0; n < 20 && !out; n++ {
		e.must(e.c.Continue(1))
		var ev *dap.StoppedEvent
		for ev == nil {
			m, err := e.c.WaitAnyEvent("breakpoint", "stopped")
			e.must(err)
			switch m := m.(type) {
			case *dap.BreakpointEvent:
				deleted = &m.Body.Breakpoint
			case *dap.StoppedEvent:
				ev = m
			}
		}
		if ev.Body.Reason != "data breakpoint" {
			t.Fatalf("stopped for %q (%s)", ev.Body.Reason, ev.Body.Description)
		}
		if !strings.Contains(ev.Body.Description, "went out of scope") {
			if fn := e.top().Name; fn != "sum_squares" {
				t.Fatalf("the watch on i stopped in %s (%s), after its frame was gone", fn, ev.Body.Description)
			}
			continue
		}
		out = true
		if fn := e.top().Name; fn != "kmain" {
			t.Fatalf("out of scope in %s, want kmain", fn)
		}
	}
	if !out {
		t.Fatal("the watch on i never went out of scope")
	}
	if deleted == nil || deleted.Verified || !strings.Contains(deleted.Message, "out of scope") {
		t.Fatalf("the breakpoint event at the end of i's frame: %+v", deleted)
	}
	// The client sends its list again: the watch stays gone.
	if bps := e.setData(map[string]any{"dataId": info.DataId, "accessType": "write"}); bps[0].Verified {
		t.Fatalf("the watch on i placed again after its frame returned: %+v", bps[0])
	}
	e.must(e.c.Continue(1))
	if _, err := e.c.WaitEvent("exited"); err != nil {
		t.Fatalf("after the watch ended: %v (events %v)", err, e.c.EventNames())
	}
}
