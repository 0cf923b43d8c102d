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
			if isPadding(n) {
				continue
			}
			all = append(all, prefixName{n, NameFunc})
		}
		for n := range t.globals {
			all = append(all, prefixName{n, NameGlobal})
		}
		for n := range t.enums {
			all = append(all, prefixName{n, NameEnumerator})
		}
		for _, s := range t.syms {
			if isPadding(s.name) {
				continue
			}
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

// isPadding reports whether a (function) symbol names the padding before
// a function, not anything a user types: Linux's __pfx_<fn>
// (CONFIG_CALL_PADDING, one per function: 49,000 of a kernel's 347,000
// names, a seventh of what the completions index sorts) and kCFI's
// __cfi_<fn>.
func isPadding(name string) bool {
	return strings.HasPrefix(name, "__pfx_") || strings.HasPrefix(name, "__cfi_")
}
