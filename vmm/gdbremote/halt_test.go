package gdbremote

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

// TestStepOverHalt (QEMU TCG): QEMU holds interrupts off during a gdb
// single step (sstep NOIRQ|NOTIMER), so a stepped hlt would never wake.
// vmdap steps a hlt by running to the instruction after it: the PIT's
// interrupt wakes it and its handler runs. A hlt with interrupts off
// never ends, and a pause stops it.
func TestStepOverHalt(t *testing.T) {
	t.Run("tcg", func(t *testing.T) { testStepOverHalt(t, "tcg") })
	t.Run("kvm", func(t *testing.T) {
		vmmtest.RequireKVM(t)
		testStepOverHalt(t, "kvm")
	})
}

func testStepOverHalt(t *testing.T, accel string) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	_, pvm := os.Stat("/sys/module/kvm_pvm")
	tg := qemuTarget(accel, accel == "kvm" && pvm == nil)(t, g).(*Target)
	defer tg.Close()
	sym := func(n string) uint64 { return vmmtest.Sym(t, g, n) }
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
	insert, remove, hit := tg.InsertBreakpoint, tg.RemoveBreakpoint, vmm.ReasonBreakpoint
	if _, ok := tg.SWBreakpoints(); !ok {
		insert, remove, hit = tg.InsertHWBreakpoint, tg.RemoveHWBreakpoint, vmm.ReasonHWBreakpoint
	}
	runTo := func(addr uint64) {
		t.Helper()
		if err := insert(addr); err != nil {
			t.Fatal(err)
		}
		if err := tg.Continue(); err != nil {
			t.Fatal(err)
		}
		if s := wait("run", 20*time.Second); s.Reason != hit || s.PC != addr {
			t.Fatalf("run to %#x: %v", addr, s)
		}
		if err := remove(addr); err != nil {
			t.Fatal(err)
		}
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
	ticks := func() uint64 {
		var b [8]byte
		if _, err := tg.ReadMemory(0, b[:], sym("pit_ticks")); err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint64(b[:])
	}
	step := func() error { return tg.Step(0) }

	runTo(sym("main64")) // long mode
	// Wait for ever (QEMU-KVM's PIT catches up on ticks missed while
	// stopped, so a small count would be reached between the steps).
	var goal [8]byte
	binary.LittleEndian.PutUint64(goal[:], 1<<40)
	if _, err := tg.WriteMemory(0, goal[:], sym("pit_goal")); err != nil {
		t.Fatal(err)
	}
	setPC(sym("pit_wait"))
	hlt := sym("pit_hlt")
	runTo(hlt)
	for i := 0; i < 2; i++ {
		n := ticks()
		if err := step(); err != nil {
			t.Fatal(err)
		}
		if s := wait("step of the hlt", 20*time.Second); s.Reason != vmm.ReasonStep || s.PC != hlt+1 || ticks() <= n {
			t.Fatalf("step of the hlt: %v, ticks %d (were %d); want a step stop at %#x after a tick", s, ticks(), n, hlt+1)
		}
		runTo(hlt)
	}

	// cli; hlt: nothing can end the step but a pause.
	park := sym("park")
	setPC(park)
	if err := step(); err != nil {
		t.Fatal(err)
	}
	if s := wait("step of the cli", 20*time.Second); s.Reason != vmm.ReasonStep || s.PC != park+1 {
		t.Fatalf("step of the cli: %v", s)
	}
	if err := step(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	s, err := tg.Wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a step of hlt with interrupts off ended: %v %v", s, err)
	}
	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	if s := wait("pause during the step", 10*time.Second); s.Reason != vmm.ReasonPause {
		t.Fatalf("pause during the step: %v", s)
	}
}
