package adapter

import (
	"encoding/json"
	"testing"

	"vmdap/session"
)

// TestBackendCapabilities: what the capabilities event promises follows
// what the target's accessors offer (session.Features).
func TestBackendCapabilities(t *testing.T) {
	full := session.Features{RegisterWrite: true, SWBreakpoints: true, HWBreakpoints: 4, Step: true, Watchpoints: true}
	cp := backendCapabilities(full)
	if !cp.SupportsGotoTargetsRequest || !cp.SupportsDataBreakpoints || len(cp.BreakpointModes) != 2 || !cp.SupportsSteppingGranularity {
		t.Fatalf("a backend with everything: goto %v, data breakpoints %v, modes %+v, granularity %v",
			cp.SupportsGotoTargetsRequest, cp.SupportsDataBreakpoints, cp.BreakpointModes, cp.SupportsSteppingGranularity)
	}
	// bhyve's stub: no register writes, no hardware breakpoints, no watchpoints.
	cp = backendCapabilities(session.Features{SWBreakpoints: true, Step: true})
	if cp.SupportsGotoTargetsRequest {
		t.Error("goto offered by a backend that cannot write rip")
	}
	if cp.SupportsDataBreakpoints || cp.SupportsDataBreakpointBytes {
		t.Error("data breakpoints offered without watchpoints")
	}
	if len(cp.BreakpointModes) != 1 || cp.BreakpointModes[0].Mode != "software" {
		t.Errorf("breakpoint modes %+v, want software only", cp.BreakpointModes)
	}
	if !cp.SupportsSetVariable || !cp.SupportsCancelRequest || !cp.SupportsFunctionBreakpoints || len(cp.ExceptionBreakpointFilters) == 0 {
		t.Error("setVariable, cancel, function breakpoints or exception filters withdrawn")
	}
	// Neither kind of breakpoint nor a single step (a VMM whose host
	// offers none): nothing that stands on them is offered.
	cp = backendCapabilities(session.Features{Watchpoints: true})
	if cp.SupportsFunctionBreakpoints || cp.SupportsInstructionBreakpoints || cp.SupportsConditionalBreakpoints ||
		cp.SupportsHitConditionalBreakpoints || cp.SupportsLogPoints || len(cp.ExceptionBreakpointFilters) > 0 || len(cp.BreakpointModes) > 0 {
		t.Errorf("breakpoints offered by a target without any: %+v", cp)
	}
	if cp.SupportsSteppingGranularity {
		t.Error("instruction steps offered by a target that cannot single-step")
	}
}

// TestCapabilitiesEventWithdraws: the capabilities event says false (or
// []) for what initialize offered and the target lacks, rather than
// leaving it out, which a client reads as unchanged.
func TestCapabilitiesEventWithdraws(t *testing.T) {
	ev := &capabilitiesEventExt{Event: newEvent("capabilities")}
	ev.Body.Capabilities = capabilitiesChange(initialCapabilities(), backendCapabilities(session.Features{SWBreakpoints: true, Step: true}))
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Body struct {
			Capabilities map[string]json.RawMessage `json:"capabilities"`
		} `json:"body"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	c := got.Body.Capabilities
	for k, want := range map[string]string{
		"supportsDataBreakpoints":     "false",
		"supportsDataBreakpointBytes": "false",
		"supportsGotoTargetsRequest":  "false",
		"supportsFunctionBreakpoints": "true",
		"supportsSetVariable":         "true",
	} {
		if string(c[k]) != want {
			t.Errorf("%s = %s, want %s (event %s)", k, c[k], want, b)
		}
	}
	var modes []breakpointMode
	if err := json.Unmarshal(c["breakpointModes"], &modes); err != nil || len(modes) != 1 || modes[0].Mode != "software" {
		t.Errorf("breakpointModes %s, want software only (%v)", c["breakpointModes"], err)
	}
	// No breakpoints at all: the lists are emptied explicitly.
	c2 := capabilitiesChange(initialCapabilities(), backendCapabilities(session.Features{}))
	if l, ok := c2["breakpointModes"].([]any); !ok || len(l) != 0 {
		t.Errorf("breakpointModes = %#v, want []", c2["breakpointModes"])
	}
	if l, ok := c2["exceptionBreakpointFilters"].([]any); !ok || len(l) != 0 {
		t.Errorf("exceptionBreakpointFilters = %#v, want []", c2["exceptionBreakpointFilters"])
	}
}
