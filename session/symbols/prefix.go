package symbols

import (
	"slices"
	"sort"
	"strings"
)

// NameKind says what a name found by NamesWithPrefix names (a name can be
// several at once: a function and its ELF symbol).
type NameKind uint8

const (
	NameFunc       NameKind = 1 << iota // a function (DWARF or ELF)
	NameGlobal                          // a global variable
	NameSymbol                          // an ELF symbol
	NameEnumerator                      // an enumeration constant
)

type prefixName struct {
	name string
	kind NameKind
}

// NamesWithPrefix calls fn, in name order, once for each function, global
// variable, enumeration constant and ELF symbol name that starts with prefix, with what it
// names, until fn returns false. The names are sorted once, on first use
// (behind a large image's open): a completion in a kernel's 370,000 names
// is then a binary search, not a walk over all of them.
func (t *Table) NamesWithPrefix(prefix string, fn func(name string, kind NameKind) bool) {
	idx := t.prefixNames()
	i := sort.Search(len(idx), func(i int) bool { return idx[i].name >= prefix })
	for ; i < len(idx) && strings.HasPrefix(idx[i].name, prefix); i++ {
		if !fn(idx[i].name, idx[i].kind) {
			return
		}
	}
}

// prefixNames returns every name, sorted, each once with its kinds.
func (t *Table) prefixNames() []prefixName {
	t.prefixOnce.Do(func() {
		byName := t.names()
		all := make([]prefixName, 0, len(byName)+len(t.globals)+len(t.enums)+len(t.syms))
		for n := range byName {
			all = append(all, prefixName{n, NameFunc})
		}
		for n := range t.globals {
			all = append(all, prefixName{n, NameGlobal})
		}
		for n := range t.enums {
			all = append(all, prefixName{n, NameEnumerator})
		}
		for _, s := range t.syms {
			all = append(all, prefixName{s.name, NameSymbol})
		}
		slices.SortFunc(all, func(a, b prefixName) int { return strings.Compare(a.name, b.name) })
		out := all[:0]
		for _, e := range all {
			if n := len(out); n > 0 && out[n-1].name == e.name {
				out[n-1].kind |= e.kind
				continue
			}
			out = append(out, e)
		}
		t.prefixIdx = slices.Clip(out)
	})
	return t.prefixIdx
}
