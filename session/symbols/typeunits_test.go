package symbols

import (
	"debug/dwarf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"vmdap/vmm/vmmtest"
)

// The DWARF that refers across units (typeunits.go), in the corpus
// kernel's builds with its types in type units (types4: DWARF 4's
// .debug_types; types5: DWARF 5's type units in .debug_info) and built
// with -flto (lto), each compared with what gdb -batch says of the same
// file. (The golden tests compare these builds' scopes, types, lines and
// locations with gdb too.)

// corpusTable builds a corpus build and opens it.
func corpusTable(t *testing.T, tag string) (*Table, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds guests and runs gdb: not with -short")
	}
	p := vmmtest.BuildCorpus(t, tag).Path
	tb, err := Load(p, "")
	if err != nil {
		t.Fatal(err)
	}
	return tb, p
}

const gdbEnumScript = `
import gdb, json
for name in json.loads(%q):
    try:
        v = gdb.parse_and_eval(name)
        print("@@" + json.dumps({"name": name, "value": int(v), "type": str(v.type)}))
    except gdb.error as e:
        print("@@" + json.dumps({"name": name, "type": "", "error": str(e)}))
`

// TestTypeUnits: the index finds the type units, in .debug_types or in
// .debug_info, and the units that refer to them by signature; a type
// found by name is decoded from its type unit; a variable whose type is
// a type unit's (by DW_FORM_ref_sig8, or through the declaration that
// stands for the type, DW_AT_signature) has that type, members and all;
// the enumerators of an enumeration in a type unit are gdb's.
func TestTypeUnits(t *testing.T) {
	for _, tag := range []string{"types4", "types5"} {
		t.Run(tag, func(t *testing.T) {
			tb, path := corpusTable(t, tag)
			if len(tb.tunits) == 0 {
				t.Fatal("no type units found: the build does not test them")
			}
			for _, tu := range tb.tunits {
				if tu.types != (tag == "types4") {
					t.Fatalf("a type unit in .debug_types %v, want %v", tu.types, tag == "types4")
				}
				if tb.bySig[tu.sig] < 0 {
					t.Fatalf("type unit %#x not found by its signature", tu.sig)
				}
			}
			refer := 0
			for _, u := range tb.units {
				if u.refs&refsSig8 != 0 {
					refer++
				}
				if u.refs&refsAddr != 0 {
					t.Errorf("unit %s refers into another unit: the build is not what the test means", u.name)
				}
			}
			if refer == 0 {
				t.Fatal("no unit refers to a type unit")
			}
			// A type by name: from its type unit.
			ref, ok := tb.types["task"]
			if !ok || ref.cu > -2 {
				t.Fatalf("struct task is indexed at %+v, not in a type unit", ref)
			}
			typ, ok := tb.TypeByName("task")
			st, _ := typ.(*dwarf.StructType)
			if !ok || st == nil || st.StructName != "task" || len(st.Field) == 0 {
				t.Fatalf("struct task: %v", typ)
			}
			// A global of a structure type (through the unit's declaration
			// that stands for it), a member of a type unit's type.
			init := tb.GlobalByName("init_task")
			if init == nil || cName(init.Type) != "struct task" {
				t.Fatalf("init_task: %+v", init)
			}
			st, _ = init.Type.(*dwarf.StructType)
			if st == nil || len(st.Field) != 8 {
				t.Fatalf("init_task's type has no members: %+v", init.Type)
			}
			// Parameters of structure types (level3's, by value).
			fn := tb.FuncByName("level3")
			if fn == nil {
				t.Fatal("no level3")
			}
			sc, ok := tb.ScopeAt(fn.Low)
			if !ok {
				t.Fatal("no scope at level3")
			}
			var params []string
			for _, v := range sc.Params {
				l := layoutOf("", v.Type)
				params = append(params, fmt.Sprintf("%s %s %d %d", v.Name, cName(v.Type), l.Size, len(l.Fields)))
			}
			if want := []string{"t struct task * 8 0", "w union word 4 3", "f struct pte_flags 4 6"}; !slices.Equal(params, want) {
				t.Errorf("level3's parameters %q, want %q", params, want)
			}
			// The enumerators, against gdb.
			names := []string{"IDLE", "RUNNING", "BLOCKED"}
			js, _ := json.Marshal(names)
			for _, l := range gdbPython(t, path, fmt.Sprintf(gdbEnumScript, js)) {
				var g struct {
					Name, Type string
					Value      int64
				}
				if err := json.Unmarshal([]byte(l), &g); err != nil {
					t.Fatal(err)
				}
				e, ok := tb.EnumeratorByName(g.Name)
				if g.Type == "" {
					t.Fatalf("gdb knows no %s", g.Name)
				}
				if !ok || e.Value != g.Value || "enum "+e.Type.EnumName != g.Type {
					t.Errorf("%s: vmdap %v (%+v), gdb %d of %s", g.Name, ok, e, g.Value, g.Type)
				}
			}
		})
	}
}

