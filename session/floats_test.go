package session

import (
	"encoding/hex"
	"math"
	"testing"
)

// leBytes is a value's bytes from its big-endian hex (as a C program
// prints them, most significant first), little-endian, padded to size.
func leBytes(t *testing.T, h string, size int) []byte {
	t.Helper()
	be, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	for i, c := range be {
		b[len(be)-1-i] = c
	}
	return b
}

var (
	typLDbl64 = &ctype{kind: tFloat, name: "long double", size: 16}
	typLDbl32 = &ctype{kind: tFloat, name: "long double", size: 12}
	typQuad   = &ctype{kind: tFloat, name: "_Float128", size: 16, quad: true}
)

// TestFloatText: floating values as gdb 13 prints the same bytes: a
// float with 9 significant digits (0.100000001: it was shown with a
// double's 17), a double with 17, x87's long double (16 bytes on x86-64,
// 12 on i386: it could not be read) with 21, __float128 with 36;
// infinities and NaNs as gdb spells them.
func TestFloatText(t *testing.T) {
	for _, c := range []struct {
		typ  *ctype
		hex  string
		want string
	}{
		{typFlt, "3dcccccd", "0.100000001"},
		{typFlt, "3fc00000", "1.5"},
		{typFlt, "80000000", "-0"},
		{typFlt, "7f7fc99e", "3.39999995e+38"},
		{typFlt, "4e6e6b28", "1e+09"},
		{typFlt, "00000001", "1.40129846e-45"},
		{typFlt, "ffc00007", "-nan(0x400007)"},
		{typFlt, "ff800000", "-inf"},
		{typDbl, "3fb999999999999a", "0.10000000000000001"},
		{typDbl, "bfe5555555555555", "-0.66666666666666663"},
		{typDbl, "4415af1d78b58c40", "1e+20"},
		{typDbl, "4341c37937e08000", "10000000000000000"},
		{typDbl, "0000000000000001", "4.9406564584124654e-324"},
		{typDbl, "7ff0000000000000", "inf"},
		{typDbl, "7ff8000000000000", "nan(0x8000000000000)"},
		{typDbl, "fff8000000000123", "-nan(0x8000000000123)"},
		{typLDbl64, "3ffdaaaaaaaaaaaaaaab", "0.333333333333333333342"},
		{typLDbl32, "3ffdaaaaaaaaaaaaaaab", "0.333333333333333333342"},
		{typLDbl64, "4062c9f2c9cd04674edf", "1.00000000000000000002e+30"},
		{typLDbl64, "400ff120000000000000", "123456"},
		{typLDbl64, "00000000000000000001", "3.64519953188247460253e-4951"},
		{typLDbl64, "7ffeffffffffffffffff", "1.18973149535723176502e+4932"},
		{typLDbl64, "7fffc000000000000000", "nan(0xc000000000000000)"},
		{typLDbl64, "ffffc000000000000005", "-nan(0xc000000000000005)"},
		{typLDbl64, "ffff8000000000000000", "-inf"},
		{typQuad, "3ffd5555555555555555555555555555", "0.333333333333333333333333333333333317"},
		{typQuad, "c0004000000000000000000000000000", "-2.5"},
		{typQuad, "7fff0000000000000000000000000000", "inf"},
	} {
		v := value{typ: c.typ, raw: leBytes(t, c.hex, int(c.typ.size))}
		if got := format(v, nil, false); got != c.want {
			t.Errorf("%s %s = %s, want %s", c.typ, c.hex, got, c.want)
		}
	}
}

// TestLongDoubleArithmetic: expressions read a long double as the
// nearest double, and store one back in x87's format (or binary128).
func TestLongDoubleArithmetic(t *testing.T) {
	third := value{typ: typLDbl64, raw: leBytes(t, "3ffdaaaaaaaaaaaaaaab", 16)}
	if f, err := third.f64(nil); err != nil || f != 1.0/3 {
		t.Errorf("1.0L/3 as a double: %v %v", f, err)
	}
	for _, typ := range []*ctype{typLDbl64, typLDbl32, typQuad, typDbl, typFlt} {
		for _, f := range []float64{0.75, -1e300, 5e-324, math.Inf(-1), 0} {
			sc := &memBytes{base: 0x1000, mem: make([]byte, 16)}
			dst := value{typ: typ, inMem: true, addr: 0x1000}
			if err := assign(dst, sc, rvalue(typDbl, math.Float64bits(f))); err != nil {
				t.Fatal(err)
			}
			got, err := dst.f64(sc)
			if typ == typFlt {
				f = float64(float32(f))
			}
			if err != nil || got != f {
				t.Errorf("%s = %g reads back %g (%v)", typ, f, got, err)
			}
		}
	}
	// A long double stored from a long double keeps its 64-bit mantissa
	// (and from an expression computed in it), as gdb's set var does.
	for _, typ := range []*ctype{typLDbl64, typLDbl32} {
		sc := &memBytes{base: 0x1000, mem: make([]byte, 16)}
		dst := value{typ: typ, inMem: true, addr: 0x1000}
		if err := assign(dst, sc, third); err != nil {
			t.Fatal(err)
		}
		if got := formatFloat(dst, sc); got != "0.333333333333333333342" {
			t.Errorf("%s = 1.0L/3 reads back %s", typ, got)
		}
		sum, err := binop("+", third, third, sc)
		if err != nil {
			t.Fatal(err)
		}
		if err := assign(dst, sc, sum); err != nil {
			t.Fatal(err)
		}
		if got := formatFloat(dst, sc); got != "0.666666666666666666685" {
			t.Errorf("%s = 1.0L/3 + 1.0L/3 reads back %s", typ, got)
		}
	}
}
