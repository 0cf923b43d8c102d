package session

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"vmdap/session/symbols"
	"vmdap/x86"
)

// Var is a variable, register or evaluation result as the client shows
// it. Children (when not nil) lists its members; both stay valid only for
// the current stop.
type Var struct {
	Name         string
	Value        string
	Type         string
	EvaluateName string
	MemRef       uint64
	HasMemRef    bool
	Children     func() ([]Var, error)
	NumChildren  int
	// Elements, for an array, makes elements [start, start+count) (count
	// < 0: to the end), where Children makes the first MaxElements of
	// NumChildren: a client pages through a large array.
	Elements     func(start, count int) ([]Var, error)
	Presentation string // "register", "readOnly", …

	// What data breakpoints and setVariable need.
	addr    uint64
	size    int64
	inMem   bool
	typ     *ctype
	set     func(text string) error
	refresh func() (Var, error)
}

// Settable reports whether SetVar can change the variable.
func (v Var) Settable() bool { return v.set != nil }

// MaxElements bounds the elements of an array that Children makes and a
// response carries: a client pages through more (Elements).
const MaxElements = 1000

// Scope names.
const (
	ScopeLocals    = "Locals"
	ScopeArguments = "Arguments"
	ScopeGlobals   = "Globals"
	ScopeRegisters = "Registers"
)

// ScopeInfo describes one scope of a frame.
type ScopeInfo struct {
	Name  string // one of the Scope names
	Vars  func() ([]Var, error)
	Count int
}

// Scopes returns the scopes of a frame: Locals, Arguments, Globals (of the
// frame's compile unit) and Registers.
func (s *Session) Scopes(thread, frame int) ([]ScopeInfo, error) {
	v, err := s.vcpuOf(thread)
	if err != nil {
		return nil, err
	}
	var out []ScopeInfo
	err = s.stopped(func() error {
		sc, err := s.newScope(v, frame)
		if err != nil {
			return err
		}
		// A stepOut's return value heads the Locals of the frame it
		// returned to (a frame without DWARF gets a Locals for it).
		ret := frame == 0 && s.ret != nil && s.ret.vcpu == v
		withRet := func(vars []Var) []Var {
			if r, ok := s.retvalVar(sc); ok && ret {
				return append([]Var{r}, vars...)
			}
			return vars
		}
		n := 0
		if ret {
			n = 1
		}
		inner := map[string]bool{} // the names locals and parameters take
		if sc.sc != nil {
			locals, params := sc.sc.Locals, sc.sc.Params
			byLocals := map[string]bool{}
			for _, v := range locals {
				byLocals[v.Name], inner[v.Name] = true, true
			}
			for _, v := range params {
				inner[v.Name] = true
			}
			out = append(out,
				ScopeInfo{Name: ScopeLocals, Count: len(locals) + n, Vars: s.locked(func() ([]Var, error) { return withRet(s.varsOf(sc, locals, nil)), nil })},
				ScopeInfo{Name: ScopeArguments, Count: len(params), Vars: s.locked(func() ([]Var, error) { return s.varsOf(sc, params, byLocals), nil })})
		} else if ret {
			out = append(out, ScopeInfo{Name: ScopeLocals, Count: 1, Vars: s.locked(func() ([]Var, error) { return withRet(nil), nil })})
		}
		if s.sym != nil {
			globals := s.sym.Globals(sc.f.PC)
			out = append(out, ScopeInfo{Name: ScopeGlobals, Count: len(globals), Vars: s.locked(func() ([]Var, error) { return s.varsOf(sc, globals, inner), nil })})
		}
		groups := 3 // General, Segments, Control; Debug, Float and Vector where the target has them
		if _, ok := s.t.DebugRegisters(); ok {
			groups++
		}
		if _, ok := s.t.FPRegisters(); ok {
			groups += 2
		}
		out = append(out, ScopeInfo{Name: ScopeRegisters, Count: groups, Vars: s.locked(func() ([]Var, error) { return s.registerGroups(sc), nil })})
		return nil
	})
	return out, err
}

