package session

import (
	"encoding/binary"
	"errors"
	"fmt"

	"vmdap/session/symbols"
)

func (sc *frameScope) varValue(v *symbols.Var) (value, error) {
	sc.types.rust = v.Rust
	t := fromDWARF(v.Type, sc.types)
	sc.types.rust = false
	if t.kind == tArray && hasRuntimeDim(t) && sc.vlaDepth < 2 {
		sc.vlaDepth++
		t = sc.vlaType(v, t)
		sc.vlaDepth--
	}
	var fb []byte
	if sc.sc != nil {
		fb = sc.sc.FrameBase
	}
	if v.Loc == nil && v.HasConst {
		return value{typ: t, raw: padTo(v.Const, int(t.size)), name: v.Name}, nil
	}
	as := v.AddrSize
	if as == 0 {
		as = 8
	}
	sc.refSize = v.RefSize
	pl, err := symbols.Evaluate(v.Loc, fb, as, sc)
	if err != nil {
		return value{typ: t, name: v.Name}, err
	}
	switch {
	case pl.PtrTo != 0:
		return sc.syntheticPointer(t, v.Name, pl)
	case pl.Pieces:
		b, out, err := sc.pieces(pl.Parts)
		if err != nil {
			return value{typ: t, name: v.Name}, err
		}
		val := value{typ: t, raw: padTo(b, int(t.size)), name: v.Name}
		if out != nil || len(b) < int(t.size) {
			// Bytes no piece describes are optimized out too.
			val.opt = make([]byte, len(val.raw))
			for i := range val.opt {
				switch {
				case i >= len(b):
					val.opt[i] = 0xff
				case out != nil:
					val.opt[i] = out[i]
				}
			}
		}
		return val, nil
	case pl.Implicit != nil:
		return value{typ: t, raw: padTo(pl.Implicit, int(t.size)), name: v.Name}, nil
	case pl.IsVal:
		return rvalue(t, pl.Value), nil
	case pl.InReg:
		name, ok := sc.regName(pl.Reg)
		if !ok {
			return value{typ: t, name: v.Name}, fmt.Errorf("variable in DWARF register %d", pl.Reg)
		}
		if isFPReg(name) { // a float or vector in xmm or st: its bytes (assigned through the register)
			b, ok := sc.fpBytes(name)
			if !ok {
				return value{typ: t, name: v.Name}, fmt.Errorf("register %s unavailable (the target does not read x87 and SSE registers)", name)
			}
			return value{typ: t, raw: padTo(b, int(t.size)), name: v.Name, fpReg: name}, nil
		}
		return value{typ: t, reg: name, name: v.Name}, nil
	}
	return value{typ: t, inMem: true, addr: pl.Addr, name: v.Name}, nil
}

// RefSize implements symbols.RefSizer for the variable being evaluated.
func (sc *frameScope) RefSize() int { return sc.refSize }

// syntheticPointer is a pointer DW_OP_implicit_pointer describes: its
// target is the variable at pl.PtrTo (its value here), pl.PtrOff bytes
// in, as gdb's "<synthetic pointer>" shows it.
func (sc *frameScope) syntheticPointer(t *ctype, name string, pl symbols.Place) (value, error) {
	v := value{typ: t, name: name}
	if t.kind != tPtr || sc.s.sym == nil || sc.synthDepth > 4 {
		return v, errors.New("a synthetic pointer vmdap cannot follow")
	}
	tv, ok := sc.s.sym.VarOfDIE(pl.PtrTo, sc.f.look())
	if !ok {
		return v, errors.New("a synthetic pointer to a variable vmdap cannot find")
	}
	sc.synthDepth++
	target, err := sc.varValue(tv)
	sc.synthDepth--
	if err != nil {
		return v, fmt.Errorf("a synthetic pointer to %s: %w", tv.Name, err)
	}
	target.typ, target.name = t.el(), ""
	switch off := pl.PtrOff; {
	case off == 0:
	case target.inMem:
		target.addr += uint64(off)
	case off > 0 && int(off) < len(target.raw):
		target.raw = target.raw[off:]
	default:
		return v, fmt.Errorf("a synthetic pointer %d bytes into %s", off, tv.Name)
	}
	v.synth = &target
	return v, nil
}

