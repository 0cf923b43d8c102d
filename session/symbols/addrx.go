package symbols

// Operations whose operands point into the unit, rewritten when an
// expression is read so that its evaluation needs nothing from the unit:
//
//   - DWARF 5's indexed operands: DW_OP_addrx and DW_OP_constx (and their
//     GNU split-DWARF forerunners DW_OP_GNU_addr_index and
//     DW_OP_GNU_const_index) name an entry of the unit's table in
//     .debug_addr (at its DW_AT_addr_base) instead of holding the value.
//     clang writes every global's location so (DW_OP_addrx 0x2), and
//     call-site values that are addresses; GCC writes DW_OP_addr. They
//     become DW_OP_addr and DW_OP_const4u/const8u.
//   - DWARF 5's typed stack: DW_OP_convert and DW_OP_reinterpret (and
//     GCC's DW_OP_GNU_ forms) name a base type DIE of the unit. clang
//     writes them for a part of a value held narrower than its register
//     (a union's half in the low 16 bits of a 32-bit argument:
//     DW_OP_breg4 0, DW_OP_constu 0xffffffff, DW_OP_and, DW_OP_convert
//     u32, DW_OP_convert u16, DW_OP_stack_value, DW_OP_piece 2). A
//     conversion to a base type narrower than an address becomes the
//     generic operations that truncate (and sign-extend, for a signed
//     type) the value to its size; DW_OP_regval_type and
//     DW_OP_deref_type become DW_OP_bregx 0 and DW_OP_deref_size with
//     that conversion, DW_OP_const_type DW_OP_const8u.

const (
	opAddrx         = 0xa1
	opConstx        = 0xa2
	opGNUAddrIndex  = 0xfb
	opGNUConstIndex = 0xfc

	opConstType      = 0xa4
	opRegvalType     = 0xa5
	opDerefType      = 0xa6
	opConvert        = 0xa8
	opReinterpret    = 0xa9
	opGNUConstType   = 0xf4
	opGNURegvalType  = 0xf5
	opGNUDerefType   = 0xf6
	opGNUConvert     = 0xf7
	opGNUReinterpret = 0xf9

	atByteSizeRaw = 0x0b
)

// Operations that name a DIE by its offset in .debug_info, moved with a
// split unit joined to the image's (split.go).
const (
	opCallRef          = 0x9a
	opGNUVariableValue = 0xfd
)

// resolveIndexed returns expr with its indexed operands replaced (see
// above), or expr itself when it has none or cannot be rewritten: an
// operation it does not know the operands of, or a branch (DW_OP_skip,
// DW_OP_bra, whose byte offsets the longer operands would move) in an
// expression that has indexed operands; such an expression's evaluation
// reports the operation as unsupported.
func (t *Table) resolveIndexed(expr []byte, u *unit) []byte {
	if u == nil || !hasIndexedOp(expr) && t.splitRefs[u.off] == 0 {
		return expr
	}
	out, ok := t.rewriteIndexed(expr, u, 0)
	if !ok {
		return expr
	}
	return out
}

// hasIndexedOp is a quick filter: false when no byte of expr is an
// indexed operation's opcode (true may be an operand byte).
func hasIndexedOp(expr []byte) bool {
	for _, c := range expr {
		switch c {
		case opAddrx, opConstx, opGNUAddrIndex, opGNUConstIndex, opConstType, opRegvalType, opDerefType, opConvert,
			opReinterpret, opGNUConstType, opGNURegvalType, opGNUDerefType, opGNUConvert, opGNUReinterpret:
			return true
		}
	}
	return false
}

