package session

import (
	"fmt"
	"strings"

	"vmdap/vmm"
	"vmdap/x86"
)

// The x87 and SSE registers, as gdb shows them: st0-st7 as long doubles,
// xmm0-xmm15 as its vec128 union of lanes, the control words as flags.
// They are read once per scope, and shown in the Registers scope's
// "Float" and "Vector" groups (gdb's register groups), in expressions
// ($xmm0, $st0, $mxcsr), in variables that DWARF places in them, and in
// a stepOut's returned float; on a target that writes them
// (vmm.FPRegisterWriter) each, and each lane of an xmm, is assigned as
// gdb's set var $xmm0.v4_int32[0] = 7 does, in the innermost frame.

// fpRegs returns the frame's vCPU's x87 and SSE state, nil when the
// target cannot read it. A caller's frame sees the innermost frame's:
// the psABI saves none of them across calls, and CFI says nothing of
// them, so gdb shows the same values in every frame.
func (sc *frameScope) fpRegs() *x86.FPRegs {
	if sc.fp == nil && !sc.fpTried {
		sc.fpTried = true
		if fr, ok := sc.s.t.FPRegisters(); ok {
			if f, err := fr.FPRegs(sc.vcpu); err == nil {
				sc.fp = &f
			}
		}
	}
	return sc.fp
}

// fpBytes returns the bytes of an x87 or SSE register by gdb's name.
func (sc *frameScope) fpBytes(name string) ([]byte, bool) {
	if !isFPReg(name) {
		return nil, false
	}
	f := sc.fpRegs()
	if f == nil {
		return nil, false
	}
	return f.Bytes(name)
}

// isFPReg reports whether name is one of x86.FPRegNames.
func isFPReg(name string) bool {
	for _, n := range x86.FPRegNames {
		if n == name {
			return true
		}
	}
	return false
}

var (
	// typX87 is an st register: x87's 80-bit extended format.
	typX87 = &ctype{kind: tFloat, name: "long double", size: 10}
	// typVec128 is gdb's vec128, an xmm register's lanes.
	typVec128 = &ctype{kind: tStruct, union: true, name: "vec128", size: 16, fields: []field{
		{name: "v4_float", typ: lanes(typFlt, 4)},
		{name: "v2_double", typ: lanes(typDbl, 2)},
		{name: "v16_int8", typ: lanes(&ctype{kind: tInt, name: "int8_t", size: 1, signed: true}, 16)},
		{name: "v8_int16", typ: lanes(&ctype{kind: tInt, name: "int16_t", size: 2, signed: true}, 8)},
		{name: "v4_int32", typ: lanes(&ctype{kind: tInt, name: "int32_t", size: 4, signed: true}, 4)},
		{name: "v2_int64", typ: lanes(&ctype{kind: tInt, name: "int64_t", size: 8, signed: true}, 2)},
		{name: "uint128", typ: &ctype{kind: tInt, name: "uint128_t", size: 16}},
	}}
)

func lanes(t *ctype, n int64) *ctype {
	return &ctype{kind: tArray, elem: t, count: n, size: n * t.size}
}

// fpRegType is the type an x87 or SSE register reads as.
func fpRegType(name string) *ctype {
	switch {
	case strings.HasPrefix(name, "st"):
		return typX87
	case strings.HasPrefix(name, "xmm"):
		return typVec128
	}
	return typUInt
}

// fpRegValue is an x87 or SSE register as an (unassignable) value.
func (sc *frameScope) fpRegValue(name string) (value, bool) {
	b, ok := sc.fpBytes(name)
	if !ok {
		return value{}, false
	}
	t := fpRegType(name)
	return value{typ: t, raw: padTo(b, int(t.size)), name: "$" + name, fpReg: name}, true
}

