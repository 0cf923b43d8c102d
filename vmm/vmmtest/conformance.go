package vmmtest

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"testing"
	"time"

	"vmdap/vmm"
	"vmdap/x86/paging"
)

// Factory makes a target for the Multiboot guest g, stopped at its entry.
type Factory func(t *testing.T, g *Guest) vmm.Target

// Conformance runs one scenario against a backend, with the same guest
// (testdata/guests/mb, a Multiboot kernel that also boots under QEMU), as
// steps on one target, each its own subtest (a step that fails ends the
// scenario): entry state, a hardware (or software) breakpoint, memory that
// matches the image, a step, register writes, a software breakpoint hit
// and resume, guest-physical memory (where the backend offers it), a
// write watchpoint, pause, and the exit status.
func Conformance(t *testing.T, g *Guest, newTarget Factory) {
	t.Helper()
	tg := newTarget(t, g)
	defer tg.Close()
	f, err := elf.NewFile(bytes.NewReader(g.Data))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := &conformance{tg: tg, g: g, img: f, ctx: ctx}
	for _, s := range []struct {
		name string
		run  func(c *conformance, t *testing.T)
	}{
		{"entry", (*conformance).entry},
		{"breakpoint", (*conformance).breakpoint},
		{"memory", (*conformance).memory},
		{"step", (*conformance).step},
		{"registers", (*conformance).registers},
		{"software breakpoint", (*conformance).softwareBreakpoint},
		{"physical memory", (*conformance).physicalMemory},
		{"watchpoint", (*conformance).watchpoint},
		{"pause", (*conformance).pause},
		{"exit", (*conformance).exit},
	} {
		if !t.Run(s.name, func(t *testing.T) { s.run(c, t) }) {
			return
		}
	}
}

// conformance is the scenario's state, shared by its steps.
type conformance struct {
	tg  vmm.Target
	g   *Guest
	img *elf.File
	ctx context.Context
}

func (c *conformance) sym(t *testing.T, n string) uint64 { return Sym(t, c.g, n) }

func (c *conformance) wait(t *testing.T, what string) vmm.Stop {
	t.Helper()
	s, err := c.tg.Wait(c.ctx)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return s
}

func (c *conformance) run(t *testing.T, what string) vmm.Stop {
	t.Helper()
	if err := c.tg.Continue(); err != nil {
		t.Fatalf("%s: continue: %v", what, err)
	}
	return c.wait(t, what)
}

// imageBytes reads the image's bytes at a loaded address.
func (c *conformance) imageBytes(p []byte, addr uint64) {
	for _, ph := range c.img.Progs {
		if ph.Type == elf.PT_LOAD && addr >= ph.Vaddr && addr+uint64(len(p)) <= ph.Vaddr+ph.Filesz {
			ph.ReadAt(p, int64(addr-ph.Vaddr))
		}
	}
}

func (c *conformance) entry(t *testing.T) {
	r, err := c.tg.Regs(0)
	if err != nil {
		t.Fatal(err)
	}
	if r.RIP != c.sym(t, "entry32") {
		t.Fatalf("entry: rip %#x, want entry32 %#x", r.RIP, c.sym(t, "entry32"))
	}
}

// breakpoint: on main64, hardware where the backend has it.
func (c *conformance) breakpoint(t *testing.T) {
	main64 := c.sym(t, "main64")
	if hw, ok := c.tg.HWBreakpoints(); ok {
		if err := hw.InsertHWBreakpoint(main64); err != nil {
			t.Fatal(err)
		}
		s := c.run(t, "hardware breakpoint")
		if s.PC != main64 || (s.Reason != vmm.ReasonHWBreakpoint && s.Reason != vmm.ReasonBreakpoint) {
			t.Fatalf("hardware breakpoint: %v", s)
		}
		hw.RemoveHWBreakpoint(main64)
		return
	}
	sw, _ := c.tg.SWBreakpoints()
	sw.InsertBreakpoint(main64)
	if s := c.run(t, "software breakpoint"); s.PC != main64 {
		t.Fatalf("software breakpoint: %v", s)
	}
	sw.RemoveBreakpoint(main64)
}

