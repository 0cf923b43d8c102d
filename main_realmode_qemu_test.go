package main

import (
	"strconv"
	"testing"

	"github.com/google/go-dap"

	"vmdap/vmm/vmmtest"
)

// TestResetVectorQEMU: QEMU attached at reset runs SeaBIOS in real mode,
// where the next instruction is at CS.base + IP. The first frame is at
// the reset vector (0xfffffff0), a step of its far jump lands at f000:e05b
// (0xfe05b), and an instruction breakpoint at a linear address further on
// stops there, shown at that address.
func TestResetVectorQEMU(t *testing.T) {
	vmmtest.RequireQEMU(t)
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	c, _ := attachToQEMU(t, g)
	c.WaitEvent("initialized")
	if err := c.ConfigurationDone(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stopped(); err != nil {
		t.Fatal(err)
	}
	ip := func(want uint64) {
		t.Helper()
		if pc, err := c.PC(); err != nil || pc != want {
			t.Fatalf("frame at %#x (%v), want %#x", pc, err, want)
		}
	}
	ip(0xfffffff0)
	if err := c.Step("stepIn", 1, "instruction"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stopped(); err != nil {
		t.Fatal(err)
	}
	ip(0xfe05b)
	d, err := c.Disassemble("0xfe05b", 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	third := d.Body.Instructions[2].Address
	r, err := c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"instructionReference": third}}})
	if err != nil {
		t.Fatal(err)
	}
	if bp := r.(*dap.SetInstructionBreakpointsResponse).Body.Breakpoints[0]; !bp.Verified {
		t.Fatalf("breakpoint at %s: %+v", third, bp)
	}
	if err := c.Continue(1); err != nil {
		t.Fatal(err)
	}
	ev, err := c.Stopped()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Body.Reason != "instruction breakpoint" {
		t.Fatalf("stopped for %q (%s), want the instruction breakpoint at %s (%v)", ev.Body.Reason, ev.Body.Text, third, d.Body.Instructions)
	}
	if at, err := strconv.ParseUint(third, 0, 64); err != nil {
		t.Fatal(err)
	} else {
		ip(at)
	}
	c.Disconnect()
}
