package symbols

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
)

// dwz's supplementary files. dwz -m (Fedora's and RHEL's debuginfo
// packages, /usr/lib/debug/.dwz/…) moves what several images' DWARF
// shares into one supplementary file that each image's
// .gnu_debugaltlink section names (a path and the file's build ID); the
// image's DIEs then refer to the file's DIEs and strings by
// DW_FORM_GNU_ref_alt and DW_FORM_GNU_strp_alt, and its units import the
// file's partial units (DW_TAG_imported_unit). Neither form means
// anything to debug/dwarf, and the index would read such a name as "".
//
// An image with a supplementary file is read as one: its .debug_info,
// .debug_abbrev, .debug_str and .debug_line are copies followed by the
// supplementary file's, each alternate reference rewritten as the
// ordinary form of the same size (DW_FORM_ref_addr, DW_FORM_strp) to the
// same DIE or string in the joined section, and the supplementary file's
// own string, DIE and line table offsets moved by what comes before
// them. Its partial units are then units of the image like dwz's
// partial units within one file, decoded through the view of all of
// .debug_info as any unit that refers into another. The copies cost the
// image's debug sections' size in memory, for these images only.

const (
	formRefAltStd  = formRefAddr // what a DW_FORM_GNU_ref_alt becomes
	formStrpAltStd = formStrp    // what a DW_FORM_GNU_strp_alt becomes
)

