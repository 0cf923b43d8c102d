package gdbremote

import (
	"context"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

// TestPaging32QEMU: the 32-bit xv6's entry (CR4.PSE, 4 MiB pages, CR0.PG
// without long mode) runs under QEMU TCG, where vmdap's VMM on an
// emulating host cannot run it (vmm/kvm TestPaging32): a hardware breakpoint in its
// high half is reached with paging on, and it exits with 0x41.
func TestPaging32QEMU(t *testing.T) {
	qemu := vmmtest.RequireQEMU(t)
	g := vmmtest.BuildGuest(t, "paging32", vmmtest.ELF32)
	l, _ := test.NewNullLogger()
	tg, err := LaunchQEMU(context.Background(), QEMUConfig{Path: qemu, Program: g.Path, MemoryMiB: 16, Log: l,
		Entry: vmmtest.Sym(t, g, "_start")})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	high := vmmtest.Sym(t, g, "high")
	if err := tg.InsertHWBreakpoint(high); err != nil {
		t.Fatal(err)
	}
	if err := tg.Continue(); err != nil {
		t.Fatal(err)
	}
	s, err := tg.Wait(ctx)
	if err != nil || s.PC != high {
		t.Fatalf("run to high (%#x): %v %v", high, s, err)
	}
	sr, err := tg.SRegs(0)
	if err != nil {
		t.Fatal(err)
	}
	if sr.CR0&(1<<31) == 0 || sr.CR4&0x10 == 0 || sr.CR4&0x20 != 0 {
		t.Fatalf("cr0 %#x cr4 %#x: want 32-bit paging with PSE", sr.CR0, sr.CR4)
	}
	if err := tg.RemoveHWBreakpoint(high); err != nil {
		t.Fatal(err)
	}
	if err := tg.Continue(); err != nil {
		t.Fatal(err)
	}
	if s, err := tg.Wait(ctx); err != nil || s.Reason != vmm.ReasonExited || s.ExitCode != 0x41 {
		t.Fatalf("run to the end: %v %v", s, err)
	}
}
