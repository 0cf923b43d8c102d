package symbols_test

import (
	"debug/dwarf"
	"testing"

	"vmdap/session/symbols"
	"vmdap/vmm/vmmtest"
)

// TestEnumerators: the example guest's enum color { RED, GREEN, BLUE }
// is found by its constants' names, in the unit of a PC (kmain's) and
// by the index, each typed as its enumeration; a name that is no
// enumerator is not.
func TestEnumerators(t *testing.T) {
	g := vmmtest.BuildExample(t, "kernel")
	tb, err := symbols.Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	kmain := g.Symbols["kmain"]
	for i, name := range []string{"RED", "GREEN", "BLUE"} {
		for _, how := range []string{"at kmain", "by name"} {
			var e symbols.Enumerator
			var ok bool
			if how == "at kmain" {
				e, ok = tb.EnumeratorAt(kmain, name)
			} else {
				e, ok = tb.EnumeratorByName(name)
			}
			if !ok {
				t.Errorf("%s %s: not found", name, how)
				continue
			}
			if e.Value != int64(i) || e.Type == nil || e.Type.EnumName != "color" {
				t.Errorf("%s %s: %d of %v, want %d of enum color", name, how, e.Value, e.Type, i)
			}
		}
	}
	for _, name := range []string{"favourite", "kmain", "color", "PURPLE"} {
		if e, ok := tb.EnumeratorByName(name); ok {
			t.Errorf("EnumeratorByName(%q) = %v, want none", name, e)
		}
		if e, ok := tb.EnumeratorAt(kmain, name); ok {
			t.Errorf("EnumeratorAt(kmain, %q) = %v, want none", name, e)
		}
	}
	var kinds symbols.NameKind
	tb.NamesWithPrefix("GREEN", func(name string, k symbols.NameKind) bool {
		if name == "GREEN" {
			kinds = k
		}
		return true
	})
	if kinds != symbols.NameEnumerator {
		t.Errorf("NamesWithPrefix: GREEN is of kind %v, want NameEnumerator", kinds)
	}
}

// TestFuncType: a function's type comes from its subprogram: kmain is
// void (void), sum_squares int (int); an ELF symbol's function has none.
func TestFuncType(t *testing.T) {
	g := vmmtest.BuildExample(t, "kernel")
	tb, err := symbols.Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"kmain": "func() void", "sum_squares": "func(int) int"} {
		ft, ok := tb.FuncType(tb.FuncByName(name))
		if !ok {
			t.Errorf("%s: no type", name)
			continue
		}
		if got := ft.String(); got != want {
			t.Errorf("%s: type %s, want %s", name, got, want)
		}
		if _, void := ft.ReturnType.(*dwarf.VoidType); void != (name == "kmain") {
			t.Errorf("%s: return type %T", name, ft.ReturnType)
		}
	}
	for _, f := range tb.Funcs() {
		if _, ok := tb.FuncType(f); ok != (f.Name != "" && hasDWARF(tb, f)) {
			t.Errorf("%s: FuncType ok=%v", f.Name, ok)
		}
	}
}

// hasDWARF: the function has a scope (a DWARF subprogram).
func hasDWARF(tb *symbols.Table, f *symbols.Func) bool {
	_, ok := tb.ScopeAt(f.Low)
	return ok && tb.FuncAt(f.Low) == f
}
