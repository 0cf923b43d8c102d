package session

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"

	"vmdap/session/symbols"
)

// C's floating types as gdb prints them: %g with as many significant
// digits as the format needs to be read back exactly (gdb's
// floatformat_printf_format: ceil(1 + p·log10 2) for p bits of
// precision: 9 for a float, 17 for a double, 21 for x87's extended
// long double, 36 for __float128), inf and -inf, and a NaN with its
// mantissa bits: nan(0x8000000000000), -nan(0x400007).

// floatFormat is how a floating type's bytes hold its value.
type floatFormat uint8

const (
	fmtUnknown floatFormat = iota
	fmtSingle              // IEEE binary32
	fmtDouble              // IEEE binary64
	fmtX87                 // x87 extended: 80 bits, in 10, 12 (i386) or 16 (x86-64) bytes
	fmtQuad                // IEEE binary128: __float128, _Float128
)

func floatFormatOf(t *ctype) floatFormat {
	switch t.size {
	case 4:
		return fmtSingle
	case 8:
		return fmtDouble
	case 10, 12:
		return fmtX87
	case 16:
		if t.quad {
			return fmtQuad
		}
		return fmtX87
	}
	return fmtUnknown
}

// decoded is a floating value: a finite one exactly, or an infinity or
// a NaN (with its mantissa bits, as gdb shows them).
type decoded struct {
	f       *big.Float // finite; nil for inf and NaN
	neg     bool
	nan     bool
	payload *big.Int // a NaN's mantissa bits
	digits  int      // gdb's significant digits for the format
}

func decodeFloat(b []byte, ff floatFormat) (decoded, error) {
	switch {
	case ff == fmtSingle && len(b) >= 4:
		u := binary.LittleEndian.Uint32(b)
		return fromIEEE(new(big.Int).SetUint64(uint64(u)), 32, 8, 9), nil
	case ff == fmtDouble && len(b) >= 8:
		return fromIEEE(new(big.Int).SetUint64(binary.LittleEndian.Uint64(b)), 64, 11, 17), nil
	case ff == fmtX87 && len(b) >= 10:
		return fromX87(binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint16(b[8:])), nil
	case ff == fmtQuad && len(b) >= 16:
		be := make([]byte, 16)
		for i := range 16 {
			be[15-i] = b[i]
		}
		return fromIEEE(new(big.Int).SetBytes(be), 128, 15, 36), nil
	}
	return decoded{}, fmt.Errorf("cannot read a %d-byte float", len(b))
}

// fromIEEE decodes an IEEE 754 binary format of width bits with an
// implicit leading mantissa bit.
func fromIEEE(bits *big.Int, width, expBits uint, digits int) decoded {
	fracBits := width - 1 - expBits
	d := decoded{neg: bits.Bit(int(width-1)) == 1, digits: digits}
	frac := new(big.Int).And(bits, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), fracBits), big.NewInt(1)))
	exp := int(new(big.Int).Rsh(bits, fracBits).Uint64() & (1<<expBits - 1))
	bias := 1<<(expBits-1) - 1
	if exp == 1<<expBits-1 {
		if frac.Sign() != 0 {
			d.nan, d.payload = true, frac
		}
		return d
	}
	e := exp - bias - int(fracBits)
	if exp == 0 {
		e = 1 - bias - int(fracBits) // subnormal: no implicit bit
	} else {
		frac.SetBit(frac, int(fracBits), 1)
	}
	d.f = finite(frac, e, fracBits+1, d.neg)
	return d
}

// fromX87 decodes x87's extended format: sign, 15-bit exponent, and a
// 64-bit mantissa whose integer bit is explicit.
func fromX87(mant uint64, signExp uint16) decoded {
	d := decoded{neg: signExp&0x8000 != 0, digits: 21}
	exp := int(signExp & 0x7fff)
	if exp == 0x7fff {
		if mant<<1 != 0 {
			d.nan, d.payload = true, new(big.Int).SetUint64(mant)
		}
		return d
	}
	e := exp - 16383 - 63
	if exp == 0 {
		e = 1 - 16383 - 63
	}
	d.f = finite(new(big.Int).SetUint64(mant), e, 64, d.neg)
	return d
}

