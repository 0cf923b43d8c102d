package symbols

import (
	"cmp"
	"debug/dwarf"
	"slices"
	"sync"
)

// A Set is the symbols of a running system made of several images: a
// kernel and the modules it loaded, each at its own addresses. It answers
// what a Table answers: by address, from the image whose code is there
// (a module's only within the address ranges it occupies now); by name,
// from the kernel first, then each module (what a module has outside its
// ranges, such as init code already freed or exit code never loaded, is
// left out). A Set with no modules is its kernel's Table.
type Set struct {
	// AddrSize is the kernel's address size.
	AddrSize int

	kernel *Table

	mu      sync.RWMutex // guards mods, funcs, srcMap, mapped and version
	mods    []*Module
	funcs   []*Func // merged, sorted by Low; nil: to build
	srcMap  map[string]string
	mapped  bool
	version int
}

// Module is one image of a Set beside the kernel.
type Module struct {
	Name   string
	Table  *Table
	Ranges []Range // where it is in memory now
}

// Range is a half-open address range [Low, High).
type Range struct{ Low, High uint64 }

// NewSet makes a Set of a kernel's symbols.
func NewSet(kernel *Table) *Set {
	return &Set{AddrSize: kernel.AddrSize, kernel: kernel}
}

// Kernel returns the kernel's table.
func (s *Set) Kernel() *Table { return s.kernel }

// Add puts a module's symbols in the set at the given ranges, replacing a
// module of the same name.
func (s *Set) Add(name string, t *Table, ranges []Range) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mapped {
		t.MapSources(s.srcMap)
	}
	m := &Module{Name: name, Table: t, Ranges: slices.Clone(ranges)}
	for i, o := range s.mods {
		if o.Name == name {
			s.mods[i] = m
			s.changed()
			return
		}
	}
	s.mods = append(s.mods, m)
	s.changed()
}

// SetRanges changes where a module is (its init code freed, say). It
// reports whether the module is in the set.
func (s *Set) SetRanges(name string, ranges []Range) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.mods {
		if m.Name == name {
			m.Ranges = slices.Clone(ranges)
			s.changed()
			return true
		}
	}
	return false
}

// Remove takes a module out of the set and reports whether it was there.
func (s *Set) Remove(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range s.mods {
		if m.Name == name {
			s.mods = append(s.mods[:i], s.mods[i+1:]...)
			s.changed()
			return true
		}
	}
	return false
}

// Modules returns the modules in the set (copies).
func (s *Set) Modules() []Module {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Module, len(s.mods))
	for i, m := range s.mods {
		out[i] = *m
		out[i].Ranges = slices.Clone(m.Ranges)
	}
	return out
}

// Version changes whenever modules come, go or move.
func (s *Set) Version() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.version
}

// EvictedCost is what the unit caches of the kernel's table and the
// modules' have let go (Table.EvictedCost). A module that leaves the set
// takes its part with it (the value can go down: a caller subtracting an
// earlier value from it sees a wrapped, huge difference, as if much had
// gone, which is true of that module's units).
func (s *Set) EvictedCost() uint64 {
	n := s.kernel.EvictedCost()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.mods {
		n += m.Table.EvictedCost()
	}
	return n
}

func (s *Set) changed() {
	s.funcs = nil
	s.version++
}

func (m *Module) has(a uint64) bool {
	for _, r := range m.Ranges {
		if a >= r.Low && a < r.High {
			return true
		}
	}
	return false
}

// at returns the table of the image whose code is at addr.
func (s *Set) at(addr uint64) *Table {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.mods {
		if m.has(addr) {
			return m.Table
		}
	}
	return s.kernel
}

// each calls fn for the kernel, then each module (nil m for the kernel),
// until fn returns false.
func (s *Set) each(fn func(t *Table, m *Module) bool) {
	s.mu.RLock()
	mods := slices.Clone(s.mods)
	s.mu.RUnlock()
	if !fn(s.kernel, nil) {
		return
	}
	for _, m := range mods {
		if !fn(m.Table, m) {
			return
		}
	}
}

// inside filters addresses of a module to its ranges (m nil: the kernel's,
// all kept).
func inside(m *Module, addrs []uint64) []uint64 {
	if m == nil {
		return addrs
	}
	var out []uint64
	for _, a := range addrs {
		if m.has(a) {
			out = append(out, a)
		}
	}
	return out
}

