package symbols

import "sort"

// AddrSymbol names the symbol an address value points into (a pointer's,
// a function's), as gdb labels one (build_address_symbolic): Symbol's
// answer, less a symbol of no size outside code (a label in data, as
// an assembly guest's page tables, or a kernel's section bounds),
// which says nothing of what lies at or past it.
func (t *Table) AddrSymbol(addr uint64) (string, uint64, bool) {
	if f := t.FuncAt(addr); f != nil {
		return f.Name, f.Low, true
	}
	i := sort.Search(len(t.syms), func(i int) bool { return t.syms[i].value > addr })
	for j := i - 1; j >= 0 && j >= i-4; j-- {
		s := t.syms[j]
		if addr >= s.value && (addr < s.value+s.size || s.size == 0 && s.code && addr == s.value) {
			return Demangle(s.name), s.value, true
		}
	}
	return "", 0, false
}

// AddrSymbol is Table.AddrSymbol in the image at addr.
func (s *Set) AddrSymbol(addr uint64) (string, uint64, bool) { return s.at(addr).AddrSymbol(addr) }
