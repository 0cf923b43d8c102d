package symbols

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Context gives a location expression what it reads: registers by DWARF
// number, the frame's CFA and frame base, and memory.
type Context interface {
	Reg(dwarfNum int) (uint64, bool)
	CFA() (uint64, bool)
	ReadMemory(p []byte, addr uint64) error
}

// EntryValuer is implemented by a Context that knows what a register (or
// a simple expression of registers) held when the frame's function was
// entered, from the caller's call-site parameters
// (DW_TAG_call_site_parameter's DW_AT_call_value, evaluated in the
// caller's frame): DW_OP_entry_value needs it. expr is the
// DW_OP_entry_value operand (usually one DW_OP_regN).
type EntryValuer interface {
	EntryValue(expr []byte) (uint64, error)
}

// ParamValuer is implemented by a Context that knows what the caller
// passed for one of the frame's function's parameters, from its call
// site's DW_TAG_call_site_parameter for it: DW_OP_GNU_parameter_ref
// needs it (a parameter that a clone of the function does not receive).
// off is the parameter's DIE, an offset in the function's unit.
type ParamValuer interface {
	ParamValue(off uint64) (uint64, error)
}

// RefSizer is implemented by a Context that knows the size of a DIE
// reference in its unit's expressions (DW_OP_implicit_pointer's operand:
// 4, 8 in 64-bit DWARF, the address size in DWARF 2); 4 without it.
type RefSizer interface {
	RefSize() int
}

// Place is where a variable's value is.
type Place struct {
	Addr   uint64
	InReg  bool
	Reg    int // DWARF number when InReg
	Value  uint64
	IsVal  bool // DW_OP_stack_value: Value is the value itself
	Pieces bool // composite location: Parts has every piece; the fields above describe the first
	// Implicit holds the value's bytes (DW_OP_implicit_value); IsVal is set.
	Implicit []byte
	// Parts are the pieces of a composite location (DW_OP_piece,
	// DW_OP_bit_piece), in order from the value's lowest byte.
	Parts []Piece
	// PtrTo, for DW_OP_implicit_pointer, is the variable (absolute DIE
	// offset) the value is a pointer into, PtrOff bytes in: a pointer
	// the program never had, to a variable that may have no address.
	PtrTo  uint64
	PtrOff int64
}

// Piece is one part of a composite location.
type Piece struct {
	Place          // where the piece is (its own Parts are empty)
	Bits      int  // the piece's size in bits
	BitOffset int  // DW_OP_bit_piece: where in the register or memory the piece starts
	Empty     bool // no location: this part of the value is optimized out
}

// ErrOptimizedOut is returned for variables without a location.
var ErrOptimizedOut = errors.New("optimized out")

// EvalLocation evaluates a DWARF location expression of a 64-bit image.
// frameBase is the function's DW_AT_frame_base expression (may be nil).
// A 32-bit image's expressions need Evaluate with their address size.
func EvalLocation(expr, frameBase []byte, c Context) (Place, error) {
	return Evaluate(expr, frameBase, 8, c)
}

// maxExprSteps bounds the operations one evaluation runs (DW_OP_skip and
// DW_OP_bra can loop).
const maxExprSteps = 1 << 16

// maxExprStack bounds the expression stack.
const maxExprStack = 1024

// Evaluate evaluates a DWARF location expression (DWARF 5 §2.5, §2.6)
// whose addresses and generic values are addrSize bytes (Var.AddrSize: 4
// in a 32-bit image, 8 otherwise): DW_OP_addr reads that many bytes,
// DW_OP_deref reads that many, and arithmetic wraps at that width.
// frameBase is the function's DW_AT_frame_base expression at the PC (may
// be nil).
func Evaluate(expr, frameBase []byte, addrSize int, c Context) (Place, error) {
	return evaluate(expr, frameBase, addrSize, c, 0)
}

