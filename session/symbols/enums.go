package symbols

import "debug/dwarf"

// Enumerators and function types, for expressions: a C enumeration
// constant's name stands for its value, typed as its enumeration, as in
// gdb; it is looked for first among the enumerations of the unit a PC is
// in (decoded with the unit, on first use), then among every unit's by
// the index, which records the enumerators of the enumerations directly
// inside a unit (index.go). A function's name stands for the function,
// typed by its DWARF prototype (FuncType).

// Enumerator is an enumeration constant: its value and its enumeration.
type Enumerator struct {
	Type  *dwarf.EnumType
	Value int64
}

// EnumeratorAt finds an enumeration constant visible in the unit whose
// code holds pc.
func (t *Table) EnumeratorAt(pc uint64, name string) (Enumerator, bool) {
	ci := int32(-1)
	if fn := t.FuncAt(pc); fn != nil && fn.cu >= 0 {
		ci = fn.cu
	} else {
		ci = t.unitForPC(pc)
	}
	if ci < 0 {
		return Enumerator{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.enumIn(ci, name)
}

// EnumeratorByName finds an enumeration constant of any unit (the first
// unit's of several).
func (t *Table) EnumeratorByName(name string) (Enumerator, bool) {
	ref, ok := t.enums[name]
	if !ok {
		return Enumerator{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.enumIn(ref.cu, name)
}

// enumIn finds an enumeration constant among unit ci's top-level
// enumerations (or, for a type unit, its enumeration). Caller holds t.mu.
func (t *Table) enumIn(ci int32, name string) (Enumerator, bool) {
	if ci < -1 && tuIndex(ci) < len(t.tunits) {
		typ, err := t.typeAt(nameRef{die: t.tunits[tuIndex(ci)].typeOff, cu: ci})
		et, _ := typ.(*dwarf.EnumType)
		if err != nil || et == nil {
			return Enumerator{}, false
		}
		return enumeratorOf(et, name)
	}
	if ci < 0 || int(ci) >= len(t.units) {
		return Enumerator{}, false
	}
	st := t.cache.get(ci)
	d, r := t.unitReader(st)
	if r == nil {
		return Enumerator{}, false
	}
	if st.enums == nil {
		st.enums = unitEnums(d, r, st.tuTypes)
	}
	off, ok := st.enums[name]
	if !ok {
		return Enumerator{}, false
	}
	typ, err := d.Type(off)
	et, _ := typ.(*dwarf.EnumType)
	if err != nil || et == nil {
		return Enumerator{}, false
	}
	return enumeratorOf(et, name)
}

// enumeratorOf finds an enumeration's constant by name.
func enumeratorOf(et *dwarf.EnumType, name string) (Enumerator, bool) {
	for _, v := range et.Val {
		if v.Name == name {
			return Enumerator{Type: et, Value: v.Val}, true
		}
	}
	return Enumerator{}, false
}

// unitEnums maps the names of the enumerators of a unit's top-level
// enumerations (not C++'s scoped enum class) to their enumeration's
// offset, the first of a name winning; r is at the unit's DIE. The
// enumerations of the type units the unit refers to (tus: their types'
// offsets in its view, typeunits.go) come after its own.
func unitEnums(d *dwarf.Data, r *dwarf.Reader, tus []dwarf.Offset) map[string]dwarf.Offset {
	out := map[string]dwarf.Offset{}
	defer func() {
		for _, off := range tus {
			tr := d.Reader()
			tr.Seek(off)
			if e, err := tr.Next(); err == nil && e != nil && e.Tag == dwarf.TagEnumerationType && e.Children &&
				e.Val(dwarf.AttrEnumClass) != true {
				enumerators(tr, e.Offset, out)
			}
		}
	}()
	cu, err := r.Next()
	if err != nil || cu == nil || !cu.Children {
		return out
	}
	for {
		e, err := r.Next()
		if err != nil || e == nil || e.Tag == 0 {
			return out
		}
		if !e.Children {
			continue
		}
		if e.Tag != dwarf.TagEnumerationType || e.Val(dwarf.AttrEnumClass) == true {
			r.SkipChildren()
			continue
		}
		if !enumerators(r, e.Offset, out) {
			return out
		}
	}
}

// enumerators adds the enumerators r reads, the children of the
// enumeration at off, to out; false when the unit cannot be read on.
func enumerators(r *dwarf.Reader, off dwarf.Offset, out map[string]dwarf.Offset) bool {
	for {
		k, err := r.Next()
		if err != nil || k == nil {
			return false
		}
		if k.Tag == 0 {
			return true
		}
		if name, ok := k.Val(dwarf.AttrName).(string); ok && k.Tag == dwarf.TagEnumerator {
			if _, dup := out[name]; !dup {
				out[name] = off
			}
		}
		if k.Children {
			r.SkipChildren()
		}
	}
}

// FuncType returns a DWARF function's type, from its subprogram's DIE:
// its return type and parameters' types (a final DotDotDotType when it
// takes more). False for an ELF symbol's function (no DWARF).
func (t *Table) FuncType(fn *Func) (*dwarf.FuncType, bool) {
	if fn == nil || fn.cu < 0 {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	d, r, e, _ := t.entryAt(fn.cu, fn.die)
	if e == nil || e.Tag != dwarf.TagSubprogram {
		return nil, false
	}
	ft := &dwarf.FuncType{}
	ft.ByteSize = 1
	// The return type, from the DIE itself or the declaration or
	// abstract instance it completes.
	for cur, hop := e, 0; cur != nil && hop < 4; cur, hop = origin(d, cur), hop+1 {
		if off, ok := cur.Val(dwarf.AttrType).(dwarf.Offset); ok {
			ft.ReturnType, _ = d.Type(off)
			break
		}
	}
	if ft.ReturnType == nil {
		ft.ReturnType = &dwarf.VoidType{}
	}
	// The parameters: this DIE's, or (a concrete instance whose
	// parameters carry no types) its origin's.
	params := func(r *dwarf.Reader) (out []dwarf.Type, ok bool) {
		for {
			k, err := r.Next()
			if err != nil || k == nil || k.Tag == 0 {
				return out, true
			}
			switch k.Tag {
			case dwarf.TagFormalParameter:
				off, has := k.Val(dwarf.AttrType).(dwarf.Offset)
				if !has {
					if o := origin(d, k); o != nil {
						off, has = o.Val(dwarf.AttrType).(dwarf.Offset)
					}
				}
				typ, err := d.Type(off)
				if !has || err != nil {
					return nil, false
				}
				out = append(out, typ)
			case dwarf.TagUnspecifiedParameters:
				out = append(out, &dwarf.DotDotDotType{})
			}
			if k.Children {
				r.SkipChildren()
			}
		}
	}
	if e.Children {
		ps, ok := params(r)
		if !ok {
			return nil, false
		}
		ft.ParamType = ps
	} else if o := origin(d, e); o != nil && o.Children {
		r.Seek(o.Offset)
		r.Next()
		if ps, ok := params(r); ok {
			ft.ParamType = ps
		}
	}
	return ft, true
}