// owner returns the table a function came from.
func (s *Set) owner(fn *Func) *Table {
	if fn == nil {
		return s.kernel
	}
	var found *Table
	s.each(func(t *Table, m *Module) bool {
		if m != nil && m.has(fn.Low) && t.FuncAt(fn.Low) == fn {
			found = t
			return false
		}
		return true
	})
	if found != nil {
		return found
	}
	if fn.Name != "" {
		s.each(func(t *Table, _ *Module) bool {
			for _, g := range t.FuncsByName(fn.Name) {
				if g == fn {
					found = t
					return false
				}
			}
			return true
		})
	}
	if found != nil {
		return found
	}
	return s.kernel
}

// By address.

// FuncAt is Table.FuncAt in the image at pc.
func (s *Set) FuncAt(pc uint64) *Func { return s.at(pc).FuncAt(pc) }

// Symbol is Table.Symbol in the image at addr.
func (s *Set) Symbol(addr uint64) (string, uint64, bool) { return s.at(addr).Symbol(addr) }

// SectionAt names the section that holds addr, and the module it is in
// ("" for the kernel).
func (s *Set) SectionAt(addr uint64) (section, module string) {
	s.mu.RLock()
	for _, m := range s.mods {
		if m.has(addr) {
			module = m.Name
			break
		}
	}
	s.mu.RUnlock()
	return s.at(addr).SectionAt(addr), module
}

// PCToLine is Table.PCToLine in the image at pc.
func (s *Set) PCToLine(pc uint64) (Location, bool) { return s.at(pc).PCToLine(pc) }

// LineRange is Table.LineRange in the image at pc.
func (s *Set) LineRange(pc uint64) (uint64, uint64, bool) { return s.at(pc).LineRange(pc) }

// IsStmtStart is Table.IsStmtStart in the image at pc.
func (s *Set) IsStmtStart(pc uint64) bool { return s.at(pc).IsStmtStart(pc) }

// BeginsRow is Table.BeginsRow in the image at pc.
func (s *Set) BeginsRow(pc uint64) bool { return s.at(pc).BeginsRow(pc) }

// NextRow is Table.NextRow in the image at pc.
func (s *Set) NextRow(pc uint64) (uint64, bool) { return s.at(pc).NextRow(pc) }

// InlinedAt is Table.InlinedAt in the image at pc.
func (s *Set) InlinedAt(pc uint64) []InlinedCall { return s.at(pc).InlinedAt(pc) }

// ScopeAt is Table.ScopeAt in the image at pc.
func (s *Set) ScopeAt(pc uint64) (*Scope, bool) { return s.at(pc).ScopeAt(pc) }

// ArrayBounds is Table.ArrayBounds in the image at pc.
func (s *Set) ArrayBounds(v *Var, pc uint64) ([]Bound, bool) { return s.at(pc).ArrayBounds(v, pc) }

// ScopeOfInlined is Table.ScopeOfInlined in the image at pc.
func (s *Set) ScopeOfInlined(pc uint64, call InlinedCall) (*Scope, bool) {
	return s.at(pc).ScopeOfInlined(pc, call)
}

// Globals is Table.Globals in the image at pc.
func (s *Set) Globals(pc uint64) []*Var { return s.at(pc).Globals(pc) }

// unwindTable is the image whose CFI describes the frame of r.
func (s *Set) unwindTable(r Regs, inner bool) *Table {
	look := r.R[RegRIP]
	if !inner && !r.Exact && look > 0 {
		look--
	}
	return s.at(look)
}

// Unwind is Table.Unwind with the CFI of the image at the frame's PC.
func (s *Set) Unwind(r Regs, inner bool, read func(addr uint64) (uint64, error)) (Regs, uint64, bool, error) {
	return s.unwindTable(r, inner).Unwind(r, inner, read)
}

// CFA is Table.CFA with the CFI of the image at the frame's PC.
func (s *Set) CFA(r Regs, inner bool, read func(addr uint64) (uint64, error)) (uint64, bool) {
	return s.unwindTable(r, inner).CFA(r, inner, read)
}

// By function.

// PrologueEnd is Table.PrologueEnd in fn's image.
func (s *Set) PrologueEnd(fn *Func) (uint64, bool) { return s.owner(fn).PrologueEnd(fn) }

// HasLines is Table.HasLines in fn's image.
func (s *Set) HasLines(fn *Func) bool { return s.owner(fn).HasLines(fn) }

