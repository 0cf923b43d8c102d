package gdbremote

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

// TestPausedStepOfAnotherVCPULeavesNoTrap (QEMU TCG, 2 vCPUs): a step of
// vCPU 1 while it is halted (waiting for the BSP's INIT-SIPI, which
// cannot come: vCPU 0 is stopped) waits for ever, and a pause ends it.
// QEMU answers that ^C for its current thread, vCPU 0, and turns off
// single-stepping only for the vCPU a stop names: vCPU 1 stays
// single-stepped, and after the next continue its first instruction
// stopped the guest with a bare SIGTRAP, reported as an exception ("the
// stub reported signal 5 at 0x8000") where nothing happened. The
// continue must run on to the breakpoint.
func TestPausedStepOfAnotherVCPULeavesNoTrap(t *testing.T) {
	qemu := vmmtest.RequireQEMU(t)
	g := vmmtest.BuildGuest(t, "smp", vmmtest.ELF32)
	l, _ := test.NewNullLogger()
	tg, err := LaunchQEMU(context.Background(), QEMUConfig{Path: qemu, Program: g.Path, MemoryMiB: 64, VCPUs: 2,
		Log: l, Entry: vmmtest.Sym(t, g, "entry32")})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	wait := func(what string, d time.Duration) vmm.Stop {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		s, err := tg.Wait(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	if err := tg.Step(1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	s, err := tg.Wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a step of the halted vCPU 1 ended: %v %v", s, err)
	}
	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	if s := wait("pause during the step", 10*time.Second); s.Reason != vmm.ReasonPause {
		t.Fatalf("pause during the step: %v", s)
	}
	apMain := vmmtest.Sym(t, g, "ap_main")
	if err := tg.InsertBreakpoint(apMain); err != nil {
		t.Fatal(err)
	}
	if err := tg.Continue(); err != nil {
		t.Fatal(err)
	}
	if s := wait("continue to ap_main", 20*time.Second); s.Reason != vmm.ReasonBreakpoint || s.PC != apMain || s.VCPU != 1 {
		t.Fatalf("continue after the paused step: %v, want vCPU 1's breakpoint at ap_main %#x", s, apMain)
	}
}
