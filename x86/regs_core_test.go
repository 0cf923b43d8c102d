package x86

import (
	"encoding/binary"
	"testing"
)

// TestPRStatusI386: an i386 NT_PRSTATUS (a 32-bit kernel's, or QEMU's for
// a CPU not in long mode) reads into the registers it names, at the
// offsets of the kernel's struct elf_prstatus, in 32-bit protected mode;
// an x86-64 one into long mode. A note too short for either is an error.
func TestPRStatusI386(t *testing.T) {
	desc := make([]byte, 144)
	// ebx, ecx, edx, esi, edi, ebp, eax, xds, xes, xfs, xgs, orig_eax,
	// eip, xcs, eflags, esp, xss
	for i, v := range []uint32{0xb, 0xc, 0xd, 0x51, 0xd1, 0xb9, 0xa, 0x7b, 0x7b, 0xd8, 0xe0, 0xffffffff, 0xc1000000, 0x60, 0x246, 0xc1800000, 0x68} {
		binary.LittleEndian.PutUint32(desc[72+4*i:], v)
	}
	g, s, i386, err := ParsePRStatus(desc)
	if err != nil || !i386 {
		t.Fatalf("ParsePRStatus: %v %v", i386, err)
	}
	want := Regs{RAX: 0xa, RBX: 0xb, RCX: 0xc, RDX: 0xd, RSI: 0x51, RDI: 0xd1, RBP: 0xb9, RSP: 0xc1800000, RIP: 0xc1000000, RFLAGS: 0x246}
	if g != want {
		t.Errorf("registers %+v, want %+v", g, want)
	}
	if s.CS.Selector != 0x60 || s.SS.Selector != 0x68 || s.DS.Selector != 0x7b || s.FS.Selector != 0xd8 || s.GS.Selector != 0xe0 {
		t.Errorf("selectors %+v", s)
	}
	if m := DecodeMode(s); m != 32 {
		t.Errorf("mode %d, want 32", m)
	}
	if _, _, _, err := ParsePRStatus(desc[:100]); err == nil {
		t.Error("a 100-byte NT_PRSTATUS was read")
	}
	_, s, i386, err = ParsePRStatus(make([]byte, 336))
	if err != nil || i386 {
		t.Fatalf("x86-64 ParsePRStatus: %v %v", i386, err)
	}
	if DecodeMode(s) != 64 {
		t.Errorf("an x86-64 NT_PRSTATUS decodes to mode %d", DecodeMode(s))
	}
}

// coreRegs is a machine state with every register distinct.
func coreRegs() (Regs, SRegs) {
	r := Regs{RAX: 1, RBX: 2, RCX: 3, RDX: 4, RSI: 5, RDI: 6, RSP: 0xffffc90000003f00, RBP: 8,
		R8: 9, R9: 10, R10: 11, R11: 12, R12: 13, R13: 14, R14: 15, R15: 16, RIP: 0xffffffff81000010, RFLAGS: 0x246}
	code := Segment{Selector: 0x10, Present: true, S: true, Type: 0xb, L: true, G: true, Limit: 0xffffffff}
	data := Segment{Selector: 0x18, Present: true, S: true, Type: 3, DB: true, G: true, Limit: 0xffffffff}
	s := SRegs{CS: code, SS: data, DS: data, ES: data, FS: data, GS: data,
		TR:  Segment{Selector: 0x40, Present: true, Type: 0xb, Limit: 0x67, Base: 0xfffffe0000003000},
		LDT: Segment{Unusable: true},
		GDT: Table{Base: 0xfffffe0000001000, Limit: 0x7f}, IDT: Table{Base: 0xfffffe0000000000, Limit: 0xfff},
		CR0: CR0PE | CR0PG, CR2: 0x1234, CR3: 0x2000, CR4: CR4PAE, EFER: EFERLMA | EFERLME, KernelGSBase: 0xffff888000000000}
	s.FS.Base, s.GS.Base = 0x7f0000000000, 0xffff88801f000000
	return r, s
}

// TestCoreNotesRoundTrip: what PRStatus and QEMUCPUState write, the
// parsers read back; QEMU's note keeps every register the debugger uses,
// an NT_PRSTATUS the general ones, the selectors and FS's and GS's bases;
// their sizes and pr_pid are the layouts' (struct elf_prstatus of x86-64
// and i386, QEMUCPUState with kernel_gs_base).
func TestCoreNotesRoundTrip(t *testing.T) {
	r, s := coreRegs()
	q := QEMUCPUState(r, s)
	if len(q) != QEMUCPUStateSize || binary.LittleEndian.Uint32(q) != 1 || binary.LittleEndian.Uint32(q[4:]) != QEMUCPUStateSize {
		t.Fatalf("QEMUCPUState: %d bytes, version %d, size %d", len(q), binary.LittleEndian.Uint32(q), binary.LittleEndian.Uint32(q[4:]))
	}
	gr, gs, err := ParseQEMUCPUState(q, false)
	if err != nil {
		t.Fatal(err)
	}
	if gr != r {
		t.Errorf("QEMU note's general registers %+v, want %+v", gr, r)
	}
	if gs.CS != s.CS || gs.SS != s.SS || gs.TR != s.TR || gs.GDT != s.GDT || gs.IDT != s.IDT || !gs.LDT.Unusable ||
		gs.CR0 != s.CR0 || gs.CR2 != s.CR2 || gs.CR3 != s.CR3 || gs.CR4 != s.CR4 || gs.EFER != s.EFER || gs.KernelGSBase != s.KernelGSBase ||
		gs.FS.Base != s.FS.Base || gs.GS.Base != s.GS.Base {
		t.Errorf("QEMU note's system state\n%+v\nwant\n%+v", gs, s)
	}
	if _, _, err := ParseQEMUCPUState(q[:100], false); err == nil {
		t.Error("a 100-byte QEMU note was read")
	}

	for _, i386 := range []bool{false, true} {
		p := PRStatus(7, r, s, i386)
		size, pidOff := PRStatusSize, 32
		if i386 {
			size, pidOff = PRStatus32Size, 24
		}
		if len(p) != size || binary.LittleEndian.Uint32(p[pidOff:]) != 7 {
			t.Fatalf("PRStatus(i386 %v): %d bytes, pr_pid %d", i386, len(p), binary.LittleEndian.Uint32(p[pidOff:]))
		}
		pr, ps, got386, err := ParsePRStatus(p)
		if err != nil || got386 != i386 {
			t.Fatalf("ParsePRStatus(i386 %v): %v %v", i386, got386, err)
		}
		want := r
		if i386 {
			want = Regs{RAX: r.RAX, RBX: r.RBX, RCX: r.RCX, RDX: r.RDX, RSI: r.RSI, RDI: r.RDI, RBP: r.RBP,
				RSP: r.RSP & 0xffffffff, RIP: r.RIP & 0xffffffff, RFLAGS: r.RFLAGS}
		}
		if pr != want {
			t.Errorf("NT_PRSTATUS (i386 %v) registers %+v, want %+v", i386, pr, want)
		}
		if ps.CS.Selector != s.CS.Selector || ps.SS.Selector != s.SS.Selector || ps.DS.Selector != s.DS.Selector {
			t.Errorf("NT_PRSTATUS (i386 %v) selectors %+v", i386, ps)
		}
		if !i386 && (ps.FS.Base != s.FS.Base || ps.GS.Base != s.GS.Base) {
			t.Errorf("NT_PRSTATUS FS base %#x GS base %#x", ps.FS.Base, ps.GS.Base)
		}
	}
}
