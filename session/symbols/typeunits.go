package symbols

import (
	"debug/dwarf"
	"encoding/binary"
)

// References out of a unit. The per-unit decoding (unitcache.go) hands
// debug/dwarf one unit's bytes as .debug_info, which is all that most
// units need, a kernel's every one. Two kinds of debug information refer
// further, and their units are decoded with what they refer to:
//
//   - Type units (GCC's -fdebug-types-section). DWARF 4 puts a type in
//     a unit of .debug_types, DWARF 5 in a type unit of .debug_info, named
//     by an 8-byte signature that other units refer to with
//     DW_FORM_ref_sig8, and by DW_AT_signature in a declaration that
//     stands for the type in the unit. debug/dwarf resolves signatures
//     only in .debug_types (AddTypes), not in DWARF 5's type units, and
//     does not follow DW_AT_signature at all: the declaration reads as a
//     struct with no members. A unit whose abbreviations have
//     DW_FORM_ref_sig8 is decoded from a copy of its bytes followed by
//     the type units it reaches, each signature rewritten as a
//     DW_FORM_ref8 to the type's DIE (the same size; debug/dwarf follows
//     a ref8 past its unit's end), and each reference to a declaration
//     that stands for a type rewritten to the type itself. The copy holds
//     only the unit and the type units it needs, and goes with the unit
//     out of the cache.
//   - References into another unit (DW_FORM_ref_addr). GCC's -flto unit
//     names its functions, parameters and variables through
//     DW_AT_abstract_origin in the units of the early debug information,
//     and dwz moves what units share into partial units. A unit whose
//     abbreviations have DW_FORM_ref_addr is decoded in one debug/dwarf
//     view of all of .debug_info, shared by all such units and made on
//     first need: the mapped section itself, not a copy (on a kernel's
//     200 MB, 0.1 s and 70 MB of debug/dwarf's unit and abbreviation
//     tables), or a copy with the signatures rewritten when there are
//     type units too.
//
// The index notes at open which units need either, from their
// abbreviation tables (unit.refs). A kernel has neither, and is decoded
// a unit at a time as before.

// tunit is one type unit: a unit of .debug_types (DWARF 4) or a type
// unit of .debug_info (DWARF 5).
type tunit struct {
	types     bool   // in .debug_types, else .debug_info
	off       uint64 // of the header, in its section
	dieOff    uint64 // of the unit's DIE
	end       uint64 // one past the unit
	typeOff   uint64 // of the type's DIE
	sig       uint64
	format    unitFormat
	abbrevOff uint64
}

// tuRef is the unit index by which a name refers to type unit i (a
// nameRef's cu; -1 is an ELF symbol's): -2 for the first.
func tuRef(i int) int32 { return int32(-2 - i) }

// tuIndex is the type unit a negative unit index below -1 names.
func tuIndex(ci int32) int { return int(-2 - ci) }

// walkTypes lists the type units of a .debug_types section.
func walkTypes(sec []byte) []tunit {
	var out []tunit
	r := rd{b: sec}
	for r.pos < len(sec) {
		start := r.pos
		n, is64 := r.unitLength()
		end := uint64(r.pos) + n
		if r.bad || n == 0 || end > uint64(len(sec)) {
			break
		}
		tu := tunit{types: true, off: uint64(start), end: end}
		tu.format.offSize = map64(is64)
		tu.format.version = int(r.u16())
		tu.abbrevOff = r.uN(tu.format.offSize)
		tu.format.addrSize = int(r.u8())
		tu.sig = r.u64()
		tu.typeOff = uint64(start) + r.uN(tu.format.offSize)
		tu.dieOff = uint64(r.pos)
		if !r.bad && tu.format.version == 4 && (tu.format.addrSize == 4 || tu.format.addrSize == 8) &&
			tu.typeOff >= tu.dieOff && tu.typeOff < end {
			out = append(out, tu)
		}
		r.pos = int(end)
	}
	return out
}

// tuSection returns the section a type unit is in.
func (t *Table) tuSection(tu *tunit) []byte {
	if tu.types {
		return t.sec.types
	}
	return t.sec.info
}

