package symbols

import (
	"runtime"
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
		m := map[string][]nameRef{}
		for _, ir := range t.inlineRefs {
			var b []byte
			switch {
			case ir.name != nil:
				b = ir.name
			case ir.form == formLineStrp:
				b = cstrAt(t.sec.lineStr, ir.strOff)
			default:
				b = cstrAt(t.sec.str, ir.strOff)
			}
			if len(b) > 0 {
				m[string(b)] = append(m[string(b)], ir.ref)
			}
		}
		t.inlined = m
		t.inlineRefs = nil
	})
	return t.inlined[name]
}

// maxInlineSites bounds the sites one breakpoint binds.
const maxInlineSites = 4096

// InlinedSites returns the addresses where inlined copies of the named
// function begin, sorted.
func (t *Table) InlinedSites(name string) []uint64 {
	refs := t.inlinedByName(name)
	if len(refs) == 0 {
		return nil
	}
	byUnit := map[int32]map[uint64]bool{}
	for _, r := range refs {
		if byUnit[r.cu] == nil {
			byUnit[r.cu] = map[uint64]bool{}
		}
		byUnit[r.cu][r.die] = true
	}
	cus := make([]int32, 0, len(byUnit))
	for ci := range byUnit {
		cus = append(cus, ci)
	}
	var (
		mu   sync.Mutex
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
				sites := t.scanInlined(ci, byUnit[ci], &at)
				mu.Lock()
				out = append(out, sites...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
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
		switch {
		case entry.ok && isAddrForm(entry.form):
			out = append(out, entry.u)
		case low.ok:
			if entry.ok { // DWARF 5: entry_pc as an offset from low_pc
				out = append(out, low.u+entry.u)
			} else {
				out = append(out, low.u)
			}
		case ranges.ok:
			if rs := t.sec.rangesOf(ranges.c(), u); len(rs) > 0 {
				out = append(out, rs[0][0])
			}
		}
	}
	return out
}

func isAddrForm(form uint32) bool { return form == formAddr || isAddrx(form) }