// evaluator is the state of one evaluation.
type evaluator struct {
	stack    []uint64
	addrSize int
	mask     uint64
	c        Context
	fb       []byte
	depth    int
}

func (e *evaluator) push(v uint64) error {
	if len(e.stack) >= maxExprStack {
		return errors.New("DWARF expression stack overflow")
	}
	e.stack = append(e.stack, v&e.mask)
	return nil
}

func (e *evaluator) pop() (uint64, error) {
	if len(e.stack) == 0 {
		return 0, errors.New("DWARF expression stack underflow")
	}
	v := e.stack[len(e.stack)-1]
	e.stack = e.stack[:len(e.stack)-1]
	return v, nil
}

// signed reads a generic value as a signed number of the address size.
func (e *evaluator) signed(v uint64) int64 {
	if e.addrSize == 4 {
		return int64(int32(v))
	}
	return int64(v)
}

func (e *evaluator) readUint(addr uint64, n int) (uint64, error) {
	if n <= 0 || n > 8 {
		return 0, fmt.Errorf("DW_OP_deref_size %d", n)
	}
	var buf [8]byte
	if err := e.c.ReadMemory(buf[:n], addr); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(buf[:]), nil
}

func evaluate(expr, frameBase []byte, addrSize int, c Context, depth int) (Place, error) {
	if len(expr) == 0 {
		return Place{}, ErrOptimizedOut
	}
	if addrSize != 4 && addrSize != 8 {
		addrSize = 8
	}
	e := &evaluator{addrSize: addrSize, mask: ^uint64(0), c: c, fb: frameBase, depth: depth}
	if addrSize == 4 {
		e.mask = 0xffffffff
	}
	var (
		parts []Piece
		cur   Place // the location the next piece describes
		have  bool  // cur is set (by a register, stack_value or implicit_value operation)
	)
	b := expr
	for steps := 0; len(b) > 0; steps++ {
		if steps >= maxExprSteps {
			return Place{}, errors.New("DWARF expression runs too long")
		}
		op := b[0]
		b = b[1:]
		if have && op != opPiece && op != opBitPiece {
			return Place{}, fmt.Errorf("%s after a register or value location", opName(op))
		}
		var err error
		switch {
		case op == opAddr:
			if len(b) < addrSize {
				return Place{}, errTrunc
			}
			err = e.push(uintN(b, addrSize))
			b = b[addrSize:]
		case op >= opLit0 && op <= opLit0+31:
			err = e.push(uint64(op - opLit0))
		case op >= opReg0 && op <= opReg0+31:
			cur, have = Place{InReg: true, Reg: int(op - opReg0)}, true
		case op == opRegx:
			n, ok := ulebOK(&b)
			if !ok {
				return Place{}, errTrunc
			}
			cur, have = Place{InReg: true, Reg: int(n)}, true
		case op >= opBreg0 && op <= opBreg0+31:
			off, ok := slebOK(&b)
			if !ok {
				return Place{}, errTrunc
			}
			v, ok := c.Reg(int(op - opBreg0))
			if !ok {
				return Place{}, fmt.Errorf("register %d unavailable", op-opBreg0)
			}
			err = e.push(v + uint64(off))
		case op == opBregx:
			n, ok1 := ulebOK(&b)
			off, ok2 := slebOK(&b)
			if !ok1 || !ok2 {
				return Place{}, errTrunc
			}
			v, ok := c.Reg(int(n))
			if !ok {
				return Place{}, fmt.Errorf("register %d unavailable", n)
			}
			err = e.push(v + uint64(off))
		case op == opFbreg:
			off, ok := slebOK(&b)
			if !ok {
				return Place{}, errTrunc
			}
			base, ferr := e.frameBase()
			if ferr != nil {
				return Place{}, ferr
			}
			err = e.push(base + uint64(off))
		case op == opCallFrameCFA:
			cfa, ok := c.CFA()
			if !ok {
				return Place{}, errors.New("no call frame information for this frame")
			}
			err = e.push(cfa)
		case op >= opConst1u && op <= opConst8s:
			n := 1 << ((op - opConst1u) / 2) // 1, 1, 2, 2, 4, 4, 8, 8
			if len(b) < n {
				return Place{}, errTrunc
			}
			v := uintN(b, n)
			if (op-opConst1u)%2 == 1 && n < 8 { // the signed forms
				shift := uint(64 - 8*n)
				v = uint64(int64(v<<shift) >> shift)
			}
			b = b[n:]
			err = e.push(v)
		case op == opConstu:
			n, ok := ulebOK(&b)
			if !ok {
				return Place{}, errTrunc
			}
			err = e.push(n)
		case op == opConsts:
			n, ok := slebOK(&b)
			if !ok {
				return Place{}, errTrunc
			}
			err = e.push(uint64(n))
		case op == opPlusUconst:
			n, ok := ulebOK(&b)
			if !ok {
				return Place{}, errTrunc
			}
			v, perr := e.pop()
			if perr != nil {
				return Place{}, perr
			}
			err = e.push(v + n)
		case op == opDeref, op == opDerefSize:
			n := addrSize
			if op == opDerefSize {
				if len(b) < 1 {
					return Place{}, errTrunc
				}
				n = int(b[0])
				b = b[1:]
			}
			a, perr := e.pop()
			if perr != nil {
				return Place{}, perr
			}
			v, rerr := e.readUint(a, n)
			if rerr != nil {
				return Place{}, rerr
			}
			err = e.push(v)
		case op == opDup, op == opOver, op == opPick:
			i := 0
			switch op {
			case opOver:
				i = 1
			case opPick:
				if len(b) < 1 {
					return Place{}, errTrunc
				}
				i = int(b[0])
				b = b[1:]
			}
			if i >= len(e.stack) {
				return Place{}, errors.New("DWARF expression stack underflow")
			}
			err = e.push(e.stack[len(e.stack)-1-i])
		case op == opDrop:
			_, err = e.pop()
		case op == opSwap:
			n := len(e.stack)
			if n < 2 {
				return Place{}, errors.New("DWARF expression stack underflow")
			}
			e.stack[n-1], e.stack[n-2] = e.stack[n-2], e.stack[n-1]
		case op == opRot:
			n := len(e.stack)
			if n < 3 {
				return Place{}, errors.New("DWARF expression stack underflow")
			}
			e.stack[n-1], e.stack[n-2], e.stack[n-3] = e.stack[n-2], e.stack[n-3], e.stack[n-1]
		case op == opAbs, op == opNeg, op == opNot:
			v, perr := e.pop()
			if perr != nil {
				return Place{}, perr
			}
			switch op {
			case opAbs:
				if s := e.signed(v); s < 0 {
					v = uint64(-s)
				}
			case opNeg:
				v = uint64(-e.signed(v))
			default:
				v = ^v
			}
			err = e.push(v)
		case isBinary(op):
			y, perr := e.pop()
			if perr != nil {
				return Place{}, perr
			}
			x, perr := e.pop()
			if perr != nil {
				return Place{}, perr
			}
			v, berr := e.binary(op, x, y)
			if berr != nil {
				return Place{}, berr
			}
			err = e.push(v)
		case op == opSkip, op == opBra:
			if len(b) < 2 {
				return Place{}, errTrunc
			}
			off := int(int16(binary.LittleEndian.Uint16(b)))
			b = b[2:]
			take := true
			if op == opBra {
				v, perr := e.pop()
				if perr != nil {
					return Place{}, perr
				}
				take = v != 0
			}
			if take {
				pos := len(expr) - len(b) + off
				if pos < 0 || pos > len(expr) {
					return Place{}, fmt.Errorf("%s out of the expression", opName(op))
				}
				b = expr[pos:]
			}
		case op == opNop:
		case op == opStackValue:
			v, perr := e.pop()
			if perr != nil {
				return Place{}, perr
			}
			cur, have = Place{Value: v, IsVal: true}, true
		case op == opImplicitValue:
			n, ok := ulebOK(&b)
			if !ok || n > uint64(len(b)) {
				return Place{}, errTrunc
			}
			val := append([]byte(nil), b[:n]...)
			b = b[n:]
			var buf [8]byte
			copy(buf[:], val)
			cur, have = Place{Value: binary.LittleEndian.Uint64(buf[:]), IsVal: true, Implicit: val}, true
		case op == opEntryValue, op == opGNUEntryValue:
			n, ok := ulebOK(&b)
			if !ok || n > uint64(len(b)) {
				return Place{}, errTrunc
			}
			sub := b[:n]
			b = b[n:]
			ev, ok := c.(EntryValuer)
			if !ok {
				return Place{}, fmt.Errorf("%w: the value at the function's entry (DW_OP_entry_value) is not known here", ErrOptimizedOut)
			}
			v, verr := ev.EntryValue(sub)
			if verr != nil {
				return Place{}, verr
			}
			err = e.push(v)
		case op == opImplicitPointer, op == opGNUImplicitPointer:
			n := 4
			if rs, ok := c.(RefSizer); ok && rs.RefSize() > 0 {
				n = rs.RefSize()
			}
			if len(b) < n {
				return Place{}, errTrunc
			}
			var buf [8]byte
			copy(buf[:], b[:n])
			b = b[n:]
			off, ok := slebOK(&b)
			if !ok {
				return Place{}, errTrunc
			}
			cur, have = Place{PtrTo: binary.LittleEndian.Uint64(buf[:]), PtrOff: off}, true
		case op == opGNUParameterRef:
			if len(b) < 4 {
				return Place{}, errTrunc
			}
			off := uint64(binary.LittleEndian.Uint32(b))
			b = b[4:]
			pv, ok := c.(ParamValuer)
			if !ok {
				return Place{}, fmt.Errorf("%w: what the caller passed (DW_OP_GNU_parameter_ref) is not known here", ErrOptimizedOut)
			}
			v, verr := pv.ParamValue(off)
			if verr != nil {
				return Place{}, verr
			}
			err = e.push(v)
		case op == opPiece, op == opBitPiece:
			size, ok := ulebOK(&b)
			if !ok {
				return Place{}, errTrunc
			}
			p := Piece{Bits: int(size) * 8}
			if op == opBitPiece {
				off, ok := ulebOK(&b)
				if !ok {
					return Place{}, errTrunc
				}
				p.Bits, p.BitOffset = int(size), int(off)
			}
			switch {
			case have:
				p.Place = cur
			case len(e.stack) > 0:
				a, _ := e.pop()
				p.Place = Place{Addr: a}
			default:
				p.Empty = true
			}
			parts = append(parts, p)
			cur, have = Place{}, false
			e.stack = e.stack[:0]
		default:
			return Place{}, fmt.Errorf("unsupported DWARF operation %s", opName(op))
		}
		if err != nil {
			return Place{}, err
		}
	}
	if len(parts) > 0 {
		if have || len(e.stack) > 0 {
			return Place{}, errors.New("DWARF expression ends after its last piece without a DW_OP_piece")
		}
		first := parts[0]
		pl := first.Place
		if first.Empty {
			pl = Place{}
		}
		pl.Pieces, pl.Parts = true, parts
		return pl, nil
	}
	if have {
		return cur, nil
	}
	v, err := e.pop()
	if err != nil {
		return Place{}, err
	}
	return Place{Addr: v}, nil
}