const gdbFuncScript = `
import gdb, json
for pc in json.loads(%q):
    b = gdb.block_for_pc(pc)
    name = ""
    while b is not None and not b.is_static and not b.is_global:
        if b.function is not None:
            name = b.function.name
        b = b.superblock
    print("@@" + json.dumps({"pc": pc, "func": name}))
for name in json.loads(%q):
    s = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    print("@@" + json.dumps({"global": name, "type": str(s.type) if s else ""}))
`

// TestCrossUnitRefs: in the -flto build, the unit of the link-time code
// names its functions and globals by DW_AT_abstract_origin in the units
// of the early debug information (DW_FORM_ref_addr): each function at its
// address, each function found by name, and each global's type are gdb's.
func TestCrossUnitRefs(t *testing.T) {
	tb, path := corpusTable(t, "lto")
	if !tb.crossRefs {
		t.Fatal("no unit refers into another: the build does not test it")
	}
	var pcs []uint64
	for _, f := range tb.Funcs() {
		if f.die != 0 {
			pcs = append(pcs, f.Low)
		}
	}
	var globals []string
	tb.GlobalNames(func(name string) { globals = append(globals, name) })
	slices.Sort(globals)
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	checked := 0
	for _, l := range gdbPython(t, path, fmt.Sprintf(gdbFuncScript, js(pcs), js(globals))) {
		var g struct {
			PC     uint64
			Func   string
			Global string
			Type   string
		}
		if err := json.Unmarshal([]byte(l), &g); err != nil {
			t.Fatal(err)
		}
		if g.Global != "" {
			got := "<none>"
			if v := tb.GlobalByName(g.Global); v != nil {
				got = cName(v.Type)
			}
			if got != g.Type {
				t.Errorf("global %s: vmdap type %q, gdb %q", g.Global, got, g.Type)
			}
			continue
		}
		fn := tb.FuncAt(g.PC)
		if fn == nil || fn.Name != g.Func {
			t.Errorf("%#x: vmdap function %v, gdb %q", g.PC, fn, g.Func)
			continue
		}
		if fs := tb.FuncsByName(g.Func); !slices.Contains(fs, fn) {
			t.Errorf("%s: not found by its name", g.Func)
		}
		checked++
	}
	if checked < 10 || len(globals) < 5 {
		t.Fatalf("%d functions and %d globals compared: the comparison proves little", checked, len(globals))
	}
	// (gdb knows the early debug information's declaration: the
	// definition, with its location, is the -flto unit's.)
	if v := tb.GlobalByName("init_task"); v == nil || v.Loc == nil {
		t.Errorf("init_task, which the -flto unit places: %+v", v)
	}
	t.Logf("%d functions and %d globals compared", checked, len(globals))
}

// Two units that each give an enumerator of the same name another value,
// in an enumeration of a type unit that each declares (a global of its
// type: the unit's declaration with DW_AT_signature).
var sameNameSrcs = map[string]string{
	"a.c": "enum ea { SAME = 1, ONLY_A };\nenum ea a_var = ONLY_A;\nint a_fn(void) { return a_var; }\n",
	"b.c": "enum eb { SAME = 2, ONLY_B };\nenum eb b_var = ONLY_B;\nint b_fn(void) { return b_var; }\n",
}

// TestTypeUnitEnumerators: an enumerator is found first in the unit of
// the code at a PC, where the unit declares its type unit's enumeration
// (as in C, and gdb), then in any unit.
func TestTypeUnitEnumerators(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is needed to build the test image")
	}
	for _, dw := range []string{"-gdwarf-4", "-gdwarf-5"} {
		t.Run(dw, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"-g", dw, "-O0", "-fdebug-types-section", "-nostdlib", "-static", "-Wl,-e,a_fn", "-o", filepath.Join(dir, "x")}
			for name, src := range sameNameSrcs {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, filepath.Join(dir, name))
			}
			if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
				t.Fatalf("gcc: %v\n%s", err, out)
			}
			tb, err := Load(filepath.Join(dir, "x"), "")
			if err != nil {
				t.Fatal(err)
			}
			if len(tb.tunits) < 2 {
				t.Fatalf("%d type units", len(tb.tunits))
			}
			for _, c := range []struct {
				fn, name string
				want     int64
				typ      string
			}{{"a_fn", "SAME", 1, "ea"}, {"b_fn", "SAME", 2, "eb"}, {"a_fn", "ONLY_A", 2, "ea"}, {"b_fn", "ONLY_A", 2, "ea"}} {
				fn := tb.FuncByName(c.fn)
				if fn == nil {
					t.Fatalf("no %s", c.fn)
				}
				e, ok := tb.EnumeratorAt(fn.Low, c.name)
				if !ok {
					e, ok = tb.EnumeratorByName(c.name)
				}
				if !ok || e.Value != c.want || e.Type.EnumName != c.typ {
					t.Errorf("%s in %s: %v %+v, want %d of enum %s", c.name, c.fn, ok, e, c.want, c.typ)
				}
			}
			if v := tb.GlobalByName("b_var"); v == nil || cName(v.Type) != "enum eb" {
				t.Errorf("b_var: %+v", v)
			}
		})
	}
}