// pieces assembles a composite location's bytes (DW_OP_piece,
// DW_OP_bit_piece); out marks, bit by bit, those of its empty pieces
// (optimized out: gdb shows the rest), nil when it has none. All of them
// empty is ErrOptimizedOut.
func (sc *frameScope) pieces(parts []symbols.Piece) (b, out []byte, err error) {
	var bits, gone []byte // one byte per bit: simple, and values are small
	for _, p := range parts {
		if p.Empty {
			if p.Bits <= 0 || p.Bits > 1<<12 {
				return nil, nil, fmt.Errorf("a composite location piece of %d bits", p.Bits)
			}
			for i := 0; i < p.Bits; i++ {
				bits, gone = append(bits, 0), append(gone, 1)
			}
			continue
		}
		if p.PtrTo != 0 {
			return nil, nil, errors.New("a synthetic pointer inside a composite value")
		}
		n := (p.BitOffset + p.Bits + 7) / 8
		if p.Bits <= 0 || n > 64 {
			return nil, nil, fmt.Errorf("a composite location piece of %d bits", p.Bits)
		}
		src := make([]byte, n)
		switch {
		case p.Implicit != nil:
			copy(src, p.Implicit)
		case p.IsVal:
			var b [8]byte // a constant piece may be narrower than 8 bytes
			binary.LittleEndian.PutUint64(b[:], p.Value)
			copy(src, b[:])
		case p.InReg:
			name, ok := sc.regName(p.Reg)
			if !ok {
				return nil, nil, fmt.Errorf("a piece in DWARF register %d", p.Reg)
			}
			if fb, ok := sc.fpBytes(name); ok { // a piece in xmm or st
				copy(src, fb)
				break
			}
			v, ok := sc.regGet(name)
			if !ok {
				return nil, nil, fmt.Errorf("register %s unavailable", name)
			}
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], v)
			copy(src, b[:])
		default:
			if err := sc.readMem(src, p.Addr); err != nil {
				return nil, nil, err
			}
		}
		for i := 0; i < p.Bits; i++ {
			bit := p.BitOffset + i
			bits, gone = append(bits, (src[bit/8]>>(bit%8))&1), append(gone, 0)
		}
	}
	b = make([]byte, (len(bits)+7)/8)
	out = make([]byte, len(b))
	some, all := false, true
	for i, x := range bits {
		b[i/8] |= x << (i % 8)
		if gone[i] == 1 {
			out[i/8] |= 1 << (i % 8)
			some = true
		} else {
			all = false
		}
	}
	switch {
	case all:
		return nil, nil, symbols.ErrOptimizedOut
	case !some:
		out = nil
	}
	return b, out, nil
}

// padTo returns b as n bytes (zero-extended or cut).
func padTo(b []byte, n int) []byte {
	if n <= 0 {
		return b
	}
	out := make([]byte, n)
	copy(out, b)
	return out
}

// EntryValue implements symbols.EntryValuer: what a register held when
// the frame's function was entered, from the call site in its caller
// (DW_TAG_call_site_parameter's DW_AT_call_value, evaluated in the
// caller's frame), as gdb resolves DW_OP_entry_value.
func (sc *frameScope) EntryValue(expr []byte) (uint64, error) {
	return sc.callValue(func(p symbols.CallParam) bool { return p.Loc != nil && string(p.Loc) == string(expr) })
}

// ParamValue implements symbols.ParamValuer: what the caller passed for
// the parameter whose DIE is at off in the function's unit, as gdb
// resolves DW_OP_GNU_parameter_ref (a .constprop clone's parameter).
func (sc *frameScope) ParamValue(off uint64) (uint64, error) {
	if sc.s.sym == nil {
		return 0, symbols.ErrOptimizedOut
	}
	die, ok := sc.s.sym.UnitDIE(sc.f.look(), off)
	if !ok {
		return 0, symbols.ErrOptimizedOut
	}
	return sc.callValue(func(p symbols.CallParam) bool { return p.Param == die })
}

// callValue evaluates, in the caller's frame, the call-site parameter of
// the call to this frame that match accepts.
func (sc *frameScope) callValue(match func(symbols.CallParam) bool) (uint64, error) {
	fs, ok := sc.s.frames[sc.vcpu]
	if !ok {
		var err error
		if fs, err = sc.s.framesLocked(sc.vcpu); err != nil {
			return 0, err
		}
	}
	// The caller: the frame of the next machine frame (past inlined and
	// tail-call frames of this one, which have no call site of their own).
	ci := -1
	for i, f := range fs {
		if f.phys == sc.f.phys+1 && !f.Inlined && !f.Tail {
			ci = i
			break
		}
		if f.phys == sc.f.phys+1 && f.Tail {
			return 0, fmt.Errorf("entry value through a tail call")
		}
	}
	if ci < 0 || sc.s.sym == nil {
		return 0, symbols.ErrOptimizedOut
	}
	caller := fs[ci]
	fn := sc.s.sym.FuncAt(caller.look())
	site, ok := sc.s.sym.CallSiteAt(fn, caller.PC)
	if !ok {
		return 0, symbols.ErrOptimizedOut
	}
	for _, p := range site.Params {
		if !match(p) {
			continue
		}
		csc, err := sc.s.newScope(sc.vcpu, ci)
		if err != nil {
			return 0, err
		}
		var fb []byte
		as := 8
		if csc.sc != nil {
			fb, as = csc.sc.FrameBase, csc.sc.AddrSize
		}
		pl, err := symbols.Evaluate(p.Value, fb, as, csc)
		if err != nil {
			return 0, err
		}
		switch {
		case pl.IsVal:
			return pl.Value, nil
		case pl.InReg:
			name, ok := csc.regName(pl.Reg)
			if !ok {
				return 0, symbols.ErrOptimizedOut
			}
			v, ok := csc.regGet(name)
			if !ok {
				return 0, symbols.ErrOptimizedOut
			}
			return v, nil
		}
		return pl.Addr, nil // a DWARF expression's result is the value
	}
	return 0, symbols.ErrOptimizedOut
}
