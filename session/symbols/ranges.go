package symbols

// Address ranges and location lists: DWARF 5 §2.17.3 (.debug_rnglists),
// §2.6.2 (.debug_loclists), and their DWARF 2–4 forms (.debug_ranges,
// .debug_loc).

// maxListEntries bounds one range or location list, so a crafted
// section cannot make a decoder loop for long.
const maxListEntries = 1 << 16

// rangesOf decodes a DW_AT_ranges value of unit u into [low, high) pairs.
func (s *secs) rangesOf(v cval, u *unit) [][2]uint64 {
	if u.format.version < 5 && v.form != formRnglistx {
		return s.oldRanges(v.u, u)
	}
	off, ok := s.listOffset(v, u.rngBase, s.rnglists, u)
	if !ok {
		return nil
	}
	var out [][2]uint64
	r := rd{b: s.rnglists, pos: int(off)}
	base := u.lowPC
	as := u.format.addrSize
	for i := 0; i < maxListEntries && !r.eof(); i++ {
		switch r.u8() {
		case 0x00: // end_of_list
			return out
		case 0x01: // base_addressx
			base = s.addrx(r.uleb(), u)
		case 0x02: // startx_endx
			a, b := s.addrx(r.uleb(), u), s.addrx(r.uleb(), u)
			out = appendRange(out, a, b)
		case 0x03: // startx_length
			a := s.addrx(r.uleb(), u)
			out = appendRange(out, a, a+r.uleb())
		case 0x04: // offset_pair
			a, b := r.uleb(), r.uleb()
			out = appendRange(out, base+a, base+b)
		case 0x05: // base_address
			base = r.uN(as)
		case 0x06: // start_end
			a, b := r.uN(as), r.uN(as)
			out = appendRange(out, a, b)
		case 0x07: // start_length
			a := r.uN(as)
			out = appendRange(out, a, a+r.uleb())
		default:
			return out
		}
	}
	return out
}

func appendRange(out [][2]uint64, a, b uint64) [][2]uint64 {
	if b > a {
		out = append(out, [2]uint64{a, b})
	}
	return out
}

// oldRanges decodes a .debug_ranges list (DWARF 2–4).
func (s *secs) oldRanges(off uint64, u *unit) [][2]uint64 {
	if off >= uint64(len(s.ranges)) {
		return nil
	}
	var out [][2]uint64
	r := rd{b: s.ranges, pos: int(off)}
	as := u.format.addrSize
	maxA := ^uint64(0)
	if as == 4 {
		maxA = 0xffffffff
	}
	base := u.lowPC
	for i := 0; i < maxListEntries && !r.eof(); i++ {
		a, b := r.uN(as), r.uN(as)
		switch {
		case r.bad, a == 0 && b == 0:
			return out
		case a == maxA:
			base = b
		default:
			out = appendRange(out, base+a, base+b)
		}
	}
	return out
}

// listOffset turns a DW_FORM_sec_offset or DW_FORM_rnglistx/loclistx
// value into an offset in its list section.
func (s *secs) listOffset(v cval, base uint64, sec []byte, u *unit) (uint64, bool) {
	if v.form == formRnglistx || v.form == formLoclistx {
		if base == 0 {
			base = 12 // the first table, after its header
			if u.format.offSize == 8 {
				base = 20
			}
		}
		at, ok := entryAt(base, v.u, uint64(u.format.offSize), len(sec))
		if !ok {
			return 0, false
		}
		r := rd{b: sec, pos: int(at)}
		off := base + r.uN(u.format.offSize)
		return off, off < uint64(len(sec))
	}
	return v.u, v.u < uint64(len(sec))
}

// locEntry is one entry of a location list: the expression that holds
// in [low, high).
type locEntry struct {
	low, high uint64
	expr      []byte
}

// locList decodes a location list (DW_AT_location or DW_AT_frame_base of
// a list class) of unit u.
func (s *secs) locList(v cval, u *unit) []locEntry {
	if u.format.version < 5 && v.form != formLoclistx {
		return s.oldLocList(v.u, u)
	}
	loclists := s.loclists.bytes()
	off, ok := s.listOffset(v, u.locBase, loclists, u)
	if !ok {
		return nil
	}
	var out []locEntry
	r := rd{b: loclists, pos: int(off)}
	base := u.lowPC
	as := u.format.addrSize
	expr := func() []byte { return r.bytes(r.uleb()) }
	for i := 0; i < maxListEntries && !r.eof(); i++ {
		switch r.u8() {
		case 0x00: // end_of_list
			return out
		case 0x01: // base_addressx
			base = s.addrx(r.uleb(), u)
		case 0x02: // startx_endx
			a, b := s.addrx(r.uleb(), u), s.addrx(r.uleb(), u)
			out = append(out, locEntry{a, b, expr()})
		case 0x03: // startx_length
			a := s.addrx(r.uleb(), u)
			n := r.uleb()
			out = append(out, locEntry{a, a + n, expr()})
		case 0x04: // offset_pair
			a, b := r.uleb(), r.uleb()
			out = append(out, locEntry{base + a, base + b, expr()})
		case 0x05: // default_location
			out = append(out, locEntry{0, ^uint64(0), expr()})
		case 0x06: // base_address
			base = r.uN(as)
		case 0x07: // start_end
			a, b := r.uN(as), r.uN(as)
			out = append(out, locEntry{a, b, expr()})
		case 0x08: // start_length
			a := r.uN(as)
			n := r.uleb()
			out = append(out, locEntry{a, a + n, expr()})
		case 0x09: // GNU view pair: two view numbers, no location
			r.uleb()
			r.uleb()
		default:
			return out
		}
	}
	return out
}

// oldLocList decodes a .debug_loc list (DWARF 2–4).
func (s *secs) oldLocList(off uint64, u *unit) []locEntry {
	loc := s.loc.bytes()
	if off >= uint64(len(loc)) {
		return nil
	}
	var out []locEntry
	r := rd{b: loc, pos: int(off)}
	as := u.format.addrSize
	maxA := ^uint64(0)
	if as == 4 {
		maxA = 0xffffffff
	}
	base := u.lowPC
	for i := 0; i < maxListEntries && !r.eof(); i++ {
		a, b := r.uN(as), r.uN(as)
		switch {
		case r.bad, a == 0 && b == 0:
			return out
		case a == maxA:
			base = b
		default:
			n := uint64(r.u16())
			out = append(out, locEntry{base + a, base + b, r.bytes(n)})
		}
	}
	return out
}

// exprAt picks the expression of a location list that holds at pc.
//
// An empty entry at pc holds when pc is the entry of its function
// (isEntry, may be nil): GCC writes the location a parameter of a call
// inlined at the very start of a function has there, before any
// instruction of it runs, as [entry, entry) (with a location view, which
// only tells it apart from what follows at the same address); gdb takes
// such an entry at the function's entry PC.
func exprAt(list []locEntry, pc uint64, isEntry func(uint64) bool) []byte {
	for _, e := range list {
		if pc >= e.low && pc < e.high || e.low == e.high && pc == e.low && isEntry != nil && isEntry(pc) {
			return e.expr
		}
	}
	return nil
}