// finite is ±m·2^e, exactly (prec bits hold m).
func finite(m *big.Int, e int, prec uint, neg bool) *big.Float {
	f := new(big.Float).SetPrec(prec).SetInt(m)
	f.SetMantExp(f, e)
	if neg {
		f.Neg(f)
	}
	return f
}

// String is the value as gdb prints it.
func (d decoded) String() string {
	sign := ""
	if d.neg {
		sign = "-"
	}
	switch {
	case d.nan:
		return sign + "nan(0x" + d.payload.Text(16) + ")"
	case d.f == nil:
		return sign + "inf"
	}
	return d.f.Text('g', d.digits)
}

// float64 is the value as a float64 (rounded), for expressions.
func (d decoded) float64() float64 {
	switch {
	case d.nan:
		return math.NaN()
	case d.f == nil && d.neg:
		return math.Inf(-1)
	case d.f == nil:
		return math.Inf(1)
	}
	f, _ := d.f.Float64()
	return f
}

// formatFloat shows a floating value as gdb prints it.
func formatFloat(v value, sc scope) string {
	b, err := v.bytes(sc)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	d, err := decodeFloat(b, floatFormatOf(v.typ))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return d.String()
}

// formatComplex shows a complex value as gdb prints it: its real and
// imaginary parts, 1.5 + -2.25i.
func formatComplex(v value, sc scope) string {
	b, err := v.bytes(sc)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	part := v.typ.el()
	n := int(part.size)
	if n <= 0 || len(b) < 2*n {
		return "<a complex value of " + strconv.Itoa(len(b)) + " bytes>"
	}
	var s [2]string
	for i := range s {
		d, err := decodeFloat(b[i*n:(i+1)*n], floatFormatOf(part))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		s[i] = d.String()
	}
	return s[0] + " + " + s[1] + "i"
}

// floatBytes stores f in a floating type of format ff and size bytes
// (rounded to a float's precision; exact in the wider formats).
func floatBytes(f float64, ff floatFormat, size int64) []byte {
	b := make([]byte, max(size, 16))
	switch ff {
	case fmtSingle:
		binary.LittleEndian.PutUint32(b, math.Float32bits(float32(f)))
	case fmtX87:
		mant, exp := extended(f, 63, 1)
		binary.LittleEndian.PutUint64(b, mant)
		binary.LittleEndian.PutUint16(b[8:], exp|signBit(f))
	case fmtQuad:
		// The 53 bits of f's mantissa, without the implicit one, at the
		// top of the 112-bit fraction.
		mant, exp := extended(f, 52, 0)
		frac := mant & (1<<52 - 1)
		binary.LittleEndian.PutUint64(b, frac<<60)
		binary.LittleEndian.PutUint64(b[8:], frac>>4|uint64(exp|signBit(f))<<48)
	default:
		binary.LittleEndian.PutUint64(b, math.Float64bits(f))
	}
	return b[:size]
}

func signBit(f float64) uint16 {
	if math.Signbit(f) {
		return 0x8000
	}
	return 0
}

// extended is |f| in a format with a 15-bit exponent (bias 16383): its
// mantissa with the leading one at bit top, and its biased exponent
// (the mantissa's top bit set for a NaN, as the x87 keeps it, when
// nanBit is 1).
func extended(f float64, top uint, nanBit uint64) (uint64, uint16) {
	switch {
	case math.IsNaN(f):
		return nanBit<<top | 1<<(top-1), 0x7fff
	case math.IsInf(f, 0):
		return nanBit << top, 0x7fff
	case f == 0:
		return 0, 0
	}
	fr, e := math.Frexp(math.Abs(f)) // |f| = fr·2^e, fr in [0.5, 1): exact in 53 bits
	return uint64(math.Ldexp(fr, int(top)+1)), uint16(e - 1 + 16383)
}