// memory at main64 equals the image's bytes.
func (c *conformance) memory(t *testing.T) {
	main64 := c.sym(t, "main64")
	want := make([]byte, 16)
	c.imageBytes(want, main64)
	got := make([]byte, 16)
	if n, err := c.tg.ReadMemory(0, got, main64); err != nil || n != 16 || !bytes.Equal(got, want) {
		t.Fatalf("memory at main64: % x (%v), image has % x", got[:n], err, want)
	}
}

// step: a step moves the PC.
func (c *conformance) step(t *testing.T) {
	st, ok := c.tg.Stepper()
	if !ok {
		t.Fatal("no single-step")
	}
	if err := st.Step(0); err != nil {
		t.Fatal(err)
	}
	main64 := c.sym(t, "main64")
	if s := c.wait(t, "step"); s.Reason != vmm.ReasonStep || s.PC == main64 {
		if s.Reason != vmm.ReasonStep || !s.PCUnknown {
			t.Fatalf("step: %v", s)
		}
		// The stop did not carry the pc (a stub's reply without registers).
		if r, err := c.tg.Regs(0); err != nil || r.RIP == main64 {
			t.Fatalf("step: %v; rip %#x (%v)", s, r.RIP, err)
		}
	}
}

// registers: write and read back where the backend can.
func (c *conformance) registers(t *testing.T) {
	w, ok := c.tg.RegisterWriter()
	if !ok {
		t.Skip("this backend cannot write registers")
	}
	r, _ := c.tg.Regs(0)
	saved := r.R12
	r.R12 = 0x1234abcd
	if err := w.SetRegs(0, r); err != nil {
		t.Fatal(err)
	}
	if r2, _ := c.tg.Regs(0); r2.R12 != 0x1234abcd {
		t.Fatalf("r12 = %#x after writing it", r2.R12)
	}
	r.R12 = saved
	w.SetRegs(0, r)
}

// softwareBreakpoint: hit, resume from it, hit again; its byte is
// invisible in memory.
func (c *conformance) softwareBreakpoint(t *testing.T) {
	sw, ok := c.tg.SWBreakpoints()
	if !ok {
		t.Skip("this backend has no software breakpoints")
	}
	puts := c.sym(t, "puts")
	if err := sw.InsertBreakpoint(puts); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if s := c.run(t, "software breakpoint"); s.Reason != vmm.ReasonBreakpoint || s.PC != puts {
			t.Fatalf("software breakpoint hit %d: %v", i, s)
		}
	}
	b := make([]byte, 1)
	c.tg.ReadMemory(0, b, puts)
	var orig [1]byte
	c.imageBytes(orig[:], puts)
	if b[0] != orig[0] {
		t.Fatalf("reading memory shows %#x at a breakpoint, the image has %#x", b[0], orig[0])
	}
	sw.RemoveBreakpoint(puts)
}

