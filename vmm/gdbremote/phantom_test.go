package gdbremote

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

// TestPhantomStepOff: QEMU TCG, under load, now and then answers the step
// off a breakpoint at once with nothing executed, and the continue after
// it stops at the same breakpoint with every register as it was: a hit
// that never was (seen in the Linux tests, about one run in ten under a
// loaded host). A proxy in front of a real QEMU answers steps that way on
// demand. A continue from the breakpoint in the guest's spin loop must
// still run the loop once round (its counter goes up by one) before it
// reports the next hit.
func TestPhantomStepOff(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	tg, px := qemuThroughProxy(t, g, vmmtest.NewMappedZ0Proxy)
	defer tg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loop := spinLoop(t, tg, g)
	spins := vmmtest.Sym(t, g, "spins")
	count := func() uint64 {
		t.Helper()
		var b [8]byte
		if _, err := tg.ReadMemory(0, b[:], spins); err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint64(b[:])
	}
	if err := tg.InsertBreakpoint(loop); err != nil {
		t.Fatal(err)
	}
	hit := func(what string) {
		t.Helper()
		if err := tg.Continue(); err != nil {
			t.Fatal(err)
		}
		if s, err := tg.Wait(ctx); err != nil || s.PC != loop || s.Reason != vmm.ReasonBreakpoint {
			t.Fatalf("%s: %+v %v", what, s, err)
		}
	}
	hit("the first hit")
	// A plain continue runs the loop once round.
	c0 := count()
	hit("a plain hit")
	if count() != c0+1 {
		t.Fatalf("a plain continue took spins from %d to %d, want one iteration", c0, count())
	}
	// With the step off answered at once, the pc has not moved: the step
	// is made again, and the loop runs once round too.
	c1 := count()
	px.PhantomSteps(1)
	hit("the hit after a phantom step off")
	if served := px.PhantomSteps(0); served != 1 {
		t.Fatalf("the proxy answered %d steps itself, want 1", served)
	}
	if got := count(); got != c1+1 {
		t.Fatalf("spins went from %d to %d over the continue, want one iteration (%d: the phantom step off was reported as a hit)", c1, got, c1)
	}
	// A step that never gets past (here: every one answered at once) is
	// made again a bounded number of times, then the continue goes on
	// and stops there: the hit is reported, nothing ran.
	c2 := count()
	px.PhantomSteps(maxResteps + 1)
	hit("the hit after steps off that never run")
	if served := px.PhantomSteps(0); served != 1+maxResteps+1 {
		t.Fatalf("the proxy answered %d steps itself, want %d (the first, and each made again)", served, 1+maxResteps+1)
	}
	if got := count(); got != c2 {
		t.Fatalf("spins %d, want %d: nothing ran", got, c2)
	}
}
