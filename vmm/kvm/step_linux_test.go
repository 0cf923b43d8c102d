//go:build linux && amd64

package kvm

import (
	"context"
	"os"
	"testing"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
	"vmdap/x86"
)

func TestStepPushfHidesTF(t *testing.T) {
	f := newMech(t, 1)
	f.at(0, "case_pushf")
	f.wantStop(f.step(0), vmm.ReasonStep, "case_pushf_after", 0)
	r, _ := f.m.Regs(0)
	pushed := f.u64(r.RSP)
	if pushed&x86.FlagTF != 0 {
		t.Fatalf("pushf pushed %#x with vmdap's TF visible to the guest", pushed)
	}
	if r.RFLAGS&x86.FlagTF != 0 {
		t.Fatalf("RFLAGS %#x shows TF", r.RFLAGS)
	}
}

func TestStepSTIAndMovSS(t *testing.T) {
	f := newMech(t, 1)
	f.at(0, "case_sti")
	f.wantStop(f.step(0), vmm.ReasonStep, "case_sti_2", 0)
	if r, _ := f.m.Regs(0); r.RFLAGS&x86.FlagIF == 0 {
		t.Fatalf("IF not set after sti: %#x", r.RFLAGS)
	}
	f.at(0, "case_movss")
	f.wantStop(f.step(0), vmm.ReasonStep, "case_movss_2", 0)
	// mov ss: hardware defers the trap past the next instruction; an
	// emulating host stops right after it. Either is a correct step; what
	// must not happen is a lost step.
	s := f.step(0)
	if s.Reason != vmm.ReasonStep || (s.PC != f.sym("case_movss_3") && s.PC != f.sym("case_movss_4")) {
		t.Fatalf("step over mov ss: %v", s)
	}
}

func TestStepRepCompletesInstruction(t *testing.T) {
	counts := []uint64{4, 5000, 100000}
	if os.Getenv("VMDAP_LANE") != "" {
		// Inside the emulated lanes hardware steps a rep per iteration: a
		// 100000-step rep is slow there, and under QEMU TCG's nested SVM it
		// has once ended in a spurious shutdown.
		counts = counts[:2]
	}
	for _, n := range counts {
		f := newMech(t, 1)
		f.setU64(f.sym("rep_count"), n)
		// fill src with a pattern
		pat := make([]byte, n)
		for i := range pat {
			pat[i] = byte(i*7 + 1)
		}
		if _, err := f.m.WriteMemory(0, pat, f.sym("src_buf")); err != nil {
			t.Fatal(err)
		}
		f.at(0, "case_rep")
		for i := 0; i < 3; i++ {
			f.step(0)
		}
		if pc := f.pc(0); pc != f.sym("case_rep_insn") {
			t.Fatalf("n=%d: at %#x, want the rep", n, pc)
		}
		f.wantStop(f.step(0), vmm.ReasonStep, "case_rep_after", 0)
		got := make([]byte, n)
		if _, err := f.m.ReadMemory(0, got, f.sym("dst_buf")); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != pat[i] {
				t.Fatalf("n=%d: dst[%d] = %#x, want %#x", n, i, got[i], pat[i])
			}
		}
		if r, _ := f.m.Regs(0); r.RCX != 0 {
			t.Fatalf("rcx = %d after rep", r.RCX)
		}
	}
}

func TestStepOverOUTRunsNoExtraInstruction(t *testing.T) {
	f := newMech(t, 1)
	f.at(0, "case_out")
	f.step(0)
	f.step(0)
	f.wantStop(f.step(0), vmm.ReasonStep, "case_out_after", 0)
	if got := f.serial.String(); got[len(got)-1] != 'A' {
		t.Fatalf("serial = %q, want the OUT's 'A'", got)
	}
	f.wantStop(f.step(0), vmm.ReasonStep, "case_out_after2", 0)
}

func TestStepOverIN(t *testing.T) {
	f := newMech(t, 1)
	f.at(0, "case_in")
	f.step(0)
	f.wantStop(f.step(0), vmm.ReasonStep, "case_in_after", 0)
	r, _ := f.m.Regs(0)
	if r.RAX&0xff != 0x60 {
		t.Fatalf("in from LSR gave %#x, want 0x60", r.RAX&0xff)
	}
}

func TestStepHLT(t *testing.T) {
	f := newMech(t, 1)
	f.at(0, "case_hlt")
	f.wantStop(f.step(0), vmm.ReasonStep, "case_hlt_after", 0)
	// The vCPU is halted now: continuing it finds nothing runnable.
	if s := f.cont(); s.Reason != vmm.ReasonHalted {
		t.Fatalf("continue after a stepped hlt: %v", s)
	}
}

