package symbols

// DWARF 5's indexed operands in expressions: DW_OP_addrx and
// DW_OP_constx (and their GNU split-DWARF forerunners DW_OP_GNU_addr_index
// and DW_OP_GNU_const_index) name an entry of the unit's table in
// .debug_addr (at its DW_AT_addr_base) instead of holding the value. clang
// writes every global's location so (DW_OP_addrx 0x2), and call-site
// values that are addresses; GCC writes DW_OP_addr. An expression read
// from a unit has these operands replaced by the value they name, as
// DW_OP_addr (slid with the image) and DW_OP_const4u/const8u, so that its
// evaluation needs nothing from the unit.

const (
	opAddrx         = 0xa1
	opConstx        = 0xa2
	opGNUAddrIndex  = 0xfb
	opGNUConstIndex = 0xfc
)

// resolveIndexed returns expr with its indexed operands replaced (see
// above), or expr itself when it has none or cannot be rewritten: an
// operation it does not know the operands of, or a branch (DW_OP_skip,
// DW_OP_bra, whose byte offsets the longer operands would move) in an
// expression that has indexed operands; such an expression's evaluation
// reports the operation as unsupported.
func (t *Table) resolveIndexed(expr []byte, u *unit) []byte {
	if u == nil || !hasIndexedOp(expr) {
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
		if c == opAddrx || c == opConstx || c == opGNUAddrIndex || c == opGNUConstIndex {
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
				out = append(out, opAddr)
				v += t.slide
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
