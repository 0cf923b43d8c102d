package gdbremote

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

// TestStepHaltPause (QEMU TCG): a stub holds interrupts off while it
// steps (QEMU's sstep NOIRQ|NOTIMER), as StepsHalt says; under TCG a
// stepped hlt with interrupts off then waits for ever, and a pause ends
// the step. (QEMU-KVM ends such a step at once, after the hlt. The session
// steps a hlt by running to the next instruction: main's
// TestQEMUStepOverHaltOverDAP.)
func TestStepHaltPause(t *testing.T) { testStepHaltPause(t, "tcg") }

func testStepHaltPause(t *testing.T, accel string) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	_, pvm := os.Stat("/sys/module/kvm_pvm")
	tg := qemuTarget(accel, accel == "kvm" && pvm == nil)(t, g).(*Target)
	defer tg.Close()
	if tg.StepsHalt() {
		t.Fatal("a GDB stub's step holds interrupts off, so a stepped hlt never ends; StepsHalt says otherwise")
	}
	sym := func(n string) uint64 { return vmmtest.Sym(t, g, n) }
	wait := func(what string, d time.Duration) vmm.Stop { t.Helper(); return waitStop(t, tg, what, d) }
	pc := func() uint64 {
		t.Helper()
		r, err := tg.Regs(0)
		if err != nil {
			t.Fatal(err)
		}
		return r.RIP
	}
	setPC := func(pc uint64) {
		t.Helper()
		r, err := tg.Regs(0)
		if err != nil {
			t.Fatal(err)
		}
		r.RIP = pc
		if err := tg.SetRegs(0, r); err != nil {
			t.Fatal(err)
		}
	}

	// cli; hlt: nothing can end the step but a pause.
	park := sym("park")
	setPC(park)
	if err := tg.Step(0); err != nil {
		t.Fatal(err)
	}
	if s := wait("step of the cli", 20*time.Second); s.Reason != vmm.ReasonStep || pc() != park+1 {
		t.Fatalf("step of the cli: %v at %#x", s, pc())
	}
	stepEndsOnlyByPause(t, tg, 0, "a step of hlt with interrupts off")
}

// waitStop waits up to d for the target's next stop.
func waitStop(t *testing.T, tg *Target, what string, d time.Duration) vmm.Stop {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	s, err := tg.Wait(ctx)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return s
}

// stepEndsOnlyByPause steps vCPU v, which cannot get on (a hlt with
// interrupts off, a halted vCPU), and checks that the step waits and a
// pause ends it.
func stepEndsOnlyByPause(t *testing.T, tg *Target, v int, what string) {
	t.Helper()
	if err := tg.Step(v); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	s, err := tg.Wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s ended: %v %v", what, s, err)
	}
	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	if s := waitStop(t, tg, "pause during the step", 10*time.Second); s.Reason != vmm.ReasonPause {
		t.Fatalf("pause during the step: %v", s)
	}
}