// frameBase evaluates the function's frame base to an address.
func (e *evaluator) frameBase() (uint64, error) {
	if len(e.fb) == 0 {
		return 0, errors.New("DW_OP_fbreg without a frame base")
	}
	if e.depth > 0 {
		return 0, errors.New("DW_OP_fbreg in a frame base")
	}
	fb, err := evaluate(e.fb, nil, e.addrSize, e.c, e.depth+1)
	if err != nil {
		return 0, fmt.Errorf("frame base: %w", err)
	}
	switch {
	case fb.InReg:
		v, ok := e.c.Reg(fb.Reg)
		if !ok {
			return 0, errors.New("frame base register unavailable")
		}
		return v & e.mask, nil
	case fb.IsVal:
		return fb.Value, nil
	}
	return fb.Addr, nil
}

func isBinary(op byte) bool {
	switch op {
	case opAnd, opDiv, opMinus, opMod, opMul, opOr, opPlus, opShl, opShr, opShra, opXor,
		opEq, opGe, opGt, opLe, opLt, opNe:
		return true
	}
	return false
}

// binary applies a two-operand operation to x (pushed first) and y.
func (e *evaluator) binary(op byte, x, y uint64) (uint64, error) {
	sx, sy := e.signed(x), e.signed(y)
	bits := uint64(8 * e.addrSize)
	b2u := func(c bool) uint64 {
		if c {
			return 1
		}
		return 0
	}
	switch op {
	case opAnd:
		return x & y, nil
	case opOr:
		return x | y, nil
	case opXor:
		return x ^ y, nil
	case opPlus:
		return x + y, nil
	case opMinus:
		return x - y, nil
	case opMul:
		return x * y, nil
	case opDiv: // signed (DWARF 5 §2.5.1.4)
		if sy == 0 {
			return 0, errors.New("DW_OP_div by zero")
		}
		if sy == -1 {
			return uint64(-sx), nil
		}
		return uint64(sx / sy), nil
	case opMod:
		if y == 0 {
			return 0, errors.New("DW_OP_mod by zero")
		}
		return x % y, nil
	case opShl:
		if y >= bits {
			return 0, nil
		}
		return x << y, nil
	case opShr:
		if y >= bits {
			return 0, nil
		}
		return x >> y, nil
	case opShra:
		if y >= bits {
			y = bits - 1
		}
		return uint64(sx >> y), nil
	case opEq:
		return b2u(sx == sy), nil
	case opNe:
		return b2u(sx != sy), nil
	case opLt:
		return b2u(sx < sy), nil
	case opLe:
		return b2u(sx <= sy), nil
	case opGt:
		return b2u(sx > sy), nil
	case opGe:
		return b2u(sx >= sy), nil
	}
	return 0, fmt.Errorf("unsupported DWARF operation %s", opName(op))
}

