package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// TestCoreDumpLinuxKVMMatchesDrgn: Linux on vmdap's own VMM, stopped in
// populate_rootfs (the rootfs initcall, after the subsys initcall
// crash_save_vmcoreinfo_init that writes the kernel's VMCOREINFO), is
// written to a core by the console's dump. drgn reads it (it finds the
// kernel by the VMCOREINFO note) and lists the tasks vmdap listed live;
// vmdap opens it and shows the same tasks, banner and frame.
func TestCoreDumpLinuxKVMMatchesDrgn(t *testing.T) {
	if testing.Short() {
		t.Skip("boots Linux on vmdap's VMM into its initcalls (minutes where ring 0 is emulated): not with -short")
	}
	vmmtest.RequireKVM(t)
	k := vmmtest.RequireLinux(t)
	vmmtest.RequireDrgn(t)
	requireFastRing0(t, "booting Linux into its initcalls")
	c := stdioClient(t)
	c.Timeout = 30 * time.Minute
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer consolesOnFailure(t, c, func() string { return c.Output("stdout") })
	start := time.Now()
	thread, top := launchToPopulateRootfs(t, c, map[string]any{"program": k.Vmlinux, "boot": "pvh", "irqchip": true, "memory": 256, "vcpus": 1,
		"args": "console=ttyS0 nokaslr panic=-1 mitigations=off init_on_alloc=0 pci=off cryptomgr.notests nowatchdog nosmp"})
	t.Logf("populate_rootfs reached after %v", time.Since(start).Round(time.Second))
	dumpMatchesDrgn(t, c, k, thread, top, time.Now())
}

// TestCoreDumpLinuxQEMUMatchesDrgn: Linux under QEMU (launched by vmdap),
// stopped in populate_rootfs, is written to a core by the console's dump:
// QEMU dumps it, and vmdap writes it again with the kernel's VMCOREINFO
// and virtual addresses (QEMU's own file has neither without -device
// vmcoreinfo and the guest's fw_cfg driver), so drgn reads it; vmdap
// shows what it showed live.
func TestCoreDumpLinuxQEMUMatchesDrgn(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	vmmtest.RequireQEMU(t)
	vmmtest.RequireDrgn(t)
	c := stdioClient(t)
	c.Timeout = 5 * time.Minute
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	thread, top := launchToPopulateRootfs(t, c, map[string]any{"program": k.Vmlinuz, "symbols": k.Vmlinux, "hypervisor": "qemu", "memory": 256, "vcpus": 1,
		"args": "console=ttyS0 nokaslr panic=-1"})
	dumpMatchesDrgn(t, c, k, thread, top, time.Now())
	mustOK(t, c.Disconnect())
}

// launchToPopulateRootfs launches the kernel with a function breakpoint
// on populate_rootfs and runs it there; it returns the stopped thread and
// its top frame.
func launchToPopulateRootfs(t *testing.T, c *daptest.Client, launch map[string]any) (int, dap.StackFrame) {
	t.Helper()
	mustOK(t, c.Launch(launch))
	_, err := c.WaitEvent("initialized")
	mustOK(t, err)
	fb, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "populate_rootfs"}}})
	mustOK(t, err)
	if bp := fb.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints; len(bp) != 1 || !bp[0].Verified {
		t.Fatalf("function breakpoint on populate_rootfs: %+v", bp)
	}
	mustOK(t, c.ConfigurationDone())
	ev, err := c.Stopped()
	mustOK(t, err)
	st, err := c.StackTrace(ev.Body.ThreadId)
	mustOK(t, err)
	top := st.Body.StackFrames[0]
	if top.Name != "populate_rootfs" {
		t.Fatalf("stopped at %+v (%s), want populate_rootfs", top, ev.Body.Description)
	}
	return ev.Body.ThreadId, top
}

// dumpMatchesDrgn dumps the session, stopped at top on thread, with the
// console's dump, has drgn read the core (the tasks and banner vmdap
// shows live), and opens it in a second session, which must show the
// same tasks, version and top frame.
func dumpMatchesDrgn(t *testing.T, c *daptest.Client, k vmmtest.Linux, thread int, top dap.StackFrame, start time.Time) {
	t.Helper()
	eval := func(c interface {
		Evaluate(int, string) (*dap.EvaluateResponse, error)
	}, expr string) string {
		t.Helper()
		r, err := c.Evaluate(0, expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return r.Body.Result
	}
	tasks, version := eval(c, "tasks"), eval(c, "version")
	core := filepath.Join(t.TempDir(), "vmcore")
	out := eval(c, "dump "+core)
	t.Logf("%s (in %v)", out, time.Since(start).Round(time.Millisecond))
	if !strings.Contains(out, "VMCOREINFO of Linux "+k.Version) {
		t.Errorf("dump: %q, want the kernel's VMCOREINFO (OSRELEASE=%s)", out, k.Version)
	}
	d := vmmtest.DrgnRead(t, core, k.Vmlinux)
	for part, why := range d.Errors {
		t.Logf("drgn could not read %s (not compared): %s", part, why)
	}
	if len(d.Tasks) < 2 {
		t.Fatalf("drgn read %d tasks", len(d.Tasks))
	}
	compareTasks(t, tasks, d)
	if strings.TrimSpace(d.Banner) != strings.TrimSpace(version) {
		t.Errorf("banner: drgn %q, vmdap %q", d.Banner, version)
	}
	// vmdap's own reading of the core.
	cc := openCore(t, core, k.Vmlinux)
	if got := eval(cc, "tasks"); got != tasks {
		t.Errorf("tasks in the core:\n%s\nlive:\n%s", got, tasks)
	}
	if got := eval(cc, "version"); got != version {
		t.Errorf("version in the core %q, live %q", got, version)
	}
	cst, err := cc.StackTrace(thread)
	mustOK(t, err)
	if f := cst.Body.StackFrames[0]; f.Name != top.Name || f.Line != top.Line || f.InstructionPointerReference != top.InstructionPointerReference {
		t.Errorf("the core's top frame %+v, live %+v", f, top)
	}
}
