package symbols

import (
	"cmp"
	"debug/dwarf"
	"runtime"
	"slices"
	"sort"
	"sync"
)

// Inlined copies of functions: where a function that was inlined begins
// in each of its callers (for function breakpoints on it), found by
// scanning the units that hold its abstract instance.

// inlinedByName returns the abstract instances of inline functions of
// that name (the map is built on first use).
func (t *Table) inlinedByName(name string) []nameRef {
	t.inlineOnce.Do(func() {
		// Grouped by the name's string offset first (the same inline
		// function repeats in thousands of a kernel's units: an integer
		// key is cheaper than hashing its name each time), then named.
		type strKey struct {
			form uint32
			off  uint64
		}
		byOff := map[strKey][]nameRef{}
		m := map[string][]nameRef{}
		for _, ir := range t.inlineRefs {
			if ir.name != nil {
				m[string(ir.name)] = append(m[string(ir.name)], ir.ref)
				continue
			}
			k := strKey{ir.form, ir.strOff}
			byOff[k] = append(byOff[k], ir.ref)
		}
		for k, refs := range byOff {
			if b := cstrAt(t.strsOf(k.form), k.off); len(b) > 0 {
				var name string
				if k.form == formStrp {
					name = t.sec.strpString(k.off, len(b)) // a substring: no copy
				} else {
					name = string(b)
				}
				m[name] = append(m[name], refs...)
			}
		}
		for _, refs := range m {
			sortRefs(refs)
		}
		t.inlined = m
		t.inlineRefs = nil
	})
	return t.inlined[name]
}

// sortRefs puts references in the order of the debug information (the
// workers that found them took the units in no fixed order).
func sortRefs(refs []nameRef) {
	slices.SortFunc(refs, func(a, b nameRef) int {
		if c := cmp.Compare(a.cu, b.cu); c != 0 {
			return c
		}
		return cmp.Compare(a.die, b.die)
	})
}

// maxInlineSites bounds the sites one breakpoint binds.
const maxInlineSites = 4096