func (t *Table) rewriteIndexed(expr []byte, u *unit, depth int) ([]byte, bool) {
	if depth > 4 {
		return nil, false
	}
	as := u.format.addrSize
	if as != 4 && as != 8 {
		as = 8
	}
	refSize := u.format.offSize
	if u.format.version == 2 {
		refSize = as
	}
	var out []byte
	changed, branches := false, false
	b := expr
	for len(b) > 0 {
		op := b[0]
		start := b
		b = b[1:]
		switch op {
		case opAddrx, opGNUAddrIndex, opConstx, opGNUConstIndex:
			i, ok := ulebOK(&b)
			if !ok {
				return nil, false
			}
			v := t.sec.addrx(i, u)
			if op == opAddrx || op == opGNUAddrIndex {
				out = append(out, opAddr) // slid as GCC's DW_OP_addr is (slideAddrOp)
			} else if as == 4 {
				out = append(out, 0x0c) // DW_OP_const4u
			} else {
				out = append(out, 0x0e) // DW_OP_const8u
			}
			for k := 0; k < as; k++ {
				out = append(out, byte(v>>(8*k)))
			}
			changed = true
			continue
		case opEntryValue, opGNUEntryValue:
			n, ok := ulebOK(&b)
			if !ok || n > uint64(len(b)) {
				return nil, false
			}
			blk := b[:n]
			inner, ok := t.rewriteIndexed(blk, u, depth+1)
			if !ok {
				return nil, false
			}
			b = b[n:]
			changed = changed || string(inner) != string(blk)
			out = append(out, op)
			out = appendUleb(out, uint64(len(inner)))
			out = append(out, inner...)
			continue
		case opConvert, opReinterpret, opGNUConvert, opGNUReinterpret:
			ty, ok := ulebOK(&b)
			if !ok {
				return nil, false
			}
			if out, ok = t.convertTo(out, ty, u, as); !ok {
				return nil, false
			}
			changed = true
			continue
		case opRegvalType, opGNURegvalType:
			reg, ok1 := ulebOK(&b)
			ty, ok2 := ulebOK(&b)
			if !ok1 || !ok2 {
				return nil, false
			}
			out = append(out, opBregx)
			out = appendUleb(out, reg)
			out = append(out, 0) // offset 0
			var ok bool
			if out, ok = t.convertTo(out, ty, u, as); !ok {
				return nil, false
			}
			changed = true
			continue
		case opDerefType, opGNUDerefType:
			if len(b) < 1 {
				return nil, false
			}
			n := b[0]
			b = b[1:]
			ty, ok := ulebOK(&b)
			if !ok || n == 0 || int(n) > as {
				return nil, false
			}
			out = append(out, opDerefSize, n)
			if out, ok = t.convertTo(out, ty, u, as); !ok {
				return nil, false
			}
			changed = true
			continue
		case opConstType, opGNUConstType:
			ty, ok := ulebOK(&b)
			if !ok || len(b) < 1 || int(b[0]) >= len(b) || b[0] > 8 {
				return nil, false
			}
			n := int(b[0])
			v := uintN(b[1:], n)
			b = b[1+n:]
			out = append(out, 0x0e) // DW_OP_const8u
			for k := 0; k < 8; k++ {
				out = append(out, byte(v>>(8*k)))
			}
			if out, ok = t.convertTo(out, ty, u, as); !ok {
				return nil, false
			}
			changed = true
			continue
		case opImplicitPointer, opGNUImplicitPointer, opCallRef, opGNUVariableValue:
			// A DIE by its offset in the section: a split unit's offsets
			// are in its .dwo's, and the unit moved (split.go).
			if d := t.splitRefs[u.off]; d != 0 {
				if len(b) < refSize {
					return nil, false
				}
				out = append(out, op)
				v := uintN(b, refSize) + d
				for k := 0; k < refSize; k++ {
					out = append(out, byte(v>>(8*k)))
				}
				b = b[refSize:]
				changed = true
				if op == opImplicitPointer || op == opGNUImplicitPointer {
					n, ok := operandLen(opConsts, b, as, refSize) // (the SLEB offset, as DW_OP_consts's)
					if !ok {
						return nil, false
					}
					out = append(out, b[:n]...)
					b = b[n:]
				}
				continue
			}
		case opSkip, opBra:
			branches = true
		}
		n, ok := operandLen(op, b, as, refSize)
		if !ok {
			return nil, false
		}
		b = b[n:]
		out = append(out, start[:1+n]...)
	}
	if !changed {
		return expr, true
	}
	if branches {
		return nil, false
	}
	return out, true
}

// convertTo appends the generic operations that convert the value on
// top of the stack to the base type at unit offset ty (0: the generic
// type): truncation to its size, then sign extension for a signed type.
func (t *Table) convertTo(out []byte, ty uint64, u *unit, addrSize int) ([]byte, bool) {
	if ty == 0 {
		return out, true
	}
	size, signed, ok := t.baseType(u.off+ty, u)
	if !ok {
		return nil, false
	}
	if size <= 0 || size >= addrSize {
		return out, true
	}
	mask := uint64(1)<<(8*size) - 1
	out = append(out, opConstu)
	out = appendUleb(out, mask)
	out = append(out, opAnd)
	if signed {
		sign := uint64(1) << (8*size - 1)
		out = append(out, opConstu)
		out = appendUleb(out, sign)
		out = append(out, opXor, opConstu)
		out = appendUleb(out, sign)
		out = append(out, opMinus)
	}
	return out, true
}

