package symbols

// secs are the debug sections an image holds (nil when absent).
type secs struct {
	info, abbrev, str, lineStr, line, addr, strOffsets []byte
	ranges, rnglists, aranges                          []byte
	types                                              []byte // DWARF 4's type units
	// loc, loclists and frame are read only when a variable or a frame
	// needs them: a compressed one is decompressed then (compress.go).
	loc, loclists, frame lazySection
	infoOff              int // file offset of .debug_info when mapped, else -1
	// strS is .debug_str as one string, copied once at open: the names
	// the index keeps are substrings of it, not a string each (a
	// kernel's 150,000 functions' names were a tenth of its scan).
	strS string
}

// strpString returns the string at off in .debug_str, n bytes long.
func (s *secs) strpString(off uint64, n int) string {
	if end := off + uint64(n); end <= uint64(len(s.strS)) && end >= off {
		return s.strS[off:end]
	}
	return string(cstrAt(s.str, off))
}

// dieName returns the DIE's name as a string.
func (s *secs) dieName(d *dieAttrs) string {
	if d.nameForm == formStrp && len(d.name) > 0 {
		return s.strpString(d.nameOff, len(d.name))
	}
	return string(d.name)
}

// readCval reads an attribute the index wants as a number (an address,
// a constant, a flag, a reference made absolute, a section offset): the
// forms GCC gives those directly, any other through readAttr.
func (s *secs) readCval(r *rd, spec *attrSpec, u *unit) cval {
	switch spec.form {
	case formRef4:
		return cval{u.off + uint64(r.u32()), formRef4, true}
	case formData4:
		return cval{uint64(r.u32()), formData4, true}
	case formData8:
		return cval{r.u64(), formData8, true}
	case formAddr:
		return cval{r.uN(u.format.addrSize), formAddr, true}
	case formData1, formFlag:
		return cval{uint64(r.u8()), spec.form, true}
	case formFlagPresent:
		return cval{1, formFlagPresent, true}
	case formSecOffset:
		return cval{r.uN(u.format.offSize), formSecOffset, true}
	}
	return s.readAttr(r, *spec, u).c()
}

// readAttr reads one attribute value of form in unit u. References are
// made absolute (section offsets); strings are resolved to their bytes.
func (s *secs) readAttr(r *rd, spec attrSpec, u *unit) attrVal {
	v := attrVal{form: spec.form, ok: true}
	f := u.format
	form := spec.form
	if form == formIndirect {
		form = uint32(r.uleb())
		v.form = form
	}
	switch form {
	case formAddr:
		v.u = r.uN(f.addrSize)
	case formData1, formFlag:
		v.u = uint64(r.u8())
	case formData2:
		v.u = uint64(r.u16())
	case formData4:
		v.u = uint64(r.u32())
	case formData8:
		v.u = r.u64()
	case formData16:
		if r.need(16) {
			v.b = r.b[r.pos : r.pos+16]
			r.pos += 16
		}
	case formSdata:
		v.s = r.sleb()
		v.u = uint64(v.s)
	case formUdata:
		v.u = r.uleb()
	case formImplicitConst:
		v.s = spec.imm
		v.u = uint64(spec.imm)
	case formFlagPresent:
		v.u = 1
	case formString:
		v.b = r.cstr()
	case formStrp, formGNUStrpAlt, formStrpSup:
		v.u = r.uN(f.offSize)
		if form == formStrp {
			v.b = cstrAt(s.str, v.u)
		}
	case formLineStrp:
		v.u = r.uN(f.offSize)
		v.b = cstrAt(s.lineStr, v.u)
	case formStrx, formGNUStrIndex, formStrx1, formStrx2, formStrx3, formStrx4:
		v.u = r.index(form)
		v.b = s.strx(v.u, u)
	case formAddrx, formGNUAddrIndex, formAddrx1, formAddrx2, formAddrx3, formAddrx4:
		i := r.index(form)
		v.s = int64(i) // the index, for a base read later
		v.u = s.addrx(i, u)
	case formRef1:
		v.u = u.off + uint64(r.u8())
	case formRef2:
		v.u = u.off + uint64(r.u16())
	case formRef4:
		v.u = u.off + uint64(r.u32())
	case formRef8:
		v.u = u.off + r.u64()
	case formRefUdata:
		v.u = u.off + r.uleb()
	case formRefAddr:
		if f.version == 2 {
			v.u = r.uN(f.addrSize)
		} else {
			v.u = r.uN(f.offSize)
		}
	case formRefSig8, formRefSup8:
		v.u = r.u64()
		v.ok = false // not resolvable here
	case formRefSup4:
		v.u = uint64(r.u32())
		v.ok = false
	case formGNURefAlt:
		v.u = r.uN(f.offSize)
		v.ok = false
	case formSecOffset:
		v.u = r.uN(f.offSize)
	case formLoclistx, formRnglistx:
		v.u = r.uleb()
	case formBlock1:
		n := uint64(r.u8())
		v.b = r.bytes(n)
	case formBlock2:
		n := uint64(r.u16())
		v.b = r.bytes(n)
	case formBlock4:
		n := uint64(r.u32())
		v.b = r.bytes(n)
	case formBlock, formExprloc:
		v.b = r.bytes(r.uleb())
	default:
		r.bad = true
		v.ok = false
	}
	return v
}

// index reads the operand of a strx or addrx form.
func (r *rd) index(form uint32) uint64 {
	switch form {
	case formStrx1, formAddrx1:
		return uint64(r.u8())
	case formStrx2, formAddrx2:
		return uint64(r.u16())
	case formStrx3, formAddrx3:
		return uint64(r.u24())
	case formStrx4, formAddrx4:
		return uint64(r.u32())
	}
	return r.uleb()
}

func (r *rd) bytes(n uint64) []byte {
	if n > uint64(len(r.b)-r.pos) {
		r.bad = true
		r.pos = len(r.b)
		return nil
	}
	b := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b
}

// strx resolves a DW_FORM_strx index through .debug_str_offsets.
func (s *secs) strx(i uint64, u *unit) []byte {
	base := u.strOffBase
	if base == 0 && u.format.version >= 5 {
		base = 8 // the first unit's table, after its header
	}
	off, ok := entryAt(base, i, uint64(u.format.offSize), len(s.strOffsets))
	if !ok {
		return nil
	}
	r := rd{b: s.strOffsets, pos: int(off)}
	return cstrAt(s.str, r.uN(u.format.offSize))
}

// addrx resolves a DW_FORM_addrx index through .debug_addr.
func (s *secs) addrx(i uint64, u *unit) uint64 {
	base := u.addrBase
	if base == 0 && u.format.version >= 5 {
		base = 8
	}
	n := uint64(u.format.addrSize)
	off, ok := entryAt(base, i, n, len(s.addr))
	if !ok {
		return 0
	}
	r := rd{b: s.addr, pos: int(off)}
	return r.uN(int(n))
}

// entryAt returns the offset of entry i, of n bytes each, of a table at
// base in a section of size bytes, when all of the entry is inside it
// (no sum or product wraps around).
func entryAt(base, i, n uint64, size int) (uint64, bool) {
	sz := uint64(size)
	if n == 0 || base > sz || i > (sz-base)/n {
		return 0, false
	}
	off := base + i*n
	return off, n <= sz-off
}

// highPC turns DW_AT_high_pc into an address: a constant form is an
// offset from low.
func highPC(v cval, low uint64) uint64 {
	switch v.form {
	case formAddr, formAddrx, formAddrx1, formAddrx2, formAddrx3, formAddrx4, formGNUAddrIndex:
		return v.u
	}
	return low + v.u
}
