package symbols

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Split DWARF (gcc and clang -gsplit-dwarf, DWARF 5). The image keeps a
// skeleton unit per compile unit: its addresses (DW_AT_low_pc, high_pc
// or ranges), its line table (DW_AT_stmt_list), the base of its
// addresses in the image's .debug_addr, and where the rest is: a .dwo
// file that DW_AT_dwo_name names (relative to DW_AT_comp_dir; else
// looked for beside the image), whose
// split compile unit (of the same DWO id) holds the functions, variables
// and types, with strings and location and range lists of its own
// (.debug_str.dwo, .debug_str_offsets.dwo, .debug_loclists.dwo,
// .debug_rnglists.dwo) and addresses by index into the image's
// .debug_addr.
//
// The split units are read as the image's own units: each is appended to
// a copy of .debug_info as a compile unit, its sections' contents to
// copies of the image's, its string offsets moved by what comes before
// its strings. What the skeleton says of the unit is added to the copy's
// unit DIE: its bases, line table, high PC and ranges as attributes of
// DW_FORM_implicit_const (in the abbreviation, no bytes in the DIE), and
// its low PC in the eight bytes the split unit's header no longer needs
// (a compile unit's header has no DWO id), so that no DIE of the unit
// moves. The skeleton units are then left out of the index. A unit
// whose .dwo is not found keeps its skeleton (its line table: source
// breakpoints and lines still work), and the user hears where it was
// looked for. A .dwp package beside the image (dwp.go) is read first, as
// gdb reads it. DWARF 4's GNU split units (DW_AT_GNU_dwo_name) are not
// read.

const (
	tagSkeletonUnit = 0x4a
	atDWOName       = 0x76
	atGNUDWOName    = 0x2130
	atGNUDWOID      = 0x2131
)

// skeleton is what a skeleton unit says of its split unit.
type skeleton struct {
	u       unit // its root DIE's attributes, as the index reads them
	dwoID   uint64
	dwoName string
}

// readSplit joins the split units of the image's skeleton units to its
// sections, or notes why it could not. It reports the offsets of the
// skeleton units whose split unit was joined.
func (t *Table) readSplit() map[uint64]bool {
	s := &t.sec
	skels := t.skeletons()
	if len(skels) == 0 {
		return nil
	}
	j := splitJoin{
		info: append([]byte(nil), s.info...), abbrev: append([]byte(nil), s.abbrev...),
		str: append([]byte(nil), s.str...), strOffsets: append([]byte(nil), s.strOffsets...),
		loclists: append([]byte(nil), s.loclists.bytes()...), rnglists: append([]byte(nil), s.rnglists...),
	}
	pkg := t.openDWP()
	if pkg != nil {
		defer pkg.img.release()
	}
	joined := map[uint64]bool{}
	var missing []string
	for i := range skels {
		sk := &skels[i]
		// A package beside the image first, as gdb: its units are
		// the .dwo files as they were linked.
		if d, ok := pkg.unit(sk.dwoID); ok {
			if err := j.add(sk, d); err == nil {
				joined[sk.u.off] = true
				continue
			}
		}
		// Where it was built, then beside the image (a build tree
		// moved or copied with its .dwo files), as gdb looks.
		path := sk.dwoName
		if !filepath.IsAbs(path) {
			path = filepath.Join(sk.u.compDir, path)
		}
		cands := []string{path}
		if p := t.dimg.path; p != "" {
			if beside := filepath.Join(filepath.Dir(p), filepath.Base(sk.dwoName)); beside != path {
				cands = append(cands, beside)
			}
		}
		var errs []string
		for _, c := range cands {
			err := j.addFile(sk, c)
			if err == nil {
				joined[sk.u.off] = true
				break
			}
			errs = append(errs, fmt.Sprintf("%s (%v)", c, unwrapPathErr(err)))
		}
		if !joined[sk.u.off] {
			missing = append(missing, quoteList(errs))
		}
	}
	if len(missing) > 0 {
		t.note(fmt.Sprintf("the image's DWARF is split (-gsplit-dwarf): the .dwo files of %d of its %d units were not read: %s; their functions and variables are missing (their lines are not)",
			len(missing), len(skels), quoteList(missing)))
	}
	if len(joined) == 0 {
		return nil
	}
	s.info, s.abbrev, s.str, s.strOffsets, s.rnglists = j.info, j.abbrev, j.str, j.strOffsets, j.rnglists
	s.strS = string(s.str)
	s.loclists = lazySection{b: j.loclists, size: uint64(len(j.loclists))}
	s.infoOff = -1 // (a copy)
	t.splitRefs = j.moved
	t.debugNames = nil
	from := "the .dwo files"
	if pkg != nil {
		from = "the package " + pkg.path + " and .dwo files"
	}
	t.note(fmt.Sprintf("the image's DWARF is split (-gsplit-dwarf): read %s of %d of its units", from, len(joined)))
	return joined
}