// DWARF expression operations (DWARF 5 §7.7.1).
const (
	opAddr               = 0x03
	opDeref              = 0x06
	opConst1u            = 0x08
	opConst8s            = 0x0f
	opConstu             = 0x10
	opConsts             = 0x11
	opDup                = 0x12
	opDrop               = 0x13
	opOver               = 0x14
	opPick               = 0x15
	opSwap               = 0x16
	opRot                = 0x17
	opAbs                = 0x19
	opAnd                = 0x1a
	opDiv                = 0x1b
	opMinus              = 0x1c
	opMod                = 0x1d
	opMul                = 0x1e
	opNeg                = 0x1f
	opNot                = 0x20
	opOr                 = 0x21
	opPlus               = 0x22
	opPlusUconst         = 0x23
	opShl                = 0x24
	opShr                = 0x25
	opShra               = 0x26
	opXor                = 0x27
	opBra                = 0x28
	opEq                 = 0x29
	opGe                 = 0x2a
	opGt                 = 0x2b
	opLe                 = 0x2c
	opLt                 = 0x2d
	opNe                 = 0x2e
	opSkip               = 0x2f
	opLit0               = 0x30
	opReg0               = 0x50
	opBreg0              = 0x70
	opRegx               = 0x90
	opFbreg              = 0x91
	opBregx              = 0x92
	opPiece              = 0x93
	opDerefSize          = 0x94
	opNop                = 0x96
	opCallFrameCFA       = 0x9c
	opBitPiece           = 0x9d
	opImplicitValue      = 0x9e
	opStackValue         = 0x9f
	opEntryValue         = 0xa3
	opGNUEntryValue      = 0xf3
	opGNUParameterRef    = 0xfa
	opImplicitPointer    = 0xa0
	opGNUImplicitPointer = 0xf2
)