func TestStepIntoFaultStopsAtHandler(t *testing.T) {
	f := newMech(t, 1)
	f.at(0, "case_ud2")
	f.wantStop(f.step(0), vmm.ReasonStep, "vec6", 0)
	r, _ := f.m.Regs(0)
	// The exception frame: RIP of the ud2, CS, RFLAGS without TF.
	if rip := f.u64(r.RSP); rip != f.sym("case_ud2") {
		t.Fatalf("frame rip = %#x, want case_ud2 %#x", rip, f.sym("case_ud2"))
	}
	if fl := f.u64(r.RSP + 16); fl&x86.FlagTF != 0 {
		t.Fatalf("frame rflags %#x carries TF", fl)
	}
	// Handler code was not run yet.
	if v := f.u64(f.sym("last_vec")) & 0xffffffff; v != 0xffffffff {
		t.Fatalf("last_vec = %d: the handler already ran", v)
	}
	f.step(0)
	if v := f.u64(f.sym("last_vec")) & 0xffffffff; v != 6 {
		t.Fatalf("last_vec = %d after one handler step, want 6", v)
	}
}

func TestGuestInt3ReachesGuest(t *testing.T) {
	f := newMech(t, 1)
	f.at(0, "case_int3")
	s := f.cont()
	if s.Reason != vmm.ReasonHalted || s.PC != f.sym("handler_halt")+1 {
		t.Fatalf("guest int3: %v (handler_halt+1 = %#x)", s, f.sym("handler_halt")+1)
	}
	if v := f.u64(f.sym("last_vec")) & 0xffffffff; v != 3 {
		t.Fatalf("last_vec = %d, want 3", v)
	}
	frame := f.u64(f.sym("last_frame"))
	if rip := f.u64(frame); rip != f.sym("case_int3_after") {
		t.Fatalf("#BP frame rip = %#x, want after the int3 %#x", rip, f.sym("case_int3_after"))
	}
}

func TestStepSelfJumpAndCallAndIret(t *testing.T) {
	f := newMech(t, 1)
	f.at(0, "case_self")
	f.wantStop(f.step(0), vmm.ReasonStep, "case_self", 0)
	f.at(0, "case_call")
	f.wantStop(f.step(0), vmm.ReasonStep, "leaf", 0)
	f.step(0)
	f.wantStop(f.step(0), vmm.ReasonStep, "case_call_ret", 0)
	f.at(0, "case_iret")
	for f.pc(0) != f.sym("case_iret_insn") {
		f.step(0)
	}
	f.wantStop(f.step(0), vmm.ReasonStep, "iret_target", 0)
	f.wantStop(f.step(0), vmm.ReasonStep, "iret_target", 1)
}

func TestStepPopf(t *testing.T) {
	f := newMech(t, 1)
	f.at(0, "case_popf")
	f.step(0)
	f.wantStop(f.step(0), vmm.ReasonStep, "case_popf_2", 0)
	f.wantStop(f.step(0), vmm.ReasonStep, "case_popf_3", 0)
	if r, _ := f.m.Regs(0); r.RFLAGS&(x86.FlagTF|x86.FlagCF) != x86.FlagCF {
		t.Fatalf("rflags after popf = %#x, want CF and no TF", r.RFLAGS)
	}
}

func TestStepAfterRegisterWrite(t *testing.T) {
	// On VT-x/AMD-V a register write drops KVM's step TF unless guest debug
	// is re-armed; the step must still stop after one instruction.
	f := newMech(t, 1)
	f.at(0, "case_nops")
	f.step(0)
	r, _ := f.m.Regs(0)
	r.RAX = 0x1234
	if err := f.m.SetRegs(0, r); err != nil {
		t.Fatal(err)
	}
	f.wantStop(f.step(0), vmm.ReasonStep, "case_nops_2", 1)
	if r, _ := f.m.Regs(0); r.RAX != 0x1234 {
		t.Fatalf("rax = %#x", r.RAX)
	}
}

func TestStepAfterMMIO(t *testing.T) {
	// A write to a page-protected page (not to the watched bytes) is an
	// emulated MMIO access; on VT-x/AMD-V it drops KVM's step TF unless
	// guest debug is re-armed, and the next step would run freely.
	f := newMech(t, 1)
	w := vmm.Watch{Addr: f.sym("watched_near"), Len: 8, Access: vmm.AccessWrite, Kind: vmm.WatchPage}
	if err := f.m.InsertWatchpoint(w); err != nil {
		t.Fatal(err)
	}
	f.at(0, "case_write")
	f.wantStop(f.step(0), vmm.ReasonStep, "case_write_after", 0)
	if v := f.u64(f.sym("watched")); v != 0x1234 {
		t.Fatalf("emulated write lost: %#x", v)
	}
	f.wantStop(f.step(0), vmm.ReasonStep, "case_write_same", 0)
	f.wantStop(f.step(0), vmm.ReasonStep, "case_write_same_after", 0)
}