// skeletons reads the image's skeleton units.
func (t *Table) skeletons() []skeleton {
	s := &t.sec
	var out []skeleton
	r := rd{b: s.info}
	var tab *abbrevTable
	for r.pos < len(s.info) {
		h, err := readUnitHeader(&r)
		if err != nil {
			break
		}
		next := int(h.end)
		if h.unitType != 4 {
			// (DWARF 4's GNU split units are not looked for: which
			// unit is one only its DIE says, and a DWARF 4 kernel's
			// thousands of abbreviation tables would be read for it)
			r.pos = next
			continue
		}
		if tab, err = parseAbbrevs(tab, s.abbrev, h.abbrevOff, h.format); err != nil {
			r.pos = next
			continue
		}
		d := rd{b: s.info[:h.end], pos: int(h.dieOff)}
		a := tab.get(d.uleb())
		if a == nil || (a.tag != tagSkeletonUnit && a.tag != tagCompileUnit) {
			r.pos = next
			continue
		}
		sk := skeleton{u: unit{off: h.off, dieOff: h.dieOff, end: h.end, format: h.format}, dwoID: h.dwoID}
		start := d.pos
		t.readUnitDIE(&d, a, &sk.u)
		d.pos = start
		for _, sp := range a.attrs {
			v := s.readAttr(&d, sp, &sk.u)
			switch sp.at {
			case atDWOName, atGNUDWOName:
				sk.dwoName = string(v.b)
				if isStrx(v.form) {
					sk.dwoName = string(s.strx(v.u, &sk.u))
				}
			case atGNUDWOID:
				sk.dwoID = v.u
			}
		}
		if sk.dwoName != "" && !d.bad {
			out = append(out, sk)
		}
		r.pos = next
	}
	return out
}

// splitJoin is the image's sections with the split units joined so far.
type splitJoin struct {
	info, abbrev, str, strOffsets, loclists, rnglists []byte
	// moved: how far each joined unit (by its offset) moved from its
	// offset in its .dwo (expressions name DIEs by section offsets).
	moved map[uint64]uint64
	// sharedStrAt: where a package's strings were joined, when they
	// were (sharedStrJoined).
	sharedStrAt     uint64
	sharedStrJoined bool
}

// dwoSecs are the sections of a .dwo file, or a unit's contributions to
// those of a .dwp package (dwp.go).
type dwoSecs struct {
	info, abbrev, str, strOffsets, loclists, rnglists []byte
	// sharedStr: str is a package's, shared by its units: joined once
	// (at strAt, once it is).
	sharedStr bool
}

// addFile joins the split unit of sk, in the .dwo file at path.
func (j *splitJoin) addFile(sk *skeleton, path string) error {
	dwo, err := openImage(path)
	if err != nil {
		return err
	}
	defer dwo.release() // (what is needed is copied)
	var d dwoSecs
	d.info, _ = dwo.section(".debug_info.dwo")
	d.abbrev, _ = dwo.section(".debug_abbrev.dwo")
	d.str, _ = dwo.section(".debug_str.dwo")
	d.strOffsets, _ = dwo.section(".debug_str_offsets.dwo")
	d.loclists, _ = dwo.section(".debug_loclists.dwo")
	d.rnglists, _ = dwo.section(".debug_rnglists.dwo")
	return j.add(sk, d)
}

