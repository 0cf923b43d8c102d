package adapter

import (
	"testing"

	"vmdap/session"
)

// TestBackendCapabilities: what the capabilities event promises follows
// what the session can do.
func TestBackendCapabilities(t *testing.T) {
	full := session.Features{RegisterWrite: true, SWBreakpoints: true, HWBreakpoints: 4, Watchpoints: true}
	cp := backendCapabilities(full)
	if !cp.SupportsGotoTargetsRequest || !cp.SupportsDataBreakpoints || len(cp.BreakpointModes) != 2 {
		t.Fatalf("a backend with everything: goto %v, data breakpoints %v, modes %+v",
			cp.SupportsGotoTargetsRequest, cp.SupportsDataBreakpoints, cp.BreakpointModes)
	}
	// bhyve's stub: no register writes, no hardware breakpoints, no watchpoints.
	cp = backendCapabilities(session.Features{SWBreakpoints: true})
	if cp.SupportsGotoTargetsRequest {
		t.Error("goto offered by a backend that cannot write rip")
	}
	if cp.SupportsDataBreakpoints || cp.SupportsDataBreakpointBytes {
		t.Error("data breakpoints offered without watchpoints")
	}
	if len(cp.BreakpointModes) != 1 || cp.BreakpointModes[0].Mode != "software" {
		t.Errorf("breakpoint modes %+v, want software only", cp.BreakpointModes)
	}
	if !cp.SupportsSetVariable || !cp.SupportsCancelRequest {
		t.Error("setVariable or cancel withdrawn")
	}
}
