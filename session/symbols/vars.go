package symbols

import (
	"debug/dwarf"
	"slices"
	"sort"
)

// VarKind says where a variable lives.
type VarKind uint8

const (
	KindParam VarKind = iota
	KindLocal
	KindGlobal
)

// Var is a variable described by DWARF.
type Var struct {
	Name     string
	Kind     VarKind
	Type     dwarf.Type
	Loc      []byte // DWARF location expression at the scope's PC; nil when optimised away
	DeclLine int
	CU       string
	AddrSize int
	RefSize  int // a DIE reference's size in its expressions (DW_OP_implicit_pointer)
	// Const is set when the variable has no location but a known value
	// (DW_AT_const_value).
	Const    []byte
	HasConst bool
	Rust     bool // declared in a Rust unit
	// typeAt is where its type's DIE is (ArrayBounds reads an array's
	// dimensions there).
	typeAt typeDIE
}

// Static reports whether the variable lives in static storage: its
// location is an address (DW_OP_addr; DWARF 5's DW_OP_addrx is read as
// one), not a register or a frame's slot.
func (v *Var) Static() bool { return len(v.Loc) > 0 && v.Loc[0] == opAddr }

// typeDIE is a type DIE in a unit's view.
type typeDIE struct {
	d   *dwarf.Data
	u   *unit
	off dwarf.Offset
}

// Scope describes what is visible in a function at a PC.
type Scope struct {
	Func      *Func
	Params    []*Var
	Locals    []*Var
	FrameBase []byte // DW_AT_frame_base expression at the PC
	AddrSize  int
	Inlined   string // the inlined function this scope is of, if any
}

// unitFor returns the unit state for a DIE, with t.mu held by the caller.
func (t *Table) entryAt(ci int32, die uint64) (*dwarf.Data, *dwarf.Reader, *dwarf.Entry, *unit) {
	if ci < 0 || int(ci) >= len(t.units) {
		return nil, nil, nil, nil
	}
	u := t.units[ci]
	st := t.cache.get(ci)
	d, err := t.unitData(st)
	if err != nil || die < u.off || die >= u.end {
		return nil, nil, nil, nil
	}
	r := d.Reader()
	r.Seek(dwarf.Offset(die - st.base))
	e, err := r.Next()
	if err != nil || e == nil {
		return nil, nil, nil, nil
	}
	return d, r, e, u
}

// ScopeAt returns the parameters and locals visible at pc, innermost
// lexical block first for locals.
func (t *Table) ScopeAt(pc uint64) (*Scope, bool) {
	fn := t.FuncAt(pc)
	if fn == nil || fn.cu < 0 {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	d, r, e, u := t.entryAt(fn.cu, fn.die)
	if e == nil {
		return nil, false
	}
	pc = t.link(pc)
	s := &Scope{Func: fn, AddrSize: u.format.addrSize}
	s.FrameBase = t.locAt(e, dwarf.AttrFrameBase, u, pc)
	var concrete map[dwarf.Offset]bool
	if e.Children {
		concrete = t.collect(d, r, u, pc, s, 0)
	}
	// A concrete instance without children (clang's, where nothing of
	// the abstract instance has a location) still has its parameters
	// and locals, optimized out, as gdb shows them.
	t.inheritAt(d, e, concrete, u, s, 0, 0)
	sort.SliceStable(s.Locals, func(i, j int) bool { return s.Locals[i].DeclLine < s.Locals[j].DeclLine })
	return s, true
}

// locAt returns the location expression of attribute a at pc: the
// expression itself, or the entry of a location list that covers pc. The
// bytes are a copy.
func (t *Table) locAt(e *dwarf.Entry, a dwarf.Attr, u *unit, pc uint64) []byte {
	f := e.AttrField(a)
	if f == nil {
		return nil
	}
	var b []byte
	switch f.Class {
	case dwarf.ClassExprLoc, dwarf.ClassBlock:
		b, _ = f.Val.([]byte)
	case dwarf.ClassLocListPtr, dwarf.ClassLocList:
		// debug/dwarf gives a DW_FORM_sec_offset as an int64, a
		// DW_FORM_loclistx (clang's form) as its index, a uint64.
		v := cval{form: formSecOffset, ok: true}
		switch x := f.Val.(type) {
		case int64:
			v.u = uint64(x)
		case uint64:
			v.u = x
			if f.Class == dwarf.ClassLocList && u.format.version >= 5 {
				v.form = formLoclistx
			}
		}
		b = exprAt(t.sec.locList(v, u), pc, func(pc uint64) bool {
			fn := t.FuncAt(pc + t.slide)
			return fn != nil && fn.Low == pc+t.slide
		})
	}
	if b == nil {
		return nil
	}
	return append([]byte(nil), t.resolveIndexed(b, u)...)
}

// collect walks a subprogram's or block's children. It returns the DIEs
// they are concrete instances of (DW_AT_abstract_origin), for inherit.
func (t *Table) collect(d *dwarf.Data, r *dwarf.Reader, u *unit, pc uint64, s *Scope, depth int) map[dwarf.Offset]bool {
	var concrete map[dwarf.Offset]bool
	for {
		e, err := r.Next()
		if err != nil || e == nil || e.Tag == 0 {
			return concrete
		}
		if off, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset); ok && e.Tag != dwarf.TagCallSite && e.Tag != tagGNUCallSiteT {
			if concrete == nil {
				concrete = map[dwarf.Offset]bool{}
			}
			concrete[off] = true
		}
		switch e.Tag {
		case dwarf.TagFormalParameter:
			if depth == 0 {
				if v := t.varFromEntry(d, e, u, KindParam, pc); v != nil {
					s.Params = append(s.Params, v)
				}
			}
		case dwarf.TagVariable:
			if v := t.varFromEntry(d, e, u, KindLocal, pc); v != nil {
				s.Locals = append(s.Locals, v)
			}
		case dwarf.TagLexDwarfBlock:
			if blockContains(d, e, pc) && e.Children {
				n := len(s.Locals)
				t.inheritAt(d, e, t.collect(d, r, u, pc, s, depth+1), u, s, depth+1, n)
				continue
			}
		}
		if e.Children {
			r.SkipChildren()
		}
	}
}