// add joins the split unit of sk, in the sections ds.
func (j *splitJoin) add(sk *skeleton, ds dwoSecs) error {
	info, abbrev, str, strOffsets, loclists, rnglists := ds.info, ds.abbrev, ds.str, ds.strOffsets, ds.loclists, ds.rnglists
	var err error
	// The split unit of the skeleton's DWO id.
	r := rd{b: info}
	var h unitHeader
	found := false
	for r.pos < len(info) {
		if h, err = readUnitHeader(&r); err != nil {
			return err
		}
		if h.unitType == 5 && h.dwoID == sk.dwoID {
			found = true
			break
		}
		r.pos = int(h.end)
	}
	if !found {
		return fmt.Errorf("no unit of DWO id %#x", sk.dwoID)
	}
	f := h.format
	off := uint64(f.offSize)
	hdr := 8 + (off-4)*2 // a string offsets table's header: 8 bytes, 16 in 64-bit DWARF
	listHdr := 12 + (off-4)*2
	d := rd{b: info[:h.end], pos: int(h.dieOff)}
	code := d.uleb()
	codeLen := d.pos - int(h.dieOff)
	tab, err := parseAbbrevs(nil, abbrev, h.abbrevOff, f)
	if err != nil {
		return err
	}
	root := tab.get(code)
	if root == nil {
		return fmt.Errorf("unit DIE of an unknown abbreviation")
	}
	// Where this unit's parts go in the joined sections.
	strBase, strOffBase := uint64(len(j.str)), uint64(len(j.strOffsets))
	if ds.sharedStr && j.sharedStrJoined {
		strBase = j.sharedStrAt
	}
	locBase, rngBase := uint64(len(j.loclists)), uint64(len(j.rnglists))
	// The abbreviation table, the unit DIE's with the skeleton's
	// attributes added.
	extra := []attrSpec{
		{at: atStrOffsetsBase, form: formImplicitConst, imm: int64(strOffBase + hdr)},
		{at: atAddrBase, form: formImplicitConst, imm: int64(sk.u.addrBase)},
	}
	if len(loclists) > 0 {
		extra = append(extra, attrSpec{at: atLoclistsBase, form: formImplicitConst, imm: int64(locBase + listHdr)})
	}
	if len(rnglists) > 0 {
		extra = append(extra, attrSpec{at: atRnglistsBase, form: formImplicitConst, imm: int64(rngBase + listHdr)})
	}
	if sk.u.hasStmtList {
		extra = append(extra, attrSpec{at: atStmtList, form: formImplicitConst, imm: int64(sk.u.stmtList)})
	}
	if sk.u.highPC.ok {
		extra = append(extra, attrSpec{at: atHighpc, form: formImplicitConst, imm: int64(highPC(sk.u.highPC, sk.u.lowPC) - sk.u.lowPC)})
	}
	if sk.u.rangesAttr.ok {
		// (the image's .debug_rnglists comes first in the joined one)
		if o, ok := (&secs{rnglists: j.rnglists}).listOffset(sk.u.rangesAttr, sk.u.rngBase, j.rnglists, &sk.u); ok {
			extra = append(extra, attrSpec{at: atRanges, form: formImplicitConst, imm: int64(o)})
		}
	}
	// The low PC, in the bytes the header gives up; in 32-bit code,
	// four bytes more of an attribute no reader looks at.
	tail := []attrSpec{{at: atLowpc, form: formAddr}}
	if f.addrSize == 4 {
		tail = append(tail, attrSpec{at: atGNUDWOID, form: formData4})
	}
	newAbbrevOff := uint64(len(j.abbrev))
	j.abbrev, err = appendAbbrevTable(j.abbrev, abbrev, h.abbrevOff, code, extra, tail)
	if err != nil {
		return err
	}
	// The unit: a compile unit's header, the unit DIE with the low PC
	// after its own attributes, the rest as it was.
	rootEnd := d.pos
	for _, sp := range root.attrs {
		if !d.skipForm(sp.form, f) {
			return errAltForm
		}
	}
	if d.bad {
		return fmt.Errorf("truncated unit DIE")
	}
	rootEnd = d.pos
	unitOff := uint64(len(j.info))
	u := append([]byte(nil), info[h.off:h.end]...)
	// Header: unit_length, version, DW_UT_compile, address size, abbrev
	// offset; the DWO id's eight bytes go to the DIE.
	lenSize := h.abbrevAt - int(h.off) - 4 // (4, or 12 in 64-bit DWARF)
	p := lenSize + 2
	u[p] = 1 // DW_UT_compile
	u[p+1] = byte(f.addrSize)
	putOff(u[p+2:], f.offSize, newAbbrevOff)
	dieStart := p + 2 + f.offSize
	body := info[h.dieOff:rootEnd] // code and attributes
	n := copy(u[dieStart:], body)
	lo := u[dieStart+n : dieStart+n+8]
	if f.addrSize == 8 {
		binary.LittleEndian.PutUint64(lo, sk.u.lowPC)
	} else {
		binary.LittleEndian.PutUint32(lo, uint32(sk.u.lowPC))
		binary.LittleEndian.PutUint32(lo[4:], 0)
	}
	if dieStart+n+8 != rootEnd-int(h.off) || codeLen <= 0 {
		return fmt.Errorf("unit DIE misplaced")
	}
	j.info = append(j.info, u...)
	if j.moved == nil {
		j.moved = map[uint64]uint64{}
	}
	j.moved[unitOff] = unitOff - h.off
	// Its location and range lists by offset (DW_FORM_sec_offset) move
	// with their sections.
	err = eachUnitValue(j.info[unitOff:], j.abbrev, func(unitHeader) (uint64, bool) { return 0, false },
		func(b []byte, form, at uint32, f unitFormat) error {
			if form != formSecOffset {
				return nil
			}
			switch at {
			case atRanges:
				putOff(b, len(b), readOff(b, len(b))+rngBase)
			case atStmtList:
			default: // location lists (DW_AT_location, DW_AT_frame_base …)
				putOff(b, len(b), readOff(b, len(b))+locBase)
			}
			return nil
		})
	if err != nil {
		j.info = j.info[:unitOff]
		delete(j.moved, unitOff)
		return err
	}
	// Its strings, by offsets moved past what comes before them.
	so := append([]byte(nil), strOffsets...)
	for i := hdr; i+off <= uint64(len(so)); i += off {
		putOff(so[i:], int(off), readOff(so[i:], int(off))+strBase)
	}
	if !ds.sharedStr || !j.sharedStrJoined {
		j.str = append(j.str, str...)
		if ds.sharedStr {
			j.sharedStrJoined, j.sharedStrAt = true, strBase
		}
	}
	j.strOffsets = append(j.strOffsets, so...)
	j.loclists = append(j.loclists, loclists...)
	j.rnglists = append(j.rnglists, rnglists...)
	return nil
}

