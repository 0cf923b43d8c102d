package symbols

import "debug/dwarf"

// Bound is one dimension of an array type, as its DW_TAG_subrange_type
// gives it: a constant, or (a C99 variable-length array's) an expression
// or a variable to evaluate in the frame.
type Bound struct {
	Const   bool
	Count   int64  // the number of elements, when Const (-1: not given)
	Expr    []byte // DW_AT_upper_bound or DW_AT_count as a DWARF expression
	Var     *Var   // ... as a reference to a variable (GCC's artificial one)
	IsCount bool   // Expr or Var gives the count, not the upper bound
	Lower   int64  // DW_AT_lower_bound (C: 0)
}

// ArrayBounds returns the dimensions of v's type, an array, their
// variables' locations the ones at pc. Go's debug/dwarf gives a bound
// that is not a constant as -1 (or 0, for an inner dimension).
func (t *Table) ArrayBounds(v *Var, pc uint64) ([]Bound, bool) {
	ta := v.typeAt
	if ta.d == nil {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	d, u := ta.d, ta.u
	r := d.Reader()
	r.Seek(ta.off)
	e, err := r.Next()
	if err != nil || e == nil || e.Tag != dwarf.TagArrayType || !e.Children {
		return nil, false
	}
	lpc := t.link(pc)
	var out []Bound
	for len(out) < 16 {
		kid, err := r.Next()
		if err != nil || kid == nil || kid.Tag == 0 {
			break
		}
		if kid.Children {
			r.SkipChildren()
		}
		if kid.Tag != dwarf.TagSubrangeType {
			continue
		}
		b := Bound{Const: true, Count: -1}
		b.Lower, _ = kid.Val(dwarf.AttrLowerBound).(int64)
		f := kid.AttrField(dwarf.AttrCount)
		b.IsCount = f != nil
		if f == nil {
			f = kid.AttrField(dwarf.AttrUpperBound)
		}
		switch {
		case f == nil:
		case f.Class == dwarf.ClassConstant:
			v, _ := f.Val.(int64)
			b.Count = v
			if !b.IsCount {
				b.Count = v - b.Lower + 1
			}
		case f.Class == dwarf.ClassExprLoc || f.Class == dwarf.ClassBlock:
			x, _ := f.Val.([]byte)
			b.Const, b.Expr = false, append([]byte(nil), x...)
		case f.Class == dwarf.ClassReference:
			ro, _ := f.Val.(dwarf.Offset)
			vr := d.Reader()
			vr.Seek(ro)
			if ve, err := vr.Next(); err == nil && ve != nil {
				if v := t.anyVarFromEntry(d, ve, u, KindLocal, lpc); v != nil {
					b.Const, b.Var = false, v
				}
			}
		}
		out = append(out, b)
	}
	return out, len(out) > 0
}