// asUnit is the type unit as a unit, for the attribute readers.
func (tu *tunit) asUnit() *unit {
	return &unit{off: tu.off, dieOff: tu.dieOff, end: tu.end, format: tu.format, abbrevOff: tu.abbrevOff}
}

// noteRefs finds, once the units are known (indexed or read from the
// index cache), the type units by signature and whether any unit refers
// into another.
func (t *Table) noteRefs() {
	for _, u := range t.units {
		if u.refs&refsAddr != 0 {
			t.crossRefs = true
		}
	}
	if len(t.tunits) == 0 {
		return
	}
	t.bySig = make(map[uint64]int32, len(t.tunits))
	for i := range t.tunits {
		if _, dup := t.bySig[t.tunits[i].sig]; !dup {
			t.bySig[t.tunits[i].sig] = int32(i)
		}
	}
}

// abbrevCache holds the abbreviation tables one pass reads, by offset and
// unit format.
type abbrevCache map[abbrevKey]*abbrevTable

type abbrevKey struct {
	off    uint64
	format unitFormat
}

func (c abbrevCache) get(t *Table, off uint64, f unitFormat) *abbrevTable {
	k := abbrevKey{off, f}
	if at, ok := c[k]; ok {
		return at
	}
	at, err := parseAbbrevs(nil, t.sec.abbrev, off, f)
	if err != nil {
		at = nil
	}
	c[k] = at
	return at
}

// indexTypeUnitNames adds the type of each type unit to the named types,
// and an enumeration's enumerators to the enumerators, where no compile
// unit has the name.
func (t *Table) indexTypeUnitNames() {
	tabs := abbrevCache{}
	for i := range t.tunits {
		tu := &t.tunits[i]
		at := tabs.get(t, tu.abbrevOff, tu.format)
		if at == nil {
			continue
		}
		u := tu.asUnit()
		r := rd{b: t.tuSection(tu)[:tu.end], pos: int(tu.dieOff)}
		a := at.get(r.uleb())
		if a == nil || !a.children {
			continue
		}
		t.readUnitDIE(&r, a, u) // (its bases, for indexed strings)
		// Down to the type's DIE, through the namespaces (and types)
		// that hold it.
		var scope []string
		for !r.eof() {
			off := uint64(r.pos)
			code := r.uleb()
			if code == 0 {
				if len(scope) == 0 {
					break
				}
				scope = scope[:len(scope)-1]
				continue
			}
			a := at.get(code)
			if a == nil {
				break
			}
			var d dieAttrs
			t.readDIE(&r, a, u, &d)
			if r.bad {
				break
			}
			name := ""
			if d.hasName {
				name = t.sec.nameOf(&d)
			}
			if off == tu.typeOff {
				if name != "" && !d.declaration {
					t.addTypeUnitName(i, &r, a, at, u, qualified(scope, name), &d)
				}
				break
			}
			if a.children {
				switch a.tag {
				case tagNamespace:
					if name == "" {
						name = "{anonymous}"
					}
				case tagStructureType, tagClassType, tagUnionType:
				default:
					name = ""
				}
				scope = append(scope, name)
			}
		}
	}
}

// qualified joins a name to the names of the scopes that hold it.
func qualified(scope []string, name string) string {
	q := ""
	for _, s := range scope {
		if s != "" {
			q += s + "::"
		}
	}
	return q + name
}

// addTypeUnitName records type unit i's type, whose DIE r has just read
// (and an enumeration's enumerators, its children).
func (t *Table) addTypeUnitName(i int, r *rd, a *abbrev, at *abbrevTable, u *unit, name string, d *dieAttrs) {
	tu := &t.tunits[i]
	ref := nameRef{die: tu.typeOff, cu: tuRef(i)}
	if _, ok := t.types[name]; !ok {
		t.types[name] = ref
	}
	if a.tag != tagEnumerationType || !a.children || d.enumClass {
		return
	}
	for !r.eof() {
		code := r.uleb()
		if code == 0 {
			return
		}
		k := at.get(code)
		if k == nil || k.children {
			return
		}
		var e dieAttrs
		t.readDIE(r, k, u, &e)
		if r.bad {
			return
		}
		if k.tag == tagEnumerator && e.hasName {
			if n := t.sec.nameOf(&e); n != "" {
				if _, ok := t.enums[n]; !ok {
					t.enums[n] = ref
				}
			}
		}
	}
}

