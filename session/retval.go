package session

import (
	"debug/dwarf"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"vmdap/x86"
)

// returned is what the function a stepOut left gave back, read from the
// registers at the stop it ended in, as gdb's finish prints it and lldb
// and Visual Studio show it: the first row of that stop's Locals, and
// $_retval in expressions until the guest runs again.
type returned struct {
	vcpu     int
	fn       string
	typ      dwarf.Type
	mode     x86.Mode
	rax, rdx uint64
	fp       *x86.FPRegs // xmm0, xmm1 and st0 (nil: the target cannot read them)
}

// retvalName is the return value's name in expressions.
const retvalName = "$_retval"

// readReturned reads the return value of p's function at the stop a
// stepOut of vCPU v ended in: nil when the function is not known from
// DWARF or returns nothing.
func (s *Session) readReturned(v int, p outPlan) *returned {
	if p.fn == nil || p.fn.Inline || s.sym == nil {
		return nil
	}
	ft, ok := s.sym.FuncType(p.fn)
	if !ok || ft.ReturnType == nil {
		return nil
	}
	if _, void := ft.ReturnType.(*dwarf.VoidType); void {
		return nil
	}
	r, err := s.t.Regs(v)
	if err != nil {
		return nil
	}
	ret := &returned{vcpu: v, fn: p.fn.Name, typ: ft.ReturnType, mode: p.mode, rax: r.RAX, rdx: r.RDX}
	if fr, ok := s.t.FPRegisters(); ok {
		if f, err := fr.FPRegs(v); err == nil {
			ret.fp = &f
		}
	}
	return ret
}

// value is the returned value by the calling conventions: the System V
// AMD64 ABI (integers and pointers in RAX and RDX, float, double and
// __float128 in XMM0, long double in st(0), aggregates of up to 16 bytes
// eightbyte by eightbyte in RAX/RDX or XMM0/XMM1 by their class, larger
// ones in memory whose address RAX returns) and i386's (EAX, EDX:EAX,
// every floating type in st(0), aggregates in memory at EAX).
func (r *returned) value(cache *typeCache) (value, error) {
	t := fromDWARF(r.typ, cache)
	w := int64(8)
	lo, hi := r.rax, r.rdx
	switch r.mode {
	case 16:
		return value{}, errors.New("16-bit code's return value is not known (no calling convention to read it by)")
	case 32:
		w, lo, hi = 4, lo&0xffffffff, hi&0xffffffff
	}
	inRegs := func() value {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint64(b, lo)
		binary.LittleEndian.PutUint64(b[w:], hi)
		return value{typ: t, raw: b[:t.size], name: retvalName}
	}
	switch {
	case t.kind == tFloat || t.kind == tStruct && hasFloat(t, 0) && r.mode == 64 && t.size > 0 && t.size <= 16:
		if r.fp == nil {
			return value{}, fmt.Errorf("a %s comes back in XMM or x87 registers, which this target does not read", t.String())
		}
		if t.kind == tFloat {
			return r.float(t)
		}
		if unaligned(t, 0) {
			return value{typ: t, inMem: true, addr: lo, name: retvalName}, nil
		}
		return r.eightbytes(t)
	case t.isScalar() && t.size > 0 && t.size <= 2*w:
		return inRegs(), nil
	case t.kind == tStruct && t.rustLang:
		return value{}, errors.New("Rust's ABI does not say where a returned aggregate goes")
	case t.kind == tStruct && r.mode == 64 && t.size > 0 && t.size <= 16:
		if !unaligned(t, 0) {
			return inRegs(), nil
		}
		// A packed struct with a field off its natural alignment is of
		// class MEMORY, as a larger one is.
		return value{typ: t, inMem: true, addr: lo, name: retvalName}, nil
	case t.kind == tStruct && t.size > 0:
		// In memory the caller provided; the function returns its address.
		return value{typ: t, inMem: true, addr: lo, name: retvalName}, nil
	}
	return value{}, fmt.Errorf("where a %s is returned is not known", t.String())
}

// float is a returned floating value: in XMM0 (x86-64's float, double
// and __float128), or in st(0), x87's 80 bits, which i386 returns every
// floating type in and x86-64 its long double; a float or double read
// from st(0) is rounded back to its own format (exactly: it was widened
// from it).
func (r *returned) float(t *ctype) (value, error) {
	ff := floatFormatOf(t)
	if r.mode == 64 && ff != fmtX87 {
		return value{typ: t, raw: append([]byte(nil), r.fp.XMM[0][:t.size]...), name: retvalName}, nil
	}
	st0 := r.fp.ST[0][:]
	switch ff {
	case fmtX87:
		return value{typ: t, raw: padTo(st0, int(t.size)), name: retvalName}, nil
	case fmtSingle, fmtDouble:
		d, err := decodeFloat(st0, fmtX87)
		if err != nil {
			return value{}, err
		}
		f := math.NaN()
		switch {
		case d.f != nil:
			f, _ = d.f.Float64()
			if ff == fmtSingle {
				f32, _ := d.f.Float32()
				f = float64(f32)
			}
		case !d.nan:
			f = math.Inf(1)
		}
		if d.neg && !math.Signbit(f) {
			f = math.Copysign(f, -1)
		}
		b := make([]byte, 8)
		if ff == fmtSingle {
			binary.LittleEndian.PutUint32(b, math.Float32bits(float32(f)))
		} else {
			binary.LittleEndian.PutUint64(b, math.Float64bits(f))
		}
		return value{typ: t, raw: b[:t.size], name: retvalName}, nil
	}
	return value{}, fmt.Errorf("where a %s is returned is not known", t.String())
}