// physicalMemory, where the backend reads guest-physical memory: puts's
// bytes are at the address vCPU 0's page tables translate it to (walked
// through physical reads), a software breakpoint there reads as the
// image's byte, as in a virtual read, and a physical write to hits is
// what a virtual read sees.
func (c *conformance) physicalMemory(t *testing.T) {
	pm, ok := c.tg.PhysicalMemory()
	if !ok {
		t.Skip("this backend reads no guest-physical memory")
	}
	sr, err := c.tg.SRegs(0)
	if err != nil {
		t.Fatal(err)
	}
	st := paging.FromSRegs(sr)
	pa := func(va uint64) uint64 {
		t.Helper()
		p, _, err := paging.Translate(physReader{pm}, st, va)
		if err != nil {
			t.Fatalf("translating %#x through the guest's page tables: %v", va, err)
		}
		return p
	}
	puts := c.sym(t, "puts")
	want := make([]byte, 16)
	c.imageBytes(want, puts)
	read := func(what string) {
		t.Helper()
		got := make([]byte, 16)
		if n, err := pm.ReadPhysical(got, pa(puts)); err != nil || n != 16 || !bytes.Equal(got, want) {
			t.Fatalf("puts's bytes at guest-physical %#x%s: % x (%v), the image has % x", pa(puts), what, got[:n], err, want)
		}
	}
	read("")
	if sw, ok := c.tg.SWBreakpoints(); ok {
		if err := sw.InsertBreakpoint(puts); err != nil {
			t.Fatal(err)
		}
		read(", a software breakpoint there")
		if err := sw.RemoveBreakpoint(puts); err != nil {
			t.Fatal(err)
		}
	}
	hits := c.sym(t, "hits")
	var was [8]byte
	if _, err := c.tg.ReadMemory(0, was[:], hits); err != nil {
		t.Fatal(err)
	}
	if n, err := pm.WritePhysical([]byte{0x5a, 0xa5}, pa(hits)); err != nil || n != 2 {
		t.Fatalf("writing hits at guest-physical %#x: %d %v", pa(hits), n, err)
	}
	got := make([]byte, 2)
	if _, err := c.tg.ReadMemory(0, got, hits); err != nil || got[0] != 0x5a || got[1] != 0xa5 {
		t.Fatalf("hits after a physical write reads % x (%v)", got, err)
	}
	if _, err := c.tg.WriteMemory(0, was[:], hits); err != nil {
		t.Fatal(err)
	}
}

// physReader reads guest-physical memory for the page walker.
type physReader struct{ pm vmm.PhysicalMemory }

func (r physReader) ReadAt(p []byte, off int64) (int, error) {
	return r.pm.ReadPhysical(p, uint64(off))
}

// watchpoint: a write watchpoint on `hits`, with the first kind that can
// watch it.
func (c *conformance) watchpoint(t *testing.T) {
	wp, _ := c.tg.Watchpoints()
	hits := c.sym(t, "hits")
	var w vmm.Watch
	placed := false
	for _, k := range wp.WatchKinds() {
		for _, a := range k.Accesses {
			if a == vmm.AccessWrite && !placed {
				w = vmm.Watch{Addr: hits, Len: 8, Access: vmm.AccessWrite, Kind: k.Kind}
				placed = wp.InsertWatchpoint(w) == nil
			}
		}
	}
	if !placed {
		t.Fatal("no watchpoint kind could watch 8 bytes for writes")
	}
	s := c.run(t, "watchpoint")
	if s.Reason != vmm.ReasonWatchpoint || s.Watch == nil || s.Watch.Watch.Addr != hits {
		t.Fatalf("watchpoint: %v", s)
	}
	if err := wp.RemoveWatchpoint(w); err != nil {
		t.Fatal(err)
	}
}

// pause: a spinning guest stops.
func (c *conformance) pause(t *testing.T) {
	spin := c.sym(t, "spin")
	if _, err := c.tg.WriteMemory(0, []byte{1, 0, 0, 0}, spin); err != nil {
		t.Fatal(err)
	}
	if err := c.tg.Continue(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let it spin; not synchronisation
	if err := c.tg.Pause(); err != nil {
		t.Fatal(err)
	}
	if s := c.wait(t, "pause"); s.Reason != vmm.ReasonPause {
		t.Fatalf("pause: %v", s)
	}
	if _, err := c.tg.WriteMemory(0, []byte{0, 0, 0, 0}, spin); err != nil {
		t.Fatal(err)
	}
}

// exit: run to the end: exit status (0x10 << 1) | 1, and nothing after.
func (c *conformance) exit(t *testing.T) {
	s := c.run(t, "exit")
	if s.Reason != vmm.ReasonExited || s.ExitCode != 0x21 {
		t.Fatalf("exit: %v", s)
	}
	if err := c.tg.Continue(); !errors.Is(err, vmm.ErrExited) {
		t.Fatalf("continue after exit: %v", err)
	}
}