// isX87 reports whether t is x87's extended long double (10, 12 or 16
// bytes; not binary128).
func isX87(t *ctype) bool { return t.kind == tFloat && floatFormatOf(t) == fmtX87 }

// bigOf is a finite floating or integer operand exactly, or false for an
// infinity or a NaN (computed in float64, where they mean the same).
func (v value) bigOf(sc scope) (*big.Float, bool, error) {
	if v.typ.kind != tFloat {
		u, err := v.u64(sc)
		if err != nil {
			return nil, false, err
		}
		if v.typ.signed {
			return new(big.Float).SetPrec(64).SetInt64(int64(u)), true, nil
		}
		return new(big.Float).SetPrec(64).SetUint64(u), true, nil
	}
	if v.gone(0, int64(len(v.opt)), false) {
		return nil, false, symbols.ErrOptimizedOut
	}
	b, err := v.bytes(sc)
	if err != nil {
		return nil, false, err
	}
	d, err := decodeFloat(b, floatFormatOf(v.typ))
	if err != nil || d.nan || d.f == nil {
		return nil, false, err
	}
	return d.f, true, nil
}

// x87Value stores f, rounded to x87's 64-bit mantissa, as a long double
// of type t; false when it is out of the normal range (left to float64).
func x87Value(f *big.Float, t *ctype) (value, bool) {
	r := new(big.Float).SetPrec(64).SetMode(big.ToNearestEven).Set(f)
	b := make([]byte, max(t.size, 10))
	if r.Sign() == 0 {
		if r.Signbit() {
			b[9] = 0x80
		}
		return value{typ: t, raw: b[:t.size]}, true
	}
	m := new(big.Float)
	e := r.MantExp(m) // |m| in [0.5, 1)
	exp := e - 1 + 16383
	if exp <= 0 || exp >= 0x7fff {
		return value{}, false
	}
	mant, _ := m.Abs(m).SetMantExp(m, 64).Uint64()
	binary.LittleEndian.PutUint64(b, mant)
	se := uint16(exp)
	if r.Signbit() {
		se |= 0x8000
	}
	binary.LittleEndian.PutUint16(b[8:], se)
	return value{typ: t, raw: b[:t.size]}, true
}

// x87Op is a binary operation with a long double operand, in x87's
// precision as gdb computes it (float64 would drop 11 of its 64 bits:
// ld_g * 2 of 1/3.0L is 0.666666666666666666685, not
// 0.66666666666666663); false when float64's arithmetic must do
// (infinities, NaNs, a division by zero, the range beyond double's).
func x87Op(op string, a, b value, sc scope) (value, bool, error) {
	t := a.typ
	if !isX87(t) {
		t = b.typ
	}
	x, okx, err := a.bigOf(sc)
	if err != nil || !okx {
		return value{}, false, err
	}
	y, oky, err := b.bigOf(sc)
	if err != nil || !oky {
		return value{}, false, err
	}
	r := new(big.Float).SetPrec(64).SetMode(big.ToNearestEven)
	cmp := func(ok bool) (value, bool, error) { return rvalue(typInt, b2u(ok)), true, nil }
	switch op {
	case "+":
		r.Add(x, y)
	case "-":
		r.Sub(x, y)
	case "*":
		r.Mul(x, y)
	case "/":
		if y.Sign() == 0 {
			return value{}, false, nil
		}
		r.Quo(x, y)
	case "==":
		return cmp(x.Cmp(y) == 0)
	case "!=":
		return cmp(x.Cmp(y) != 0)
	case "<":
		return cmp(x.Cmp(y) < 0)
	case ">":
		return cmp(x.Cmp(y) > 0)
	case "<=":
		return cmp(x.Cmp(y) <= 0)
	case ">=":
		return cmp(x.Cmp(y) >= 0)
	default:
		return value{}, false, nil
	}
	lt := &ctype{kind: tFloat, name: "long double", size: t.size}
	v, ok := x87Value(r, lt)
	return v, ok, nil
}
