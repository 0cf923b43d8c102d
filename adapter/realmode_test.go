package adapter_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/google/go-dap"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/adapter"
	"vmdap/adapter/daptest"
	"vmdap/vmm"
	"vmdap/vmm/kvm"
	"vmdap/vmm/vmmtest"
	"vmdap/x86"
)

// realModeBackends launches a guest on vmdap's VMM and puts vCPU 0 in
// real mode at f000:fff0 (linear 0xffff0), where it writes a far jump.
type realModeBackends struct{ kvmBackends }

func (b realModeBackends) Launch(ctx context.Context, cfg adapter.LaunchConfig, serial io.Writer, log logrus.FieldLogger) (vmm.Target, error) {
	tg, err := b.kvmBackends.Launch(ctx, cfg, serial, log)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (vmm.Target, error) { tg.Close(); return nil, err }
	pm, ok1 := tg.PhysicalMemory()
	w, ok2 := tg.RegisterWriter()
	if !ok1 || !ok2 {
		return fail(vmm.ErrUnsupported)
	}
	if _, err := pm.WritePhysical([]byte{0xea, 0x5b, 0xe0, 0x00, 0xf0}, 0xffff0); err != nil { // ljmp $0xf000,$0xe05b
		return fail(err)
	}
	s, err := tg.SRegs(0)
	if err != nil {
		return fail(err)
	}
	data := x86.Segment{Limit: 0xffff, Type: 3, Present: true, S: true}
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.CS = x86.Segment{Selector: 0xf000, Base: 0xf0000, Limit: 0xffff, Type: 11, Present: true, S: true}
	s.CR0, s.CR3, s.CR4, s.EFER = x86.CR0ET, 0, 0, 0
	if err := w.SetSRegs(0, s); err != nil {
		return fail(err)
	}
	r, _ := tg.Regs(0)
	r.RIP, r.RFLAGS = 0xfff0, 2
	if err := w.SetRegs(0, r); err != nil {
		return fail(err)
	}
	return tg, nil
}

// realModeSession launches the real-mode guest and returns the client at
// its entry stop.
func realModeSession(t *testing.T) *daptest.Client {
	t.Helper()
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "mb")
	l, _ := test.NewNullLogger()
	srv := &adapter.Server{Backends: realModeBackends{}, Log: l}
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(a) }()
	c := daptest.New(b)
	t.Cleanup(func() { c.Close(); <-done })
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(map[string]any{"program": g.Path, "memory": 16, "stopOnEntry": true}); err != nil {
		t.Fatal(err)
	}
	c.WaitEvent("initialized")
	c.ConfigurationDone()
	if _, err := c.Stopped(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRealModeFrame (vmdap's VMM): a vCPU in real mode shows its frame at
// CS.base + IP, and the disassembly there is the code the CPU runs next.
func TestRealModeFrame(t *testing.T) {
	c := realModeSession(t)
	st, err := c.StackTrace(1)
	if err != nil {
		t.Fatal(err)
	}
	f := st.Body.StackFrames[0]
	if f.InstructionPointerReference != "0xffff0" || len(st.Body.StackFrames) != 1 {
		t.Fatalf("frames %+v, want one at 0xffff0 (f000:fff0)", st.Body.StackFrames)
	}
	d, err := c.Disassemble(f.InstructionPointerReference, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if in := d.Body.Instructions[0]; in.Address != "0xffff0" || in.InstructionBytes != "ea 5b e0 00 f0" || !strings.Contains(in.Instruction, "jmp") {
		t.Fatalf("disassembly at f000:fff0: %+v", in)
	}
	if r, err := c.Evaluate(f.Id, "$rip"); err != nil || r.Body.Result != "0x000000000000fff0" { // as the Registers view shows it
		t.Fatalf("$rip = %+v %v, want IP 0xfff0", r, err)
	}
	regs, err := c.ScopeVars(f.Id, "Registers")
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) == 0 || regs[0].Name != "General" || !strings.HasPrefix(regs[0].Value, "cs:ip=0xf000:0xfff0 ") {
		t.Fatalf("the Registers view's General row %+v, want it summed up as cs:ip=0xf000:0xfff0, as in real mode", regs[:min(len(regs), 1)])
	}
}

// TestRealModeBreakpointAndStep (vmdap's VMM): in real mode an
// instruction breakpoint and a step are at linear addresses (CS.base +
// IP), as the frames are: the far jump steps to f000:e05b (0xfe05b), and a
// breakpoint on the code there, set by its linear address, hits, in
// software where int3 traps in real mode on this host (the probe says),
// else in a debug register.
func TestRealModeBreakpointAndStep(t *testing.T) {
	c := realModeSession(t)
	// At f000:e05b: nop; nop; inc ax; jmp $-3 (back to the inc).
	if _, err := c.Request("writeMemory", map[string]any{"memoryReference": "0xfe05b", "data": "kJBA6/0="}); err != nil {
		t.Fatal(err)
	}
	ip := func(want uint64) {
		t.Helper()
		if pc, err := c.PC(); err != nil || pc != want {
			t.Fatalf("frame at %#x (%v), want %#x", pc, err, want)
		}
	}
	if err := c.Step("stepIn", 1, "instruction"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stopped(); err != nil {
		t.Fatal(err)
	}
	ip(0xfe05b)
	h, err := kvm.Probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	set := func(mode string) dap.Breakpoint {
		t.Helper()
		r, err := c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"instructionReference": "0xfe05d", "mode": mode}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.(*dap.SetInstructionBreakpointsResponse).Body.Breakpoints[0]
	}
	// Asked for in software: placed where int3 traps in real mode on this
	// host, else refused with the reason.
	traps := h.RealModeInt3 || !h.RealModeProbed
	if bp := set("software"); bp.Verified != traps || !traps && !strings.Contains(bp.Message, "does not trap in real mode") {
		t.Fatalf("software breakpoint in real mode (int3 traps there: %v): %+v", traps, bp)
	}
	// In no mode: software where it traps, else a debug register, saying so.
	if bp := set(""); !bp.Verified || traps != (bp.Message == "") {
		t.Fatalf("breakpoint at 0xfe05d (int3 traps in real mode: %v): %+v", traps, bp)
	}
	for i := 0; i < 2; i++ { // placed, then over it and round the loop
		if err := c.Continue(1); err != nil {
			t.Fatal(err)
		}
		ev, err := c.Stopped()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Body.Reason != "instruction breakpoint" {
			t.Fatalf("stopped for %q (%s: %s), want the instruction breakpoint", ev.Body.Reason, ev.Body.Text, c.Output("console"))
		}
		ip(0xfe05d)
	}
	if r, err := c.Evaluate(0, "$rip"); err != nil || r.Body.Result != "0x000000000000e05d" {
		t.Fatalf("$rip = %+v %v, want IP 0xe05d", r, err)
	}
}
