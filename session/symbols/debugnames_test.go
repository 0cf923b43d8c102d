package symbols_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"vmdap/session/symbols"
	"vmdap/vmm/vmmtest"
)

// TestDebugNames: an image given gdb's own .debug_names (gdb-add-index
// -dwarf-5) is indexed to the same functions, globals, types and lines as
// without it: gdb's index names compile units, not DIEs
// (DW_IDX_die_offset is absent), so vmdap sees it cannot stand in for
// the walk and walks the units.
func TestDebugNames(t *testing.T) {
	tool, err := exec.LookPath("gdb-add-index")
	if err != nil {
		t.Skip("gdb-add-index is not installed (it comes with gdb)")
	}
	for _, g := range []*vmmtest.Guest{vmmtest.BuildExample(t, "kernel"), vmmtest.BuildGuest(t, "timer")} {
		withNames := filepath.Join(t.TempDir(), filepath.Base(g.Path))
		if err := os.WriteFile(withNames, g.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(tool, "-dwarf-5", withNames).CombinedOutput(); err != nil {
			t.Fatalf("gdb-add-index: %v\n%s", err, out)
		}
		if out, _ := exec.Command("readelf", "-S", "-W", withNames).Output(); !slices.Contains(splitWords(string(out)), ".debug_names") {
			t.Fatalf("gdb-add-index wrote no .debug_names")
		}
		walked, err := symbols.Load(g.Path, "")
		if err != nil {
			t.Fatal(err)
		}
		named, err := symbols.Load(withNames, "")
		if err != nil {
			t.Fatal(err)
		}
		if named.UsedNameIndex() {
			t.Fatalf("%s: gdb's CU-granular .debug_names was taken for a DIE index", g.Name)
		}
		fs := func(tb *symbols.Table) []string {
			var out []string
			for _, f := range tb.Funcs() {
				out = append(out, f.Name+"@"+hexs(f.Low)+"-"+hexs(f.High))
			}
			slices.Sort(out)
			return out
		}
		if a, b := fs(walked), fs(named); !slices.Equal(a, b) {
			t.Errorf("%s: functions differ:\nwalked %v\nnamed  %v", g.Name, a, b)
		}
		gl := func(tb *symbols.Table) []string {
			var out []string
			tb.GlobalNames(func(n string) { out = append(out, n) })
			slices.Sort(out)
			return out
		}
		if a, b := gl(walked), gl(named); !slices.Equal(a, b) || len(a) == 0 {
			t.Errorf("%s: globals differ:\nwalked %v\nnamed  %v", g.Name, a, b)
		}
		for _, f := range walked.Funcs() {
			l1, ok1 := walked.PCToLine(f.Low)
			l2, ok2 := named.PCToLine(f.Low)
			if ok1 != ok2 || l1.Line != l2.Line {
				t.Errorf("%s: line of %s: %v/%v vs %v/%v", g.Name, f.Name, l1, ok1, l2, ok2)
			}
		}
	}
}

func hexs(v uint64) string { return "0x" + string(appendHex(nil, v)) }

func appendHex(b []byte, v uint64) []byte {
	const d = "0123456789abcdef"
	if v >= 16 {
		b = appendHex(b, v/16)
	}
	return append(b, d[v%16])
}

func splitWords(s string) []string {
	var out []string
	w := ""
	for _, c := range s {
		if c == ' ' || c == '\n' || c == '\t' || c == ']' || c == '[' {
			if w != "" {
				out = append(out, w)
			}
			w = ""
			continue
		}
		w += string(c)
	}
	return out
}

// TestDebugNamesWithDIEs: an index that names DIEs, as producers write
// (written here per DWARF 5 §6.1.1 from readelf's account of the DIEs:
// their tags, offsets and .debug_str names), is used, to the same table
// as the walk.
func TestDebugNamesWithDIEs(t *testing.T) {
	for _, tool := range []string{"readelf", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	g := vmmtest.BuildExample(t, "kernel")
	out, err := exec.Command("readelf", "--debug-dump=info", g.Path).Output()
	if err != nil {
		t.Fatal(err)
	}
	type ent struct {
		cu      int
		die     uint32 // CU-relative
		tag     uint32
		nameOff uint32
	}
	var cus []uint32
	var ents []ent
	tags := map[string]uint32{"DW_TAG_subprogram": 0x2e, "DW_TAG_variable": 0x34, "DW_TAG_structure_type": 0x13}
	var cur *ent
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "Compilation Unit @ offset "); i >= 0 {
			v, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(l[i+len("Compilation Unit @ offset "):], "0x"), ":"), 16, 32)
			cus = append(cus, uint32(v))
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(l), "<1><") {
			cur = nil
			f := strings.Fields(l)
			tag, ok := tags[strings.Trim(f[len(f)-1], "()")]
			if !ok {
				continue
			}
			off, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(f[0], "<1><"), ">:"), 16, 32)
			ents = append(ents, ent{cu: len(cus) - 1, die: uint32(off) - cus[len(cus)-1], tag: tag})
			cur = &ents[len(ents)-1]
			continue
		}
		if cur != nil && strings.Contains(l, "DW_AT_name") && strings.Contains(l, "(indirect string, offset: 0x") {
			s := l[strings.Index(l, "offset: 0x")+len("offset: 0x"):]
			v, _ := strconv.ParseUint(s[:strings.IndexByte(s, ')')], 16, 32)
			cur.nameOff = uint32(v)
		}
	}
	var named []ent
	for _, e := range ents {
		if e.nameOff != 0 {
			named = append(named, e)
		}
	}
	if len(named) < 5 {
		t.Fatalf("too few named DIEs from readelf: %d", len(named))
	}
	// One entry per name: abbreviation code = the tag's index + 1.
	abbrevTags := []uint32{0x2e, 0x34, 0x13}
	var abbr []byte
	for i, tag := range abbrevTags {
		abbr = append(abbr, byte(i+1), byte(tag), 1, 0x0b, 3, 0x13, 0, 0) // DW_IDX_compile_unit data1, DW_IDX_die_offset ref4
	}
	abbr = append(abbr, 0)
	var pool, strOffs, entOffs []byte
	le32 := func(b []byte, v uint32) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }
	for _, e := range named {
		strOffs = le32(strOffs, e.nameOff)
		entOffs = le32(entOffs, uint32(len(pool)))
		code := byte(slices.Index(abbrevTags, e.tag) + 1)
		pool = append(pool, code, byte(e.cu))
		pool = le32(pool, e.die)
		pool = append(pool, 0)
	}
	var body []byte
	body = append(body, 5, 0, 0, 0) // version, padding
	body = le32(body, uint32(len(cus)))
	body = le32(body, 0)                  // local TUs
	body = le32(body, 0)                  // foreign TUs
	body = le32(body, 0)                  // buckets: no hash table
	body = le32(body, uint32(len(named))) // names
	body = le32(body, uint32(len(abbr)))
	body = le32(body, 0) // augmentation
	for _, c := range cus {
		body = le32(body, c)
	}
	body = append(body, strOffs...)
	body = append(body, entOffs...)
	body = append(body, abbr...)
	body = append(body, pool...)
	sec := le32(nil, uint32(len(body)))
	sec = append(sec, body...)
	dir := t.TempDir()
	secFile, img := filepath.Join(dir, "names.bin"), filepath.Join(dir, "kernel.elf")
	os.WriteFile(secFile, sec, 0o644)
	if out, err := exec.Command("objcopy", "--add-section", ".debug_names="+secFile, g.Path, img).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	walked, err := symbols.Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	withIdx, err := symbols.Load(img, "")
	if err != nil {
		t.Fatal(err)
	}
	if !withIdx.UsedNameIndex() {
		t.Fatal("the .debug_names index naming DIEs was not used")
	}
	fs := func(tb *symbols.Table) []string {
		var out []string
		for _, f := range tb.Funcs() {
			out = append(out, f.Name+"@"+hexs(f.Low)+"-"+hexs(f.High))
		}
		slices.Sort(out)
		return out
	}
	if a, b := fs(walked), fs(withIdx); !slices.Equal(a, b) {
		t.Errorf("functions differ:\nwalked %v\nindex  %v", a, b)
	}
	for _, name := range []string{"counter", "busy_iterations"} {
		if (walked.GlobalByName(name) == nil) != (withIdx.GlobalByName(name) == nil) {
			t.Errorf("global %s: walked %v, index %v", name, walked.GlobalByName(name) != nil, withIdx.GlobalByName(name) != nil)
		}
	}
	if _, ok := withIdx.TypeByName("frame"); !ok {
		t.Errorf("type frame not found through the index")
	}
}
