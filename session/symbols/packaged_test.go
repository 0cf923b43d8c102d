package symbols

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

// TestPackagedDWARF: the corpus's -O2 build with its debug information
// packaged as users' images carry it (compressed sections, a separate
// debug file found by its debug link, dwz's partial units; see
// guests.PackagedCorpus) reads as the same build unpackaged: the same
// functions, the same line at each, the same parameters and locals (name,
// type, location) at each function's statements, the same globals.
func TestPackagedDWARF(t *testing.T) {
	if testing.Short() {
		t.Skip("builds guests: not with -short")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the corpus guests")
	}
	for _, o := range guests.PackagedCorpus {
		t.Run(o.Tag, func(t *testing.T) {
			for _, c := range o.Post {
				if _, err := exec.LookPath(c[0]); err != nil {
					t.Skipf("%s is not installed: the %s build is made with it", c[0], o.Tag)
				}
			}
			base := "O2"
			if o.Compiler == "clang" {
				base = "clang-O2"
			}
			want := describeImage(t, vmmtest.BuildCorpus(t, base).Path)
			got := describeImage(t, vmmtest.BuildCorpus(t, o.Tag).Path)
			if o.Compiler == "clang" {
				// clang writes no DW_OP_convert into a .dwo (a typed
				// operation's base type would be in another file): its
				// expressions differ, not what they locate.
				want, got = withoutLocs(want), withoutLocs(got)
			}
			if len(got) != len(want) {
				t.Errorf("%d lines of description, O2 has %d", len(got), len(want))
			}
			n := 0
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Errorf("got  %s\nwant %s", got[i], want[i])
					if n++; n == 10 {
						break
					}
				}
			}
		})
	}
}

// describeImage loads an image (its debug file found as a user's would
// be) and describes its functions, lines, scopes and globals, a line each.
func describeImage(t *testing.T, path string) []string {
	t.Helper()
	debug, _ := FindDebugFile(path, nil)
	tb, err := Load(path, debug)
	if err != nil {
		t.Fatal(err)
	}
	if !tb.HasDWARF() {
		t.Fatalf("%s: no DWARF (debug file %q)", path, debug)
	}
	var out []string
	for _, fn := range tb.Funcs() {
		loc, _ := tb.PCToLine(fn.Low)
		out = append(out, fmt.Sprintf("func %s %#x-%#x inline=%v %s:%d", fn.Name, fn.Low, fn.High, fn.Inline, loc.File, loc.Line))
		for pc := fn.Low; pc < fn.High; pc++ {
			if !tb.IsStmtStart(pc) {
				continue
			}
			s, ok := tb.ScopeAt(pc)
			if !ok {
				continue
			}
			var vs []string
			for _, v := range append(s.Params, s.Locals...) {
				vs = append(vs, describeVar(v))
			}
			out = append(out, fmt.Sprintf("  %#x fb=%x %s", pc, s.FrameBase, strings.Join(vs, "; ")))
		}
	}
	var globals []string
	tb.GlobalNames(func(name string) { globals = append(globals, name) })
	slices.Sort(globals)
	for _, name := range globals {
		if v := tb.GlobalByName(name); v != nil {
			out = append(out, "global "+describeVar(v))
		}
	}
	return out
}

// withoutLocs is a description with each location expression reduced to
// whether there is one.
func withoutLocs(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = locRE.ReplaceAllStringFunc(l, func(m string) string {
			if m == "loc=" {
				return m
			}
			return "loc=some"
		})
	}
	return out
}

var locRE = regexp.MustCompile(`loc=[0-9a-f]*`)

func describeVar(v *Var) string {
	typ := "?"
	if v.Type != nil {
		typ = v.Type.String()
	}
	loc := fmt.Sprintf("%x", v.Loc)
	if len(v.Loc) == 6 && v.Loc[0] == 0xfa {
		// DW_OP_GNU_parameter_ref names a DIE by its offset in the unit,
		// which dwz moves.
		loc = "parameter_ref"
	}
	return fmt.Sprintf("%s %s loc=%s const=%x", v.Name, typ, loc, v.Const)
}

// TestCompressedLocListsLazy: a compressed image's location lists are
// decompressed when a scope first needs them, not at open (a kernel's
// are tens of megabytes), and once.
func TestCompressedLocListsLazy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds guests: not with -short")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the corpus guests")
	}
	for _, tag := range []string{"gz-zlib", "gz-zlib-gnu"} {
		tb, err := Load(vmmtest.BuildCorpus(t, tag).Path, "")
		if err != nil {
			t.Fatal(err)
		}
		l := &tb.sec.loclists
		if l.load == nil || l.b != nil || l.size == 0 {
			t.Fatalf("%s: location lists read at open (%d bytes of %d)", tag, len(l.b), l.size)
		}
		for _, fn := range tb.Funcs() {
			tb.ScopeAt(fn.Low)
		}
		if l.load != nil || uint64(len(l.b)) != l.size {
			t.Errorf("%s: location lists not read by the scopes: %d bytes of %d", tag, len(l.b), l.size)
		}
	}
}

