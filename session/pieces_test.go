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
	got, err := sc.pieces([]symbols.Piece{
		{Place: symbols.Place{IsVal: true, Value: 0xfffffff9}, Bits: 32}, // -7
		{Place: symbols.Place{IsVal: true, Value: 300}, Bits: 16},
		{Place: symbols.Place{InReg: true, Reg: 1}, Bits: 8}, // DWARF register 1: rdx, 'z'
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0xf9, 0xff, 0xff, 0xff, 0x2c, 0x01, 0x7a}; !bytes.Equal(got, want) {
		t.Fatalf("% x, want % x", got, want)
	}
}
