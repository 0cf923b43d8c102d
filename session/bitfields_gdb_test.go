package session

import (
	"testing"

	"vmdap/vmm/vmmtest/guests"
)

// TestBitFieldsMatchGDB: the bitfields guest's bit-fields, built by GCC
// and clang with each DWARF version's description of them
// (DW_AT_data_bit_offset, and DWARF 2/3's DW_AT_byte_size and
// big-endian-style DW_AT_bit_offset, whose 0 is a field that ends its
// storage unit), read as gdb prints them from the same ELF file.
func TestBitFieldsMatchGDB(t *testing.T) {
	exprs := []string{"top_bits", "top_bits.lo", "top_bits.neg", "top_bits.wide", "top_bits.tail",
		"full_unit", "full_unit.low", "full_unit.flag", "full_unit.a", "full_unit.b", "full_unit.q"}
	eachBuild(t, "bitfields", []guests.Options{
		{Tag: "dwarf5", Flags: []string{"-gdwarf-5"}},
		{Tag: "dwarf4", Flags: []string{"-gdwarf-4"}},
		{Tag: "dwarf2", Flags: []string{"-gdwarf-2"}},
		{Tag: "clang", Compiler: "clang"},
		{Tag: "clang-dwarf4", Compiler: "clang", Flags: []string{"-gdwarf-4"}},
	}, func(t *testing.T, _ guests.Options, path string) {
		matchGDB(t, path, exprs, gdbCheck{})
	})
}
