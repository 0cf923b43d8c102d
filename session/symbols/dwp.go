package symbols

import (
	"encoding/binary"
	"os"
)

// DWARF 5 packages (.dwp, as llvm-dwp makes from an image's .dwo files):
// one file beside the image ("<image>.dwp") holding all its split units.
// Each section is the concatenation of the units' contributions (the
// strings are shared), and .debug_cu_index says, by DWO id, where each
// unit's contribution to each section is (DWARF 5 §7.3.5).

// dwp is an opened package.
type dwp struct {
	path        string
	img         *image
	secs        dwoSecs           // the whole sections
	cols        []uint32          // the index's section ids (DW_SECT_*)
	rows        map[uint64]uint32 // DWO id → row (1-based)
	offs, sizes []byte            // the offset and size tables
}

// DW_SECT_* ids of the index's columns.
const (
	sectInfo       = 1
	sectAbbrev     = 3
	sectLoclists   = 5
	sectStrOffsets = 6
	sectRnglists   = 8
)

// openDWP opens the package beside the image, or returns nil.
func (t *Table) openDWP() *dwp {
	p := t.dimg.path
	if p == "" {
		return nil
	}
	p += ".dwp"
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	img, err := openImage(p)
	if err != nil {
		t.note("the split DWARF package " + p + ": " + err.Error())
		return nil
	}
	d := &dwp{path: p, img: img}
	d.secs.info, _ = img.section(".debug_info.dwo")
	d.secs.abbrev, _ = img.section(".debug_abbrev.dwo")
	d.secs.str, _ = img.section(".debug_str.dwo")
	d.secs.strOffsets, _ = img.section(".debug_str_offsets.dwo")
	d.secs.loclists, _ = img.section(".debug_loclists.dwo")
	d.secs.rnglists, _ = img.section(".debug_rnglists.dwo")
	d.secs.sharedStr = true
	idx, _ := img.section(".debug_cu_index")
	if !d.readIndex(idx) {
		t.note("the split DWARF package " + p + " has no unit index vmdap reads (DWARF 5's .debug_cu_index)")
		img.release()
		return nil
	}
	return d
}

// readIndex reads .debug_cu_index (version 5).
func (d *dwp) readIndex(b []byte) bool {
	le := binary.LittleEndian
	if len(b) < 16 || le.Uint16(b) != 5 {
		return false
	}
	cols, units, slots := uint64(le.Uint32(b[4:])), uint64(le.Uint32(b[8:])), uint64(le.Uint32(b[12:]))
	hash := uint64(16)
	par := hash + 8*slots
	head := par + 4*slots
	offs := head + 4*cols
	sizes := offs + 4*cols*units
	end := sizes + 4*cols*units
	if cols == 0 || cols > 16 || slots > uint64(len(b)) || units > slots || end > uint64(len(b)) {
		return false
	}
	d.rows = make(map[uint64]uint32, units)
	for i := range slots {
		if row := le.Uint32(b[par+4*i:]); row != 0 && uint64(row) <= units {
			d.rows[le.Uint64(b[hash+8*i:])] = row
		}
	}
	for i := range cols {
		d.cols = append(d.cols, le.Uint32(b[head+4*i:]))
	}
	d.offs, d.sizes = b[offs:sizes], b[sizes:end]
	return true
}

// unit returns the contributions of the unit of DWO id id (false: none
// there, or no package).
func (d *dwp) unit(id uint64) (dwoSecs, bool) {
	if d == nil {
		return dwoSecs{}, false
	}
	row, ok := d.rows[id]
	if !ok {
		return dwoSecs{}, false
	}
	out := dwoSecs{str: d.secs.str, sharedStr: true}
	le := binary.LittleEndian
	for c, sect := range d.cols {
		i := (int(row)-1)*len(d.cols) + c
		off, size := uint64(le.Uint32(d.offs[4*i:])), uint64(le.Uint32(d.sizes[4*i:]))
		var whole []byte
		var dst *[]byte
		switch sect {
		case sectInfo:
			whole, dst = d.secs.info, &out.info
		case sectAbbrev:
			whole, dst = d.secs.abbrev, &out.abbrev
		case sectStrOffsets:
			whole, dst = d.secs.strOffsets, &out.strOffsets
		case sectLoclists:
			whole, dst = d.secs.loclists, &out.loclists
		case sectRnglists:
			whole, dst = d.secs.rnglists, &out.rnglists
		default:
			continue
		}
		if off > uint64(len(whole)) || size > uint64(len(whole))-off {
			return dwoSecs{}, false
		}
		*dst = whole[off : off+size : off+size]
	}
	return out, len(out.info) > 0
}
