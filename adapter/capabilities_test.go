package adapter

import (
	"testing"

	"vmdap/vmm"
)

// TestBackendCapabilities: what the capabilities event promises follows
// the backend's facts.
func TestBackendCapabilities(t *testing.T) {
	full := vmm.Capabilities{RegisterWrite: true, SWBreakpoints: true, HWBreakpointSlots: 4}
	cp := backendCapabilities(full, true)
	if !cp.SupportsGotoTargetsRequest || !cp.SupportsDataBreakpoints || len(cp.BreakpointModes) != 2 {
		t.Fatalf("a backend with everything: goto %v, data breakpoints %v, modes %+v",
			cp.SupportsGotoTargetsRequest, cp.SupportsDataBreakpoints, cp.BreakpointModes)
	}
	// bhyve's stub: no register writes, no hardware breakpoints, no watchpoints.
	cp = backendCapabilities(vmm.Capabilities{SWBreakpoints: true}, false)
	if cp.SupportsGotoTargetsRequest {
		t.Error("goto offered by a backend that cannot write rip")
	}
	if cp.SupportsDataBreakpoints || cp.SupportsDataBreakpointBytes {
		t.Error("data breakpoints offered without watchpoints")
	}
	if len(cp.BreakpointModes) != 1 || cp.BreakpointModes[0].Mode != "software" {
		t.Errorf("breakpoint modes %+v, want software only", cp.BreakpointModes)
	}
	if !cp.SupportsSetVariable {
		t.Error("setVariable withdrawn: memory variables stay settable without register writes")
	}
}