// opNames names the operations an error may mention.
var opNames = map[byte]string{
	0x0: "0x00", 0x18: "DW_OP_xderef", 0x94: "DW_OP_deref_size", 0x95: "DW_OP_xderef_size",
	0x97: "DW_OP_push_object_address", 0x98: "DW_OP_call2", 0x99: "DW_OP_call4", 0x9a: "DW_OP_call_ref",
	0x9b: "DW_OP_form_tls_address", 0xa0: "DW_OP_implicit_pointer", 0xa1: "DW_OP_addrx", 0xa2: "DW_OP_constx",
	0xa4: "DW_OP_const_type", 0xa5: "DW_OP_regval_type", 0xa6: "DW_OP_deref_type", 0xa7: "DW_OP_xderef_type",
	0xa8: "DW_OP_convert", 0xa9: "DW_OP_reinterpret", 0xe0: "DW_OP_GNU_push_tls_address",
	0xf0: "DW_OP_GNU_uninit", 0xf1: "DW_OP_GNU_encoded_addr", 0xf2: "DW_OP_GNU_implicit_pointer",
	0xf3: "DW_OP_GNU_entry_value", 0xf4: "DW_OP_GNU_const_type", 0xf5: "DW_OP_GNU_regval_type",
	0xf6: "DW_OP_GNU_deref_type", 0xf7: "DW_OP_GNU_convert", 0xf9: "DW_OP_GNU_reinterpret",
	0xfa: "DW_OP_GNU_parameter_ref", 0xfb: "DW_OP_GNU_addr_index", 0xfc: "DW_OP_GNU_const_index",
	0xfd: "DW_OP_GNU_variable_value", opPiece: "DW_OP_piece", opBitPiece: "DW_OP_bit_piece",
	opSkip: "DW_OP_skip", opBra: "DW_OP_bra", opEntryValue: "DW_OP_entry_value",
}