// newIRQMech creates a machine with an in-kernel irqchip on the mech
// guest, not yet run (its ready hlt would wait for an interrupt).
func newIRQMech(t *testing.T, vcpus int) *fixture {
	t.Helper()
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "mech")
	m, err := New(Config{Image: g.Data, Memory: 64 << 20, VCPUs: vcpus, IRQChip: true, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &fixture{t: t, m: m, g: g}
}

// TestStepBlocksInterrupts: with an interrupt pending and IF=1, a step
// executes the next instruction of the interrupted code, not the
// interrupt handler (KVM_GUESTDBG_BLOCKIRQ); the interrupt is delivered
// once the guest runs. Without BLOCKIRQ the step lands in the handler
// (PVM) or the handler runs unstepped (VT-x, AMD-V).
func TestStepBlocksInterrupts(t *testing.T) {
	f := newIRQMech(t, 1)
	m := f.m
	if !m.host.BlockIRQ {
		t.Skip("this host's KVM does not offer KVM_GUESTDBG_BLOCKIRQ")
	}
	f.at(0, "case_irq")
	inLoop := func(pc uint64) bool { return pc >= f.sym("irq_loop") && pc < f.sym("irq_loop_end") }
	f.runUntil("reaching irq_loop", func() bool { return inLoop(f.pc(0)) })
	if pc := f.pc(0); !inLoop(pc) {
		t.Fatalf("paused at %#x, not in irq_loop", pc)
	}
	if err := m.SignalMSI(0, 0x40); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		s := f.step(0)
		if s.Reason != vmm.ReasonStep || !inLoop(s.PC) {
			t.Fatalf("step %d with an interrupt pending went to %v (irq_handler %#x)", i, s, f.sym("irq_handler"))
		}
	}
	if n := f.u64(f.sym("irq_count")); n != 0 {
		t.Fatalf("irq_count = %d during the steps", n)
	}
	f.runUntil("delivering the held interrupt", func() bool { return f.u64(f.sym("irq_count")) != 0 })
	if n := f.u64(f.sym("irq_count")); n != 1 {
		t.Fatalf("irq_count = %d after running, want the held interrupt delivered once", n)
	}
}

