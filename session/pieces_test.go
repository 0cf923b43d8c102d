package session

import (
	"bytes"
	"debug/dwarf"
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

// TestTypedefOfStructInProgress: typedef struct node node_t; struct node
// { int a; node_t *next; int b; }: the typedef met among the struct's
// own fields has all of them once the conversion ends (it kept the one
// converted before it).
func TestTypedefOfStructInProgress(t *testing.T) {
	i32 := &dwarf.IntType{BasicType: dwarf.BasicType{CommonType: dwarf.CommonType{ByteSize: 4, Name: "int"}}}
	st := &dwarf.StructType{CommonType: dwarf.CommonType{ByteSize: 24}, StructName: "node", Kind: "struct"}
	td := &dwarf.TypedefType{CommonType: dwarf.CommonType{ByteSize: 24, Name: "node_t"}, Type: st}
	cq := &dwarf.QualType{CommonType: dwarf.CommonType{ByteSize: 24}, Qual: "const", Type: td}
	st.Field = []*dwarf.StructField{
		{Name: "a", Type: i32, ByteOffset: 0},
		{Name: "next", Type: &dwarf.PtrType{CommonType: dwarf.CommonType{ByteSize: 8}, Type: td}, ByteOffset: 8},
		{Name: "prev", Type: &dwarf.PtrType{CommonType: dwarf.CommonType{ByteSize: 8}, Type: cq}, ByteOffset: 16},
		{Name: "b", Type: i32, ByteOffset: 20},
	}
	c := fromDWARF(st, newTypeCache(nil))
	for _, f := range c.fields[1:3] {
		if n := len(f.typ.el().fields); n != 4 {
			t.Errorf("%s's target %s has %d fields, want 4", f.name, f.typ.el(), n)
		}
	}
	if got := c.fields[2].typ.String(); got != "const node_t *" {
		t.Errorf("prev is %q", got)
	}
}

// TestSyntheticPointer: a pointer DW_OP_implicit_pointer describes
// dereferences to its target, and has no value to compare or index by
// (it read as 0: q == 0 held).
func TestSyntheticPointer(t *testing.T) {
	sc := newMemScope()
	target := rvalue(typInt, 42)
	q := value{typ: ptrTo(typInt), synth: &target}
	if d, err := deref(q, sc); err != nil || format(d, sc, false) != "42" {
		t.Errorf("*q: %v %v", d, err)
	}
	if got := format(q, sc, false); got != "<synthetic pointer>" {
		t.Errorf("q: %q", got)
	}
	if _, err := q.u64(sc); err == nil {
		t.Error("q has a value")
	}
}
