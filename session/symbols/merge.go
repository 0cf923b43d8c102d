package symbols

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// mergeIndex joins what the workers found.
func (t *Table) mergeIndex(parts []*indexPart, unitFiles [][]string) {
	// Three independent merges, side by side: the name maps, the files,
	// and the functions (this goroutine).
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		t.mergeNames(parts)
	}()
	go func() {
		defer wg.Done()
		t.mergeFiles(unitFiles)
	}()
	// Each part's functions and ranges sort on their own, side by side,
	// and are merged in address order after (a sort of them all, the
	// workers' runs interleaved, was a serial tail of the open).
	var sorts sync.WaitGroup
	for _, p := range parts {
		sorts.Add(1)
		go func() {
			defer sorts.Done()
			slices.SortFunc(p.funcs, byLow)
			sortRanges(p.ranges)
		}()
	}
	sorts.Wait()
	n := 0
	funcs, ranges := make([][]*Func, len(parts)), make([][]funcRange, len(parts))
	for i, p := range parts {
		n += len(p.inlined)
		if t.crossRefs {
			n += len(p.abstract)
		}
		funcs[i], ranges[i] = p.funcs, p.ranges
	}
	t.funcs = mergeRuns(funcs, byLow)
	t.ranges = mergeRuns(ranges, byRangeLow)
	t.inlineRefs = make([]inlineRef, 0, n)
	for _, p := range parts {
		t.inlineRefs = append(t.inlineRefs, p.inlined...)
		if t.crossRefs {
			// Units that refer into others (GCC's -flto unit) inline
			// functions that the units they refer to describe without
			// DW_AT_inline (early debug information).
			t.inlineRefs = append(t.inlineRefs, p.abstract...)
		}
	}
	wg.Wait()
}

// mergeRuns merges sorted runs two by two (in log₂ of their number of
// rounds, where merging each into the whole would copy the whole once
// per run), earlier runs' elements first among equals.
func mergeRuns[E any](runs [][]E, cmp func(x, y E) int) []E {
	if len(runs) == 0 {
		return nil
	}
	for len(runs) > 1 {
		next := runs[:0:0]
		for i := 0; i+1 < len(runs); i += 2 {
			next = append(next, mergeSorted(runs[i], runs[i+1], cmp))
		}
		if len(runs)%2 == 1 {
			next = append(next, runs[len(runs)-1])
		}
		runs = next
	}
	return runs[0]
}

// mergeNames joins the workers' globals, types and enumerators, the first unit's
// definition of a name winning.
func (t *Table) mergeNames(parts []*indexPart) {
	ng := 0
	for _, p := range parts {
		ng += len(p.globals)
	}
	t.globals = make(map[string]nameRef, ng)
	t.types = map[string]nameRef{}
	t.enums = map[string]nameRef{}
	for _, p := range parts {
		for _, g := range p.globals {
			if old, ok := t.globals[g.name]; !ok || g.ref.cu < old.cu {
				t.globals[g.name] = g.ref
			}
		}
		for k, v := range p.types {
			if old, ok := t.types[k]; !ok || v.cu < old.cu {
				t.types[k] = v
			}
		}
		for _, tr := range p.typeRefs {
			b := cstrAt(t.sec.str, tr.strOff)
			// (a lookup by a converted []byte does not allocate)
			if old, ok := t.types[string(b)]; !ok || tr.ref.cu < old.cu {
				t.types[t.sec.strpString(tr.strOff, len(b))] = tr.ref
			}
		}
		for k, v := range p.enumNames {
			if old, ok := t.enums[k]; !ok || v.cu < old.cu {
				t.enums[k] = v
			}
		}
		for _, er := range p.enumRefs {
			b := cstrAt(t.sec.str, er.strOff)
			if old, ok := t.enums[string(b)]; !ok || er.ref.cu < old.cu {
				t.enums[t.sec.strpString(er.strOff, len(b))] = er.ref
			}
		}
	}
	if !t.crossRefs {
		return
	}
	// Where units refer into others (GCC's -flto unit: its definitions
	// of the globals the optimizer kept refer to the early debug
	// information), a global that no unit places is gdb's: known, typed,
	// optimized out.
	unplaced := map[string]nameRef{}
	for _, p := range parts {
		for _, g := range p.unplaced {
			if _, placed := t.globals[g.name]; placed {
				continue
			}
			if old, ok := unplaced[g.name]; !ok || g.ref.cu < old.cu {
				unplaced[g.name] = g.ref
			}
		}
	}
	for name, ref := range unplaced {
		t.globals[name] = ref
	}
}

