package session

import (
	"bytes"
	"testing"

	"vmdap/session/symbols"
	"vmdap/x86"
)

// TestPiecesNarrowConstant: a composite location whose pieces are
// constants narrower than 8 bytes (GCC at -O2: DW_OP_lit/consts,
// DW_OP_stack_value, DW_OP_piece 4) and a register assembles, where it
// panicked on the first constant piece.
func TestPiecesNarrowConstant(t *testing.T) {
	sc := &frameScope{regs: x86.Regs{RDX: 0x7a}}
	got, out, err := sc.pieces([]symbols.Piece{
		{Place: symbols.Place{IsVal: true, Value: 0xfffffff9}, Bits: 32}, // -7
		{Place: symbols.Place{IsVal: true, Value: 300}, Bits: 16},
		{Place: symbols.Place{InReg: true, Reg: 1}, Bits: 8}, // DWARF register 1: rdx, 'z'
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0xf9, 0xff, 0xff, 0xff, 0x2c, 0x01, 0x7a}; !bytes.Equal(got, want) || out != nil {
		t.Fatalf("% x (optimized out %v), want % x", got, out, want)
	}
}

// TestPiecesPartlyOptimizedOut: a struct whose second member has no
// piece (GCC at -O2, a field it never stores) shows its first member and
// <optimized out> for the other, as gdb does, not all of it optimized out;
// reading the missing member in an expression fails.
func TestPiecesPartlyOptimizedOut(t *testing.T) {
	sc := &frameScope{regs: x86.Regs{RAX: 7}}
	b, out, err := sc.pieces([]symbols.Piece{
		{Place: symbols.Place{InReg: true, Reg: 0}, Bits: 32}, // rax
		{Empty: true, Bits: 32},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := &ctype{kind: tStruct, name: "struct pair", size: 8, fields: []field{{name: "a", typ: typInt}, {name: "b", off: 4, typ: typInt}}}
	v := value{typ: st, raw: b, opt: out}
	if got := format(v, sc, false); got != "{a: 7, b: <optimized out>}" {
		t.Errorf("struct: %q", got)
	}
	if _, err := fieldValue(v, st.fields[1], b).u64(sc); err == nil {
		t.Error("the missing member read as a number")
	}
	if _, _, err := sc.pieces([]symbols.Piece{{Empty: true, Bits: 32}, {Empty: true, Bits: 8}}); err != symbols.ErrOptimizedOut {
		t.Errorf("all pieces empty: %v, want ErrOptimizedOut", err)
	}
}
