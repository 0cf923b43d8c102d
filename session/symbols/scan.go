package symbols

// Lookups by name while a large image's name maps are still being built
// behind its open (the first function breakpoint, sent right after the
// attach): a scan of the functions, symbols or inline references answers
// in a millisecond or two where waiting for the maps would take tens.
// Each answers as its map would, in the same order.

// scanFuncs is FuncsByName by a walk over the functions, in address
// order (the order of the map's chain).
func (t *Table) scanFuncs(name string) []*Func {
	var out []*Func
	for _, f := range t.funcs {
		if f.Name == name {
			out = append(out, f)
		}
	}
	return out
}

// scanSymbol is SymbolAddr by a walk over the symbols: the first of the
// name, as symIndex keeps.
func (t *Table) scanSymbol(name string) (uint64, bool) {
	for i := range t.syms {
		if t.syms[i].name == name {
			return t.syms[i].value, true
		}
	}
	return 0, false
}

// inlineRefsNamed is inlinedByName by a walk over the inline references.
func (t *Table) inlineRefsNamed(refs []inlineRef, name string) []nameRef {
	var out []nameRef
	for _, ir := range refs {
		b := ir.name
		if b == nil {
			strs := t.strsOf(ir.form)
			b = strs[min(ir.strOff, uint64(len(strs))):]
		}
		// A prefix match then the terminator: no scan for the NUL of
		// every other name.
		if len(b) >= len(name) && string(b[:len(name)]) == name &&
			(ir.name != nil && len(b) == len(name) || ir.name == nil && len(b) > len(name) && b[len(name)] == 0) {
			out = append(out, ir.ref)
		}
	}
	sortRefs(out)
	return out
}