// CallSiteAt is Table.CallSiteAt in fn's image.
func (s *Set) CallSiteAt(fn *Func, ra uint64) (CallSite, bool) { return s.owner(fn).CallSiteAt(fn, ra) }

// VarOfDIE is Table.VarOfDIE in the image at pc.
func (s *Set) VarOfDIE(die, pc uint64) (*Var, bool) { return s.at(pc).VarOfDIE(die, pc) }

// UnitDIE is Table.UnitDIE in the image at pc.
func (s *Set) UnitDIE(pc, off uint64) (uint64, bool) { return s.at(pc).UnitDIE(pc, off) }

// TailCallsFrom is Table.TailCallsFrom in from's image.
func (s *Set) TailCallsFrom(from, to *Func) []*Func {
	t := s.owner(from)
	if s.owner(to) != t {
		return nil
	}
	return t.TailCallsFrom(from, to)
}

// TailCallPC is Table.TailCallPC in fn's image.
func (s *Set) TailCallPC(fn, to *Func) (uint64, bool) { return s.owner(fn).TailCallPC(fn, to) }

// By name: the kernel's first, then each module's (within its ranges).

// Funcs returns every function of every image (a module's within its
// ranges), sorted by Low. The slice is shared: do not modify it.
func (s *Set) Funcs() []*Func {
	s.mu.RLock()
	if len(s.mods) == 0 {
		s.mu.RUnlock()
		return s.kernel.Funcs()
	}
	if f := s.funcs; f != nil {
		s.mu.RUnlock()
		return f
	}
	s.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.funcs != nil {
		return s.funcs
	}
	out := slices.Clone(s.kernel.Funcs())
	for _, m := range s.mods {
		for _, f := range m.Table.Funcs() {
			if m.has(f.Low) {
				out = append(out, f)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b *Func) int { return cmp.Compare(a.Low, b.Low) })
	s.funcs = out
	return out
}

// FuncsByName returns the functions of that name in every image.
func (s *Set) FuncsByName(name string) []*Func {
	var out []*Func
	s.each(func(t *Table, m *Module) bool {
		for _, f := range t.FuncsByName(name) {
			if m == nil || m.has(f.Low) {
				out = append(out, f)
			}
		}
		return true
	})
	return out
}

// FuncByName returns the first function of that name.
func (s *Set) FuncByName(name string) *Func {
	if fs := s.FuncsByName(name); len(fs) > 0 {
		return fs[0]
	}
	return nil
}

// InlinedSites returns where inlined copies of the named function begin,
// in every image.
func (s *Set) InlinedSites(name string) []uint64 {
	var out []uint64
	s.each(func(t *Table, m *Module) bool {
		out = append(out, inside(m, t.InlinedSites(name))...)
		return true
	})
	return out
}

// SymbolAddr returns the address of a named ELF symbol, the kernel's
// first.
func (s *Set) SymbolAddr(name string) (uint64, bool) {
	var a uint64
	var ok bool
	s.each(func(t *Table, m *Module) bool {
		if v, found := t.SymbolAddr(name); found && (m == nil || m.has(v)) {
			a, ok = v, true
			return false
		}
		return true
	})
	return a, ok
}

// GlobalByName returns a global variable by name, the kernel's first.
func (s *Set) GlobalByName(name string) *Var {
	var out *Var
	s.each(func(t *Table, _ *Module) bool {
		out = t.GlobalByName(name)
		return out == nil
	})
	return out
}

// DeclaredType is Table.DeclaredType in the image whose code holds pc.
func (s *Set) DeclaredType(pc uint64, name string) (dwarf.Type, bool) {
	return s.at(pc).DeclaredType(pc, name)
}

// EnumeratorAt finds an enumeration constant visible in the unit whose
// code holds pc.
func (s *Set) EnumeratorAt(pc uint64, name string) (Enumerator, bool) {
	return s.at(pc).EnumeratorAt(pc, name)
}

// EnumeratorByName finds an enumeration constant of any unit, the
// kernel's first.
func (s *Set) EnumeratorByName(name string) (Enumerator, bool) {
	var out Enumerator
	var ok bool
	s.each(func(t *Table, _ *Module) bool {
		out, ok = t.EnumeratorByName(name)
		return !ok
	})
	return out, ok
}

// FuncType is Table.FuncType in the image fn is of.
func (s *Set) FuncType(fn *Func) (*dwarf.FuncType, bool) { return s.owner(fn).FuncType(fn) }

// TypeByName returns a named type, the kernel's first.
func (s *Set) TypeByName(name string) (dwarf.Type, bool) {
	var out dwarf.Type
	var ok bool
	s.each(func(t *Table, _ *Module) bool {
		out, ok = t.TypeByName(name)
		return !ok
	})
	return out, ok
}

// RustType is Table.RustType in whichever image decoded dt.
func (s *Set) RustType(dt dwarf.Type) (*RustType, bool) {
	var out *RustType
	var ok bool
	s.each(func(t *Table, _ *Module) bool {
		out, ok = t.RustType(dt)
		return !ok
	})
	return out, ok
}

// NamesWithPrefix calls fn for the first limit names starting with
// prefix of each image (in name order within an image; see
// Table.NamesWithPrefix): the first limit names of the set are among
// them.
func (s *Set) NamesWithPrefix(prefix string, limit int, fn func(name string, kind NameKind)) {
	s.each(func(t *Table, _ *Module) bool {
		n := 0
		t.NamesWithPrefix(prefix, func(name string, kind NameKind) bool {
			fn(name, kind)
			n++
			return n < limit
		})
		return true
	})
}

// Sources.

// LineAddrs returns the addresses of a source line (or the next line with
// code) in every image that has it: the images agreeing on the nearest
// line.
func (s *Set) LineAddrs(file string, line int) ([]uint64, int, bool) {
	var out []uint64
	best := 0
	s.each(func(t *Table, m *Module) bool {
		addrs, actual, ok := t.LineAddrs(file, line)
		addrs = inside(m, addrs)
		if !ok || len(addrs) == 0 {
			return true
		}
		switch {
		case best == 0 || actual < best:
			out, best = addrs, actual
		case actual == best:
			out = append(out, addrs...)
		}
		return true
	})
	if best == 0 {
		return nil, 0, false
	}
	slices.Sort(out)
	return slices.Compact(out), best, true
}

// MatchFile is Table.MatchFile in the first image that knows the file.
func (s *Set) MatchFile(path string) (string, bool) {
	var out string
	var ok bool
	s.each(func(t *Table, _ *Module) bool {
		out, ok = t.MatchFile(path)
		return !ok
	})
	return out, ok
}

// Files returns the source files of every image.
func (s *Set) Files() []string {
	var out []string
	seen := map[string]bool{}
	s.each(func(t *Table, _ *Module) bool {
		for _, f := range t.Files() {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
		return true
	})
	return out
}

// FileLines returns the lines with code of a file in [from, to], in every
// image.
func (s *Set) FileLines(file string, from, to int) []int {
	var out []int
	s.each(func(t *Table, _ *Module) bool {
		out = append(out, t.FileLines(file, from, to)...)
		return true
	})
	slices.Sort(out)
	return slices.Compact(out)
}

// MapSources applies a source map to every image, and to modules added
// later.
func (s *Set) MapSources(m map[string]string) {
	s.mu.Lock()
	s.srcMap, s.mapped = m, true
	s.mu.Unlock()
	s.each(func(t *Table, _ *Module) bool { t.MapSources(m); return true })
}

// The kernel's own.

// HasDWARF reports whether any image has source-level information.
func (s *Set) HasDWARF() bool {
	has := false
	s.each(func(t *Table, _ *Module) bool {
		has = t.HasDWARF()
		return !has
	})
	return has
}

// Units returns the number of compile units of every image.
func (s *Set) Units() int {
	n := 0
	s.each(func(t *Table, _ *Module) bool { n += t.Units(); return true })
	return n
}

// Slide is the kernel's Table.Slide.
func (s *Set) Slide() uint64 { return s.kernel.Slide() }

// SetSlide is the kernel's Table.SetSlide.
func (s *Set) SetSlide(slide uint64) {
	s.kernel.SetSlide(slide)
	s.mu.Lock()
	s.changed()
	s.mu.Unlock()
}

// LinkSymbol is the kernel's Table.LinkSymbol.
func (s *Set) LinkSymbol(name string) (uint64, bool) { return s.kernel.LinkSymbol(name) }

// ImageBytes is the kernel's Table.ImageBytes.
func (s *Set) ImageBytes(addr uint64, n int) ([]byte, bool) { return s.kernel.ImageBytes(addr, n) }
