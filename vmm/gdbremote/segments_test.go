package gdbremote

import (
	"context"
	"testing"

	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/vmm/vmmtest"
	"vmdap/x86"
)

func TestParseInfoRegisters(t *testing.T) {
	one := `EAX=00000000 EBX=00000000 ECX=00000000 EDX=00060fb1
EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0000 00000000 0000ffff 00009300
CS =f000 ffff0000 0000ffff 00009b00
SS =0000 00000000 0000ffff 00009300
DS =0000 00000000 0000ffff 00009300
FS =0000 00000000 0000ffff 00009300
GS =0000 00000000 0000ffff 00009300
LDT=0000 00000000 0000ffff 00008200
TR =0000 00000000 0000ffff 00008b00
GDT=     00000000 0000ffff
IDT=     00000000 0000ffff
CR0=60000010 CR2=00000000 CR3=00000000 CR4=00000000
`
	var s x86.SRegs
	if err := parseInfoRegisters("CPU#0\n"+one, 0, &s); err != nil {
		t.Fatal(err)
	}
	if s.CS.Base != 0xffff0000 || s.CS.Selector != 0xf000 || s.CS.Limit != 0xffff || s.CS.Type != 11 || !s.CS.Present || !s.CS.S || s.IDT.Limit != 0xffff {
		t.Fatalf("CS %+v IDT %+v", s.CS, s.IDT)
	}
	// -a: every CPU; 64-bit bases.
	two := "CPU#0\n" + one + `CPU#1
CS =0008 0000000000000000 ffffffff 00a09b00
SS =0010 0000000000000000 ffffffff 00c09300
GDT=     0000000000100020 00000017
`
	var s1 x86.SRegs
	if err := parseInfoRegisters(two, 1, &s1); err != nil {
		t.Fatal(err)
	}
	if s1.CS.Selector != 8 || !s1.CS.L || s1.CS.DB || !s1.SS.DB || s1.GDT.Base != 0x100020 || s1.GDT.Limit != 0x17 {
		t.Fatalf("CPU 1: CS %+v SS %+v GDT %+v", s1.CS, s1.SS, s1.GDT)
	}
	if err := parseInfoRegisters("CPU#0\n"+one, 3, &s1); err == nil {
		t.Fatal("no error for a CPU the output lacks")
	}
}

// TestResetVectorSegments (QEMU TCG): a guest stopped at the reset vector
// (-S) reports CS's real cache (base 0xffff0000, from the monitor), so
// the next instruction is at 0xfffffff0: the BIOS's far jump.
func TestResetVectorSegments(t *testing.T) {
	qemu := vmmtest.RequireQEMU(t)
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	l, _ := test.NewNullLogger()
	tg, err := LaunchQEMU(context.Background(), QEMUConfig{Path: qemu, Program: g.Path, MemoryMiB: 16, Log: l})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	r, err := tg.Regs(0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tg.SRegs(0)
	if err != nil {
		t.Fatal(err)
	}
	if r.RIP != 0xfff0 || s.CS.Selector != 0xf000 || s.CS.Base != 0xffff0000 || x86.DecodeMode(s) != 16 {
		t.Fatalf("reset: ip %#x cs %+v (mode %d)", r.RIP, s.CS, x86.DecodeMode(s))
	}
	b := make([]byte, 5)
	if n, err := tg.ReadMemory(0, b, s.CS.Base+r.RIP); err != nil || n != 5 || b[0] != 0xea {
		t.Fatalf("at %#x: % x (%v), want a far jmp (ea …)", s.CS.Base+r.RIP, b[:n], err)
	}
	// Without a monitor (bhyve's dialect), the base is derived from the
	// selector: 0xf0000, where the BIOS is mapped too.
	tg.noMonitor = true
	tg.cache = map[int]*regBlock{}
	if s, _ := tg.SRegs(0); s.CS.Base != 0xf0000 {
		t.Fatalf("derived CS base %#x", s.CS.Base)
	}
}
