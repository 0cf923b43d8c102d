package main

import (
	"testing"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// TestStepOutQEMU runs daptest.StepOutScenario over QEMU TCG's GDB stub:
// stepOut out of assembly without a return address ends after the next
// return, the outermost frame is refused, and a pause or a disconnect
// ends a stepOut that never would.
func TestStepOutQEMU(t *testing.T) {
	vmmtest.RequireQEMU(t)
	// QEMU's -kernel takes the ELF32 repack; its CFI keeps the ELF64's
	// format, which symbols do not read from an ELF32 (the outermost-frame
	// refusal, which needs it, is checked on vmdap's VMM).
	g := vmmtest.BuildGuest(t, "stepout", vmmtest.ELF32)
	g64 := vmmtest.BuildGuest(t, "stepout")
	c := stdioClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(map[string]any{"program": g.Path, "symbols": g64.Path, "hypervisor": "qemu", "memory": 16, "stopOnEntry": true}); err != nil {
		t.Fatal(err)
	}
	c.WaitEvent("initialized")
	c.ConfigurationDone()
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("entry: %+v %v", ev, err)
	}
	if err := daptest.StepOutScenario(c, func(n string) uint64 { return vmmtest.Sym(t, g, n) }, false); err != nil {
		t.Fatal(err)
	}
}