// inherit adds the parameters (at depth 0) and variables that the
// abstract instance of a concrete DIE e declares and e's children do
// not stand for (concrete: the DIEs they are instances of), as gdb does
// (inherit_abstract_dies): they have no location, and show as optimized
// out. GCC's -flto unit leaves out of a function what the optimizer
// removed, which the early debug information it refers to still
// declares. The abstract instance's own lexical blocks have no
// addresses: their variables count as the scope's.
func (t *Table) inherit(d *dwarf.Data, e *dwarf.Entry, concrete map[dwarf.Offset]bool, u *unit, s *Scope, depth int) {
	off, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
	if !ok {
		return
	}
	r := d.Reader()
	r.Seek(off)
	if o, err := r.Next(); err != nil || o == nil || !o.Children {
		return
	}
	t.inheritChildren(d, r, concrete, u, s, depth == 0)
}

// inheritAt is inherit with the locals it adds put at index at of the
// scope's, before those of the blocks inside the DIE's: the locals are
// outermost first (varsOf shows an earlier one of a later one's name as
// shadowed), and an abstract instance's variable that GCC's concrete
// instance declares in a lexical block of its own (an inlined
// function's w, in the block that wraps the inlined body) is inherited
// at the function's level, outside that block, where gdb has it.
func (t *Table) inheritAt(d *dwarf.Data, e *dwarf.Entry, concrete map[dwarf.Offset]bool, u *unit, s *Scope, depth, at int) {
	tmp := &Scope{}
	t.inherit(d, e, concrete, u, tmp, depth)
	s.Params = append(s.Params, tmp.Params...)
	s.Locals = slices.Insert(s.Locals, min(at, len(s.Locals)), tmp.Locals...)
}

func (t *Table) inheritChildren(d *dwarf.Data, r *dwarf.Reader, concrete map[dwarf.Offset]bool, u *unit, s *Scope, params bool) {
	for {
		c, err := r.Next()
		if err != nil || c == nil || c.Tag == 0 {
			return
		}
		if !concrete[c.Offset] {
			switch c.Tag {
			case dwarf.TagFormalParameter:
				if params {
					if v := t.varFromEntry(d, c, u, KindParam, 0); v != nil {
						s.Params = append(s.Params, v)
					}
				}
			case dwarf.TagVariable:
				if v := t.varFromEntry(d, c, u, KindLocal, 0); v != nil {
					s.Locals = append(s.Locals, v)
				}
			case dwarf.TagLexDwarfBlock:
				if c.Children {
					t.inheritChildren(d, r, nil, u, s, false)
					continue
				}
			}
		}
		if c.Children {
			r.SkipChildren()
		}
	}
}

func blockContains(d *dwarf.Data, e *dwarf.Entry, pc uint64) bool {
	ranges, err := d.Ranges(e)
	if err != nil || len(ranges) == 0 {
		return true
	}
	for _, rg := range ranges {
		if pc >= rg[0] && pc < rg[1] {
			return true
		}
	}
	return false
}

