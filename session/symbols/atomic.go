package symbols

import "debug/dwarf"

// AtomicTarget returns the type an _Atomic type qualifies. debug/dwarf
// hands DW_TAG_atomic_type over as an UnsupportedType that keeps
// neither the DIE's offset nor its DW_AT_type, so the DIE is found
// again among the decoded units' top-level types (where compilers put
// qualified types) by the identity of the type its offset decodes to.
func (t *Table) AtomicTarget(dt dwarf.Type) (dwarf.Type, bool) {
	ut, ok := dt.(*dwarf.UnsupportedType)
	if !ok || ut.Tag != dwarf.TagAtomicType {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := t.cache.head; s != nil; s = s.next {
		if s.data == nil {
			continue
		}
		// The unit's own DIE, in a view that may hold more than the
		// unit (its type units after it, or all of .debug_info).
		d, r := t.unitReader(s)
		if d == nil {
			continue
		}
		if target, ok := atomicIn(d, r, dt); ok {
			return target, true
		}
	}
	return nil, false
}

// atomicIn looks for dt among the top-level atomic types of one unit, r
// at the unit's DIE.
func atomicIn(d *dwarf.Data, r *dwarf.Reader, dt dwarf.Type) (dwarf.Type, bool) {
	return typeOfTopLevel(d, r, func(e *dwarf.Entry) bool {
		if e.Tag != dwarf.TagAtomicType {
			return false
		}
		typ, err := d.Type(e.Offset)
		return err == nil && typ == dt
	})
}

// typeOfTopLevel returns the type (DW_AT_type) of the first top-level
// entry of a unit that match accepts, r at the unit's DIE.
func typeOfTopLevel(d *dwarf.Data, r *dwarf.Reader, match func(*dwarf.Entry) bool) (dwarf.Type, bool) {
	cu, err := r.Next()
	if err != nil || cu == nil || !cu.Children {
		return nil, false
	}
	for {
		e, err := r.Next()
		if err != nil || e == nil || e.Tag == 0 {
			return nil, false
		}
		if e.Children {
			r.SkipChildren()
		}
		if !match(e) {
			continue
		}
		off, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
		if !ok {
			return nil, false
		}
		typ, err := d.Type(off)
		return typ, err == nil
	}
}

// AtomicTarget is Table.AtomicTarget in whichever image decoded dt.
func (s *Set) AtomicTarget(dt dwarf.Type) (dwarf.Type, bool) {
	var out dwarf.Type
	var ok bool
	s.each(func(t *Table, _ *Module) bool {
		out, ok = t.AtomicTarget(dt)
		return !ok
	})
	return out, ok
}
