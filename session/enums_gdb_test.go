package session

import (
	"testing"

	"vmdap/vmm/vmmtest/guests"
)

// TestEnumArithmeticMatchesGDB: an enumeration whose enumerators are all
// non-negative is unsigned in expressions (conversions, comparisons,
// division), one with a negative enumerator signed, as gdb evaluates
// them on the same ELF file, built by GCC and by clang.
func TestEnumArithmeticMatchesGDB(t *testing.T) {
	exprs := []string{"fl_hi", "(long)fl_hi", "fl_hi > 0", "fl_hi < 1", "fl_hi / 2", "fl_hi + 0L", "(long)fl_all",
		"fl_all > 1", "neg_min", "(long)neg_min", "neg_min < 0", "neg_min / 2", "neg_min + 0L"}
	eachBuild(t, "enums", []guests.Options{{Tag: "gcc"}, {Tag: "clang", Compiler: "clang"}}, func(t *testing.T, _ guests.Options, path string) {
		matchGDB(t, path, exprs, gdbCheck{sameType: sameTypeName})
	})
}