// baseType reads the size and signedness of the base type DIE at
// absolute offset off in unit u; false for a floating-point type (the
// rewrite leaves such a conversion to be reported as unsupported).
func (t *Table) baseType(off uint64, u *unit) (size int, signed, ok bool) {
	if off < u.dieOff || off >= u.end || u.end > uint64(len(t.sec.info)) {
		return 0, false, false
	}
	at, err := t.abbrevs(nil, u)
	if err != nil {
		return 0, false, false
	}
	r := rd{b: t.sec.info[:u.end], pos: int(off)}
	a := at.get(r.uleb())
	if a == nil || a.tag != tagBaseType {
		return 0, false, false
	}
	size = -1
	for i := range a.attrs {
		sp := &a.attrs[i]
		switch sp.at {
		case atByteSizeRaw:
			size = int(t.sec.readCval(&r, sp, u).u)
		case atEncoding:
			switch e := t.sec.readCval(&r, sp, u).u; e {
			case 0x03, 0x04, 0x0f: // DW_ATE_complex_float, DW_ATE_float, DW_ATE_decimal_float
				return 0, false, false // a conversion to or from a float is not a truncation
			case 0x05, 0x06, 0x0d: // DW_ATE_signed, DW_ATE_signed_char, DW_ATE_signed_fixed
				signed = true
			}
		default:
			if sp.fixed >= 0 {
				r.skip(uint64(sp.fixed))
			} else if !r.skipForm(sp.form, u.format) {
				return 0, false, false
			}
		}
		if r.bad {
			return 0, false, false
		}
	}
	return size, signed, size >= 0
}

// operandLen returns how many bytes of b are op's operands (DWARF 5
// §7.7.1, and the GNU operations GCC writes).
func operandLen(op byte, b []byte, addrSize, refSize int) (int, bool) {
	fixed := -1
	switch {
	case op == opAddr:
		fixed = addrSize
	case op == 0x08 || op == 0x09 || op == opPick || op == opDerefSize || op == 0x95: // const1u/s, pick, deref_size, xderef_size
		fixed = 1
	case op == 0x0a || op == 0x0b || op == opBra || op == opSkip || op == 0x98: // const2u/s, call2
		fixed = 2
	case op == 0x0c || op == 0x0d || op == 0x99 || op == opGNUParameterRef: // const4u/s, call4
		fixed = 4
	case op == 0x0e || op == 0x0f:
		fixed = 8
	case op == 0x9a: // call_ref
		fixed = refSize
	case op == opDeref || op >= opDup && op <= opPlus && op != opPick || op >= opShl && op <= opXor ||
		op >= opEq && op <= opNe || op >= opLit0 && op < opBreg0 || op == opNop || op == 0x97 || op == 0x9b ||
		op == opCallFrameCFA || op == opStackValue || op == 0xe0 || op == 0xf0:
		fixed = 0
	}
	if fixed >= 0 {
		return fixed, fixed <= len(b)
	}
	r := b
	ul := func() bool { _, ok := ulebOK(&r); return ok }
	sl := func() bool { _, ok := slebOK(&r); return ok }
	var ok bool
	switch {
	case op == opConstu || op == opPlusUconst || op == opRegx || op == opPiece || op == 0xa8 || op == 0xa9 ||
		op == 0xf7 || op == 0xf9: // convert, reinterpret
		ok = ul()
	case op == opConsts || op == opFbreg || op >= opBreg0 && op < opBreg0+32:
		ok = sl()
	case op == opBregx:
		ok = ul() && sl()
	case op == opBitPiece || op == 0xa5 || op == 0xf5: // regval_type
		ok = ul() && ul()
	case op == opImplicitValue:
		n, k := ulebOK(&r)
		ok = k && n <= uint64(len(r))
		if ok {
			r = r[n:]
		}
	case op == opImplicitPointer || op == opGNUImplicitPointer:
		ok = refSize <= len(r)
		if ok {
			r = r[refSize:]
			ok = sl()
		}
	case op == 0xa4 || op == 0xf4: // const_type: type, size byte, value
		ok = ul() && len(r) >= 1 && int(r[0]) < len(r)
		if ok {
			r = r[1+int(r[0]):]
		}
	case op == 0xa6 || op == 0xa7 || op == 0xf6: // deref_type, xderef_type
		ok = len(r) >= 1
		if ok {
			r = r[1:]
			ok = ul()
		}
	default:
		return 0, false
	}
	return len(b) - len(r), ok
}

func appendUleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}
