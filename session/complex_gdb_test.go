package session

import (
	"strings"
	"testing"

	"vmdap/vmm/vmmtest/guests"
)

// TestComplexMatchGDB: the complex guest's _Complex float, double and
// long double values, built by GCC and clang, have the types and values
// gdb shows for the same ELF file (1.5 + -2.25i, not the bytes of the
// two parts read as one integer).
func TestComplexMatchGDB(t *testing.T) {
	eachBuild(t, "complex", []guests.Options{{Tag: "gcc"}, {Tag: "clang", Compiler: "clang"}}, func(t *testing.T, o guests.Options, path string) {
		exprs := []string{"c_flt", "c_dbl", "c_arr", "c_arr[1]", "c_wave", "c_wave.z"}
		if o.Compiler != "clang" {
			exprs = append(exprs, "c_ld")
		}
		matchGDB(t, path, exprs, gdbCheck{sameType: func(got, gdb string) bool {
			// (clang names every complex type "complex", which gdb
			// shows; debug/dwarf names them by their size, as GCC
			// does: complex double.)
			return got == gdb || strings.Replace(got, "complex double", "complex", 1) == gdb ||
				strings.Replace(got, "complex float", "complex", 1) == gdb
		}})
	})
}