func opName(op byte) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return fmt.Sprintf("%#x", op)
}

func uintN(b []byte, n int) uint64 {
	var buf [8]byte
	copy(buf[:], b[:n])
	return binary.LittleEndian.Uint64(buf[:])
}

var errTrunc = errors.New("truncated DWARF expression")

// ulebOK and slebOK read an operand, reporting false when the expression
// ends inside it.
func ulebOK(b *[]byte) (uint64, bool) {
	var v uint64
	var shift uint
	for i, c := range *b {
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			*b = (*b)[i+1:]
			return v, true
		}
	}
	*b = nil
	return v, false
}

func slebOK(b *[]byte) (int64, bool) {
	var v int64
	var shift uint
	for i, c := range *b {
		if shift < 64 {
			v |= int64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			*b = (*b)[i+1:]
			return v, true
		}
	}
	*b = nil
	return v, false
}

func uleb(b *[]byte) (uint64, int) {
	var v uint64
	var shift uint
	n := 0
	for len(*b) > 0 {
		c := (*b)[0]
		*b = (*b)[1:]
		n++
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			break
		}
	}
	return v, n
}

func sleb(b *[]byte) int64 {
	var v int64
	var shift uint
	var c byte
	for len(*b) > 0 {
		c = (*b)[0]
		*b = (*b)[1:]
		if shift < 64 {
			v |= int64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			break
		}
	}
	if shift < 64 && c&0x40 != 0 {
		v |= -1 << shift
	}
	return v
}