// nameOf returns a DIE's name as a string (a DW_FORM_strp one read from
// .debug_str).
func (s *secs) nameOf(d *dieAttrs) string {
	if d.nameForm == formStrp && d.name == nil {
		return s.strpString(d.nameOff, len(cstrAt(s.str, d.nameOff)))
	}
	return string(d.name)
}

// piece is one unit placed in a view's .debug_info: its header at base,
// its DIEs from base+dieRel to base+size.
type piece struct {
	base, dieRel, size uint64
	format             unitFormat
	abbrevOff          uint64
}

// walkRefs calls visit for each attribute of a reference form of the
// DIEs in b[from:to] (visit may rewrite the value, at pos; die is where
// the DIE begins).
func walkRefs(b []byte, from, to int, at *abbrevTable, f unitFormat, visit func(die, pos int, attr, form uint32)) {
	if from < 0 || to > len(b) || from > to {
		return
	}
	r := rd{b: b[:to], pos: from}
	for !r.eof() {
		die := r.pos
		code := r.uleb()
		if code == 0 {
			continue
		}
		a := at.get(code)
		if a == nil {
			return
		}
		for i := range a.attrs {
			sp := &a.attrs[i]
			form := sp.form
			if form == formIndirect {
				form = uint32(r.uleb())
			}
			switch form {
			case formRefSig8, formRef1, formRef2, formRef4, formRef8, formRefUdata, formRefAddr:
				if n := f.formSize(form); n < 0 || r.pos+n <= len(r.b) {
					visit(die, r.pos, sp.at, form)
				}
			}
			if sp.fixed >= 0 {
				r.skip(uint64(sp.fixed))
			} else if !r.skipForm(form, f) {
				return
			}
		}
	}
}

// unresolved is where a signature no type unit has points (past any
// view: debug/dwarf reports no type there).
const unresolved = 0xffffffff

// patchRefs rewrites, in a view's bytes, the pieces' signature
// references as DW_FORM_ref8 offsets of the types' DIEs (target gives
// where a signature's type is in the view), and then every reference to
// a declaration that stands for a type (DW_AT_signature) as one to the
// type itself, where the form can hold it (DW_FORM_ref4, ref8, ref_addr;
// DW_AT_sibling, which debug/dwarf follows over children, excepted).
func (t *Table) patchRefs(buf []byte, pieces []piece, target func(sig uint64) (uint64, bool)) {
	tabs := abbrevCache{}
	skel := map[uint64]uint64{} // the declaration's DIE → the type's, in the view
	for _, p := range pieces {
		at := tabs.get(t, p.abbrevOff, p.format)
		if at == nil {
			continue
		}
		walkRefs(buf, int(p.base+p.dieRel), int(p.base+p.size), at, p.format, func(die, pos int, attr, form uint32) {
			if form != formRefSig8 {
				return
			}
			to, ok := target(binary.LittleEndian.Uint64(buf[pos:]))
			if !ok {
				to = unresolved
			} else if attr == atSignature {
				skel[uint64(die)] = to
			}
			binary.LittleEndian.PutUint64(buf[pos:], to-p.base)
		})
	}
	if len(skel) == 0 {
		return
	}
	for _, p := range pieces {
		at := tabs.get(t, p.abbrevOff, p.format)
		if at == nil {
			continue
		}
		walkRefs(buf, int(p.base+p.dieRel), int(p.base+p.size), at, p.format, func(die, pos int, attr, form uint32) {
			if attr == atSibling {
				return
			}
			switch form {
			case formRef4:
				if to, ok := skel[p.base+uint64(binary.LittleEndian.Uint32(buf[pos:]))]; ok {
					binary.LittleEndian.PutUint32(buf[pos:], uint32(to-p.base))
				}
			case formRef8:
				if to, ok := skel[p.base+binary.LittleEndian.Uint64(buf[pos:])]; ok {
					binary.LittleEndian.PutUint64(buf[pos:], to-p.base)
				}
			case formRefAddr:
				switch p.format.formSize(formRefAddr) {
				case 4:
					if to, ok := skel[uint64(binary.LittleEndian.Uint32(buf[pos:]))]; ok && to <= 0xffffffff {
						binary.LittleEndian.PutUint32(buf[pos:], uint32(to))
					}
				case 8:
					if to, ok := skel[binary.LittleEndian.Uint64(buf[pos:])]; ok {
						binary.LittleEndian.PutUint64(buf[pos:], to)
					}
				}
			}
		})
	}
}