// origin returns the DIE an entry's DW_AT_abstract_origin or
// DW_AT_specification names (in the same unit), or nil.
func origin(d *dwarf.Data, e *dwarf.Entry) *dwarf.Entry {
	for _, a := range []dwarf.Attr{dwarf.AttrAbstractOrigin, dwarf.AttrSpecification} {
		if off, ok := e.Val(a).(dwarf.Offset); ok {
			r := d.Reader()
			r.Seek(off)
			if o, err := r.Next(); err == nil && o != nil {
				return o
			}
		}
	}
	return nil
}

// varFromEntry describes a variable DIE; its name, type and declaration
// line may come from the DIE it refers to (a definition after an extern
// declaration, or a concrete instance of an inlined function's
// variable).
func (t *Table) varFromEntry(d *dwarf.Data, e *dwarf.Entry, u *unit, kind VarKind, pc uint64) *Var {
	if v := t.anyVarFromEntry(d, e, u, kind, pc); v != nil && v.Name != "" {
		return v
	}
	return nil
}

// anyVarFromEntry is varFromEntry for a variable that may have no name
// (GCC's artificial one holding a variable-length array's bound).
func (t *Table) anyVarFromEntry(d *dwarf.Data, e *dwarf.Entry, u *unit, kind VarKind, pc uint64) *Var {
	v := &Var{Kind: kind, AddrSize: u.format.addrSize, RefSize: u.format.offSize, CU: u.name, Rust: u.lang == langRust}
	if u.format.version == 2 {
		v.RefSize = u.format.addrSize // DWARF 2's references are address-sized
	}
	cur := e
	for hop := 0; hop < 4 && cur != nil; hop++ {
		if v.Name == "" {
			v.Name, _ = cur.Val(dwarf.AttrName).(string)
		}
		if v.Type == nil {
			if off, ok := cur.Val(dwarf.AttrType).(dwarf.Offset); ok {
				if typ, err := d.Type(off); err == nil {
					v.Type = typ
					if kind != KindGlobal {
						// Only a local's array can have run-time bounds;
						// a global's would pin its unit's view.
						v.typeAt = typeDIE{d, u, off}
					}
				}
			}
		}
		if v.DeclLine == 0 {
			if l, ok := cur.Val(dwarf.AttrDeclLine).(int64); ok {
				v.DeclLine = int(l)
			}
		}
		if !v.HasConst {
			if f := cur.AttrField(dwarf.AttrConstValue); f != nil {
				v.HasConst = true
				switch c := f.Val.(type) {
				case int64:
					v.Const = le64(uint64(c))
				case []byte:
					v.Const = append([]byte(nil), c...)
				}
			}
		}
		if v.Name != "" && v.Type != nil {
			break
		}
		cur = origin(d, cur)
	}
	v.Loc = t.slideAddrOp(t.locAt(e, dwarf.AttrLocation, u, pc), u.format.addrSize)
	if v.Type == nil {
		return nil
	}
	return v
}

func le64(x uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(x >> (8 * i))
	}
	return b
}

// maxUnitsForAllGlobals: when pc is in no unit, an image of at most
// this many units shows all its globals (a large one none).
const maxUnitsForAllGlobals = 16

// Globals returns the global variables of the compile unit containing pc
// (all globals of a small image when pc is in no unit), sorted by name.
func (t *Table) Globals(pc uint64) []*Var {
	// The unit of the DWARF function at pc: code without a DWARF
	// function (assembly) sees every global of a small image.
	ci := int32(-1)
	if fn := t.FuncAt(pc); fn != nil {
		ci = fn.cu
	}
	if ci < 0 {
		if len(t.units) > maxUnitsForAllGlobals {
			return nil
		}
		var all []*Var
		for i := range t.units {
			all = append(all, t.unitGlobals(int32(i))...)
		}
		sort.SliceStable(all, func(i, j int) bool { return all[i].Name < all[j].Name })
		return all
	}
	return t.unitGlobals(ci)
}

