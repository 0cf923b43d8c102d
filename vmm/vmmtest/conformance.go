package vmmtest

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"testing"
	"time"

	"vmdap/vmm"
)

// Factory makes a target for the Multiboot guest g, stopped at its entry.
type Factory func(t *testing.T, g *Guest) vmm.Target

// Conformance runs one scenario against a backend, with the same guest
// (testdata/guests/mb, a Multiboot kernel that also boots under QEMU):
// entry state, a hardware (or software) breakpoint, memory that matches
// the image, a step, register writes, a software breakpoint hit and
// resume, a write watchpoint, pause, and the exit status.
func Conformance(t *testing.T, g *Guest, newTarget Factory) {
	t.Helper()
	tg := newTarget(t, g)
	defer tg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wait := func(what string) vmm.Stop {
		t.Helper()
		s, err := tg.Wait(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	run := func(what string) vmm.Stop {
		t.Helper()
		if err := tg.Continue(); err != nil {
			t.Fatalf("%s: continue: %v", what, err)
		}
		return wait(what)
	}
	sym := func(n string) uint64 { return Sym(t, g, n) }

	r, err := tg.Regs(0)
	if err != nil {
		t.Fatal(err)
	}
	if r.RIP != sym("entry32") {
		t.Fatalf("entry: rip %#x, want entry32 %#x", r.RIP, sym("entry32"))
	}

	// A breakpoint on main64: hardware where the backend has it.
	main64 := sym("main64")
	if hw, ok := tg.HWBreakpoints(); ok {
		if err := hw.InsertHWBreakpoint(main64); err != nil {
			t.Fatal(err)
		}
		s := run("hardware breakpoint")
		if s.PC != main64 || (s.Reason != vmm.ReasonHWBreakpoint && s.Reason != vmm.ReasonBreakpoint) {
			t.Fatalf("hardware breakpoint: %v", s)
		}
		hw.RemoveHWBreakpoint(main64)
	} else {
		sw, _ := tg.SWBreakpoints()
		sw.InsertBreakpoint(main64)
		if s := run("software breakpoint"); s.PC != main64 {
			t.Fatalf("software breakpoint: %v", s)
		}
		sw.RemoveBreakpoint(main64)
	}
	// Memory at main64 equals the image's bytes.
	f, err := elf.NewFile(bytes.NewReader(g.Data))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 16)
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && main64 >= p.Vaddr && main64+16 <= p.Vaddr+p.Filesz {
			p.ReadAt(want, int64(main64-p.Vaddr))
		}
	}
	got := make([]byte, 16)
	if n, err := tg.ReadMemory(0, got, main64); err != nil || n != 16 || !bytes.Equal(got, want) {
		t.Fatalf("memory at main64: % x (%v), image has % x", got[:n], err, want)
	}
	// A step moves the PC.
	st, ok := tg.Stepper()
	if !ok {
		t.Fatal("no single-step")
	}
	if err := st.Step(0); err != nil {
		t.Fatal(err)
	}
	if s := wait("step"); s.Reason != vmm.ReasonStep || s.PC == main64 {
		if s.Reason != vmm.ReasonStep || !s.PCUnknown {
			t.Fatalf("step: %v", s)
		}
		// The stop did not carry the pc (a stub's reply without registers).
		if r, err := tg.Regs(0); err != nil || r.RIP == main64 {
			t.Fatalf("step: %v; rip %#x (%v)", s, r.RIP, err)
		}
	}
	// Registers: write and read back where the backend can.
	if w, ok := tg.RegisterWriter(); ok {
		r, _ := tg.Regs(0)
		saved := r.R12
		r.R12 = 0x1234abcd
		if err := w.SetRegs(0, r); err != nil {
			t.Fatal(err)
		}
		if r2, _ := tg.Regs(0); r2.R12 != 0x1234abcd {
			t.Fatalf("r12 = %#x after writing it", r2.R12)
		}
		r.R12 = saved
		w.SetRegs(0, r)
	}
	// Software breakpoint: hit, resume from it, hit again.
	if sw, ok := tg.SWBreakpoints(); ok {
		puts := sym("puts")
		if err := sw.InsertBreakpoint(puts); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if s := run("software breakpoint"); s.Reason != vmm.ReasonBreakpoint || s.PC != puts {
				t.Fatalf("software breakpoint hit %d: %v", i, s)
			}
		}
		// The breakpoint's byte is invisible.
		b := make([]byte, 1)
		tg.ReadMemory(0, b, puts)
		var orig [1]byte
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && puts >= p.Vaddr && puts < p.Vaddr+p.Filesz {
				p.ReadAt(orig[:], int64(puts-p.Vaddr))
			}
		}
		if b[0] != orig[0] {
			t.Fatalf("reading memory shows %#x at a breakpoint, the image has %#x", b[0], orig[0])
		}
		sw.RemoveBreakpoint(puts)
	}
	// A write watchpoint on `hits`, with the first kind that can watch it.
	wp, _ := tg.Watchpoints()
	hits := sym("hits")
	var w vmm.Watch
	for _, k := range wp.WatchKinds() {
		for _, a := range k.Accesses {
			if a == vmm.AccessWrite {
				w = vmm.Watch{Addr: hits, Len: 8, Access: vmm.AccessWrite, Kind: k.Kind}
				if err := wp.InsertWatchpoint(w); err == nil {
					goto placed
				}
			}
		}
	}
	t.Fatal("no watchpoint kind could watch 8 bytes for writes")
placed:
	s := run("watchpoint")
	if s.Reason != vmm.ReasonWatchpoint || s.Watch == nil || s.Watch.Watch.Addr != hits {
		t.Fatalf("watchpoint: %v", s)
	}
	if err := wp.RemoveWatchpoint(w); err != nil {
		t.Fatal(err)
	}
	// Pause a spinning guest.
	if _, err := tg.WriteMemory(0, []byte{1, 0, 0, 0}, sym("spin")); err != nil {
		t.Fatal(err)
	}
	if err := tg.Continue(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let it spin; not synchronisation
	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	if s := wait("pause"); s.Reason != vmm.ReasonPause {
		t.Fatalf("pause: %v", s)
	}
	if _, err := tg.WriteMemory(0, []byte{0, 0, 0, 0}, sym("spin")); err != nil {
		t.Fatal(err)
	}
	// Run to the end: exit status (0x10 << 1) | 1.
	s = run("exit")
	if s.Reason != vmm.ReasonExited || s.ExitCode != 0x21 {
		t.Fatalf("exit: %v", s)
	}
	if err := tg.Continue(); !errors.Is(err, vmm.ErrExited) {
		t.Fatalf("continue after exit: %v", err)
	}
}
