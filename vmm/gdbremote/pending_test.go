package gdbremote

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

// TestZ0BeforeTheGuestMapsIt: QEMU TCG takes Z0 at a virtual address
// nothing maps yet (found out at attach, not assumed). The higher-half
// guest is stopped at its PVH entry with paging off: a breakpoint on its
// start_kernel (linked high) is placed all the same and hit once the guest
// has mapped itself; reads there show the guest's byte (TCG's Z0 is not in
// memory). A stub that cannot take it refuses with a FaultError (the
// session then keeps the breakpoint pending).
func TestZ0BeforeTheGuestMapsIt(t *testing.T) {
	qemu := vmmtest.RequireQEMU(t)
	g := vmmtest.BuildGuest(t, "higher")
	l, _ := test.NewNullLogger()
	tg, err := LaunchQEMU(context.Background(), QEMUConfig{Path: qemu, Program: g.Path, MemoryMiB: 64, Log: l,
		Entry: vmmtest.Sym(t, g, "entry32_phys")})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if !tg.z[0] || !tg.z0Unmapped || tg.z0Patches {
		t.Fatalf("probe: Z0 %v, at unmapped addresses %v, patches memory %v; want QEMU TCG's true, true, false", tg.z[0], tg.z0Unmapped, tg.z0Patches)
	}
	sk := vmmtest.Sym(t, g, "start_kernel")
	var fe *vmm.FaultError
	if _, err := tg.ReadMemory(0, make([]byte, 1), sk); !errors.As(err, &fe) {
		t.Fatalf("reading start_kernel at the entry: %v, want a fault (nothing maps it yet)", err)
	}
	if err := tg.InsertBreakpoint(sk); err != nil {
		t.Fatalf("breakpoint on start_kernel at the entry: %v", err)
	}
	if err := tg.Continue(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := tg.Wait(ctx)
	if err != nil || s.Reason != vmm.ReasonBreakpoint || s.PC != sk {
		t.Fatalf("stop %v %v, want the breakpoint at start_kernel %#x", s, err, sk)
	}
	want := elfBytes(t, g.Path, sk, 4)
	got := make([]byte, 4)
	if _, err := tg.ReadMemory(0, got, sk); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("start_kernel reads %x (%v), want the guest's %x", got, err, want)
	}
	if err := tg.RemoveBreakpoint(sk); err != nil {
		t.Fatal(err)
	}

	// Without the quirk, an unmapped address is a fault, before any packet.
	tg.z0Unmapped = false
	alias := vmmtest.Sym(t, g, "module_init") - 0xffffffff80000000 + 0xfffffe0000000000 // PML4[508]: never mapped
	if err := tg.InsertBreakpoint(alias); !errors.As(err, &fe) {
		t.Fatalf("breakpoint at an unmapped address without Z0 there: %v, want a FaultError", err)
	}
}

// elfBytes reads n bytes of the ELF file at virtual address va.
func elfBytes(t *testing.T, path string, va uint64, n int) []byte {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && va >= p.Vaddr && va+uint64(n) <= p.Vaddr+p.Filesz {
			b := make([]byte, n)
			if _, err := p.ReadAt(b, int64(va-p.Vaddr)); err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("%#x is in no PT_LOAD segment", va)
	return nil
}