// appendAbbrevTable appends to out a copy of the abbreviation table at
// off in sec, the abbreviation code's attributes preceded by head (the
// bases, of DW_FORM_implicit_const: readers know them before the
// indexed strings that need them) and followed by tail.
func appendAbbrevTable(out, sec []byte, off, code uint64, head, tail []attrSpec) ([]byte, error) {
	if off >= uint64(len(sec)) {
		return out, formatError("abbrev", off, "offset out of range")
	}
	add := func(specs []attrSpec) {
		for _, sp := range specs {
			out = binary.AppendUvarint(out, uint64(sp.at))
			out = binary.AppendUvarint(out, uint64(sp.form))
			if sp.form == formImplicitConst {
				out = appendSLEB(out, sp.imm)
			}
		}
	}
	r := rd{b: sec, pos: int(off)}
	for !r.eof() {
		p := r.pos
		c := r.uleb()
		if c == 0 {
			return append(out, 0), nil
		}
		r.uleb() // tag
		r.u8()   // children
		out = append(out, sec[p:r.pos]...)
		if c == code {
			add(head)
		}
		for !r.eof() {
			p := r.pos
			at, form := r.uleb(), r.uleb()
			if form == formImplicitConst {
				r.sleb()
			}
			if at == 0 && form == 0 {
				if c == code {
					add(tail)
				}
				out = append(out, 0, 0)
				break
			}
			out = append(out, sec[p:r.pos]...)
		}
		if r.bad {
			break
		}
	}
	return out, formatError("abbrev", off, "truncated table")
}

// appendSLEB appends v as a signed LEB128.
func appendSLEB(out []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

// unwrapPathErr is an *os.PathError's own error (the path is said
// beside it).
func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// noteGNUSplit tells the user of DWARF 4 GNU split units, which are not
// read: their lines are there, not their functions and variables.
func (t *Table) noteGNUSplit() {
	n := 0
	for _, u := range t.units {
		if u.gnuSplit {
			n++
		}
	}
	if n > 0 {
		t.note(fmt.Sprintf("the image's DWARF is split in DWARF 4's GNU form (-gdwarf-4 -gsplit-dwarf), which vmdap does not read: the functions and variables of %d of its units are missing (their lines are not); build with DWARF 5", n))
	}
}
