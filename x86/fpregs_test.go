package x86

import (
	"bytes"
	"testing"
)

// FullTag against the tag words FSTENV stores (SDM Vol. 1 §8.1.7): after
// FINIT every register is empty; after fld1 and fldz (TOP 6) st0 is the
// zero in physical register 6 and st1 the one in register 7; a NaN or
// an infinity is special.
func TestFullTag(t *testing.T) {
	one := [10]byte{0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f}
	inf := [10]byte{0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x7f}
	var st [8][10]byte
	if got := FullTag(0, 0, &st); got != 0xffff {
		t.Errorf("empty: %#x", got)
	}
	st[1] = one // st0 = 0 (physical 6), st1 = 1 (physical 7)
	if got := FullTag(0xc0, 6<<11, &st); got != 0x1fff {
		t.Errorf("fld1; fldz: %#x, want 0x1fff", got)
	}
	st[0] = inf // TOP 7: st0 is physical 7
	if got := FullTag(0x80, 7<<11, &st); got != 0xbfff {
		t.Errorf("infinity: %#x, want 0xbfff", got)
	}
}

func TestFPRegsByName(t *testing.T) {
	var f FPRegs
	x := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if !f.Set("xmm15", x) || !f.Set("st7", x[:10]) || !f.Set("mxcsr", []byte{0x80, 0x1f, 0, 0}) || !f.Set("fioff", x[:4]) {
		t.Fatal("Set refused a register gdb names")
	}
	if f.Set("xmm16", x) || f.Set("st8", x) || f.Set("xmm01", x) || f.Set("rax", x) {
		t.Error("Set took a register FPRegs does not hold")
	}
	if b, ok := f.Bytes("xmm15"); !ok || !bytes.Equal(b, x) {
		t.Errorf("xmm15 = % x", b)
	}
	if b, ok := f.Bytes("st7"); !ok || !bytes.Equal(b, x[:10]) {
		t.Errorf("st7 = % x", b)
	}
	if v, ok := f.Get("mxcsr"); !ok || v != 0x1f80 {
		t.Errorf("mxcsr = %#x", v)
	}
	if v, ok := f.Get("fioff"); !ok || v != 0x04030201 {
		t.Errorf("fioff = %#x", v)
	}
	for _, n := range FPRegNames {
		if _, ok := f.Bytes(n); !ok {
			t.Errorf("no bytes for %s", n)
		}
	}
	if Decode(0x1f80, MXCSRBits) != "[ IM DM ZM OM UM PM ]" {
		t.Errorf("mxcsr decodes as %s", Decode(0x1f80, MXCSRBits))
	}
}

// The psABIs' numbers for the vector and x87 registers.
func TestDWARFFPRegisters(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
		i386 bool
	}{{17, "xmm0", false}, {32, "xmm15", false}, {33, "st0", false}, {40, "st7", false}, {64, "mxcsr", false},
		{11, "st0", true}, {18, "st7", true}, {21, "xmm0", true}, {28, "xmm7", true}, {39, "mxcsr", true}} {
		got, _ := DWARFRegName(c.n)
		if c.i386 {
			got, _ = DWARF32RegName(c.n)
		}
		if got != c.want {
			t.Errorf("DWARF register %d (i386 %v) = %q, want %q", c.n, c.i386, got, c.want)
		}
	}
}
