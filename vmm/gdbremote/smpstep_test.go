package gdbremote

import (
	"context"
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
	stepEndsOnlyByPause(t, tg, 1, "a step of the halted vCPU 1")
	apMain := vmmtest.Sym(t, g, "ap_main")
	if err := tg.InsertBreakpoint(apMain); err != nil {
		t.Fatal(err)
	}
	if err := tg.Continue(); err != nil {
		t.Fatal(err)
	}
	if s := waitStop(t, tg, "continue to ap_main", 20*time.Second); s.Reason != vmm.ReasonBreakpoint || s.PC != apMain || s.VCPU != 1 {
		t.Fatalf("continue after the paused step: %v, want vCPU 1's breakpoint at ap_main %#x", s, apMain)
	}
}