// eightbytes is a returned aggregate of up to 16 bytes with
// floating-point members, by the System V AMD64 ABI's classification
// (§3.2.3): each eightbyte holding only float and double members is of
// class SSE and comes back in the low half of the next of XMM0 and XMM1;
// one holding anything else is INTEGER, in the next of RAX and RDX. A
// long double member makes the whole MEMORY: its address comes back in
// RAX.
func (r *returned) eightbytes(t *ctype) (value, error) {
	var cls [2]eightbyteClass
	if !classify(t, 0, &cls, 0) {
		return value{typ: t, inMem: true, addr: r.rax, name: retvalName}, nil
	}
	ints := []uint64{r.rax, r.rdx}
	sse := [][]byte{r.fp.XMM[0][:8], r.fp.XMM[1][:8]}
	b := make([]byte, 16)
	for i, c := range cls {
		switch c {
		case classInteger:
			binary.LittleEndian.PutUint64(b[8*i:], ints[0])
			ints = ints[1:]
		case classSSE:
			copy(b[8*i:], sse[0])
			sse = sse[1:]
		}
	}
	return value{typ: t, raw: b[:t.size], name: retvalName}, nil
}

// eightbyteClass is the System V AMD64 class of an eightbyte.
type eightbyteClass uint8

const (
	classNone eightbyteClass = iota // padding only
	classSSE
	classInteger
)

// classify merges the classes of t's members, t being at byte off of the
// aggregate, into cls; false when the aggregate is of class MEMORY (a
// long double, a __float128, something too deep or too large).
func classify(t *ctype, off int64, cls *[2]eightbyteClass, depth int) bool {
	if depth > 16 || off < 0 || off+t.size > 16 {
		return false
	}
	switch t.kind {
	case tStruct:
		for _, f := range t.fields {
			if f.bitSize > 0 { // a bitfield: INTEGER, the eightbytes its bits are in
				first, last := 8*off+f.bitPos(), 8*off+f.bitPos()+f.bitSize-1
				if first < 0 || last >= 128 {
					return false
				}
				for i := first / 64; i <= last/64; i++ {
					cls[i] = classInteger
				}
				continue
			}
			if f.typ == nil || !classify(f.typ, off+f.off, cls, depth+1) {
				return false
			}
		}
		return true
	case tArray:
		if t.el() == nil || t.el().size <= 0 || t.count < 0 {
			return false
		}
		for i := int64(0); i < t.count; i++ {
			if !classify(t.el(), off+i*t.el().size, cls, depth+1) {
				return false
			}
		}
		return true
	case tFloat:
		if t.size != 4 && t.size != 8 {
			return false
		}
		if cls[off/8] == classNone {
			cls[off/8] = classSSE
		}
		return true
	}
	for i := off / 8; i <= (off+max(t.size, 1)-1)/8; i++ {
		cls[i] = classInteger
	}
	return true
}

// hasFloat reports whether an aggregate holds a floating-point member.
func hasFloat(t *ctype, depth int) bool {
	if depth > 16 {
		return true // too deep to tell: not read rather than misread
	}
	switch t.kind {
	case tFloat:
		return true
	case tArray:
		return t.el() != nil && hasFloat(t.el(), depth+1)
	case tStruct:
		for _, f := range t.fields {
			if f.typ != nil && hasFloat(f.typ, depth+1) {
				return true
			}
		}
	}
	return false
}

// unaligned reports whether an aggregate has a member that is not at a
// multiple of its natural alignment (a packed struct's), which the System
// V ABI returns in memory.
func unaligned(t *ctype, depth int) bool {
	if depth > 16 {
		return true
	}
	for _, f := range t.fields {
		if f.typ == nil || f.bitSize != 0 {
			continue
		}
		if a := alignOf(f.typ, 0); a > 1 && f.off%a != 0 || f.typ.kind == tStruct && unaligned(f.typ, depth+1) {
			return true
		}
	}
	return false
}

// alignOf is a type's natural alignment in the System V ABI: a scalar's
// size, an array's element's, an aggregate's largest member's.
func alignOf(t *ctype, depth int) int64 {
	switch {
	case depth > 16:
		return 1
	case t.kind == tArray && t.el() != nil:
		return alignOf(t.el(), depth+1)
	case t.kind == tStruct:
		a := int64(1)
		for _, f := range t.fields {
			if f.typ != nil {
				a = max(a, alignOf(f.typ, depth+1))
			}
		}
		return a
	case t.size > 0 && t.size <= 16 && t.size&(t.size-1) == 0:
		return t.size
	}
	return 1
}

// retvalVar is the Locals row of the return value on vCPU v's stop, if
// this stop has one.
func (s *Session) retvalVar(sc *frameScope) (Var, bool) {
	r := s.ret
	if r == nil || r.vcpu != sc.vcpu {
		return Var{}, false
	}
	name := r.fn + " returned"
	val, err := r.value(sc.types)
	if err != nil {
		return Var{Name: name, Value: "<" + err.Error() + ">", Type: fromDWARF(r.typ, sc.types).String(), Presentation: "readOnly"}, true
	}
	v := s.makeVar(sc, name, retvalName, val, s.hex)
	v.Presentation = "readOnly"
	return v, true
}

// lookupRetval is $_retval in an expression on vCPU v.
func (s *Session) lookupRetval(v int, cache *typeCache) (value, error) {
	if s.ret == nil || s.ret.vcpu != v {
		return value{}, fmt.Errorf("%s: no return value here (a stepOut that returns from a function gives one, until the guest runs again)", retvalName)
	}
	return s.ret.value(cache)
}
