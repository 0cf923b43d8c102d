package symbols

import (
	"debug/dwarf"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// cName writes a debug/dwarf type the way gdb prints a C type:
// "struct task *", "char [8]", "int (*)(int)", "const struct ops *".
func cName(t dwarf.Type) string { return cSpelling.Replace(cDecl(t, "")) }

func cDecl(t dwarf.Type, inner string) string {
	join := func(base string) string {
		if inner == "" {
			return base
		}
		if strings.HasPrefix(inner, "[") {
			return base + " " + inner
		}
		return base + " " + inner
	}
	switch t := t.(type) {
	case nil:
		return join("void")
	case *dwarf.VoidType:
		return join("void")
	case *dwarf.QualType:
		if _, isPtr := t.Type.(*dwarf.PtrType); isPtr {
			return cDecl(t.Type, strings.TrimSpace(inner+" "+t.Qual))
		}
		return t.Qual + " " + cDecl(t.Type, inner)
	case *dwarf.PtrType:
		return cDecl(t.Type, "*"+inner)
	case *dwarf.ArrayType:
		n := ""
		if t.Count >= 0 {
			n = fmt.Sprint(t.Count)
		}
		in := inner
		if strings.HasPrefix(in, "*") {
			in = "(" + in + ")"
		}
		return cDecl(t.Type, in+"["+n+"]")
	case *dwarf.FuncType:
		var ps []string
		for _, p := range t.ParamType {
			ps = append(ps, cName(p))
		}
		if len(ps) == 0 {
			ps = []string{"void"}
		}
		in := inner
		if in != "" {
			in = "(" + in + ")"
		}
		ret := cName(t.ReturnType)
		return ret + " " + in + "(" + strings.Join(ps, ", ") + ")"
	case *dwarf.StructType:
		if t.StructName == "" {
			return join(t.Kind + " {...}")
		}
		return join(t.Kind + " " + t.StructName)
	case *dwarf.EnumType:
		return join("enum " + t.EnumName)
	case *dwarf.TypedefType:
		return join(t.Name)
	case *dwarf.UnspecifiedType:
		return join(t.Name)
	default:
		return join(t.Common().Name)
	}
}

// cSpelling makes GCC's base type names ("short unsigned int") gdb's
// ("unsigned short"): the same types, two spellings.
var cSpelling = strings.NewReplacer("long long unsigned int", "unsigned long long", "long unsigned int", "unsigned long",
	"short unsigned int", "unsigned short", "long long int", "long long", "long int", "long", "short int", "short")

// typeLayout describes a named type as both sides can: its size, its
// members (name, bit position, bit size, type) or enumerators, or what a
// typedef names.
type typeLayout struct {
	Name   string   `json:"name"`
	Size   int64    `json:"size"`
	Target string   `json:"target,omitempty"`
	Fields []string `json:"fields,omitempty"`
}

// layoutOf describes a debug/dwarf type like the gdb script below.
func layoutOf(name string, t dwarf.Type) typeLayout {
	l := typeLayout{Name: name, Size: t.Size()}
	switch t := t.(type) {
	case *dwarf.TypedefType:
		l.Target = cName(t.Type)
	case *dwarf.StructType:
		for _, f := range t.Field {
			pos := f.ByteOffset * 8
			switch {
			case f.BitSize == 0:
			case f.ByteSize > 0: // DW_AT_bit_offset (DWARF 2/3, GCC's DWARF 4): from the storage unit's top bit
				pos += f.ByteSize*8 - f.BitOffset - f.BitSize
			default: // DW_AT_data_bit_offset
				pos = f.DataBitOffset
			}
			l.Fields = append(l.Fields, fmt.Sprintf("%s@%d:%d %s", f.Name, pos, f.BitSize, cName(f.Type)))
		}
	case *dwarf.EnumType:
		for _, v := range t.Val {
			l.Fields = append(l.Fields, fmt.Sprintf("%s=%d", v.Name, v.Val))
		}
	}
	return l
}

const gdbScopeScript = `
import gdb, json
pcs = json.loads(%q)
for pc in pcs:
    b = gdb.block_for_pc(pc)
    chain = []
    while b is not None and not b.is_static and not b.is_global:
        chain.append(b)
        b = b.superblock
    fi = max([i for i, x in enumerate(chain) if x.function is not None] or [-1])
    inl = [i for i, x in enumerate(chain[:fi]) if x.function is not None]
    keep = chain[(max(inl) + 1 if inl else 0):fi + 1]
    out = {"pc": pc, "func": chain[fi].function.name if fi >= 0 else "", "params": [], "locals": []}
    for x in keep:
        for s in x:
            if s.is_argument:
                out["params"].append(s.name + " " + str(s.type))
            elif s.is_variable or s.is_constant:
                out["locals"].append(s.name + " " + str(s.type))
    print("@@" + json.dumps(out))
seen = set()
todo = list(json.loads(%q))
while todo:
    n = todo.pop()
    if n in seen:
        continue
    seen.add(n)
    try:
        t = gdb.lookup_type(n)
    except gdb.error:
        print("@@" + json.dumps({"name": n, "size": -1}))
        continue
    l = {"name": n, "size": t.sizeof}
    if t.code == gdb.TYPE_CODE_TYPEDEF:
        l["target"] = str(t.target())
        if t.target().code in (gdb.TYPE_CODE_TYPEDEF, gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION, gdb.TYPE_CODE_ENUM) and t.target().name:
            todo.append(str(t.target()))
    elif t.code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
        l["fields"] = ["%%s@%%d:%%d %%s" %% (f.name, f.bitpos, f.bitsize, str(f.type)) for f in t.fields()]
        todo.extend(str(f.type) for f in t.fields() if f.type.code in (gdb.TYPE_CODE_TYPEDEF, gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION, gdb.TYPE_CODE_ENUM) and f.type.name)
    elif t.code == gdb.TYPE_CODE_ENUM:
        l["fields"] = ["%%s=%%d" %% (f.name, f.enumval) for f in t.fields()]
    print("@@" + json.dumps(l))
for name in json.loads(%q):
    s = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    print("@@" + json.dumps({"global": name, "type": str(s.type) if s else ""}))
`

type gdbScope struct {
	PC     uint64   `json:"pc"`
	Func   string   `json:"func"`
	Params []string `json:"params"`
	Locals []string `json:"locals"`
	// A type or a global, on other lines.
	typeLayout
	Global string `json:"global"`
	Type   string `json:"type"`
}

// TestGoldenScopesAndTypes (C images): at every statement of every
// function, the parameters and locals vmdap has in scope, with their
// types, are gdb's for the function's own blocks (gdb's inlined-function
// blocks belong to inline frames); the layout of every named type they
// reach (sizes, members with bit positions, enumerators, typedef
// targets) is gdb's; and so is the type of every global.
func TestGoldenScopesAndTypes(t *testing.T) {
	for _, img := range goldenImages(t) {
		if img.tag == "rust" {
			continue // Rust types are compared as gdb shows them, in the DAP tests
		}
		t.Run(img.tag, func(t *testing.T) {
			tb := loadGolden(t, img)
			lo, hi := textRange(tb)
			seen := map[uint64]bool{}
			var pcs []uint64
			for _, r := range tableRows(tb) {
				if fn := tb.FuncAt(r.addr); !r.end && r.stmt && r.addr >= lo && r.addr < hi && fn != nil && fn.die != 0 && !seen[r.addr] {
					seen[r.addr] = true
					pcs = append(pcs, r.addr)
				}
			}
			slices.Sort(pcs)
			roots := []string{"struct task", "struct packet", "struct ops", "union word", "struct pte_flags",
				"atomic_t", "refcount_t", "ticks_t", "struct list_head", "enum state"}
			globals := []string{"ticks", "sinkhole", "magic_seen", "small_global", "neg_global", "big_global",
				"file_ops", "run_queue", "init_task", "current", "counters", "packet_buf", "pkt"}
			js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
			lines := gdbPython(t, img.path, fmt.Sprintf(gdbScopeScript, js(pcs), js(roots), js(globals)))
			if len(lines) < len(pcs)+len(globals) {
				t.Fatalf("gdb answered %d of %d questions", len(lines), len(pcs)+len(globals))
			}
			for _, l := range lines {
				var g gdbScope
				if err := json.Unmarshal([]byte(l), &g); err != nil {
					t.Fatalf("%q: %v", l, err)
				}
				switch {
				case g.Global != "":
					v := tb.GlobalByName(g.Global)
					got := "<none>"
					if v != nil {
						got = cName(v.Type)
					}
					if got != g.Type {
						t.Errorf("global %s: vmdap type %q, gdb %q", g.Global, got, g.Type)
					}
				case g.typeLayout.Name != "":
					name := g.typeLayout.Name
					key := name
					for _, p := range []string{"struct ", "union ", "enum "} {
						key = strings.TrimPrefix(key, p)
					}
					typ, ok := tb.TypeByName(key)
					if g.Size < 0 {
						continue // a base type gdb cannot look up by name
					}
					if !ok {
						t.Errorf("type %s: vmdap has none; gdb: %+v", name, g.typeLayout)
						continue
					}
					got := layoutOf(name, typ)
					if got.Size != g.Size || got.Target != g.Target || !slices.Equal(got.Fields, g.Fields) {
						t.Errorf("type %s:\n vmdap %+v\n gdb   %+v", name, got, g.typeLayout)
					}
				default:
					sc, ok := tb.ScopeAt(g.PC)
					if !ok {
						t.Errorf("%#x: no scope; gdb in %s", g.PC, g.Func)
						continue
					}
					var params, locals []string
					for _, v := range sc.Params {
						params = append(params, v.Name+" "+cName(v.Type))
					}
					for _, v := range sc.Locals {
						// A local array without a constant bound is a
						// variable-length one (gdb's whatis says so).
						locals = append(locals, v.Name+" "+strings.Replace(cName(v.Type), "[]", "[variable length]", 1))
					}
					slices.Sort(params)
					slices.Sort(locals)
					slices.Sort(g.Params)
					slices.Sort(g.Locals)
					if !slices.Equal(params, g.Params) {
						t.Errorf("%s %#x: params %q, gdb %q", g.Func, g.PC, params, g.Params)
					}
					if !slices.Equal(locals, g.Locals) {
						t.Errorf("%s %#x: locals %q, gdb %q", g.Func, g.PC, locals, g.Locals)
					}
				}
			}
			t.Logf("%d scopes, %d types and globals compared", len(pcs), len(lines)-len(pcs))
		})
	}
}
