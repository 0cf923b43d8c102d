package symbols

import "strings"

// unit is one compile unit of .debug_info, as the index found it.
type unit struct {
	off       uint64 // of the unit header
	dieOff    uint64 // of the unit's DIE
	end       uint64 // one past the unit
	format    unitFormat
	abbrevOff uint64
	name      string
	compDir   string
	lang      uint64
	producer  string

	stmtList    uint64
	hasStmtList bool
	lowPC       uint64
	strOffBase  uint64
	addrBase    uint64
	rngBase     uint64
	locBase     uint64
	rangesAttr  cval // the unit DIE's DW_AT_ranges, if any
	highPC      cval

	files []int32 // line-table file number → file id (0: none)

	// refs: the kinds of reference out of the unit its abbreviations
	// allow (DW_FORM_ref_addr, DW_FORM_ref_sig8): such a unit is decoded
	// with what it refers to (typeunits.go).
	refs unitRefs
	// gnuSplit: a DWARF 4 skeleton of GNU's split DWARF (its DIE names a
	// .dwo by DW_AT_GNU_dwo_name), which is not read (split.go).
	gnuSplit bool
}

// cval is an attribute value that is a number: an address, constant,
// offset or reference, with its form.
type cval struct {
	u    uint64
	form uint32
	ok   bool
}

func (v attrVal) c() cval { return cval{v.u, v.form, v.ok} }

// attrVal is one decoded attribute value.
type attrVal struct {
	form uint32
	u    uint64 // constants, addresses, offsets, references (absolute)
	s    int64  // DW_FORM_sdata, implicit_const
	b    []byte // blocks, exprloc, strings
	ok   bool
}

// walkUnits lists the units of .debug_info from their headers alone: the
// compile (and partial) units, and apart the type units of DWARF 5.
func walkUnits(info []byte) ([]*unit, []tunit, error) {
	var out []*unit
	var tus []tunit
	r := rd{b: info}
	for r.pos < len(info) {
		start := r.pos
		n, is64 := r.unitLength()
		if r.bad {
			return out, tus, formatError("info", uint64(start), "truncated unit header")
		}
		end := uint64(r.pos) + n
		if n == 0 || end > uint64(len(info)) {
			return out, tus, formatError("info", uint64(start), "unit length out of range")
		}
		u := &unit{off: uint64(start), end: end}
		u.format.offSize = 4
		if is64 {
			u.format.offSize = 8
		}
		ver := int(r.u16())
		u.format.version = ver
		var abbrevOff uint64
		skipUnit := false
		switch {
		case ver >= 2 && ver <= 4:
			abbrevOff = r.uN(u.format.offSize)
			u.format.addrSize = int(r.u8())
		case ver == 5:
			ut := r.u8()
			u.format.addrSize = int(r.u8())
			abbrevOff = r.uN(u.format.offSize)
			switch ut {
			case 1, 3: // compile, partial
			case 4, 5: // skeleton, split_compile
				r.u64()
			case 2: // type: indexed apart (typeunits.go)
				sig := r.u64()
				typeOff := r.uN(u.format.offSize)
				tu := tunit{off: uint64(start), dieOff: uint64(r.pos), end: end, typeOff: uint64(start) + typeOff,
					sig: sig, format: u.format, abbrevOff: abbrevOff}
				if !r.bad && (u.format.addrSize == 4 || u.format.addrSize == 8) && tu.typeOff >= tu.dieOff && tu.typeOff < end {
					tus = append(tus, tu)
				}
				skipUnit = true
			default: // split type units and the rest: not indexed
				skipUnit = true
			}
		default:
			skipUnit = true
		}
		if u.format.addrSize != 4 && u.format.addrSize != 8 && !skipUnit {
			return out, tus, formatError("info", uint64(start), "unsupported address size")
		}
		u.dieOff = uint64(r.pos)
		u.abbrevOff = abbrevOff
		if !skipUnit && !r.bad {
			out = append(out, u)
		}
		r.pos = int(end)
	}
	return out, tus, nil
}

// Optimized reports an image with code compiled with optimisation (any
// of its units), as its DW_AT_producer flags say.
func (t *Table) Optimized() bool {
	for i := range t.units {
		if t.units[i].optimized() {
			return true
		}
	}
	return false
}

// optimized reports a unit compiled with optimisation, from the flags GCC
// and clang record in DW_AT_producer (the last -O wins; -O0 is none).
func (u *unit) optimized() bool {
	p := u.producer
	opt := false
	for {
		i := strings.Index(p, " -O")
		if i < 0 {
			return opt
		}
		p = p[i+3:]
		opt = !strings.HasPrefix(p, "0")
	}
}