// unitGlobals returns the globals unit ci defines, sorted by name.
func (t *Table) unitGlobals(ci int32) []*Var {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.cache.get(ci)
	if st.globOK {
		return st.globals
	}
	st.globOK = true
	d, r := t.unitReader(st)
	if r == nil {
		return nil
	}
	u := t.units[ci]
	cu, err := r.Next()
	if err != nil || cu == nil || !cu.Children {
		return nil
	}
	var out []*Var
	for {
		e, err := r.Next()
		if err != nil || e == nil || e.Tag == 0 {
			break
		}
		if e.Tag == dwarf.TagVariable && e.Val(dwarf.AttrDeclaration) == nil {
			if v := t.varFromEntry(d, e, u, KindGlobal, 0); v != nil && v.Loc != nil && !t.discarded(v, u.format.addrSize) {
				out = append(out, v)
			}
		}
		if e.Children {
			r.SkipChildren()
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	st.globals = out
	return out
}

// discarded reports a global the linker dropped with its section
// (.discard.*: Linux's __ADDRESSABLE() markers, one per initcall and
// static call, __UNIQUE_ID___addressable_*): its DWARF address was
// relocated to 0, and no ELF symbol of its name is there, where a
// variable really at 0 (Linux's first per-CPU variable,
// fixed_percpu_data) has one. An image without ELF symbols keeps them.
func (t *Table) discarded(v *Var, addrSize int) bool {
	if len(v.Loc) != 1+addrSize || v.Loc[0] != 0x03 || len(t.syms) == 0 {
		return false
	}
	r := rd{b: v.Loc[1:]}
	a := r.uN(addrSize)
	if a != t.slide {
		return false
	}
	for i := sort.Search(len(t.syms), func(i int) bool { return t.syms[i].value >= a }); i < len(t.syms) && t.syms[i].value == a; i++ {
		if t.syms[i].name == v.Name {
			return false
		}
	}
	return true
}

// GlobalByName finds a global variable.
func (t *Table) GlobalByName(name string) *Var {
	ref, ok := t.globals[name]
	if !ok {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	d, _, e, u := t.entryAt(ref.cu, ref.die)
	if e == nil {
		return nil
	}
	v := t.varFromEntry(d, e, u, KindGlobal, 0)
	if v == nil || v.Loc == nil && !v.HasConst && !t.crossRefs {
		// (Where units refer into others, the index has the globals
		// the optimizer removed too: they show as optimized out.)
		return nil
	}
	return v
}

// GlobalNames calls fn for each global variable's name.
func (t *Table) GlobalNames(fn func(name string)) {
	for n := range t.globals {
		fn(n)
	}
}

// TypeByName finds a named type (struct tag, typedef or base type) for
// casts in expressions.
func (t *Table) TypeByName(name string) (dwarf.Type, bool) {
	ref, ok := t.types[name]
	if !ok {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	typ, err := t.typeAt(ref)
	return typ, err == nil
}

// typeAt decodes the type whose DIE a name refers to (in a unit or a
// type unit). Caller holds t.mu.
func (t *Table) typeAt(ref nameRef) (dwarf.Type, error) {
	if ref.cu >= 0 {
		if _, _, e, _ := t.entryAt(ref.cu, ref.die); e == nil {
			return nil, formatError("info", ref.die, "no type")
		}
	} else if ref.cu == -1 {
		return nil, formatError("info", ref.die, "no type")
	}
	st := t.cache.get(ref.cu)
	d, err := t.unitData(st)
	if err != nil {
		return nil, err
	}
	return d.Type(dwarf.Offset(ref.die - st.base))
}

// DeclaredType returns the type a top-level declaration of name has
// (extern unsigned long volatile jiffies;), looked for in the unit of the
// function at pc, then in the other units decoded so far: the type of a
// global that only an ELF symbol defines (the kernel's linker script
// gives jiffies its address), as gdb gives it. A compiler declares an
// extern only in the units that use it.
func (t *Table) DeclaredType(pc uint64, name string) (dwarf.Type, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var first *unitState
	if fn := t.FuncAt(pc); fn != nil && fn.cu >= 0 {
		first = t.cache.get(fn.cu)
		if typ, ok := t.declIn(first, name); ok {
			return typ, true
		}
	}
	for s := t.cache.head; s != nil; s = s.next {
		if s == first || s.data == nil {
			continue
		}
		if typ, ok := t.declIn(s, name); ok {
			return typ, true
		}
	}
	return nil, false
}

// declIn looks for a top-level declaration of name in one unit. Caller
// holds t.mu.
func (t *Table) declIn(st *unitState, name string) (dwarf.Type, bool) {
	d, r := t.unitReader(st)
	if r == nil {
		return nil, false
	}
	return typeOfTopLevel(d, r, func(e *dwarf.Entry) bool {
		return e.Tag == dwarf.TagVariable && e.Val(dwarf.AttrDeclaration) != nil && e.Val(dwarf.AttrName) == name
	})
}
