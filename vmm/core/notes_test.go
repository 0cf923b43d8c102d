package core

import (
	"encoding/binary"
	"testing"

	"vmdap/x86"
)

// TestPRStatusI386: an i386 NT_PRSTATUS (a 32-bit kernel's, or QEMU's for
// a CPU not in long mode) reads into the registers it names, in 32-bit
// protected mode; an x86-64 one into long mode.
func TestPRStatusI386(t *testing.T) {
	desc := make([]byte, 144)
	// ebx, ecx, edx, esi, edi, ebp, eax, xds, xes, xfs, xgs, orig_eax,
	// eip, xcs, eflags, esp, xss
	for i, v := range []uint32{0xb, 0xc, 0xd, 0x51, 0xd1, 0xb9, 0xa, 0x7b, 0x7b, 0xd8, 0xe0, 0xffffffff, 0xc1000000, 0x60, 0x246, 0xc1800000, 0x68} {
		binary.LittleEndian.PutUint32(desc[prRegOff32+4*i:], v)
	}
	r, i386, err := prReg(desc)
	if err != nil || !i386 {
		t.Fatalf("prReg: %v %v", i386, err)
	}
	g, s := prstatusRegs(r, i386)
	want := x86.Regs{RAX: 0xa, RBX: 0xb, RCX: 0xc, RDX: 0xd, RSI: 0x51, RDI: 0xd1, RBP: 0xb9, RSP: 0xc1800000, RIP: 0xc1000000, RFLAGS: 0x246}
	if g != want {
		t.Errorf("registers %+v, want %+v", g, want)
	}
	if s.CS.Selector != 0x60 || s.SS.Selector != 0x68 || s.DS.Selector != 0x7b || s.FS.Selector != 0xd8 || s.GS.Selector != 0xe0 {
		t.Errorf("selectors %+v", s)
	}
	if m := x86.DecodeMode(s); m != 32 {
		t.Errorf("mode %d, want 32", m)
	}
	if _, _, err := prReg(desc[:100]); err == nil {
		t.Error("a 100-byte NT_PRSTATUS was read")
	}
	r, i386, err = prReg(make([]byte, 336))
	if err != nil || i386 {
		t.Fatalf("x86-64 prReg: %v %v", i386, err)
	}
	if _, s := prstatusRegs(r, false); x86.DecodeMode(s) != 64 {
		t.Errorf("an x86-64 NT_PRSTATUS decodes to mode %d", x86.DecodeMode(s))
	}
}
