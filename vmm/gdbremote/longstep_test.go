package gdbremote

import (
	"context"
	"testing"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

// TestPauseAndCloseDuringEmulatedWatch (QEMU TCG): an emulated write
// watchpoint single-steps the guest; a step of `cli; hlt` never ends under
// the stub (interrupts held off). A pause still stops it, and a close
// during another such step still returns: neither waits behind the step.
func TestPauseAndCloseDuringEmulatedWatch(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	tg := qemuTarget("tcg", false)(t, g).(*Target)
	defer tg.Close()
	sym := func(n string) uint64 { return vmmtest.Sym(t, g, n) }
	wait := func(what string) vmm.Stop {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s, err := tg.Wait(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	if err := tg.InsertBreakpoint(sym("main64")); err != nil {
		t.Fatal(err)
	}
	if err := tg.Continue(); err != nil {
		t.Fatal(err)
	}
	if s := wait("run to main64"); s.PC != sym("main64") {
		t.Fatalf("run to main64: %v", s)
	}
	tg.RemoveBreakpoint(sym("main64"))
	park := func() {
		t.Helper()
		r, err := tg.Regs(0)
		if err != nil {
			t.Fatal(err)
		}
		r.RIP = sym("park") // cli; hlt
		if err := tg.SetRegs(0, r); err != nil {
			t.Fatal(err)
		}
	}
	park()
	w := vmm.Watch{Addr: sym("hits"), Len: 8, Access: vmm.AccessWrite, Kind: vmm.WatchSoftware}
	if err := tg.InsertWatchpoint(w); err != nil {
		t.Fatal(err)
	}
	if err := tg.Continue(); err != nil {
		t.Fatal(err)
	}
	// Let the emulation reach the hlt; a pause at any point must work.
	time.Sleep(100 * time.Millisecond)
	paused := make(chan error, 1)
	go func() { paused <- tg.Pause() }()
	select {
	case err := <-paused:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Pause blocked behind a step that never ends")
	}
	if s := wait("pause"); s.Reason != vmm.ReasonPause || s.PC < sym("park") || s.PC > sym("park")+4 {
		t.Fatalf("pause: %v, want a pause in park (%#x)", s, sym("park"))
	}
	// Again, and close this time.
	park()
	if err := tg.Continue(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- tg.Close() }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close blocked behind a step that never ends")
	}
	if _, err := tg.Wait(context.Background()); err == nil {
		t.Fatal("Wait after Close: no error")
	}
}
