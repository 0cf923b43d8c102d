package symbols

import (
	"cmp"
	"debug/elf"
	"runtime"
	"slices"
	"sort"
)

func (t *Table) loadELFSymbols(im *image) {
	out := readSymtab(im)
	// By value, then symbol-table order (a stable sort): small keys are
	// sorted, then the symbols placed (a kernel's 180,000 symbols moved
	// about by the sort cost twice as much).
	keys := make([]symKey, len(out))
	for i := range out {
		out[i].idx = int32(i)
		keys[i] = symKey{out[i].value, int32(i)}
	}
	radixSort(keys)
	sorted := make([]elfSym, len(out))
	for i, k := range keys {
		sorted[i] = out[k.idx]
	}
	t.syms = sorted
}

// symKey is a symbol's value and its index in the symbol table.
type symKey struct {
	value uint64
	idx   int32
}

// radixSort sorts keys by value, stably: a least-significant-byte-first
// radix sort that skips the bytes in which all values agree (a kernel's
// upper ones). It is a fifth of a comparison sort's cost on a kernel's
// symbols.
func radixSort(keys []symKey) {
	if len(keys) < 2 {
		return
	}
	var differ uint64
	for _, k := range keys {
		differ |= k.value ^ keys[0].value
	}
	src, dst := keys, make([]symKey, len(keys))
	for shift := 0; shift < 64; shift += 8 {
		if differ>>shift&0xff == 0 {
			continue
		}
		var at [256]int
		for _, k := range src {
			at[k.value>>shift&0xff]++
		}
		sum := 0
		for d, n := range at {
			at[d] = sum
			sum += n
		}
		for _, k := range src {
			d := k.value >> shift & 0xff
			dst[at[d]] = k
			at[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}

// readSymtab returns the functions, objects and untyped symbols of an
// image's .symtab that a section defines, in table order, read where the
// table lies (mapped: no copy of it, and a string only for each symbol
// kept; debug/elf's Symbols builds all of them, names and versions).
func readSymtab(im *image) []elfSym {
	f := im.f
	st := f.Section(".symtab")
	if st == nil || st.Type != elf.SHT_SYMTAB || int(st.Link) >= len(f.Sections) {
		return nil
	}
	tab, _ := im.sectionBytes(st)
	strs, _ := im.sectionBytes(f.Sections[st.Link])
	size := 24
	if f.Class == elf.ELFCLASS32 {
		size = 16
	}
	bo := f.ByteOrder
	// The names are substrings of one copy of the string table, not a
	// string each (a kernel keeps 124,000 symbols).
	strS := string(strs)
	out := make([]elfSym, 0, len(tab)/size)
	for off := size; off+size <= len(tab); off += size { // entry 0 is the null symbol
		e := tab[off : off+size]
		var s elfSym
		var info byte
		var shndx elf.SectionIndex
		if size == 24 {
			info, shndx = e[4], elf.SectionIndex(bo.Uint16(e[6:]))
			s.value, s.size = bo.Uint64(e[8:]), bo.Uint64(e[16:])
		} else {
			info, shndx = e[12], elf.SectionIndex(bo.Uint16(e[14:]))
			s.value, s.size = uint64(bo.Uint32(e[4:])), uint64(bo.Uint32(e[8:]))
		}
		s.typ = elf.ST_TYPE(info)
		s.code = int(shndx) < len(f.Sections) && f.Sections[shndx].Flags&elf.SHF_EXECINSTR != 0
		s.atEnd = s.code && s.size == 0 && s.value == f.Sections[shndx].Addr+f.Sections[shndx].Size
		if shndx == elf.SHN_UNDEF || s.typ != elf.STT_FUNC && s.typ != elf.STT_OBJECT && s.typ != elf.STT_NOTYPE {
			continue
		}
		noff := uint64(bo.Uint32(e[0:]))
		name := cstrAt(strs, noff)
		if len(name) == 0 || s.typ == elf.STT_NOTYPE && (name[0] == '.' || name[0] == '$') {
			continue
		}
		s.name = strS[noff : noff+uint64(len(name))]
		out = append(out, s)
	}
	runtime.KeepAlive(im) // the mapping the bytes are in
	return out
}

// symIndex returns the index of the named ELF symbol (the name map is
// built on first use).
func (t *Table) symIndex(name string) (int32, bool) {
	t.symOnce.Do(func() {
		t.symByName = make(map[string]int32, len(t.syms))
		for i := len(t.syms) - 1; i >= 0; i-- {
			t.symByName[t.syms[i].name] = int32(i)
		}
	})
	i, ok := t.symByName[name]
	return i, ok
}

// codeSections returns what finds the end of the executable section an
// address is in (0: none), in the file the symbols were read from.
func (t *Table) codeSections() func(addr uint64) uint64 {
	im := t.dimg
	if t.symsOfProgram {
		im = t.img
	}
	type span struct{ lo, hi uint64 }
	var code []span
	if im != nil && im.f != nil {
		for _, sec := range im.f.Sections {
			if sec.Flags&elf.SHF_EXECINSTR != 0 && sec.Flags&elf.SHF_ALLOC != 0 && sec.Size > 0 {
				code = append(code, span{sec.Addr, sec.Addr + sec.Size})
			}
		}
	}
	return func(addr uint64) uint64 {
		for _, c := range code { // (a handful of code sections)
			if addr >= c.lo && addr < c.hi {
				return c.hi
			}
		}
		return 0
	}
}

// addELFFuncs adds ELF function symbols that DWARF does not describe
// (assembly routines), merged into the sorted functions and ranges.
func (t *Table) addELFFuncs() {
	// The DWARF functions and ranges are sorted (mergeIndex); the
	// symbols' functions come in address order (t.syms is sorted), found
	// in one walk along the ranges, and are merged in.
	var extra []funcRange
	var slab funcSlab
	// next[i]: the first symbol value above syms[i]'s (0: none), for
	// sizing symbols without a size (thousands share one address in a
	// kernel, so a forward scan from each would be quadratic).
	next := make([]uint64, len(t.syms))
	for i := len(t.syms) - 2; i >= 0; i-- {
		if t.syms[i+1].value > t.syms[i].value {
			next[i] = t.syms[i+1].value
		} else {
			next[i] = next[i+1]
		}
	}
	codeEnd := t.codeSections()
	ri := 0 // the first range above the symbol
	for i, s := range t.syms {
		// Functions, and labels in code: a kernel's untyped symbols are
		// mostly data (__ksymtab_*, __kstrtab_*) or absolute values
		// (__crc_*, checksums), which no PC is in.
		if s.typ != elf.STT_FUNC && !(s.typ == elf.STT_NOTYPE && s.code) {
			continue
		}
		for ri < len(t.ranges) && t.ranges[ri].low <= s.value {
			ri++
		}
		if funcBelow(t.ranges, ri, s.value) != nil {
			continue
		}
		if s.atEnd {
			// The end of its section: sized up to the next symbol it
			// would take in the next section's code (.init.text's
			// _einittext named .altinstr_aux's, where gdb names none).
			continue
		}
		size := s.size
		if size == 0 {
			// Up to the next symbol, within its section: the last label
			// of a section (an assembly _start with no .size) runs to the
			// section's end, as gdb's minimal symbols do.
			end := codeEnd(s.value)
			if next[i] > s.value && (end == 0 || next[i] <= end) {
				size = next[i] - s.value
			} else if end > s.value {
				size = end - s.value
			}
		}
		if size == 0 || s.typ == elf.STT_NOTYPE && size > 1<<16 {
			continue
		}
		fn := slab.next()
		*fn = Func{Name: Demangle(s.name), Low: s.value, High: s.value + size, cu: -1}
		extra = append(extra, funcRange{fn.Low, fn.High, fn})
	}
	if len(extra) == 0 {
		return
	}
	sortRanges(extra) // (in address order already, but cheaply sure)
	t.ranges = mergeSorted(t.ranges, extra, byRangeLow)
	fns := make([]funcRange, len(t.funcs))
	for i, f := range t.funcs {
		fns[i] = funcRange{f.Low, f.High, f}
	}
	merged := mergeSorted(fns, extra, byRangeLow)
	t.funcs = t.funcs[:0]
	for _, r := range merged {
		t.funcs = append(t.funcs, r.fn)
	}
}

// mergeSorted merges two slices sorted by cmp into a new one, a's
// elements first among equals.
func mergeSorted[E any](a, b []E, cmp func(x, y E) int) []E {
	out := make([]E, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if cmp(b[j], a[i]) < 0 {
			out = append(out, b[j])
			j++
		} else {
			out = append(out, a[i])
			i++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// names returns the function-name map, built on first use (a kernel's
// 150,000 names cost a tenth of its load; breakpoints by name and
// completions need them later, if at all).
func (t *Table) names() map[string]*Func {
	t.nameOnce.Do(func() {
		m := make(map[string]*Func, len(t.funcs))
		for i := len(t.funcs) - 1; i >= 0; i-- {
			f := t.funcs[i]
			if f.Name == "" {
				continue
			}
			f.nextSame = m[f.Name]
			m[f.Name] = f
		}
		t.byName = m
		t.funcNamesReady.Store(true)
	})
	return t.byName
}

// byLow and byRangeLow order functions by address, then (for aliases)
// as the debug information does: the same order whichever workers read
// which units.
func byLow(a, b *Func) int {
	if c := cmp.Compare(a.Low, b.Low); c != 0 {
		return c
	}
	return byDIE(a, b)
}

func byRangeLow(a, b funcRange) int {
	if c := cmp.Compare(a.low, b.low); c != 0 {
		return c
	}
	return byDIE(a.fn, b.fn)
}

func byDIE(a, b *Func) int {
	if c := cmp.Compare(a.cu, b.cu); c != 0 {
		return c
	}
	return cmp.Compare(a.die, b.die)
}
func sortRanges(r []funcRange) { slices.SortFunc(r, byRangeLow) }

// dwarfFuncAt is FuncAt before ELF functions are added.
func (t *Table) dwarfFuncAt(pc uint64) *Func {
	i := sort.Search(len(t.ranges), func(i int) bool { return t.ranges[i].low > pc })
	return funcBelow(t.ranges, i, pc)
}

// funcBelow returns the smallest of the ranges just below ranges[i] (the
// first that begins above pc) that contains pc, or nil.
func funcBelow(ranges []funcRange, i int, pc uint64) *Func {
	var best *funcRange
	for j := i - 1; j >= 0 && j >= i-8; j-- {
		r := &ranges[j]
		if pc >= r.low && pc < r.high && (best == nil || r.high-r.low < best.high-best.low) {
			best = r
		}
	}
	if best == nil {
		return nil
	}
	return best.fn
}

// FuncAt returns the function containing pc (the innermost, smallest one).
func (t *Table) FuncAt(pc uint64) *Func { return t.dwarfFuncAt(pc) }

// Funcs returns every function, sorted by Low. The slice is shared: do
// not modify it.
func (t *Table) Funcs() []*Func { return t.funcs }

// FuncByName finds a function by name (the first of several of the same
// name: see FuncsByName).
func (t *Table) FuncByName(name string) *Func {
	if fs := t.FuncsByName(name); len(fs) > 0 {
		return fs[0]
	}
	return nil
}

// FuncsByName returns every function of that name: a static function
// defined in several units has one copy in each.
func (t *Table) FuncsByName(name string) []*Func {
	if !t.funcNamesReady.Load() && !t.namesReady.Load() {
		return t.scanFuncs(name)
	}
	var out []*Func
	for f := t.names()[name]; f != nil; f = f.nextSame {
		out = append(out, f)
	}
	return out
}

// Symbol names the symbol (function or object) containing addr, for
// disassembly labels: name and start.
func (t *Table) Symbol(addr uint64) (string, uint64, bool) {
	if f := t.FuncAt(addr); f != nil {
		return f.Name, f.Low, true
	}
	i := sort.Search(len(t.syms), func(i int) bool { return t.syms[i].value > addr })
	for j := i - 1; j >= 0 && j >= i-4; j-- {
		s := t.syms[j]
		if addr >= s.value && (addr < s.value+s.size || (s.size == 0 && addr == s.value)) {
			return Demangle(s.name), s.value, true
		}
	}
	return "", 0, false
}

// SymbolAddr returns the address of a named ELF symbol.
func (t *Table) SymbolAddr(name string) (uint64, bool) {
	if !t.namesReady.Load() {
		return t.scanSymbol(name)
	}
	if i, ok := t.symIndex(name); ok {
		return t.syms[i].value, true
	}
	return 0, false
}

// Units returns the number of compile units.
func (t *Table) Units() int { return len(t.units) }

// SectionAt names the allocated ELF section that holds addr ("" where
// none does), as gdb's info symbol names it.
func (t *Table) SectionAt(addr uint64) string {
	im := t.dimg
	if t.symsOfProgram || im == nil || im.f == nil {
		im = t.img
	}
	if im == nil || im.f == nil {
		return ""
	}
	a := addr - t.Slide()
	for _, sec := range im.f.Sections {
		if sec.Flags&elf.SHF_ALLOC != 0 && sec.Size > 0 && a >= sec.Addr && a-sec.Addr < sec.Size {
			return sec.Name
		}
	}
	return ""
}
