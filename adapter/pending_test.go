package adapter_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

// sentBreakpoint is a breakpoint as vmdap sent it (go-dap's type has no
// reason).
type sentBreakpoint struct {
	ID       int    `json:"id"`
	Verified bool   `json:"verified"`
	Message  string `json:"message"`
	Reason   string `json:"reason"`
}

// setBreakpointsRaw sends a set*Breakpoints request and returns the
// breakpoints of its response as sent.
func setBreakpointsRaw(t *testing.T, c *daptest.Client, command string, args map[string]any) []sentBreakpoint {
	t.Helper()
	_, raw, err := c.RequestRaw(command, args)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Body struct {
			Breakpoints []sentBreakpoint `json:"breakpoints"`
		} `json:"body"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r.Body.Breakpoints
}

// changed waits for n breakpoint events (reason "changed") and returns
// them by breakpoint id.
func changed(t *testing.T, c *daptest.Client, n int) map[int]dap.Breakpoint {
	t.Helper()
	out := map[int]dap.Breakpoint{}
	for i := 0; i < n; i++ {
		m, err := c.WaitEvent("breakpoint")
		if err != nil {
			t.Fatalf("breakpoint event %d of %d: %v (have %+v)", i+1, n, err, out)
		}
		if ev := m.(*dap.BreakpointEvent); ev.Body.Reason == "changed" {
			out[ev.Body.Breakpoint.Id] = ev.Body.Breakpoint
		}
	}
	return out
}

// TestPendingBreakpointsHigherHalf: the higher-half guest starts with
// paging off, so no high address is mapped. On vmdap's VMM a function
// breakpoint on start_kernel is verified at once (placed where the image's
// PT_LOAD segment put the code) and stops there; a software breakpoint at
// an address no segment names (the late alias mapping) is pending until a
// stop after the guest maps it, then reported with a breakpoint event and
// hit; one in the default mode waits in a debug register meanwhile and
// moves to software when it can.
func TestPendingBreakpointsHigherHalf(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "higher")
	root, _ := guests.RepoRoot()
	e := &env{t: t, g: g, src: filepath.Join(root, "testdata", "guests", "higher", "main.c")}
	e.c, e.done = newClient(t)
	_, err := e.c.Initialize()
	e.must(err)
	e.must(e.c.Launch(map[string]any{"program": g.Path, "memory": 64, "stopOnEntry": true}))
	_, err = e.c.WaitEvent("initialized")
	e.must(err)

	fb := setBreakpointsRaw(t, e.c, "setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "start_kernel"}}})
	if !fb[0].Verified || fb[0].Reason != "" || fb[0].Message != "" {
		t.Fatalf("start_kernel at the entry: %+v, want verified at once", fb[0])
	}
	const kernelVMA, aliasVMA = 0xffffffff80000000, 0xffffff0000000000
	alias := func(sym string) uint64 { return vmmtest.Sym(t, g, sym) - kernelVMA + aliasVMA }
	ib := setBreakpointsRaw(t, e.c, "setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{
		{"instructionReference": fmt.Sprintf("%#x", alias("module_init")), "mode": "software"},
		{"instructionReference": fmt.Sprintf("%#x", alias("puts"))},
	}})
	if b := ib[0]; b.Verified || b.Reason != "pending" || !strings.Contains(b.Message, "cannot be written yet") {
		t.Fatalf("software breakpoint at an unmapped address: %+v, want pending with the reason", b)
	}
	if b := ib[1]; !b.Verified || !strings.Contains(b.Message, "debug register") {
		t.Fatalf("default-mode breakpoint at an unmapped address: %+v, want verified in a debug register", b)
	}
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	// (The Multiboot entry is 32-bit code: the Registers view sums it up
	// as gdb's i386 names it.)
	regs, err := e.c.ScopeVars(e.top().Id, "Registers")
	e.must(err)
	if len(regs) == 0 || !strings.HasPrefix(regs[0].Value, fmt.Sprintf("eip=%#x esp=", mustHex(t, e.top().InstructionPointerReference))) {
		t.Fatalf("the General row at the 32-bit entry: %+v, want eip=… esp=…", regs[:min(len(regs), 1)])
	}

	e.must(e.c.Continue(1))
	// At the next stop the alias is mapped: the pending breakpoint is
	// placed, the debug-register one moves to software; the events come
	// before the stopped event.
	ev := changed(t, e.c, 2)
	e.stopped("function breakpoint")
	if f := e.top(); f.Name != "start_kernel" {
		t.Fatalf("stopped in %s, want start_kernel", f.Name)
	}
	if b, ok := ev[ib[0].ID]; !ok || !b.Verified {
		t.Fatalf("no breakpoint event verifying the pending breakpoint %d: %+v", ib[0].ID, ev)
	}
	if b, ok := ev[ib[1].ID]; !ok || !b.Verified || b.Message != "" {
		t.Fatalf("no breakpoint event for the move to software of %d: %+v", ib[1].ID, ev)
	}
	for i, sym := range []string{"module_init", "puts"} {
		e.must(e.c.Continue(1))
		st := e.stopped("instruction breakpoint")
		if len(st.Body.HitBreakpointIds) != 1 || st.Body.HitBreakpointIds[0] != ib[i].ID {
			t.Fatalf("hit %v, want breakpoint %d", st.Body.HitBreakpointIds, ib[i].ID)
		}
		if pc := mustHex(t, e.top().InstructionPointerReference); pc != alias(sym) {
			t.Fatalf("stopped at %#x, want %s through the alias (%#x)", pc, sym, alias(sym))
		}
	}
	if code := e.runToExit(); code != 0x30<<1|1 {
		t.Fatalf("exit status %#x, want the guest's 0x30 (serial %q)", code, e.c.Output("stdout"))
	}
}

// TestHardwareBreakpointPendingUntilSlotFrees: a fifth hardware breakpoint
// is pending while DR0-DR3 are taken, and placed, with a breakpoint event,
// as soon as one frees.
func TestHardwareBreakpointPendingUntilSlotFrees(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	var hw []map[string]any
	for _, m := range []string{"int total = 0;", "total += squares[i];", "counter++;", "return total;"} {
		hw = append(hw, map[string]any{"line": e.line(m), "mode": "hardware"})
	}
	bps, err := e.c.SetBreakpoints(e.src, hw...)
	e.must(err)
	for _, b := range bps.Body.Breakpoints {
		if !b.Verified {
			t.Fatalf("hardware breakpoint %+v not verified", b)
		}
	}
	fb := setBreakpointsRaw(t, e.c, "setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "square", "mode": "hardware"}}})
	if b := fb[0]; b.Verified || b.Reason != "pending" || !strings.Contains(b.Message, "DR0-DR3") {
		t.Fatalf("fifth hardware breakpoint: %+v, want pending for lack of a slot", b)
	}
	_, err = e.c.SetBreakpoints(e.src, hw[1:]...)
	e.must(err)
	if b, ok := changed(t, e.c, 1)[fb[0].ID]; !ok || !b.Verified {
		t.Fatalf("no breakpoint event verifying breakpoint %d", fb[0].ID)
	}
	_, err = e.c.SetBreakpoints(e.src)
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	e.must(e.c.Continue(1))
	e.stopped("function breakpoint")
	if f := e.top(); f.Name != "square" {
		t.Fatalf("stopped in %s, want square", f.Name)
	}
}