// fpSet writes b over the register's bytes from off, on a target that
// writes them, in the innermost frame (as general registers are).
func (sc *frameScope) fpSet(name string, off int64, b []byte) error {
	if sc.f.phys != 0 {
		return fmt.Errorf("registers can only be changed in the innermost frame")
	}
	cur, ok := sc.fpBytes(name)
	if !ok || off < 0 || off+int64(len(b)) > int64(len(cur)) {
		return fmt.Errorf("$%s cannot be written here", name)
	}
	fr, _ := sc.s.t.FPRegisters()
	w, ok := fr.(vmm.FPRegisterWriter)
	if !ok {
		return fmt.Errorf("this target cannot write the x87 and SSE registers")
	}
	copy(cur[off:], b)
	if err := w.SetFPReg(sc.vcpu, name, cur); err != nil {
		return err
	}
	sc.fp.Set(name, cur)
	return nil
}

// fpReread is v (a value of an x87 or SSE register's bytes) as the
// register holds them now.
func (sc *frameScope) fpReread(v value) value {
	if b, ok := sc.fpBytes(v.fpReg); ok && v.fpOff+int64(len(v.raw)) <= int64(len(b)) {
		v.raw = b[v.fpOff : v.fpOff+int64(len(v.raw))]
	}
	return v
}

// fpWritable returns the target's writer of x87 and SSE registers.
func (s *Session) fpWritable() (vmm.FPRegisterWriter, bool) {
	fr, ok := s.t.FPRegisters()
	if !ok {
		return nil, false
	}
	w, ok := fr.(vmm.FPRegisterWriter)
	return w, ok
}

// fpBits are the control registers the Registers view decodes.
var fpBits = map[string][]x86.Flag{"fctrl": x86.FCWBits, "fstat": x86.FSWBits, "mxcsr": x86.MXCSRBits}

// fpRegVar renders one x87 or SSE register for the Registers view.
func (s *Session) fpRegVar(sc *frameScope, name string) Var {
	val, ok := sc.fpRegValue(name)
	if !ok {
		return Var{Name: name, Value: "<unavailable>", Presentation: "readOnly"}
	}
	var v Var
	if u, isCtl := sc.fp.Get(name); isCtl {
		v = Var{Name: name, Value: fmt.Sprintf("%#x", u), Type: val.typ.String(), EvaluateName: "$" + name, typ: val.typ}
		if bits := fpBits[name]; bits != nil {
			v.Value += " " + x86.Decode(u, bits)
		}
		v.set = func(text string) error {
			src, err := evalExpr(text, sc)
			if err != nil {
				return err
			}
			return assign(val, sc, src)
		}
		v.refresh = func() (Var, error) { return s.fpRegVar(sc, name), nil }
	} else {
		v = s.makeVar(sc, name, "$"+name, val, false)
	}
	if _, ok := s.fpWritable(); !ok || sc.f.phys != 0 {
		v.Presentation = "readOnly"
		v.set = nil
	}
	return v
}

// fpGroups are the Registers scope's "Float" (x87) and "Vector" (SSE)
// groups, when the target reads them. 32-bit code has xmm0-xmm7.
func (s *Session) fpGroups(sc *frameScope, mk func(name, summary string, kids func() []Var) Var) []Var {
	if _, ok := s.t.FPRegisters(); !ok {
		return nil
	}
	f := sc.fpRegs()
	if f == nil {
		return []Var{{Name: "Float", Value: "unavailable", Type: "registers", Presentation: "readOnly"},
			{Name: "Vector", Value: "unavailable", Type: "registers", Presentation: "readOnly"}}
	}
	nxmm := 16
	if x86.DecodeMode(sc.sregs) != 64 {
		nxmm = 8
	}
	var x87, vec []string
	for _, n := range x86.FPRegNames { // st…, the x87 words, xmm…, mxcsr
		switch {
		case n == "mxcsr":
			vec = append(vec, n)
		case strings.HasPrefix(n, "xmm"):
			if len(vec) < nxmm {
				vec = append(vec, n)
			}
		default:
			x87 = append(x87, n)
		}
	}
	kids := func(names []string) func() []Var {
		return func() []Var {
			var out []Var
			for _, n := range names {
				out = append(out, s.fpRegVar(sc, n))
			}
			return out
		}
	}
	return []Var{
		mk("Float", fmt.Sprintf("fctrl=%#x fstat=%#x ftag=%#x", f.FCW, f.FSW, f.FTW), kids(x87)),
		mk("Vector", fmt.Sprintf("mxcsr=%#x", f.MXCSR), kids(vec)),
	}
}
