package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// sentBreakpoint is a breakpoint as vmdap sent it (go-dap's type has no
// reason).
type sentBreakpoint struct {
	ID       int    `json:"id"`
	Verified bool   `json:"verified"`
	Message  string `json:"message"`
	Reason   string `json:"reason"`
	Address  string `json:"instructionReference"`
}

// functionBreakpoint sets one function breakpoint and returns it as sent.
func functionBreakpoint(t *testing.T, c *daptest.Client, name string) sentBreakpoint {
	t.Helper()
	_, raw, err := c.RequestRaw("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": name}}})
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Body struct{ Breakpoints []sentBreakpoint } `json:"body"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || len(r.Body.Breakpoints) != 1 {
		t.Fatalf("setFunctionBreakpoints response %s: %v", raw, err)
	}
	return r.Body.Breakpoints[0]
}

// startAndContinue ends the configuration, expects the first (entry) stop
// and continues.
func startAndContinue(t *testing.T, c *daptest.Client) {
	t.Helper()
	if err := c.ConfigurationDone(); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("first stop: %+v %v", ev, err)
	}
	if err := c.Continue(1); err != nil {
		t.Fatal(err)
	}
}

// stoppedIn expects the next stop for reason with fn on top of the stack.
func stoppedIn(t *testing.T, c *daptest.Client, reason, fn string) {
	t.Helper()
	ev, err := c.Stopped()
	if err != nil || ev.Body.Reason != reason {
		t.Fatalf("stopped %+v %v, want a %s", ev, err, reason)
	}
	st, err := c.StackTrace(1)
	if err != nil || st.Body.StackFrames[0].Name != fn {
		t.Fatalf("stack %+v %v, want %s on top", st, err, fn)
	}
}

// breakAtStartKernel sets a function breakpoint on start_kernel before
// configurationDone (the guest at its reset vector or entry: nothing maps
// start_kernel yet), continues and expects the stop there.
// An attached Linux kernel's (kaslrNote) says that a KASLR kernel would
// run elsewhere: nothing at reset tells whether it was booted nokaslr.
func breakAtStartKernel(t *testing.T, c *daptest.Client, kaslrNote bool) {
	t.Helper()
	// Verified at once, as a software breakpoint: not pending, and not in
	// a debug register for now (either would say so in its message).
	b := functionBreakpoint(t, c, "start_kernel")
	if !b.Verified || kaslrNote != strings.Contains(b.Message, "KASLR") ||
		strings.Contains(b.Message, "debug register") || strings.Contains(b.Message, "pending") {
		t.Fatalf("start_kernel: %+v, want verified at once (a KASLR note: %v)", b, kaslrNote)
	}
	startAndContinue(t, c)
	stoppedIn(t, c, "function breakpoint", "start_kernel")
}

// TestStartKernelBreakpointQEMU: the higher-half guest under QEMU TCG,
// attached at reset (qemu -S) and launched (run to its PVH entry): a
// function breakpoint on its start_kernel, linked high and mapped by the
// guest itself, is verified at once and stops there; the guest then runs
// to its end.
func TestStartKernelBreakpointQEMU(t *testing.T) {
	vmmtest.RequireQEMU(t)
	g := vmmtest.BuildGuest(t, "higher")
	t.Run("attach at reset", func(t *testing.T) {
		c, _ := attachToQEMU(t, g)
		c.WaitEvent("initialized")
		breakAtStartKernel(t, c, false)
		c.Disconnect()
	})
	t.Run("launch", func(t *testing.T) {
		c := stdioClient(t)
		if _, err := c.Initialize(); err != nil {
			t.Fatal(err)
		}
		if err := c.Launch(map[string]any{"program": g.Path, "hypervisor": "qemu", "memory": 64, "stopOnEntry": true}); err != nil {
			t.Fatal(err)
		}
		c.WaitEvent("initialized")
		breakAtStartKernel(t, c, false)
		if err := c.Continue(1); err != nil {
			t.Fatal(err)
		}
		m, err := c.WaitEvent("exited")
		if err != nil {
			t.Fatal(err)
		}
		if code := m.(*dap.ExitedEvent).Body.ExitCode; code != 0x30<<1|1 {
			t.Fatalf("exit status %#x, want the guest's 0x30 (serial %q)", code, c.Output("stdout"))
		}
		if !strings.Contains(c.Output("stdout"), "module_init") {
			t.Fatalf("guest output %q", c.Output("stdout"))
		}
	})
}

// TestStartKernelBreakpointLinux: Debian's kernel under QEMU TCG, attached
// at reset (-kernel vmlinuz, a bzImage QEMU decompresses; symbols from the
// vmlinux): a function breakpoint on start_kernel in the default
// (software) mode, set there, is verified at once and stops in it.
// (TestLinuxUnderQEMU does the same with a hardware breakpoint.)
func TestStartKernelBreakpointLinux(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	addr, _ := startQEMU(t, "-machine", "pc", "-m", "512", "-smp", "1", "-serial", "null",
		"-kernel", k.Vmlinuz, "-append", "console=ttyS0 nokaslr")
	c := attachDAP(t, addr, map[string]any{"program": k.Vmlinux})
	c.WaitEvent("initialized")
	breakAtStartKernel(t, c, true)
	// Stopped in the kernel, vmdap knows where it runs: no more caveat.
	if b := functionBreakpoint(t, c, "start_kernel"); !b.Verified || strings.Contains(b.Message, "KASLR") {
		t.Errorf("start_kernel once the kernel runs: %+v", b)
	}
	c.Disconnect()
}

// TestStartKernelBreakpointLinuxKVM: Debian's vmlinux booted by vmdap's
// own VMM through PVH: a function breakpoint on start_kernel in the
// default (software) mode, set at the PVH entry (paging off), is verified
// at once (placed where the PT_LOAD segment put start_kernel) and stops in
// it.
func TestStartKernelBreakpointLinuxKVM(t *testing.T) {
	vmmtest.RequireKVM(t)
	k := vmmtest.RequireLinux(t)
	c := stdioClient(t)
	c.Timeout = 2 * time.Minute // ring 0 is emulated on some hosts
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(map[string]any{"program": k.Vmlinux, "boot": "pvh", "irqchip": true, "memory": 512,
		"args": "console=ttyS0 nokaslr", "stopOnEntry": true}); err != nil {
		t.Fatal(err)
	}
	c.WaitEvent("initialized")
	breakAtStartKernel(t, c, false)
	c.Disconnect()
}

// TestPendingBreakpointOverBhyveStub: a stub that takes Z0 only at mapped
// addresses and has no debug-register breakpoints (bhyve's dialect, QEMU
// behind vmmtest.BhyveProxy): start_kernel of the higher-half guest,
// asked for at reset, is pending and says why. It is placed, with a
// breakpoint event, at the first stop after the guest has mapped itself,
// even one the user never sees (a conditional breakpoint whose condition
// is false, right after the guest turns paging on, at the identity-mapped
// physical address), and then hit.
func TestPendingBreakpointOverBhyveStub(t *testing.T) {
	g := vmmtest.BuildGuest(t, "higher")
	addr, _ := startQEMU(t, "-machine", "pc", "-m", "64", "-serial", "null",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", g.Path)
	px, err := vmmtest.NewBhyveProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	c := attachDAP(t, px.Addr(), map[string]any{"program": g.Path})
	c.WaitEvent("initialized")
	sk := functionBreakpoint(t, c, "start_kernel")
	if sk.Verified || sk.Reason != "pending" || !strings.Contains(sk.Message, "cannot be written yet") {
		t.Fatalf("start_kernel at reset over bhyve's dialect: %+v, want pending with the reason", sk)
	}
	pagingOn := vmmtest.Sym(t, g, "paging_on") - 0xffffffff80000000
	ib, err := c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{
		{"instructionReference": fmt.Sprintf("%#x", pagingOn), "condition": "0"}}})
	if err != nil || !ib.(*dap.SetInstructionBreakpointsResponse).Body.Breakpoints[0].Verified {
		t.Fatalf("instruction breakpoint at the physical paging_on: %+v %v", ib, err)
	}
	startAndContinue(t, c)
	m, err := c.WaitEvent("breakpoint")
	if err != nil {
		t.Fatal(err)
	}
	if b := m.(*dap.BreakpointEvent).Body; b.Reason != "changed" || b.Breakpoint.Id != sk.ID || !b.Breakpoint.Verified {
		t.Fatalf("breakpoint event %+v, want %d verified", b, sk.ID)
	}
	stoppedIn(t, c, "function breakpoint", "start_kernel")
	c.Disconnect()
}

// TestPendingBreakpointFallsBackToDebugRegister: a stub that takes Z0
// only at mapped addresses but has debug registers (QEMU's under KVM, or
// a hardware probe's; QEMU TCG behind vmmtest.NewMappedZ0Proxy): start_kernel
// of the higher-half guest, asked for at reset in the default mode, goes
// into a debug register (Z1) and is verified at once, saying so. At the
// first stop after the guest has mapped itself (its hit) it moves to a
// software breakpoint (Z0, then z1), with a breakpoint event, and the
// register is free again: four hardware breakpoints then fit, and one of
// them hits.
func TestPendingBreakpointFallsBackToDebugRegister(t *testing.T) {
	g := vmmtest.BuildGuest(t, "higher")
	addr, _ := startQEMU(t, "-machine", "pc", "-m", "64", "-serial", "null",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", g.Path)
	px, err := vmmtest.NewMappedZ0Proxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	c := attachDAP(t, px.Addr(), map[string]any{"program": g.Path})
	c.WaitEvent("initialized")
	// index is where packet is in the proxy's log after from, or -1.
	index := func(log []string, from int, packet string) int {
		for i := from; i < len(log); i++ {
			if log[i] == packet {
				return i
			}
		}
		return -1
	}

	sk := functionBreakpoint(t, c, "start_kernel")
	if !sk.Verified || sk.Reason != "" || sk.Message != "placed in a debug register for now: the address cannot be written yet" {
		t.Fatalf("start_kernel at reset: %+v, want verified at once in a debug register", sk)
	}
	skAddr, err := strconv.ParseUint(strings.TrimPrefix(sk.Address, "0x"), 16, 64)
	if err != nil || skAddr>>32 != 0xffffffff {
		t.Fatalf("start_kernel's address %q (%v), want a higher-half one", sk.Address, err)
	}
	z0, z1, z1Off := fmt.Sprintf("Z0,%x,1", skAddr), fmt.Sprintf("Z1,%x,1", skAddr), fmt.Sprintf("z1,%x,1", skAddr)
	atReset := px.Breakpoints()
	if index(atReset, 0, z1) < 0 || index(atReset, 0, z0) >= 0 {
		t.Fatalf("breakpoint packets at reset %q, want %s and no %s", atReset, z1, z0)
	}

	startAndContinue(t, c)
	m, err := c.WaitEvent("breakpoint")
	if err != nil {
		t.Fatal(err)
	}
	if b := m.(*dap.BreakpointEvent).Body; b.Reason != "changed" || b.Breakpoint.Id != sk.ID || !b.Breakpoint.Verified || b.Breakpoint.Message != "" {
		t.Fatalf("breakpoint event %+v, want %d verified, no longer in a debug register", b, sk.ID)
	}
	stoppedIn(t, c, "function breakpoint", "start_kernel")
	log := px.Breakpoints()
	moved := index(log, len(atReset), z0)
	if moved < 0 || index(log, moved, z1Off) < 0 {
		t.Fatalf("breakpoint packets %q after the reset's %q, want %s then %s", log[len(atReset):], atReset, z0, z1Off)
	}

	// DR0-DR3 all free: four hardware breakpoints are verified (the
	// proxy refuses a fifth Z1, as QEMU-KVM does), and one hits.
	var hw []map[string]any
	for _, f := range []string{"puts", "module_init", "high64", "park"} {
		hw = append(hw, map[string]any{"instructionReference": fmt.Sprintf("%#x", vmmtest.Sym(t, g, f)), "mode": "hardware"})
	}
	ib, err := c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": hw})
	if err != nil {
		t.Fatal(err)
	}
	bs := ib.(*dap.SetInstructionBreakpointsResponse).Body.Breakpoints
	if len(bs) != len(hw) {
		t.Fatalf("setInstructionBreakpoints answered %+v for %d breakpoints", bs, len(hw))
	}
	for i, b := range bs {
		if !b.Verified {
			t.Fatalf("hardware breakpoint %d after the move: %+v, want verified (a debug register free)", i, b)
		}
	}
	if err := c.Continue(1); err != nil {
		t.Fatal(err)
	}
	stoppedIn(t, c, "instruction breakpoint", "puts")
	c.Disconnect()
}

// TestStepBeforeInlinedCallsLinux: in Debian's kernel, start_kernel's call
// of early_security_init is followed by inlined calls (setup_boot_config,
// and get_boot_config_from_initrd inlined into it) that begin at the
// return address. A stepOut of early_security_init stops there, shown as
// gdb's finish shows it: in start_kernel, at the call; a step in enters
// the inlined calls one by one without running, and from the call a next
// runs over them to a later line of start_kernel.
func TestStepBeforeInlinedCallsLinux(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	atCall := func(t *testing.T) (*daptest.Client, dap.StackFrame) {
		addr, _ := startQEMU(t, "-machine", "pc", "-m", "512", "-smp", "1", "-serial", "null",
			"-kernel", k.Vmlinuz, "-append", "console=ttyS0 nokaslr")
		c := attachDAP(t, addr, map[string]any{"program": k.Vmlinux})
		c.WaitEvent("initialized")
		if b := functionBreakpoint(t, c, "early_security_init"); !b.Verified {
			t.Fatalf("early_security_init: %+v", b)
		}
		startAndContinue(t, c)
		stoppedIn(t, c, "function breakpoint", "early_security_init")
		stepOK(t, c, "stepOut")
		f := topFrame(t, c)
		if f.Name != "start_kernel" {
			t.Fatalf("after stepOut of early_security_init: %s:%d on top, want start_kernel", f.Name, f.Line)
		}
		return c, f
	}
	t.Run("stepIn enters", func(t *testing.T) {
		c, f := atCall(t)
		stepOK(t, c, "stepIn")
		g := topFrame(t, c)
		if g.Name == "start_kernel" || g.InstructionPointerReference != f.InstructionPointerReference {
			t.Fatalf("after stepIn: %s:%d at %s, want an inlined call entered at %s", g.Name, g.Line, g.InstructionPointerReference, f.InstructionPointerReference)
		}
		t.Logf("at %s: start_kernel:%d, then %s:%d", f.InstructionPointerReference, f.Line, g.Name, g.Line)
		c.Disconnect()
	})
	t.Run("next runs over", func(t *testing.T) {
		c, f := atCall(t)
		stepOK(t, c, "next")
		if g := topFrame(t, c); g.Name != "start_kernel" || g.Line <= f.Line {
			t.Fatalf("after next from start_kernel:%d: %s:%d at %s, want a later line of start_kernel", f.Line, g.Name, g.Line, g.InstructionPointerReference)
		}
		c.Disconnect()
	})
}
