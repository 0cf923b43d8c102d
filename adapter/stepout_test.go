package adapter_test

import (
	"testing"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// TestStepOutWithoutReturnAddress (vmdap's VMM): stepOut out of assembly
// without unwind information, 32-bit and 64-bit, stops after the next
// return; with CFI it runs to the caller; the outermost frame is refused
// at once; a stepOut that never ends is stopped by a pause, and a
// disconnect in the middle of one ends the session
// (daptest.StepOutScenario; TestStepOutQEMU runs it over QEMU's stub).
func TestStepOutWithoutReturnAddress(t *testing.T) {
	e := launchGuest(t, "stepout", "stepout.S", map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	if err := daptest.StepOutScenario(e.c, func(n string) uint64 { return vmmtest.Sym(t, e.g, n) }, true); err != nil {
		t.Fatal(err)
	}
}