// TestSupplementaryFileNotes: an image dwz -m made says where its
// supplementary file was read from, and, when it is not where the link
// says, where it was looked for.
func TestSupplementaryFileNotes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds guests: not with -short")
	}
	if _, err := exec.LookPath("dwz"); err != nil {
		t.Skip("dwz is not installed")
	}
	g := vmmtest.BuildCorpus(t, "dwz-m")
	tb, err := Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := tb.Notes(); len(n) != 1 || !strings.Contains(n[0], "reading dwz's supplementary file "+g.Path+".sup") {
		t.Errorf("notes %q, want the supplementary file read", n)
	}
	// The same image with a link to a file that is not there.
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	if err := os.WriteFile(link, append([]byte("gone.sup\x00"), make([]byte, 20)...), 0o644); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(dir, "kernel.elf")
	runTool(t, "objcopy", "--remove-section", ".gnu_debugaltlink", "--add-section", ".gnu_debugaltlink="+link, g.Path, moved)
	tb, err = Load(moved, "")
	if err != nil {
		t.Fatal(err)
	}
	want := "not in " + filepath.Join(dir, "gone.sup")
	if n := tb.Notes(); len(n) != 1 || !strings.Contains(n[0], want) {
		t.Errorf("notes %q, want one saying %q", n, want)
	}
	if fn := tb.FuncByName("kmain"); fn == nil {
		t.Errorf("no kmain: the image's own functions should still be there")
	}
}

// TestSplitDWARFMissingDWO: an image whose DWARF is split, one of whose
// .dwo files is not there, keeps that unit's lines (its skeleton's line
// table) and the other units' functions, and says which file it did not
// find.
func TestSplitDWARFMissingDWO(t *testing.T) {
	if testing.Short() {
		t.Skip("builds guests: not with -short")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the corpus guests")
	}
	g := vmmtest.BuildCorpus(t, "split")
	b, err := os.ReadFile(g.Path)
	if err != nil {
		t.Fatal(err)
	}
	// The image names kernel.c's .dwo by its path in .debug_str: name a
	// file that is not there (the same length).
	gone := bytes.ReplaceAll(b, []byte("-kernel.dwo\x00"), []byte("-kernel.dwx\x00"))
	if bytes.Equal(gone, b) {
		t.Fatal("no kernel.dwo named in the image")
	}
	path := filepath.Join(t.TempDir(), "kernel.elf")
	if err := os.WriteFile(path, gone, 0o644); err != nil {
		t.Fatal(err)
	}
	tb, err := Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	n := tb.Notes()
	if len(n) != 2 || !strings.Contains(n[0], "-kernel.dwx") || !strings.Contains(n[1], "read the .dwo files of 2 of its units") {
		t.Errorf("notes %q, want kernel.c's .dwo missing and 2 read", n)
	}
	if fn := tb.FuncByName("outb"); fn == nil || fn.cu < 0 {
		t.Errorf("outb (io_serial.c, whose .dwo is there): %+v, want its DWARF function", fn)
	}
	fn := tb.FuncByName("kmain") // (from the ELF symbols)
	if fn == nil {
		t.Fatal("no kmain")
	}
	if loc, ok := tb.PCToLine(fn.Low); !ok || !strings.HasSuffix(loc.File, "kernel.c") {
		t.Errorf("kmain's line %v %v: want kernel.c's (its skeleton's line table)", loc, ok)
	}
	// The .dwo beside the image, under the name it names: read there.
	dwos, _ := filepath.Glob(filepath.Join(filepath.Dir(g.Path), "*-kernel.dwo"))
	if len(dwos) != 1 {
		t.Fatalf("kernel.c's .dwo: %q", dwos)
	}
	b, err = os.ReadFile(dwos[0])
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSuffix(filepath.Base(dwos[0]), ".dwo") + ".dwx"
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), base), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if tb, err = Load(path, ""); err != nil {
		t.Fatal(err)
	}
	if n := tb.Notes(); len(n) != 1 || !strings.Contains(n[0], "of 3 of its units") {
		t.Errorf("notes %q, want the 3 units' .dwo files read", n)
	}
	if fn := tb.FuncByName("kmain"); fn == nil || fn.cu < 0 {
		t.Errorf("kmain %+v, want its DWARF function (its .dwo beside the image)", fn)
	}
}

// TestGNUSplitDWARFNote: an image split in DWARF 4's GNU form, which is
// not read, says so rather than showing no variables silently.
func TestGNUSplitDWARFNote(t *testing.T) {
	if testing.Short() {
		t.Skip("builds guests: not with -short")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the corpus guests")
	}
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	g, err := guests.BuildWith(filepath.Join(root, "testdata", "guests", "corpus"),
		guests.Options{Tag: "split4", Flags: []string{"-O2", "-gdwarf-4", "-gsplit-dwarf"}})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := tb.Notes(); len(n) != 1 || !strings.Contains(n[0], "DWARF 4's GNU form") || !strings.Contains(n[0], "of 3 of its units") {
		t.Errorf("notes %q, want one of the 3 GNU split units not read", n)
	}
}