// mergeFiles gives each distinct path of the units' line tables one id
// and lists the units naming each.
func (t *Table) mergeFiles(unitFiles [][]string) {
	ids := map[string]int32{}
	t.files = []string{""}
	t.byBase = map[string][]int32{}
	for ui, fs := range unitFiles {
		m := make([]int32, len(fs))
		for i, f := range fs {
			if f == "" {
				continue
			}
			id, ok := ids[f]
			if !ok {
				id = int32(len(t.files))
				ids[f] = id
				t.files = append(t.files, f)
				t.fileUnits = append(t.fileUnits, nil)
				b := f[strings.LastIndexByte(f, '/')+1:]
				t.byBase[b] = append(t.byBase[b], id)
			}
			m[i] = id
			if us := t.fileUnits[id-1]; len(us) == 0 || us[len(us)-1] != int32(ui) {
				t.fileUnits[id-1] = append(us, int32(ui))
			}
		}
		t.units[ui].files = m
	}
	t.fileUnits = append([][]int32{nil}, t.fileUnits...)
}

// buildUnitRanges maps addresses to units: .debug_aranges where present,
// else each unit's own ranges.
func (t *Table) buildUnitRanges() {
	covered := make([]bool, len(t.units))
	r := rd{b: t.sec.aranges}
	for !r.eof() {
		start := r.pos
		n, is64 := r.unitLength()
		end := r.pos + int(n)
		if r.bad || n == 0 || end > len(r.b) || end < r.pos {
			break
		}
		r.u16() // version
		off := r.uN(map64(is64))
		as := int(r.u8())
		r.u8() // segment selector size
		ci := t.unitAt(off)
		if as != 4 && as != 8 || ci < 0 {
			r.pos = end
			continue
		}
		// Tuples are aligned to twice the address size.
		if rem := (r.pos - start) % (2 * as); rem != 0 {
			r.skip(uint64(2*as - rem))
		}
		for r.pos+2*as <= end {
			a, l := r.uN(as), r.uN(as)
			if a == 0 && l == 0 {
				break
			}
			if l > 0 {
				t.cuRanges = append(t.cuRanges, cuRange{a, a + l, int32(ci)})
				covered[ci] = true
			}
		}
		r.pos = end
	}
	for i, u := range t.units {
		if covered[i] {
			continue
		}
		if u.rangesAttr.ok {
			for _, rg := range t.sec.rangesOf(u.rangesAttr, u) {
				t.cuRanges = append(t.cuRanges, cuRange{rg[0], rg[1], int32(i)})
			}
		} else if u.highPC.ok {
			if hi := highPC(u.highPC, u.lowPC); hi > u.lowPC {
				t.cuRanges = append(t.cuRanges, cuRange{u.lowPC, hi, int32(i)})
			}
		}
	}
	slices.SortFunc(t.cuRanges, func(a, b cuRange) int { return cmp.Compare(a.low, b.low) })
}

func map64(is64 bool) int {
	if is64 {
		return 8
	}
	return 4
}

// unitAt returns the index of the unit whose header is at off, or -1.
func (t *Table) unitAt(off uint64) int {
	i := sort.Search(len(t.units), func(i int) bool { return t.units[i].off >= off })
	if i < len(t.units) && t.units[i].off == off {
		return i
	}
	return -1
}

// unitOf returns the index of the unit holding the DIE at off, or -1.
func (t *Table) unitOf(off uint64) int {
	i := sort.Search(len(t.units), func(i int) bool { return t.units[i].end > off })
	if i < len(t.units) && off >= t.units[i].off {
		return i
	}
	return -1
}

// unitForPC returns the unit whose code holds pc, or -1.
func (t *Table) unitForPC(pc uint64) int32 {
	i := sort.Search(len(t.cuRanges), func(i int) bool { return t.cuRanges[i].low > pc })
	// Ranges of different units do not overlap; a few may nest (a unit
	// range around another's), so look back a little.
	for j := i - 1; j >= 0 && j >= i-4; j-- {
		if r := t.cuRanges[j]; pc >= r.low && pc < r.high {
			return r.cu
		}
	}
	return -1
}