// locked wraps a lazy child function so it runs with the session locked
// and stopped.
func (s *Session) locked(fn func() ([]Var, error)) func() ([]Var, error) {
	return func() ([]Var, error) {
		var out []Var
		err := s.stopped(func() error {
			var e error
			out, e = fn()
			return e
		})
		return out, err
	}
}

// childExpr is a member's expression from its parent's, "" (none) when
// the parent has none.
func childExpr(format, parent string) string {
	if parent == "" {
		return ""
	}
	return fmt.Sprintf(format, parent)
}

// varsOf renders a scope's variables. One that an inner block's variable
// of its name shadows (or, for a parameter, a local in hidden) is shown
// in parentheses, as Delve shows it, with no expression: its name
// evaluates to the inner one.
func (s *Session) varsOf(sc *frameScope, vars []*symbols.Var, hidden map[string]bool) []Var {
	var out []Var
	seen := map[string]bool{}
	for i := len(vars) - 1; i >= 0; i-- {
		sv := vars[i]
		name, expr := sv.Name, sv.Name
		if seen[sv.Name] || hidden[sv.Name] {
			name, expr = "("+sv.Name+")", ""
		}
		seen[sv.Name] = true
		val, err := sc.varValue(sv)
		if err != nil {
			out = append(out, Var{Name: name, EvaluateName: expr, Value: "<" + err.Error() + ">", Type: fromDWARF(sv.Type, sc.types).String()})
			continue
		}
		if val.inMem && s.inPerCPUArea(val.addr) {
			if err := readable(val, sc); err != nil {
				out = append(out, Var{Name: name, EvaluateName: expr, Value: "<" + s.perCPUHint(val.addr, err).Error() + ">", Type: val.typ.String()})
				continue
			}
		}
		out = append(out, s.makeVar(sc, name, expr, val, s.hex))
	}
	// declaration order
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// makeVar renders a value with lazy children (integers in hex when hex
// is set: children inherit it).
func (s *Session) makeVar(sc *frameScope, name, expr string, val value, hex bool) Var {
	v := Var{Name: name, Type: val.typ.String(), EvaluateName: expr, typ: val.typ}
	v.Value = format(val, sc, hex)
	if val.inMem {
		v.addr, v.size, v.inMem = val.addr, val.typ.size, true
		v.MemRef, v.HasMemRef = val.addr, true
	}
	t := val.typ
	if val.gone(0, int64(len(val.opt)), true) {
		return v // all of it optimized out: nothing to expand
	}
	switch t.kind {
	case tPtr:
		if u, err := val.u64(sc); val.synth != nil || err == nil && u != 0 && t.el().kind != tVoid && t.el().kind != tFunc {
			if val.synth == nil {
				v.MemRef, v.HasMemRef = u, true
			}
			v.NumChildren = 1
			v.Children = s.locked(func() ([]Var, error) {
				d, err := deref(val, sc)
				if err != nil {
					return nil, err
				}
				return []Var{s.makeVar(sc, "*"+name, childExpr("*(%s)", expr), d, hex)}, nil
			})
		}
	case tStruct:
		if kids, n, ok := s.rustChildren(sc, name, expr, val, hex); ok {
			v.NumChildren, v.Children = n, kids
			break
		}
		v.NumChildren = len(t.fields)
		v.Children = s.locked(func() ([]Var, error) {
			b, err := val.bytes(sc)
			if err != nil {
				return nil, err
			}
			var kids []Var
			for _, f := range t.fields {
				if f.name == "" {
					kids = append(kids, s.anonymousMember(sc, expr, fieldValue(val, f, b), hex))
					continue
				}
				kids = append(kids, s.makeVar(sc, f.name, childExpr("(%s)."+f.name, expr), fieldValue(val, f, b), hex))
			}
			return kids, nil
		})
	case tArray:
		n := t.count
		if n < 0 {
			break // a flexible array member: its elements are indexed by hand (p->data[3])
		}
		// Every element is counted; they are made only for the range a
		// client pages in (Elements), or the first MaxElements.
		n = min(n, math.MaxInt32)
		elems := func(start, count int) ([]Var, error) {
			start = min(max(start, 0), int(n))
			end := int(n)
			if count >= 0 && count < end-start {
				end = start + count
			}
			kids := make([]Var, 0, end-start)
			if val.inMem && t.el().size > 0 {
				// The elements' bytes in one read, not one each.
				defer sc.readAhead(val.addr+uint64(int64(start)*t.el().size), int64(end-start)*t.el().size)()
			}
			for i := int64(start); i < int64(end); i++ {
				kids = append(kids, s.makeVar(sc, fmt.Sprintf("[%d]", i), childExpr("(%s)"+fmt.Sprintf("[%d]", i), expr), index(val, i), hex))
			}
			return kids, nil
		}
		v.NumChildren = int(n)
		v.Children = s.locked(func() ([]Var, error) { return elems(0, MaxElements) })
		v.Elements = func(start, count int) ([]Var, error) {
			return s.locked(func() ([]Var, error) { return elems(start, count) })()
		}
	}
	if t.isScalar() && (val.inMem || val.reg != "" || val.bits != nil || val.fpReg != "") {
		v.set = func(text string) error {
			src, err := evalExpr(text, sc)
			if err != nil {
				return err
			}
			return assign(val, sc, src)
		}
		v.refresh = func() (Var, error) {
			now := val
			if val.bits != nil { // an rvalue of the bits: read them again
				var err error
				if now, err = val.bits.reread(val, sc); err != nil {
					return Var{}, err
				}
			}
			if val.fpReg != "" {
				now = sc.fpReread(val)
			}
			return s.makeVar(sc, name, expr, now, hex), nil
		}
	}
	return v
}

// anonymousMember is an anonymous struct or union member, named as gdb's
// MI names it (<anonymous union>). C reaches its members through the
// struct that holds it (p->u, not p->.u), so theirs are the parent's
// expressions; it has none of its own.
func (s *Session) anonymousMember(sc *frameScope, parent string, val value, hex bool) Var {
	name := "<anonymous struct>"
	if val.typ.union {
		name = "<anonymous union>"
	}
	v := s.makeVar(sc, name, parent, val, hex)
	v.EvaluateName = ""
	return v
}

// SetVar changes a variable or register and returns its new rendering.
func (s *Session) SetVar(v Var, text string) (Var, error) {
	if s.PostMortem() {
		return Var{}, ErrPostMortem
	}
	if v.set == nil {
		return Var{}, fmt.Errorf("%s cannot be changed", v.Name)
	}
	var out Var
	err := s.stopped(func() error {
		if err := v.set(text); err != nil {
			return err
		}
		var err error
		out, err = v.refresh()
		return err
	})
	s.emitWritten(err == nil)
	return out, err
}

// emitWritten announces the guest memory expressions wrote (a memory
// event each) and, after a change, asks the client to refetch.
func (s *Session) emitWritten(changed bool) {
	s.mu.Lock()
	w := s.written
	s.written = nil
	s.mu.Unlock()
	for _, m := range w {
		s.emit(m)
	}
	if changed || len(w) > 0 {
		s.emit(Invalidated{Stacks: true})
	}
}

// Evaluate evaluates an expression in a frame, or with frame NoFrame in
// the global scope (thread 0: the vCPU of the last stop). A format suffix `,x` (or `,h`), as in
// Visual Studio's watch window, or gdb's `/x ` prefix shows integers in
// hex; hex asks for that too (DAP's ValueFormat).
func (s *Session) Evaluate(thread, frame int, expr string, hex bool) (Var, error) {
	name := expr
	letter, expr := printLetter(expr)
	expr, fmtHex := formatSpec(expr)
	hex = hex || fmtHex
	vc, err := s.vcpuOrCurrent(thread)
	if err != nil {
		return Var{}, err
	}
	var out Var
	err = s.stopped(func() error {
		sc, err := s.scopeOf(vc, frame)
		if err != nil {
			return err
		}
		val, err := evalExpr(expr, sc)
		if errors.Is(err, symbols.ErrOptimizedOut) && isIdent(strings.TrimSpace(expr)) {
			// A variable the optimizer left no value for is shown so,
			// as gdb's print shows it (an expression using it fails).
			typ := ""
			if v, ok, _ := sc.lookupVar(strings.TrimSpace(expr)); ok && v.typ != nil {
				typ = v.typ.String()
			}
			out = Var{Name: name, Value: "<optimized out>", Type: typ, EvaluateName: expr}
			return nil
		}
		if err != nil {
			return err
		}
		if letter != 0 {
			// gdb's p/d, p/t, …: the value in that form, with no
			// members to expand.
			text, err := formatLetter(val, sc, letter)
			if err != nil {
				return err
			}
			out = Var{Name: name, Value: text, Type: val.typ.String(), EvaluateName: expr}
			return nil
		}
		if rv, ok := s.bareRegister(sc, expr, val); ok {
			out = rv
			return nil
		}
		if err := readable(val, sc); err != nil {
			if val.viaPtr { // (a null pointer's member is no per-CPU variable)
				return err
			}
			return s.perCPUHint(val.addr, err)
		}
		out = s.makeVar(sc, name, expr, val, hex || s.hex)
		return nil
	})
	return out, err
}

// readable fails for a value in memory of which not even the first byte
// can be read (*p with p NULL): gdb's print fails so, and an evaluate
// that answers "<cannot read …>" as its value would tell the watch view
// it succeeded. A member or element that cannot be read still shows
// its error in place, as gdb's <error: …>.
func readable(v value, sc scope) error {
	if !v.inMem || v.typ.size <= 0 || v.typ.kind == tFunc {
		return nil
	}
	var b [1]byte
	return sc.readMem(b[:], v.addr)
}

// bareRegister renders an expression that is just a register ($rax,
// $cs, rax) as the Registers view shows it, so the two agree.
func (s *Session) bareRegister(sc *frameScope, expr string, val value) (Var, bool) {
	if val.reg == "" {
		return Var{}, false
	}
	e := strings.ToLower(strings.TrimSpace(expr))
	if e != "$"+val.reg && !(e == "$pc" && val.reg == "rip") && !(e == val.reg && val.name == strings.TrimSpace(expr)) {
		return Var{}, false
	}
	return s.registerVar(sc, val.reg)
}

// SetExpression assigns the value of valueText to expr, which must name
// something assignable (a variable, member, element, dereference or
// register): the watch view's Set Value, and the variables view's edits
// when the client prefers evaluate names. It returns expr's new rendering.
func (s *Session) SetExpression(thread, frame int, expr, valueText string, hex bool) (Var, error) {
	vc, err := s.vcpuOrCurrent(thread)
	if err != nil {
		return Var{}, err
	}
	name := expr
	expr, fmtHex := formatSpec(expr)
	hex = hex || fmtHex
	var out Var
	err = s.stopped(func() error {
		sc, err := s.scopeOf(vc, frame)
		if err != nil {
			return err
		}
		dst, err := evalExpr(expr, sc)
		if err != nil {
			return err
		}
		if !dst.typ.isScalar() || (!dst.inMem && dst.reg == "" && dst.bits == nil && dst.fpReg == "") {
			return fmt.Errorf("%s cannot be assigned: it is not a scalar in memory or a register", expr)
		}
		src, err := evalExpr(valueText, sc)
		if err != nil {
			return err
		}
		if err := assign(dst, sc, src); err != nil {
			return err
		}
		now, err := evalExpr(expr, sc) // read back: what the guest now holds
		if err != nil {
			return err
		}
		if rv, ok := s.bareRegister(sc, expr, now); ok {
			out = rv
			return nil
		}
		out = s.makeVar(sc, name, expr, now, hex || s.hex || now.reg != "")
		return nil
	})
	s.emitWritten(err == nil)
	return out, err
}

// register groups

// regBits are the registers the Registers view decodes bit by bit.
var regBits = map[string][]x86.Flag{"rflags": x86.RFLAGSBits, "cr0": x86.CR0Bits, "cr4": x86.CR4Bits,
	"efer": x86.EFERBits, "dr6": x86.DR6Bits, "dr7": x86.DR7Bits}

func (s *Session) registerGroups(sc *frameScope) []Var {
	mk := func(name, summary string, kids func() []Var) Var {
		// A group: its value a summary, not a value to set; how many
		// rows it has is left to its expansion.
		return Var{Name: name, Value: summary, Type: "registers", Presentation: "readOnly",
			Children: s.locked(func() ([]Var, error) { return kids(), nil })}
	}
	sr := sc.sregs
	general := fmt.Sprintf("rip=%#x rsp=%#x", sc.regs.RIP, sc.regs.RSP)
	switch x86.DecodeMode(sr) { // (as gdb names them in the code's mode)
	case 32:
		general = fmt.Sprintf("eip=%#x esp=%#x", uint32(sc.regs.RIP), uint32(sc.regs.RSP))
	case 16:
		general = fmt.Sprintf("cs:ip=%#x:%#x ss:sp=%#x:%#x", sr.CS.Selector, uint16(sc.regs.RIP), sr.SS.Selector, uint16(sc.regs.RSP))
	}
	groups := []Var{
		mk("General", general, func() []Var { return s.generalRegs(sc) }),
		mk("Segments", fmt.Sprintf("cs=%#x ds=%#x es=%#x fs=%#x gs=%#x ss=%#x", sr.CS.Selector, sr.DS.Selector, sr.ES.Selector,
			sr.FS.Selector, sr.GS.Selector, sr.SS.Selector), func() []Var { return s.segmentRegs(sc) }),
		mk("Control", fmt.Sprintf("cr0=%#x cr3=%#x cr4=%#x efer=%#x", sr.CR0, sr.CR3, sr.CR4, sr.EFER), func() []Var { return s.controlRegs(sc) }),
	}
	if _, ok := s.t.DebugRegisters(); ok {
		summary := "unavailable"
		if d := sc.debugRegs(); d != nil {
			summary = fmt.Sprintf("dr6=%#x dr7=%#x", d.DR6, d.DR7)
		}
		groups = append(groups, mk("Debug", summary, func() []Var { return s.debugRegVars(sc) }))
	}
	return append(groups, s.fpGroups(sc, mk)...)
}

// registerVar renders a register as the Registers view shows it (a
// segment register with its parts); false for a name that is no
// register.
func (s *Session) registerVar(sc *frameScope, name string) (Var, bool) {
	n := strings.ToLower(name)
	if seg := sc.sregs.SegmentByName(n); seg != nil {
		return s.segmentVar(n, *seg), true
	}
	u, ok := sc.regGet(n)
	if !ok {
		return Var{}, false
	}
	v := s.regVar(sc, n, u, regBits[n])
	if n == "rip" || n == "rsp" || n == "rbp" {
		v.MemRef, v.HasMemRef = u, true
	}
	if t := regType(n); t.size < 8 { // a narrower view (eax, ax, al): its own width
		v.Value, v.Type, v.typ = fmt.Sprintf("%#0*x", 2*t.size, u&mask(t.size)), t.String(), t
	}
	return v, true
}

func (s *Session) regVar(sc *frameScope, name string, v uint64, bits []x86.Flag) Var {
	val := fmt.Sprintf("%#016x", v)
	if bits != nil {
		val = fmt.Sprintf("%#x %s", v, x86.Decode(v, bits))
	}
	rv := Var{Name: name, Value: val, Type: "unsigned long", EvaluateName: "$" + name, Presentation: "register", typ: typULong}
	_, canWrite := s.t.RegisterWriter()
	if canWrite && sc.f.phys == 0 {
		n := name
		rv.set = func(text string) error {
			src, err := evalExpr(text, sc)
			if err != nil {
				return err
			}
			u, err := src.u64(sc)
			if err != nil {
				return err
			}
			return sc.regSet(n, u)
		}
		rv.refresh = func() (Var, error) {
			r, _ := s.registerVar(sc, n)
			return r, nil
		}
	} else {
		rv.Presentation = "readOnly" // a caller's frame's (its values are the unwinder's), or a target that cannot write them
	}
	return rv
}

func (s *Session) generalRegs(sc *frameScope) []Var {
	var out []Var
	for _, n := range x86.GeneralNames() {
		v, _ := s.registerVar(sc, n)
		out = append(out, v)
	}
	return out
}

func (s *Session) segmentRegs(sc *frameScope) []Var {
	var out []Var
	for _, n := range x86.SegmentNames() {
		out = append(out, s.segmentVar(n, *sc.sregs.SegmentByName(n)))
	}
	out = append(out,
		Var{Name: "gdtr", Value: fmt.Sprintf("base %#x, limit %#x", sc.sregs.GDT.Base, sc.sregs.GDT.Limit), Type: "descriptor table", Presentation: "readOnly"},
		Var{Name: "idtr", Value: fmt.Sprintf("base %#x, limit %#x", sc.sregs.IDT.Base, sc.sregs.IDT.Limit), Type: "descriptor table", Presentation: "readOnly"})
	return out
}

// segmentVar is a segment register: its selector, base and limit, with
// the parts (and the attributes) as children.
func (s *Session) segmentVar(n string, sg x86.Segment) Var {
	return Var{Name: n, Presentation: "readOnly", Type: "segment",
		Value: fmt.Sprintf("%#x (base %#x, limit %#x)", sg.Selector, sg.Base, sg.Limit), NumChildren: 4,
		EvaluateName: "$" + n,
		Children: func() ([]Var, error) {
			return []Var{
				{Name: "selector", Value: fmt.Sprintf("%#x", sg.Selector), Type: "unsigned short", Presentation: "readOnly"},
				{Name: "base", Value: fmt.Sprintf("%#x", sg.Base), Type: "unsigned long", Presentation: "readOnly"},
				{Name: "limit", Value: fmt.Sprintf("%#x", sg.Limit), Type: "unsigned int", Presentation: "readOnly"},
				{Name: "attributes", Value: segAttrs(sg), Type: "segment attributes", Presentation: "readOnly"},
			}, nil
		}}
}

func segAttrs(s x86.Segment) string {
	var p []string
	p = append(p, fmt.Sprintf("type=%d", s.Type), fmt.Sprintf("dpl=%d", s.DPL))
	for _, f := range []struct {
		on   bool
		name string
	}{{s.Present, "P"}, {s.S, "S"}, {s.L, "L"}, {s.DB, "D/B"}, {s.G, "G"}, {s.Unusable, "unusable"}} {
		if f.on {
			p = append(p, f.name)
		}
	}
	return fmt.Sprintf("%#x [%s]", s.Attributes(), strings.Join(p, " "))
}

func (s *Session) controlRegs(sc *frameScope) []Var {
	sr := sc.sregs
	var out []Var
	for _, n := range x86.ControlNames() {
		v, _ := s.registerVar(sc, n)
		out = append(out, v)
	}
	out = append(out, Var{Name: "mode", Value: fmt.Sprintf("%d-bit, CPL %d", x86.DecodeMode(sr), x86.CPL(sr)), Presentation: "readOnly"})
	return out
}

func (s *Session) debugRegVars(sc *frameScope) []Var {
	d := sc.debugRegs()
	if d == nil {
		return []Var{{Name: "unavailable", Value: "the target does not expose debug registers"}}
	}
	var out []Var
	for _, n := range x86.DebugNames() {
		v, _ := s.registerVar(sc, n)
		out = append(out, v)
	}
	return out
}

// formatSpec splits a display format off an expression: a trailing ",x",
// ",X" or ",h" (Visual Studio) or a leading "/x" (gdb's print/x) asks
// for hex.
func formatSpec(expr string) (string, bool) {
	e := strings.TrimSpace(expr)
	if rest, ok := strings.CutPrefix(e, "/x"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		return strings.TrimSpace(rest), true
	}
	if i := strings.LastIndexByte(e, ','); i > 0 {
		switch strings.TrimSpace(e[i+1:]) {
		case "x", "X", "h":
			if base := strings.TrimSpace(e[:i]); base != "" {
				return base, true
			}
		}
	}
	return expr, false
}

// isIdent reports whether s names a variable: a C identifier, or a
// path of them (gdb's function::static, Rust's module::STATIC).
func isIdent(s string) bool {
	for _, part := range strings.Split(s, "::") {
		if part == "" || !isAlpha(part[0]) {
			return false
		}
		for i := 1; i < len(part); i++ {
			if !isAlnum(part[i]) {
				return false
			}
		}
	}
	return true
}
