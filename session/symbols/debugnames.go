package symbols

// .debug_names (DWARF 5 §6.1.1): a name index a producer wrote. When an image has one, the index pass reads each
// unit's own DIE and file names as usual but takes the functions,
// variables and types from it, reading only the DIEs it points at instead
// of walking every unit. An index that does not match the DIEs it names
// is dropped and the units are walked after all.

const (
	idxCompileUnit = 1
	idxTypeUnit    = 2
	idxDieOffset   = 3
	idxParent      = 4
	idxTypeHash    = 5
)

type namesAbbrev struct {
	tag   uint32
	attrs [][2]uint32 // DW_IDX_*, form
}

// indexFromNames fills p from .debug_names; false when the index cannot
// be used.
func (t *Table) indexFromNames(p *indexPart) bool {
	sec := t.debugNames
	r := rd{b: sec}
	abbrevCache := map[int32]*abbrevTable{}
	seen := 0
	for !r.eof() {
		start := r.pos
		n, is64 := r.unitLength()
		end := r.pos + int(n)
		if r.bad || end > len(sec) || end <= r.pos {
			return seen > 0
		}
		os := map64(is64)
		hr := rd{b: sec[:end], pos: r.pos}
		if hr.u16() != 5 {
			return false
		}
		hr.u16() // padding
		cuCount := int(hr.u32())
		localTU := int(hr.u32())
		foreignTU := int(hr.u32())
		buckets := int(hr.u32())
		names := int(hr.u32())
		abbrevSize := int(hr.u32())
		augSize := int(hr.u32())
		hr.skip(uint64(augSize))
		if hr.bad || cuCount < 0 || names < 0 || cuCount > len(sec) || names > len(sec) {
			return false
		}
		cus := make([]uint64, cuCount)
		for i := range cus {
			cus[i] = hr.uN(os)
		}
		hr.skip(uint64(localTU) * uint64(os))
		hr.skip(uint64(foreignTU) * 8)
		hr.skip(uint64(buckets) * 4)
		if buckets > 0 {
			hr.skip(uint64(names) * 4) // hashes
		}
		strOffs := hr.pos
		hr.skip(uint64(names) * uint64(os))
		entOffs := hr.pos
		hr.skip(uint64(names) * uint64(os))
		abbrevStart := hr.pos
		hr.skip(uint64(abbrevSize))
		pool := hr.pos
		if hr.bad {
			return false
		}
		// The abbreviation table.
		abbrevs := map[uint64]*namesAbbrev{}
		ar := rd{b: sec[:abbrevStart+abbrevSize], pos: abbrevStart}
		for !ar.eof() {
			code := ar.uleb()
			if code == 0 {
				break
			}
			a := &namesAbbrev{tag: uint32(ar.uleb())}
			for !ar.eof() {
				idx, form := ar.uleb(), ar.uleb()
				if idx == 0 && form == 0 {
					break
				}
				a.attrs = append(a.attrs, [2]uint32{uint32(idx), uint32(form)})
			}
			abbrevs[code] = a
		}
		// gdb-add-index writes CU-granular indexes (no DW_IDX_die_offset):
		// they cannot stand in for the walk.
		hasDIE := false
		for _, a := range abbrevs {
			for _, at := range a.attrs {
				hasDIE = hasDIE || at[0] == idxDieOffset
			}
		}
		if !hasDIE {
			return false
		}
		uf := unitFormat{version: 5, addrSize: 8, offSize: os}
		for i := 0; i < names; i++ {
			sr := rd{b: sec[:end], pos: strOffs + i*os}
			nameOff := sr.uN(os)
			er := rd{b: sec[:end], pos: entOffs + i*os}
			eo := er.uN(os)
			e := rd{b: sec[:end], pos: pool + int(eo)}
			for k := 0; k < 1<<16 && !e.eof(); k++ {
				code := e.uleb()
				if code == 0 {
					break
				}
				a := abbrevs[code]
				if a == nil {
					return false
				}
				cu, die := -1, uint64(0)
				if cuCount == 1 {
					cu = 0
				}
				for _, at := range a.attrs {
					v := t.sec.readAttr(&e, attrSpec{form: at[1], fixed: int8(uf.formSize(at[1]))}, &unit{format: uf})
					switch at[0] {
					case idxCompileUnit:
						cu = int(v.u)
					case idxDieOffset:
						die = v.u // readAttr made a reference absolute to a zero unit: CU-relative here
					case idxTypeUnit:
						cu = -2 // type units are not indexed
					}
				}
				if e.bad {
					return false
				}
				if a.tag == tagEnumerator && cu >= 0 && cu < len(cus) {
					// (the unit is enough: EnumeratorByName looks there)
					if ci := t.unitOf(cus[cu] + die); ci >= 0 {
						p.enumRefs = append(p.enumRefs, typeRef{nameOff, nameRef{cus[cu] + die, int32(ci)}})
					}
					continue
				}
				if cu < 0 || cu >= len(cus) || !indexedTag(a.tag) || a.tag == tagNamespace || a.tag == tagModule {
					continue
				}
				if !t.indexNamedDIE(p, abbrevCache, cus[cu]+die, a.tag, nameOff) {
					return false
				}
				seen++
			}
		}
		r.pos = end
		_ = start
	}
	return seen > 0
}

// indexNamedDIE records the DIE at off that .debug_names says has tag;
// false when it is not there.
func (t *Table) indexNamedDIE(p *indexPart, cache map[int32]*abbrevTable, off uint64, tag uint32, nameOff uint64) bool {
	ci := t.unitOf(off)
	if ci < 0 {
		return false
	}
	u := t.units[ci]
	at, ok := cache[int32(ci)]
	if !ok {
		var err error
		if at, err = t.abbrevs(nil, u); err != nil {
			return false
		}
		cache[int32(ci)] = at
	}
	r := rd{b: t.sec.info[:u.end], pos: int(off)}
	a := at.get(r.uleb())
	if a == nil || a.tag != tag {
		return false
	}
	var stack []scanFrame
	p.pending = p.pending[:0]
	t.indexDIE(p, &r, a, at, u, int32(ci), off, "", &stack)
	// A definition named through DW_AT_specification or
	// DW_AT_abstract_origin: the index's name is its name.
	for _, pn := range p.pending {
		pn.fn.Name = t.sec.strpString(nameOff, len(cstrAt(t.sec.str, nameOff)))
	}
	p.pending = p.pending[:0]
	return !r.bad
}

// UsedNameIndex reports whether the index came from .debug_names.
func (t *Table) UsedNameIndex() bool { return t.usedNames }