// altLink reads .gnu_debugaltlink: the supplementary file's name (a
// path) and its build ID.
func altLink(f *elf.File) (name string, id []byte, ok bool) {
	s := f.Section(".gnu_debugaltlink")
	if s == nil || s.Type == elf.SHT_NOBITS || s.Size > 4096 {
		return "", nil, false
	}
	b, err := s.Data()
	if err != nil {
		return "", nil, false
	}
	i := bytes.IndexByte(b, 0)
	if i <= 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

// findSup looks for the supplementary file of the image at imgPath as gdb
// does: at the link's path (relative to the image's folder), then by
// build ID in the debug directories. It returns "" when none is there
// with that build ID, and the paths tried.
func findSup(imgPath, name string, id []byte, dirs []string) (string, []string) {
	var cands []string
	if filepath.IsAbs(name) {
		cands = append(cands, name)
	} else if imgPath != "" {
		cands = append(cands, filepath.Join(filepath.Dir(imgPath), name))
	}
	if len(id) >= 2 {
		h := fmt.Sprintf("%x", id)
		for _, d := range dirs {
			cands = append(cands, filepath.Join(d, ".build-id", h[:2], h[2:]+".debug"))
		}
	}
	var looked []string
	for _, c := range cands {
		looked = append(looked, c)
		f, err := openELF(c)
		if err != nil {
			continue
		}
		ok := len(id) == 0 || bytes.Equal(buildID(f), id)
		f.Close()
		if ok {
			return c, looked
		}
	}
	return "", looked
}

// supSecs are the sections of a supplementary file that are joined.
type supSecs struct{ info, abbrev, str, line []byte }

// errAltForm: a form the join does not handle (it is then not made).
var errAltForm = errors.New("a form the supplementary file's join does not handle")

// joinSup returns the image's .debug_info, .debug_abbrev, .debug_str and
// .debug_line joined with the supplementary file's (see above).
func joinSup(s *secs, sup supSecs) (info, abbrev, str, line []byte, err error) {
	infoBase, strBase, lineBase := uint64(len(s.info)), uint64(len(s.str)), uint64(len(s.line))
	// The image's abbreviations, the alternate forms made standard: the
	// forms' codes are shorter, so the tables move.
	abbrev, moved, err := standardAbbrevs(s.abbrev)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	abbrevBase := uint64(len(abbrev))
	abbrev = append(abbrev, sup.abbrev...)

	info = make([]byte, 0, len(s.info)+len(sup.info))
	info = append(info, s.info...)
	info = append(info, sup.info...)
	main, supInfo := info[:infoBase], info[infoBase:]
	err = eachUnitValue(main, s.abbrev, func(h unitHeader) (uint64, bool) {
		off, ok := moved[h.abbrevOff]
		return off, ok
	}, func(b []byte, form uint32, at uint32, f unitFormat) error {
		switch form {
		case formGNURefAlt:
			putOff(b, f.offSize, readOff(b, f.offSize)+infoBase)
		case formGNUStrpAlt:
			putOff(b, f.offSize, readOff(b, f.offSize)+strBase)
		case formRefSup4, formRefSup8, formStrpSup:
			return errAltForm // (DWARF 5's own supplementary files: not dwz's)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	err = eachUnitValue(supInfo, sup.abbrev, func(h unitHeader) (uint64, bool) {
		return h.abbrevOff + abbrevBase, true
	}, func(b []byte, form uint32, at uint32, f unitFormat) error {
		switch {
		case form == formStrp:
			putOff(b, f.offSize, readOff(b, f.offSize)+strBase)
		case form == formRefAddr:
			n := f.offSize
			if f.version == 2 {
				n = f.addrSize
			}
			putOff(b, n, readOff(b, n)+infoBase)
		case at == atStmtList && (form == formSecOffset || form == formData4 || form == formData8):
			putOff(b, len(b), readOff(b, len(b))+lineBase)
		case form == formLineStrp, form == formGNURefAlt, form == formGNUStrpAlt, form == formSecOffset,
			form == formStrx, form == formStrx1, form == formStrx2, form == formStrx3, form == formStrx4,
			form == formLoclistx, form == formRnglistx, form == formRefSup4, form == formRefSup8, form == formStrpSup:
			// (a partial unit of shared types has none of these: their
			// sections are not joined)
			return errAltForm
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	str = append(append(make([]byte, 0, len(s.str)+len(sup.str)), s.str...), sup.str...)
	line = append(append(make([]byte, 0, len(s.line)+len(sup.line)), s.line...), sup.line...)
	return info, abbrev, str, line, nil
}

func readOff(b []byte, n int) uint64 {
	switch n {
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	case 8:
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func putOff(b []byte, n int, v uint64) {
	switch n {
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	case 8:
		binary.LittleEndian.PutUint64(b, v)
	}
}

// standardAbbrevs copies .debug_abbrev with DW_FORM_GNU_ref_alt and
// DW_FORM_GNU_strp_alt written as DW_FORM_ref_addr and DW_FORM_strp, and
// says where each table moved (by its old offset).
func standardAbbrevs(sec []byte) ([]byte, map[uint64]uint64, error) {
	out := make([]byte, 0, len(sec))
	moved := map[uint64]uint64{}
	r := rd{b: sec}
	start := true
	raw := func(from int) { out = append(out, sec[from:r.pos]...) } // (what is not rewritten)
	for !r.eof() {
		if start {
			moved[uint64(r.pos)] = uint64(len(out))
			start = false
		}
		p := r.pos
		code := r.uleb()
		if code == 0 {
			raw(p)
			start = true // the next table
			continue
		}
		r.uleb() // tag
		r.u8()   // children
		raw(p)
		for !r.eof() {
			p := r.pos
			at := r.uleb()
			raw(p)
			form := r.uleb()
			switch form {
			case formGNURefAlt:
				form = formRefAltStd
			case formGNUStrpAlt:
				form = formStrpAltStd
			}
			out = binary.AppendUvarint(out, form) // (ULEB128)
			if form == formImplicitConst {
				p := r.pos
				r.sleb()
				raw(p)
			}
			if at == 0 && form == 0 {
				break
			}
		}
		if r.bad {
			return nil, nil, formatError("abbrev", uint64(r.pos), "truncated table")
		}
	}
	return out, moved, nil
}

// unitHeader is what eachUnitValue reads of a unit's header.
type unitHeader struct {
	off, abbrevOff uint64
	unitType       uint8  // DWARF 5's (0 before)
	dwoID          uint64 // of a skeleton or split unit
	abbrevAt       int    // where the abbreviation offset is, in the section
	format         unitFormat
	dieOff, end    uint64
}

// eachUnitValue calls fn on the bytes of every attribute value of a fixed
// size in every unit of info (which it may rewrite), with the unit's
// abbreviations at their offset in abbrev; abbrevAt says the offset each
// unit's header is rewritten to name (ok false: the unit is left as it
// is).
func eachUnitValue(info, abbrev []byte, abbrevAt func(unitHeader) (uint64, bool),
	fn func(b []byte, form, at uint32, f unitFormat) error) error {
	r := rd{b: info}
	var tab *abbrevTable
	for r.pos < len(info) {
		h, err := readUnitHeader(&r)
		if err != nil {
			return err
		}
		if tab, err = parseAbbrevs(tab, abbrev, h.abbrevOff, h.format); err != nil {
			return err
		}
		if to, ok := abbrevAt(h); ok {
			putOff(info[h.abbrevAt:], h.format.offSize, to)
		}
		d := rd{b: info[:h.end], pos: int(h.dieOff)}
		for !d.eof() {
			code := d.uleb()
			if code == 0 {
				continue
			}
			a := tab.get(code)
			if a == nil {
				return formatError("info", uint64(d.pos), "unknown abbreviation code")
			}
			for _, sp := range a.attrs {
				form := sp.form
				if form == formIndirect {
					form = uint32(d.uleb())
				}
				if n := h.format.formSize(form); n > 0 {
					if d.pos+n > len(d.b) {
						return formatError("info", uint64(d.pos), "truncated DIE")
					}
					if err := fn(info[d.pos:d.pos+n], form, sp.at, h.format); err != nil {
						return err
					}
				}
				if !d.skipForm(form, h.format) {
					return errAltForm
				}
			}
			if d.bad {
				return formatError("info", uint64(d.pos), "truncated DIE")
			}
		}
		r.pos = int(h.end)
	}
	return nil
}

// readUnitHeader reads the header of the unit at r's cursor (DWARF 2–5,
// any unit type).
func readUnitHeader(r *rd) (unitHeader, error) {
	start := r.pos
	n, is64 := r.unitLength()
	end := uint64(r.pos) + n
	if r.bad || n == 0 || n > uint64(len(r.b)) || end > uint64(len(r.b)) {
		return unitHeader{}, formatError("info", uint64(start), "unit length out of range")
	}
	h := unitHeader{off: uint64(start), end: end}
	h.format.offSize = 4
	if is64 {
		h.format.offSize = 8
	}
	h.format.version = int(r.u16())
	switch v := h.format.version; {
	case v >= 2 && v <= 4:
		h.abbrevAt = r.pos
		h.abbrevOff = r.uN(h.format.offSize)
		h.format.addrSize = int(r.u8())
	case v == 5:
		ut := r.u8()
		h.unitType = ut
		h.format.addrSize = int(r.u8())
		h.abbrevAt = r.pos
		h.abbrevOff = r.uN(h.format.offSize)
		switch ut {
		case 2, 6: // type, split type: signature and type offset
			r.u64()
			r.uN(h.format.offSize)
		case 4, 5: // skeleton, split compile: the DWO id
			h.dwoID = r.u64()
		}
	default:
		return unitHeader{}, formatError("info", uint64(start), "unsupported DWARF version")
	}
	if r.bad || h.format.addrSize != 4 && h.format.addrSize != 8 {
		return unitHeader{}, formatError("info", uint64(start), "bad unit header")
	}
	h.dieOff = uint64(r.pos)
	if h.dieOff > h.end {
		return unitHeader{}, formatError("info", uint64(start), "unit header past its end")
	}
	return h, nil
}

// readSup joins the image's DWARF with its supplementary file's (see
// above), or notes why it could not: the DWARF is then left unread, as
// gdb leaves it (its names and types are the file's), and the ELF
// symbols name the functions.
func (t *Table) readSup(name string, id []byte) {
	dirs := t.debugDirs
	if dirs == nil {
		dirs = DefaultDebugDirs
	}
	path, looked := findSup(t.dimg.path, name, id, dirs)
	if path == "" {
		t.sec.info = nil
		t.note(fmt.Sprintf("the debug information is in part in dwz's supplementary file %s, which is not in %s: it is not read (the ELF symbols name the functions)", name, quoteList(looked)))
		return
	}
	sup, err := openImage(path)
	if err != nil {
		t.sec.info = nil
		t.note(fmt.Sprintf("dwz's supplementary file %s: %v: the debug information is not read", path, err))
		return
	}
	defer sup.release() // (what is needed is copied)
	var ss supSecs
	ss.info, _ = sup.section(".debug_info")
	ss.abbrev, _ = sup.section(".debug_abbrev")
	ss.str, _ = sup.section(".debug_str")
	ss.line, _ = sup.section(".debug_line")
	s := &t.sec
	info, abbrev, str, line, err := joinSup(s, ss)
	if err != nil {
		t.sec.info = nil
		t.note(fmt.Sprintf("dwz's supplementary file %s cannot be read with the image: %v: the debug information is not read", path, err))
		return
	}
	s.info, s.abbrev, s.str, s.line = info, abbrev, str, line
	s.strS = string(str)
	s.infoOff = -1     // (a copy: no pages of the mapping to give back)
	t.debugNames = nil // (it knows the image's units alone)
	t.note("reading dwz's supplementary file " + path)
}

// note records something the user should hear about the image (Notes).
func (t *Table) note(msg string) { t.notes = append(t.notes, msg) }

// Notes says what about the image's debug information the user should
// know: where parts of it were read from, or why they are missing.
func (t *Table) Notes() []string { return t.notes }

func quoteList(paths []string) string {
	if len(paths) == 0 {
		return "any place looked at (none)"
	}
	out := ""
	for i, p := range paths {
		if i > 0 {
			out += ", "
		}
		out += p
	}
	return out
}