// atSignature is DW_AT_signature: a declaration's type unit.
const atSignature = 0x69

// appendTypeUnit appends type unit tu's bytes to a view's .debug_info.
// A DWARF 4 unit of .debug_types begins as a compile unit's header does
// (length, version, abbreviations, address size), then has its signature
// and type offset: those are cleared (null entries to debug/dwarf), so
// that its DIEs stay where its offsets say.
func (t *Table) appendTypeUnit(buf []byte, tu *tunit) []byte {
	start := len(buf)
	buf = append(buf, t.tuSection(tu)[tu.off:tu.end]...)
	// (A C++ type unit's char16_t: see utfchar.go.)
	if fixed := t.utfAsUnsignedChar(tu.asUnit(), buf[start:]); len(fixed) > 0 && &fixed[0] != &buf[start] {
		copy(buf[start:], fixed)
	}
	if tu.types {
		hdr := 4 + 2 + tu.format.offSize + 1
		if tu.format.offSize == 8 {
			hdr += 8 // the 64-bit length's escape
		}
		if die := start + int(tu.dieOff-tu.off); die >= start+hdr {
			clear(buf[start+hdr : die])
		}
	}
	return buf
}

// typeView builds a view of unit home (nil: none), whose bytes are info,
// and of the type units it reaches, from its signatures and from the
// type units roots. It returns where each type unit's header is in the
// view, and the view's size.
func (t *Table) typeView(home *unit, info []byte, roots []int) (*dwarf.Data, map[int]uint64, int, error) {
	tabs := abbrevCache{}
	seen := map[int]bool{}
	var order []int
	add := func(i int) {
		if !seen[i] {
			seen[i] = true
			order = append(order, i)
		}
	}
	addSig := func(sig uint64) {
		if i, ok := t.bySig[sig]; ok {
			add(int(i))
		}
	}
	sigsOf := func(b []byte, from, to int, at *abbrevTable, f unitFormat) {
		walkRefs(b, from, to, at, f, func(die, pos int, attr, form uint32) {
			if form == formRefSig8 {
				addSig(binary.LittleEndian.Uint64(b[pos:]))
			}
		})
	}
	for _, i := range roots {
		add(i)
	}
	var pieces []piece
	if home != nil {
		p := piece{base: 0, dieRel: home.dieOff - home.off, size: uint64(len(info)), format: home.format, abbrevOff: home.abbrevOff}
		pieces = append(pieces, p)
		if at := tabs.get(t, p.abbrevOff, p.format); at != nil {
			sigsOf(info, int(p.dieRel), len(info), at, p.format)
		}
	}
	size := len(info)
	for k := 0; k < len(order); k++ {
		tu := &t.tunits[order[k]]
		size += int(tu.end - tu.off)
		if at := tabs.get(t, tu.abbrevOff, tu.format); at != nil {
			sigsOf(t.tuSection(tu)[:tu.end], int(tu.dieOff), int(tu.end), at, tu.format)
		}
	}
	buf := make([]byte, 0, size)
	buf = append(buf, info...)
	bases := make(map[int]uint64, len(order))
	for _, i := range order {
		tu := &t.tunits[i]
		bases[i] = uint64(len(buf))
		buf = t.appendTypeUnit(buf, tu)
		pieces = append(pieces, piece{base: bases[i], dieRel: tu.dieOff - tu.off, size: tu.end - tu.off, format: tu.format, abbrevOff: tu.abbrevOff})
	}
	t.patchRefs(buf, pieces, func(sig uint64) (uint64, bool) {
		i, ok := t.bySig[sig]
		if !ok {
			return 0, false
		}
		base, ok := bases[int(i)]
		tu := &t.tunits[i]
		return base + tu.typeOff - tu.off, ok
	})
	d, err := t.newData(t.patchedAbbrev(), buf)
	return d, bases, len(buf), err
}

