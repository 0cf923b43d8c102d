package session

import (
	"errors"
	"path/filepath"
	"testing"

	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

// TestBitFieldsMatchGDB: the bitfields guest's bit-fields, built by GCC
// and clang with each DWARF version's description of them
// (DW_AT_data_bit_offset, and DWARF 2/3's DW_AT_byte_size and
// big-endian-style DW_AT_bit_offset, whose 0 is a field that ends its
// storage unit), read as gdb prints them from the same ELF file.
func TestBitFieldsMatchGDB(t *testing.T) {
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "guests", "bitfields")
	exprs := []string{"top_bits", "top_bits.lo", "top_bits.neg", "top_bits.wide", "top_bits.tail",
		"full_unit", "full_unit.low", "full_unit.flag", "full_unit.a", "full_unit.b", "full_unit.q"}
	for _, o := range []guests.Options{
		{Tag: "dwarf5", Flags: []string{"-gdwarf-5"}},
		{Tag: "dwarf4", Flags: []string{"-gdwarf-4"}},
		{Tag: "dwarf2", Flags: []string{"-gdwarf-2"}},
		{Tag: "clang", Compiler: "clang"},
		{Tag: "clang-dwarf4", Compiler: "clang", Flags: []string{"-gdwarf-4"}},
	} {
		t.Run(o.Tag, func(t *testing.T) {
			g, err := guests.BuildWith(dir, o)
			if errors.Is(err, guests.ErrNoClang) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			want := vmmtest.GDBPrint(t, g.Path, exprs)
			sc := newImageScope(t, g.Path)
			for _, e := range exprs {
				w := want[e]
				v, err := evalExpr(e, sc)
				if err != nil {
					t.Errorf("%s: %v", e, err)
					continue
				}
				if got := format(v, sc, false); comparable(got, v.typ) != comparable(w.Text, v.typ) {
					t.Errorf("%s = %s, gdb %s", e, got, w.Text)
				}
			}
		})
	}
}
