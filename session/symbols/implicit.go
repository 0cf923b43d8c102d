package symbols

import "sort"

// VarOfDIE describes the variable (or parameter) whose DIE is at the
// absolute offset die, its location the one at pc: what a pointer
// DW_OP_implicit_pointer makes up points into.
func (t *Table) VarOfDIE(die, pc uint64) (*Var, bool) {
	ci := sort.Search(len(t.units), func(i int) bool { return t.units[i].end > die })
	if ci >= len(t.units) || die < t.units[ci].off {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	d, _, e, u := t.entryAt(int32(ci), die)
	if e == nil {
		return nil, false
	}
	v := t.varFromEntry(d, e, u, KindLocal, t.link(pc))
	return v, v != nil
}
