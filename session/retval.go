package session

import (
	"debug/dwarf"
	"encoding/binary"
	"errors"
	"fmt"

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
	return &returned{vcpu: v, fn: p.fn.Name, typ: ft.ReturnType, mode: p.mode, rax: r.RAX, rdx: r.RDX}
}

// value is the returned value by the calling conventions: the System V
// AMD64 ABI (integers, pointers and small aggregates of integers in RAX
// and RDX, larger aggregates in memory whose address RAX returns) and
// i386's (EAX, EDX:EAX, aggregates in memory at EAX). Floating point
// comes back in XMM0 or x87's st(0), which vmdap does not read.
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
	case t.kind == tFloat:
		return value{}, fmt.Errorf("a %s comes back in a floating-point register (XMM0, or x87's st(0) in 32-bit code), which vmdap does not read", t.String())
	case t.isScalar() && t.size > 0 && t.size <= 2*w:
		return inRegs(), nil
	case t.kind == tStruct && t.rustLang:
		return value{}, errors.New("Rust's ABI does not say where a returned aggregate goes")
	case t.kind == tStruct && r.mode == 64 && t.size > 0 && t.size <= 16:
		if hasFloat(t, 0) {
			return value{}, fmt.Errorf("a %s with floating-point members comes back partly in XMM registers, which vmdap does not read", t.String())
		}
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

// hasFloat reports whether an aggregate holds a floating-point member.
func hasFloat(t *ctype, depth int) bool {
	if depth > 16 {
		return true // too deep to tell: not read rather than misread
	}
	switch t.kind {
	case tFloat:
		return true
	case tArray:
		return t.elem != nil && hasFloat(t.elem, depth+1)
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
	case t.kind == tArray && t.elem != nil:
		return alignOf(t.elem, depth+1)
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
