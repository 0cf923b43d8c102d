package session

import "vmdap/session/symbols"

// Variable-length arrays (C99's int a[n]): the bounds of a local's array
// type are expressions, or GCC's artificial variables, evaluated in the
// frame, where debug/dwarf gives -1 (or 0 for an inner dimension).

// maxVLACount bounds a run-time bound read from a frame.
const maxVLACount = 1 << 24

// hasRuntimeDim reports whether an array type (or an inner dimension of
// it) has no constant length.
func hasRuntimeDim(t *ctype) bool {
	for d := 0; t != nil && t.kind == tArray && d < 16; d++ {
		if t.count <= 0 {
			return true
		}
		t = t.el()
	}
	return false
}

// vlaType is t (the conversion of v's type) with the bounds its dimensions have
// in this frame, or t when they cannot be read.
func (sc *frameScope) vlaType(v *symbols.Var, t *ctype) *ctype {
	if sc.s.sym == nil || sc.f == nil {
		return t
	}
	bounds, ok := sc.s.sym.ArrayBounds(v, sc.f.look())
	if !ok {
		return t
	}
	base := t
	for range bounds {
		if base == nil || base.kind != tArray {
			return t
		}
		base = base.el()
	}
	if base == nil || base.size <= 0 {
		return t
	}
	cur := base
	for i := len(bounds) - 1; i >= 0; i-- {
		n, ok := sc.boundCount(bounds[i])
		if !ok || n < 0 || n > maxVLACount || n*cur.size > 1<<30 {
			return t
		}
		cur = &ctype{kind: tArray, elem: cur, count: n, size: n * cur.size, rustLang: t.rustLang}
	}
	return cur
}

// boundCount is a dimension's number of elements in this frame.
func (sc *frameScope) boundCount(b symbols.Bound) (int64, bool) {
	var v uint64
	switch {
	case b.Const:
		return b.Count, b.Count >= 0
	case b.Var != nil:
		val, err := sc.varValue(b.Var)
		if err != nil {
			return 0, false
		}
		if v, err = val.u64(sc); err != nil {
			return 0, false
		}
	default:
		var fb []byte
		as := 8
		if sc.sc != nil {
			fb, as = sc.sc.FrameBase, sc.sc.AddrSize
		}
		pl, err := symbols.Evaluate(b.Expr, fb, as, sc)
		if err != nil {
			return 0, false
		}
		switch {
		case pl.IsVal:
			v = pl.Value
		case pl.InReg:
			name, ok := sc.regName(pl.Reg)
			if !ok {
				return 0, false
			}
			if v, ok = sc.regGet(name); !ok {
				return 0, false
			}
		default:
			v = pl.Addr // an expression's result is the bound itself
		}
	}
	n := int64(v)
	if !b.IsCount {
		n = n - b.Lower + 1
	}
	return n, true
}
