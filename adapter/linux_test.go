package adapter_test

import (
	"strings"
	"testing"

	"github.com/google/go-dap"
)

// TestLinuxOptionsOnOtherImage: the Linux settings on an image that is no
// Linux kernel (the example guest) are ignored with a word in the
// console; "tasks" stays an expression there (no such variable); the
// Modules view lists the image; a bad "modules" folder fails the launch.
func TestLinuxOptionsOnOtherImage(t *testing.T) {
	e := launchExample(t, map[string]any{"modules": t.TempDir(), "kernelLog": true, "taskThreads": true, "stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	if out := e.c.Output("important"); !strings.Contains(out, "not one: ignored") {
		t.Errorf("no word about the ignored Linux settings: %q", out)
	}
	if _, err := e.c.Evaluate(0, "tasks"); err == nil || !strings.Contains(err.Error(), `"tasks"`) {
		t.Errorf("tasks on a non-Linux image: %v, want an unknown name", err)
	}
	m, err := e.c.Request("modules", map[string]any{})
	e.must(err)
	mods := m.(*dap.ModulesResponse).Body.Modules
	if len(mods) != 1 || mods[0].Name != "kernel.elf" || mods[0].AddressRange == "" {
		t.Errorf("modules: %+v, want the image alone", mods)
	}
	// The Linux exception filters are not for it.
	r, err := e.c.Request("setExceptionBreakpoints", map[string]any{"filters": []string{"linux-panic", "PF"}})
	e.must(err)
	if bs := r.(*dap.SetExceptionBreakpointsResponse).Body.Breakpoints; len(bs) != 2 || bs[0].Verified || !strings.Contains(bs[0].Message, "not one") || !bs[1].Verified {
		t.Errorf("linux-panic and PF on a non-Linux image: %+v", bs)
	}
	th, err := e.c.Request("threads", nil)
	e.must(err)
	if ts := th.(*dap.ThreadsResponse).Body.Threads; len(ts) != 1 || ts[0].Name != "vCPU 0" {
		t.Errorf("threads: %+v", ts)
	}
	e.must(e.c.Disconnect())

	c, _ := newClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	err = c.Launch(map[string]any{"program": buildExample(t), "modules": "/nonexistent/modules"})
	if err == nil || !strings.Contains(err.Error(), `"modules"`) {
		t.Errorf("launch with a missing modules folder: %v", err)
	}
}

// TestLinuxFiltersOfferedAtInitialize: the Linux exception filters are in
// the initialize response, the only filters VS Code shows (it merges a
// capabilities event into its copy of the capabilities but never puts
// new filters in the Breakpoints view), and the capabilities event after
// launching an image that is no Linux kernel withdraws them, the CPU's
// exceptions staying. (For a Linux image, TestLinuxPanicFilterUnderQEMU
// sees them in the event.)
func TestLinuxFiltersOfferedAtInitialize(t *testing.T) {
	c, _ := newClient(t)
	init, err := c.Initialize()
	if err != nil {
		t.Fatal(err)
	}
	offered := func(fs []dap.ExceptionBreakpointsFilter) map[string]bool {
		m := map[string]bool{}
		for _, f := range fs {
			m[f.Filter] = true
		}
		return m
	}
	at := offered(init.Body.ExceptionBreakpointFilters)
	for _, id := range []string{"linux-panic", "linux-oops", "linux-warn", "PF"} {
		if !at[id] {
			t.Errorf("initialize offers %v, not %s", at, id)
		}
	}
	if err := c.Launch(map[string]any{"program": buildExample(t), "memory": 64}); err != nil {
		t.Fatal(err)
	}
	ev, err := c.WaitEvent("capabilities")
	if err != nil {
		t.Fatal(err)
	}
	after := offered(ev.(*dap.CapabilitiesEvent).Body.Capabilities.ExceptionBreakpointFilters)
	if after["linux-panic"] || after["linux-oops"] || after["linux-warn"] || !after["PF"] {
		t.Errorf("filters after launching a non-Linux image: %v, want the CPU's alone", after)
	}
	if _, err := c.WaitEvent("initialized"); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
}