// patchedAbbrev returns .debug_abbrev with DW_FORM_ref_sig8 made
// DW_FORM_ref8 in the tables of the units that have it and of the type
// units (the views' rewritten references): one copy, made on first need.
// Caller holds t.mu.
func (t *Table) patchedAbbrev() []byte {
	if t.sigAbbrev != nil {
		return t.sigAbbrev
	}
	b := append([]byte(nil), t.sec.abbrev...)
	done := map[uint64]bool{}
	patch := func(off uint64) {
		if !done[off] {
			done[off] = true
			sig8AsRef8(b, off)
		}
	}
	for _, u := range t.units {
		if u.refs&refsSig8 != 0 {
			patch(u.abbrevOff)
		}
	}
	for i := range t.tunits {
		patch(t.tunits[i].abbrevOff)
	}
	t.sigAbbrev = b
	return b
}

// sig8AsRef8 rewrites DW_FORM_ref_sig8 as DW_FORM_ref8 in the
// abbreviation table at off of b (both one byte).
func sig8AsRef8(b []byte, off uint64) {
	if off >= uint64(len(b)) {
		return
	}
	r := rd{b: b, pos: int(off)}
	for !r.eof() {
		if r.uleb() == 0 {
			return
		}
		r.uleb() // tag
		r.u8()   // children
		for !r.eof() {
			at := r.uleb()
			fp := r.pos
			form := r.uleb()
			if at == 0 && form == 0 {
				break
			}
			switch {
			case form == formImplicitConst:
				r.sleb()
			case form == formRefSig8 && r.pos == fp+1:
				b[fp] = formRef8
			}
		}
	}
}

// wideView is the debug/dwarf view of all of .debug_info that the units
// with references into others are decoded in.
type wideView struct {
	done bool
	data *dwarf.Data
	err  error
}

// wideData returns the view of all of .debug_info, made on first use.
// Offsets in it are those of .debug_info. Caller holds t.mu.
func (t *Table) wideData() (*dwarf.Data, error) {
	w := &t.wide
	if w.done {
		return w.data, w.err
	}
	w.done = true
	s := &t.sec
	if len(t.tunits) == 0 {
		w.data, w.err = t.newData(s.abbrev, s.info)
		return w.data, w.err
	}
	// With type units: a copy, its signatures rewritten, with the units
	// of .debug_types after it.
	buf := make([]byte, len(s.info), len(s.info)+len(s.types))
	copy(buf, s.info)
	var pieces []piece
	for _, u := range t.units {
		if u.refs&refsSig8 != 0 {
			pieces = append(pieces, piece{base: u.off, dieRel: u.dieOff - u.off, size: u.end - u.off, format: u.format, abbrevOff: u.abbrevOff})
		}
	}
	bases := make([]uint64, len(t.tunits))
	for i := range t.tunits {
		tu := &t.tunits[i]
		bases[i] = tu.off
		if tu.types {
			bases[i] = uint64(len(buf))
			buf = t.appendTypeUnit(buf, tu)
		}
		pieces = append(pieces, piece{base: bases[i], dieRel: tu.dieOff - tu.off, size: tu.end - tu.off, format: tu.format, abbrevOff: tu.abbrevOff})
	}
	t.patchRefs(buf, pieces, func(sig uint64) (uint64, bool) {
		i, ok := t.bySig[sig]
		if !ok {
			return 0, false
		}
		tu := &t.tunits[i]
		return bases[i] + tu.typeOff - tu.off, true
	})
	w.data, w.err = t.newData(t.patchedAbbrev(), buf)
	return w.data, w.err
}

// typeUnitData builds the view of the type unit a cache entry of a
// negative index stands for (a type found by name in it). Caller holds
// t.mu.
func (t *Table) typeUnitData(st *unitState) (*dwarf.Data, error) {
	i := tuIndex(st.ci)
	if i < 0 || i >= len(t.tunits) {
		st.dataErr = formatError("info", 0, "no such type unit")
		return nil, st.dataErr
	}
	d, bases, size, err := t.typeView(nil, nil, []int{i})
	tu := &t.tunits[i]
	st.base = tu.off - bases[i] // (an offset in the unit's section, less base, is the view's)
	st.data, st.dataErr = d, err
	t.cache.grew(st, size/32)
	return d, err
}