// TestBreakpointWithIRQChip: with an in-kernel irqchip a HLT no longer
// exits, so on a host whose software breakpoints are hlt patches the
// machine must offer none (and the debug-register ones must still work);
// elsewhere software breakpoints keep working with the irqchip.
func TestBreakpointWithIRQChip(t *testing.T) {
	f := newIRQMech(t, 1)
	m := f.m
	probed, err := Probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, sw := m.SWBreakpoints()
	if want := probed.SWBreakpoint != swbpNone && probed.SWBreakpoint != swbpHLT; sw != want {
		t.Fatalf("software breakpoints offered = %v with an irqchip on a host probed as %v, want %v", sw, probed.SWBreakpoint, want)
	}
	handler := f.sym("irq_handler")
	// The MSI is sent only once the guest is in irq_loop: before it has
	// software-enabled its local APIC the interrupt would be dropped (a
	// fixed sleep was not enough under -race on a loaded machine).
	f.at(0, "case_irq")
	inLoop := func(pc uint64) bool { return pc >= f.sym("irq_loop") && pc < f.sym("irq_loop_end") }
	f.runUntil("reaching irq_loop", func() bool { return inLoop(f.pc(0)) })
	if pc := f.pc(0); !inLoop(pc) {
		t.Fatalf("paused at %#x, not in irq_loop", pc)
	}
	want := vmm.ReasonBreakpoint
	switch {
	case sw:
		err = m.InsertBreakpoint(handler)
	case m.host.HWBreakpoints:
		want = vmm.ReasonHWBreakpoint
		err = m.InsertHWBreakpoint(handler)
	default:
		t.Skip("this host has neither software nor hardware breakpoints with an irqchip")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Continue(); err != nil {
		t.Fatal(err)
	}
	if err := m.SignalMSI(0, 0x40); err != nil {
		t.Fatal(err)
	}
	if s := f.wait(); s.Reason != want || s.PC != handler {
		t.Fatalf("got %v, want %v at irq_handler %#x", s, want, handler)
	}
}

// TestStepOverHalt: with an irqchip a step of a HLT (or of a vCPU halted
// in one) waits for an interrupt, lets its handler run and ends at the
// instruction after the HLT; a breakpoint in the handler stops it there.
// A bare single step would hold the interrupt off (BLOCKIRQ) and end with
// the handler never run. Hosts without software breakpoints keep the bare
// step: the interrupt is then held, and delivered by the next continue.
func TestStepOverHalt(t *testing.T) {
	f := newIRQMech(t, 1)
	m := f.m
	_, sw := m.SWBreakpoints()
	hlt, after := f.sym("irq_hlt"), f.sym("irq_hlt_after")
	count := func() uint64 { return f.u64(f.sym("irq_count")) }
	f.at(0, "case_irq_hlt")
	f.runUntil("reaching irq_hlt", func() bool { pc := f.pc(0); return pc == hlt || pc == after })
	if pc := f.pc(0); pc != hlt && pc != after {
		t.Fatalf("paused at %#x, want the vCPU waiting in irq_hlt (%#x)", pc, hlt)
	}

	// stepWaits steps and checks the step is still waiting 50 ms later.
	stepWaits := func(what string) {
		t.Helper()
		if err := m.Step(0); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		s, err := m.Wait(ctx)
		cancel()
		if err == nil {
			t.Fatalf("%s: the step ended (%v) with nothing to end the wait", what, s)
		}
	}
	// stepWithIRQ steps, checks the step waits for an interrupt, sends one.
	stepWithIRQ := func(what string) vmm.Stop {
		t.Helper()
		stepWaits(what)
		if err := m.SignalMSI(0, 0x40); err != nil {
			t.Fatal(err)
		}
		return f.wait()
	}
	if !sw {
		// The bare step: woken, the vCPU executes one instruction with
		// the interrupt held; the next continue delivers it.
		if f.pc(0) == hlt {
			if s := f.step(0); s.Reason != vmm.ReasonStep || s.PC != after {
				t.Fatalf("step of the hlt: %v", s)
			}
		}
		if s := stepWithIRQ("halted vCPU"); s.Reason != vmm.ReasonStep || s.PC != hlt || count() != 0 {
			t.Fatalf("bare step of the halted vCPU: %v, irq_count %d; want a step stop at %#x with the interrupt held", s, count(), hlt)
		}
		f.runUntil("delivering the held interrupt", func() bool { return count() != 0 })
		if count() != 1 {
			t.Fatalf("irq_count = %d after continuing, want the held interrupt delivered", count())
		}
		return
	}
	pc := f.pc(0)
	if pc == after {
		// Halted: the step is the rest of the wait.
		if s := stepWithIRQ("halted vCPU"); s.Reason != vmm.ReasonStep || s.PC != after || count() != 1 {
			t.Fatalf("step of the halted vCPU: %v, irq_count %d; want a step stop at %#x after one interrupt", s, count(), after)
		}
		if s := f.step(0); s.Reason != vmm.ReasonStep || s.PC != hlt {
			t.Fatalf("step of the jmp: %v", s)
		}
	}
	n := count()
	if s := stepWithIRQ("hlt"); s.Reason != vmm.ReasonStep || s.PC != after || count() != n+1 {
		t.Fatalf("step of the hlt: %v, irq_count %d; want a step stop at %#x after one more interrupt (%d)", s, count(), after, n+1)
	}

	// A breakpoint in the handler ends the step there.
	if s := f.step(0); s.Reason != vmm.ReasonStep || s.PC != hlt {
		t.Fatalf("step of the jmp: %v", s)
	}
	handler := f.sym("irq_handler")
	if err := m.InsertBreakpoint(handler); err != nil {
		t.Fatal(err)
	}
	if s := stepWithIRQ("hlt with a breakpoint in the handler"); s.Reason != vmm.ReasonBreakpoint || s.PC != handler {
		t.Fatalf("got %v, want the breakpoint at irq_handler %#x", s, handler)
	}

	// A hlt with interrupts off waits for ever; a pause ends the step.
	f.at(0, "ready")
	r, _ := m.Regs(0)
	r.RFLAGS &^= x86.FlagIF
	if err := m.SetRegs(0, r); err != nil {
		t.Fatal(err)
	}
	stepWaits("a step of hlt with interrupts off")
	m.Pause()
	if s := f.wait(); s.Reason != vmm.ReasonPause {
		t.Fatalf("pause during the step: %v", s)
	}
}

// TestIRQChipEveryVCPURuns: with an in-kernel irqchip KVM starts every
// vCPU but the first waiting for INIT/SIPI; the 64-bit direct boot enters
// all of them at once, so vmdap makes them runnable. The watch guest's
// boot processor waits for the second vCPU before it exits.
func TestIRQChipEveryVCPURuns(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "watch")
	m, err := New(Config{Image: g.Data, Memory: 64 << 20, VCPUs: 2, IRQChip: true, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Continue(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := m.Wait(ctx)
	if err != nil {
		m.Pause()
		s, _ = m.Wait(context.Background())
		t.Fatalf("the guest did not finish (%v); stopped at %v", err, s)
	}
	if s.Reason != vmm.ReasonExited || s.ExitCode != 1 {
		t.Fatalf("got %v, want the guest's exit with status 1", s)
	}
}
