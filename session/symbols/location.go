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

// Place is where a variable's value is.
type Place struct {
	Addr   uint64
	InReg  bool
	Reg    int // DWARF number when InReg
	Value  uint64
	IsVal  bool // DW_OP_stack_value: Value is the value itself
	Pieces bool // composite location (only the first piece is used)
}

// ErrOptimizedOut is returned for variables without a location.
var ErrOptimizedOut = errors.New("optimized out")

// EvalLocation evaluates a DWARF location expression. frameBase is the
// function's DW_AT_frame_base expression (may be nil).
func EvalLocation(expr, frameBase []byte, c Context) (Place, error) {
	if len(expr) == 0 {
		return Place{}, ErrOptimizedOut
	}
	var stack []uint64
	push := func(v uint64) { stack = append(stack, v) }
	pop := func() (uint64, error) {
		if len(stack) == 0 {
			return 0, errors.New("DWARF expression stack underflow")
		}
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		return v, nil
	}
	b := expr
	for len(b) > 0 {
		op := b[0]
		b = b[1:]
		switch {
		case op == 0x03: // DW_OP_addr
			if len(b) < 8 {
				return Place{}, errTrunc
			}
			push(binary.LittleEndian.Uint64(b))
			b = b[8:]
		case op >= 0x30 && op <= 0x4f: // DW_OP_lit0..31
			push(uint64(op - 0x30))
		case op >= 0x50 && op <= 0x6f: // DW_OP_reg0..31
			return Place{InReg: true, Reg: int(op - 0x50)}, nil
		case op == 0x90: // DW_OP_regx
			n, _ := uleb(&b)
			return Place{InReg: true, Reg: int(n)}, nil
		case op >= 0x70 && op <= 0x8f: // DW_OP_breg0..31
			off := sleb(&b)
			v, ok := c.Reg(int(op - 0x70))
			if !ok {
				return Place{}, fmt.Errorf("register %d unavailable", op-0x70)
			}
			push(v + uint64(off))
		case op == 0x92: // DW_OP_bregx
			n, _ := uleb(&b)
			off := sleb(&b)
			v, ok := c.Reg(int(n))
			if !ok {
				return Place{}, fmt.Errorf("register %d unavailable", n)
			}
			push(v + uint64(off))
		case op == 0x91: // DW_OP_fbreg
			off := sleb(&b)
			if len(frameBase) == 0 {
				return Place{}, errors.New("DW_OP_fbreg without a frame base")
			}
			fb, err := EvalLocation(frameBase, nil, c)
			if err != nil {
				return Place{}, fmt.Errorf("frame base: %w", err)
			}
			base := fb.Addr
			if fb.InReg {
				v, ok := c.Reg(fb.Reg)
				if !ok {
					return Place{}, errors.New("frame base register unavailable")
				}
				base = v
			}
			push(base + uint64(off))
		case op == 0x9c: // DW_OP_call_frame_cfa
			cfa, ok := c.CFA()
			if !ok {
				return Place{}, errors.New("no call frame information for this frame")
			}
			push(cfa)
		case op == 0x23: // DW_OP_plus_uconst
			n, _ := uleb(&b)
			v, err := pop()
			if err != nil {
				return Place{}, err
			}
			push(v + n)
		case op == 0x22 || op == 0x1c: // DW_OP_plus, DW_OP_minus
			y, err := pop()
			if err != nil {
				return Place{}, err
			}
			x, err := pop()
			if err != nil {
				return Place{}, err
			}
			if op == 0x22 {
				push(x + y)
			} else {
				push(x - y)
			}
		case op == 0x06: // DW_OP_deref
			a, err := pop()
			if err != nil {
				return Place{}, err
			}
			var buf [8]byte
			if err := c.ReadMemory(buf[:], a); err != nil {
				return Place{}, err
			}
			push(binary.LittleEndian.Uint64(buf[:]))
		case op == 0x08, op == 0x09: // const1u/s
			if len(b) < 1 {
				return Place{}, errTrunc
			}
			if op == 0x08 {
				push(uint64(b[0]))
			} else {
				push(uint64(int64(int8(b[0]))))
			}
			b = b[1:]
		case op == 0x0a, op == 0x0b: // const2u/s
			if len(b) < 2 {
				return Place{}, errTrunc
			}
			v := binary.LittleEndian.Uint16(b)
			if op == 0x0a {
				push(uint64(v))
			} else {
				push(uint64(int64(int16(v))))
			}
			b = b[2:]
		case op == 0x0c, op == 0x0d: // const4u/s
			if len(b) < 4 {
				return Place{}, errTrunc
			}
			v := binary.LittleEndian.Uint32(b)
			if op == 0x0c {
				push(uint64(v))
			} else {
				push(uint64(int64(int32(v))))
			}
			b = b[4:]
		case op == 0x0e, op == 0x0f: // const8u/s
			if len(b) < 8 {
				return Place{}, errTrunc
			}
			push(binary.LittleEndian.Uint64(b))
			b = b[8:]
		case op == 0x10: // constu
			n, _ := uleb(&b)
			push(n)
		case op == 0x11: // consts
			push(uint64(sleb(&b)))
		case op == 0x9f: // DW_OP_stack_value
			v, err := pop()
			if err != nil {
				return Place{}, err
			}
			return Place{Value: v, IsVal: true}, nil
		case op == 0x93: // DW_OP_piece: use the first piece
			uleb(&b)
			v, err := pop()
			if err != nil {
				return Place{}, err
			}
			return Place{Addr: v, Pieces: true}, nil
		default:
			return Place{}, fmt.Errorf("unsupported DWARF operation %#x", op)
		}
	}
	v, err := pop()
	if err != nil {
		return Place{}, err
	}
	return Place{Addr: v}, nil
}

var errTrunc = errors.New("truncated DWARF expression")

func uleb(b *[]byte) (uint64, int) {
	var v uint64
	var shift uint
	n := 0
	for len(*b) > 0 {
		c := (*b)[0]
		*b = (*b)[1:]
		n++
		v |= uint64(c&0x7f) << shift
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
		v |= int64(c&0x7f) << shift
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
