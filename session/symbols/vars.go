package symbols

import (
	"debug/dwarf"
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
	Loc      []byte // DWARF location expression; nil when optimised away
	DeclLine int
	CU       string
	scopeLow uint64 // for locals in lexical blocks: the block's range
	scopeHi  uint64
}

func (t *Table) varFromEntry(e *dwarf.Entry, cu *dwarf.Entry, kind VarKind) *Var {
	name, _ := e.Val(dwarf.AttrName).(string)
	if name == "" {
		return nil
	}
	v := &Var{Name: name, Kind: kind}
	if cun, ok := cu.Val(dwarf.AttrName).(string); ok {
		v.CU = cun
	}
	if off, ok := e.Val(dwarf.AttrType).(dwarf.Offset); ok {
		if typ, err := t.data.Type(off); err == nil {
			v.Type = typ
		}
	}
	if loc, ok := e.Val(dwarf.AttrLocation).([]byte); ok {
		v.Loc = loc
	}
	if l, ok := e.Val(dwarf.AttrDeclLine).(int64); ok {
		v.DeclLine = int(l)
	}
	if v.Type == nil {
		return nil
	}
	return v
}

// Scope describes what is visible in a function at a PC.
type Scope struct {
	Func      *Func
	Params    []*Var
	Locals    []*Var
	FrameBase []byte // DW_AT_frame_base expression
}

// ScopeAt returns the parameters and locals visible at pc, innermost
// lexical block first for locals.
func (t *Table) ScopeAt(pc uint64) (*Scope, bool) {
	fn := t.FuncAt(pc)
	if fn == nil || !fn.hasEntry || t.data == nil {
		return nil, false
	}
	r := t.data.Reader()
	r.Seek(fn.entry)
	e, err := r.Next()
	if err != nil || e == nil {
		return nil, false
	}
	s := &Scope{Func: fn}
	if fb, ok := e.Val(dwarf.AttrFrameBase).([]byte); ok {
		s.FrameBase = fb
	}
	if !e.Children {
		return s, true
	}
	t.collect(r, fn.cu, pc, s, 0)
	sort.SliceStable(s.Locals, func(i, j int) bool { return s.Locals[i].DeclLine < s.Locals[j].DeclLine })
	return s, true
}

// collect walks a subprogram's or block's children.
func (t *Table) collect(r *dwarf.Reader, cu *dwarf.Entry, pc uint64, s *Scope, depth int) {
	for {
		e, err := r.Next()
		if err != nil || e == nil || e.Tag == 0 {
			return
		}
		switch e.Tag {
		case dwarf.TagFormalParameter:
			if depth == 0 {
				if v := t.varFromEntry(e, cu, KindParam); v != nil {
					s.Params = append(s.Params, v)
				}
			}
		case dwarf.TagVariable:
			if v := t.varFromEntry(e, cu, KindLocal); v != nil {
				s.Locals = append(s.Locals, v)
			}
		case dwarf.TagLexDwarfBlock:
			if t.blockContains(e, pc) && e.Children {
				t.collect(r, cu, pc, s, depth+1)
				continue
			}
		}
		if e.Children {
			r.SkipChildren()
		}
	}
}

func (t *Table) blockContains(e *dwarf.Entry, pc uint64) bool {
	ranges, err := t.data.Ranges(e)
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

// Globals returns the global variables of the compile unit containing pc
// (all globals when pc is in no unit), sorted by name.
func (t *Table) Globals(pc uint64) []*Var {
	cuName := ""
	if fn := t.FuncAt(pc); fn != nil && fn.cu != nil {
		cuName, _ = fn.cu.Val(dwarf.AttrName).(string)
	}
	var out []*Var
	for _, v := range t.globals {
		if cuName == "" || v.CU == cuName {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// GlobalByName finds a global variable.
func (t *Table) GlobalByName(name string) *Var {
	for _, v := range t.globals {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// TypeByName finds a named type (struct tag, typedef or base type) for
// casts in expressions.
func (t *Table) TypeByName(name string) (dwarf.Type, bool) {
	if t.data == nil {
		return nil, false
	}
	r := t.data.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			return nil, false
		}
		switch e.Tag {
		case dwarf.TagBaseType, dwarf.TagTypedef, dwarf.TagStructType, dwarf.TagUnionType, dwarf.TagEnumerationType:
			if n, _ := e.Val(dwarf.AttrName).(string); n == name {
				if typ, err := t.data.Type(e.Offset); err == nil {
					return typ, true
				}
			}
		}
	}
}