// InlinedSites returns the addresses where inlined copies of the named
// function begin, sorted.
func (t *Table) InlinedSites(name string) []uint64 {
	var refs []nameRef
	if scan := t.inlineScan.Load(); scan != nil {
		refs = t.inlineRefsNamed(*scan, name)
	} else {
		refs = t.inlinedByName(name)
	}
	if len(refs) == 0 {
		return nil
	}
	// The units that hold the abstract instances, and those that can
	// refer to them from another unit (GCC's -flto unit inlines what the
	// early debug information describes).
	origins := make(map[uint64]bool, len(refs))
	scan := map[int32]bool{}
	for _, r := range refs {
		origins[r.die] = true
		scan[r.cu] = true
	}
	if t.crossRefs {
		for ci, u := range t.units {
			if u.refs&refsAddr != 0 {
				scan[int32(ci)] = true
			}
		}
	}
	cus := make([]int32, 0, len(scan))
	for ci := range scan {
		cus = append(cus, ci)
	}
	var (
		mu   sync.Mutex // guards out and next, shared by the workers
		out  []uint64
		next int
		wg   sync.WaitGroup
	)
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(cus)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var at *abbrevTable
			for {
				mu.Lock()
				if next >= len(cus) || len(out) >= maxInlineSites {
					mu.Unlock()
					return
				}
				ci := cus[next]
				next++
				mu.Unlock()
				sites := t.scanInlined(ci, origins, &at)
				mu.Lock()
				out = append(out, sites...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slide := t.Slide()
	for i := range out {
		out[i] += slide
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	if len(out) > maxInlineSites {
		out = out[:maxInlineSites]
	}
	return out
}

// scanInlined walks every DIE of unit ci for inlined subroutines whose
// abstract origin is in origins, and returns their entry addresses.
func (t *Table) scanInlined(ci int32, origins map[uint64]bool, at **abbrevTable) []uint64 {
	u := t.units[ci]
	tab, err := t.abbrevs(*at, u)
	if err != nil {
		return nil
	}
	*at = tab
	defer func() {
		if t.sec.infoOff >= 0 {
			release(t.dimg.m, t.sec.infoOff+int(u.off), int(u.end-u.off))
		}
	}()
	var out []uint64
	r := rd{b: t.sec.info[:u.end], pos: int(u.dieOff)}
	for !r.eof() {
		code := r.uleb()
		if code == 0 {
			continue
		}
		a := tab.get(code)
		if a == nil {
			break
		}
		if a.tag != tagInlinedSub {
			for i := range a.attrs {
				sp := &a.attrs[i]
				if sp.fixed >= 0 {
					r.skip(uint64(sp.fixed))
				} else if !r.skipForm(sp.form, u.format) {
					return out
				}
			}
			continue
		}
		var orig, low, entry, ranges attrVal
		for i := range a.attrs {
			sp := &a.attrs[i]
			switch sp.at {
			case atAbstractOrigin:
				orig = t.sec.readAttr(&r, *sp, u)
			case atLowpc:
				low = t.sec.readAttr(&r, *sp, u)
			case atEntryPC:
				entry = t.sec.readAttr(&r, *sp, u)
			case atRanges:
				ranges = t.sec.readAttr(&r, *sp, u)
			default:
				if !r.skipForm(sp.form, u.format) {
					return out
				}
			}
		}
		if !orig.ok || !origins[orig.u] {
			continue
		}
		// Where gdb stops: the start of the copy's first range (its
		// DW_AT_entry_pc may lie after code hoisted above it).
		switch {
		case low.ok:
			out = append(out, low.u)
		case ranges.ok:
			if rs := t.sec.rangesOf(ranges.c(), u); len(rs) > 0 {
				out = append(out, rs[0][0])
			}
		case entry.ok && isAddrForm(entry.form):
			out = append(out, entry.u)
		}
	}
	return out
}

func isAddrForm(form uint32) bool { return form == formAddr || isAddrx(form) }

// InlinedCall is one inlined call that is executing at a PC: the inlined
// function, and where in its caller the call is.
type InlinedCall struct {
	Name     string
	CallFile string
	CallLine int
	// End is where the inlined code that holds the PC ends.
	End uint64
	// Ranges are all the inlined call's code (a step out of the call
	// runs until the PC leaves them).
	Ranges []Range
	// Entry is where the inlined code begins to run (DW_AT_entry_pc, else
	// its lowest address): a stop there is at the call, in the caller.
	Entry uint64
	cu    int32
	die   uint64 // the DW_TAG_inlined_subroutine, absolute
}

// InlinedAt returns the inlined calls executing at pc, outermost first:
// the stack of frames that pc is in within its function, as gdb shows
// them.
func (t *Table) InlinedAt(pc uint64) []InlinedCall {
	fn := t.FuncAt(pc)
	if fn == nil || fn.cu < 0 || fn.die == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	d, r, e, u := t.entryAt(fn.cu, fn.die)
	if e == nil || !e.Children {
		return nil
	}
	var out []InlinedCall
	t.inlineWalk(d, r, u, fn.cu, t.link(pc), &out, 0)
	for i := range out {
		out[i].End += t.slide
		out[i].Entry += t.slide
		for j := range out[i].Ranges {
			out[i].Ranges[j].Low += t.slide
			out[i].Ranges[j].High += t.slide
		}
	}
	return out
}

// inlineWalk descends the children at r toward pc: into the one inlined
// subroutine or lexical block that contains pc, recording inlined calls.
func (t *Table) inlineWalk(d *dwarf.Data, r *dwarf.Reader, u *unit, ci int32, pc uint64, out *[]InlinedCall, depth int) {
	if depth > 64 {
		return
	}
	for {
		c, err := r.Next()
		if err != nil || c == nil || c.Tag == 0 {
			return
		}
		if c.Tag != dwarf.TagInlinedSubroutine && c.Tag != dwarf.TagLexDwarfBlock {
			if c.Children {
				r.SkipChildren()
			}
			continue
		}
		if rs, end, ok := rangeEnd(d, c, pc); ok {
			if c.Tag == dwarf.TagInlinedSubroutine {
				ic := InlinedCall{cu: ci, die: t.absOff(ci, c.Offset), End: end}
				for _, rg := range rs {
					ic.Ranges = append(ic.Ranges, Range{rg[0], rg[1]})
				}
				ic.Entry = entryPC(c, rs)
				if o := origin(d, c); o != nil {
					ic.Name, _ = o.Val(dwarf.AttrName).(string)
				}
				if l, ok := c.Val(dwarf.AttrCallLine).(int64); ok {
					ic.CallLine = int(l)
				}
				if fi, ok := c.Val(dwarf.AttrCallFile).(int64); ok && fi >= 0 && int(fi) < len(u.files) {
					ic.CallFile = t.fileName(u.files[fi])
				}
				*out = append(*out, ic)
			}
			if c.Children {
				t.inlineWalk(d, r, u, ci, pc, out, depth+1)
			}
			return
		}
		if c.Children {
			r.SkipChildren()
		}
	}
}

// BeginsAt says whether a step that reaches pc has just come to the
// inlined call: pc is its entry, or the start of one of its ranges that
// the code before pc is not in (GCC schedules some of an inlined call's
// code before its entry: gdb's block_starting_point_at).
func (c InlinedCall) BeginsAt(pc uint64) bool {
	if c.Entry == pc {
		return true
	}
	starts, before := false, false
	for _, r := range c.Ranges {
		starts = starts || r.Low == pc
		before = before || pc > r.Low && pc-1 < r.High
	}
	return starts && !before
}

// callLineAt is the line of the call, in the caller, of the outermost of
// the inlined calls that begin at pc (false: none does). gdb reports a
// breakpoint there at that line.
func (t *Table) callLineAt(pc uint64) (InlinedCall, bool) {
	calls := t.InlinedAt(pc)
	var out InlinedCall
	ok := false
	for i := len(calls) - 1; i >= 0 && calls[i].BeginsAt(pc); i-- {
		out, ok = calls[i], true
	}
	return out, ok
}

// entryPC is where an inlined call's code begins to run: DW_AT_entry_pc
// (an address, or in DWARF 5 an offset from the lowest address), else its
// lowest address.
func entryPC(e *dwarf.Entry, rs [][2]uint64) uint64 {
	low := rs[0][0]
	for _, r := range rs {
		low = min(low, r[0])
	}
	switch v := e.Val(dwarf.AttrEntrypc).(type) {
	case uint64:
		return v
	case int64:
		return low + uint64(v)
	}
	return low
}

// rangeEnd returns the entry's address ranges and the end of the one that
// holds pc (an entry without ranges holds nothing).
func rangeEnd(d *dwarf.Data, e *dwarf.Entry, pc uint64) ([][2]uint64, uint64, bool) {
	rs, err := d.Ranges(e)
	if err != nil {
		return nil, 0, false
	}
	for _, rg := range rs {
		if pc >= rg[0] && pc < rg[1] {
			return rs, rg[1], true
		}
	}
	return nil, 0, false
}

// ScopeOfInlined returns what is visible at pc in an inlined call: the
// inlined function's parameters and locals. The frame base is the
// containing function's.
func (t *Table) ScopeOfInlined(pc uint64, call InlinedCall) (*Scope, bool) {
	fn := t.FuncAt(pc)
	if fn == nil || fn.cu != call.cu {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _, fe, u := t.entryAt(fn.cu, fn.die)
	d, r, e, _ := t.entryAt(call.cu, call.die)
	if e == nil || fe == nil {
		return nil, false
	}
	pc = t.link(pc)
	s := &Scope{Func: fn, AddrSize: u.format.addrSize, Inlined: call.Name}
	s.FrameBase = t.locAt(fe, dwarf.AttrFrameBase, u, pc)
	var concrete map[dwarf.Offset]bool
	if e.Children {
		concrete = t.collect(d, r, u, pc, s, 0)
	}
	// clang writes an inlined call whose parameters have no location
	// without children: they are still there, optimized out.
	t.inheritAt(d, e, concrete, u, s, 0, 0)
	sort.SliceStable(s.Locals, func(i, j int) bool { return s.Locals[i].DeclLine < s.Locals[j].DeclLine })
	return s, true
}

// blockAt returns the DIE offset of the innermost lexical block or
// inlined call that holds pc, else of its function (0: none): gdb binds
// a line breakpoint once per such block.
func (t *Table) blockAt(pc uint64) uint64 {
	fn := t.FuncAt(pc)
	if fn == nil || fn.cu < 0 || fn.die == 0 {
		if fn != nil {
			return fn.Low
		}
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	d, r, e, _ := t.entryAt(fn.cu, fn.die)
	if e == nil || !e.Children {
		return fn.die
	}
	pc = t.link(pc)
	key := fn.die
	for depth := 0; depth < 64; depth++ {
		found := false
		for {
			c, err := r.Next()
			if err != nil || c == nil || c.Tag == 0 {
				break
			}
			if c.Tag != dwarf.TagInlinedSubroutine && c.Tag != dwarf.TagLexDwarfBlock {
				if c.Children {
					r.SkipChildren()
				}
				continue
			}
			if _, _, ok := rangeEnd(d, c, pc); ok {
				key = t.absOff(fn.cu, c.Offset)
				found = c.Children
				break
			}
			if c.Children {
				r.SkipChildren()
			}
		}
		if !found {
			break
		}
	}
	return key
}
