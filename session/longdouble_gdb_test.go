package session

import (
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestLongDoubleArithmeticMatchesGDB: expressions on the values guest's
// long doubles compute in x87's 64-bit precision and give a long double,
// as gdb's do (float64 dropped 11 bits: ld_g * 2 was 0.66666666666666663,
// and ld_g > 0.3333333333333333 false), infinities and NaNs included;
// a cast to long double gives one (it gave a double), and to signed
// char a signed char.
func TestLongDoubleArithmeticMatchesGDB(t *testing.T) {
	path := vmmtest.BuildGuest(t, "values").Path
	exprs := []string{"ld_g * 2", "2 * ld_g", "ld_g + ld_g", "ld_g / 3", "1 - ld_g", "-ld_g", "+ld_g",
		"ld_g + 0.1", "ld_g * ld_big", "ld_g > 0.3333333333333333", "ld_g == ld_g", "ld_g < ld_big",
		"ld_nan * 2", "-ld_nan", "ld_ninf + 1", "-ld_ninf", "ld_g / 0", "ld_g - ld_g",
		"(long double)1/3", "(long double)ld_g", "(long double)0.1", "(long double)db_inf", "(double)ld_g",
		"(signed char)200"}
	matchGDB(t, path, exprs, gdbCheck{sameType: sameTypeName, exact: true})
}
