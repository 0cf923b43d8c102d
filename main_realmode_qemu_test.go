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
// (0xfe05b), and instruction breakpoints at linear addresses further on
// stop there, shown at those addresses, the second after continuing from
// the first.
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
	d, err := c.Disassemble("0xfe05b", 0, 6)
	if err != nil {
		t.Fatal(err)
	}
	// Two breakpoints on the straight line that follows (xor dx,dx …
	// mov edx): continuing from the first steps off it (found at its
	// linear address) and stops at the second.
	third, sixth := d.Body.Instructions[2].Address, d.Body.Instructions[5].Address
	r, err := c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{
		{"instructionReference": third}, {"instructionReference": sixth}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bp := range r.(*dap.SetInstructionBreakpointsResponse).Body.Breakpoints {
		if !bp.Verified {
			t.Fatalf("breakpoint %+v not verified", bp)
		}
	}
	for _, at := range []string{third, sixth} {
		if err := c.Continue(1); err != nil {
			t.Fatal(err)
		}
		ev, err := c.Stopped()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Body.Reason != "instruction breakpoint" {
			t.Fatalf("stopped for %q (%s), want the instruction breakpoint at %s (%v)", ev.Body.Reason, ev.Body.Text, at, d.Body.Instructions)
		}
		if a, err := strconv.ParseUint(at, 0, 64); err != nil {
			t.Fatal(err)
		} else {
			ip(a)
		}
	}
	c.Disconnect()
}
