package guests

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dwarfVersions returns the versions of the units in .debug_info.
func dwarfVersions(t *testing.T, f *elf.File) map[int]int {
	t.Helper()
	s := f.Section(".debug_info")
	if s == nil {
		t.Fatal("no .debug_info")
	}
	b, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for len(b) >= 6 {
		n := binary.LittleEndian.Uint32(b)
		if n >= 0xfffffff0 || int(n)+4 > len(b) {
			t.Fatalf("unexpected unit length %#x", n)
		}
		out[int(binary.LittleEndian.Uint16(b[4:]))]++
		b = b[4+n:]
	}
	return out
}

func corpusDir(t *testing.T) string {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "testdata", "guests", "corpus")
}

// TestCorpusBuildFlags checks that each corpus build's flags reach the
// compiler: the ELF class, the DWARF version of every unit, the name.
func TestCorpusBuildFlags(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	want := map[string]struct {
		class   elf.Class
		version int
	}{
		"O0": {elf.ELFCLASS64, 5}, "O2": {elf.ELFCLASS64, 5}, "dwarf2": {elf.ELFCLASS64, 2}, "dwarf3": {elf.ELFCLASS64, 3},
		"dwarf4": {elf.ELFCLASS64, 4}, "m32": {elf.ELFCLASS32, 5},
		"types4": {elf.ELFCLASS64, 4}, "types5": {elf.ELFCLASS64, 5}, "lto": {elf.ELFCLASS64, 5}, "nofp": {elf.ELFCLASS64, 5},
	}
	for _, o := range Corpus {
		g, err := BuildWith(corpusDir(t), o)
		if err != nil {
			t.Fatal(err)
		}
		f, err := elf.Open(g.Path)
		if err != nil {
			t.Fatal(err)
		}
		w := want[o.Tag]
		if f.Class != w.class {
			t.Errorf("%s: class %s, want %s", o.Tag, f.Class, w.class)
		}
		vs := dwarfVersions(t, f)
		if len(vs) != 1 || vs[w.version] == 0 {
			t.Errorf("%s: DWARF versions %v, want only %d", o.Tag, vs, w.version)
		}
		if g.Name != "corpus-"+o.Tag {
			t.Errorf("name %q", g.Name)
		}
		f.Close()
	}
	// The default build of another guest is unchanged by the option.
	g1, err := Build(corpusDir(t), ELF64)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := BuildWith(corpusDir(t), Options{Flags: []string{"-O2"}})
	if err != nil {
		t.Fatal(err)
	}
	if g1.Path == g2.Path {
		t.Errorf("a build with extra flags shares the default build's cache entry %s", g1.Path)
	}
}

// TestClangCorpusBuildFlags checks that the clang builds are clang's:
// the producer of every C unit, the ELF class, the DWARF version, and
// the DWARF 5 forms clang uses and GCC does not (indexed strings).
func TestClangCorpusBuildFlags(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed (GNU ld links the clang builds)")
	}
	want := map[string]struct {
		class   elf.Class
		version int
	}{
		"clang-O0": {elf.ELFCLASS64, 5}, "clang-O2": {elf.ELFCLASS64, 5}, "clang-dwarf4": {elf.ELFCLASS64, 4},
		"clang-m32": {elf.ELFCLASS32, 5}, "clang-nofp": {elf.ELFCLASS64, 5}, "clang-Os": {elf.ELFCLASS64, 5},
	}
	for _, o := range ClangCorpus {
		g, err := BuildWith(corpusDir(t), o)
		if errors.Is(err, ErrNoClang) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		f, err := elf.Open(g.Path)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[o.Tag]
		if !ok {
			t.Fatalf("no expectation for %s", o.Tag)
		}
		if f.Class != w.class {
			t.Errorf("%s: class %s, want %s", o.Tag, f.Class, w.class)
		}
		if vs := dwarfVersions(t, f); vs[w.version] == 0 {
			t.Errorf("%s: DWARF versions %v, want %d", o.Tag, vs, w.version)
		}
		if (w.version == 5) != (f.Section(".debug_str_offsets") != nil) {
			t.Errorf("%s: .debug_str_offsets present %v, want it with DWARF 5", o.Tag, f.Section(".debug_str_offsets") != nil)
		}
		d, err := f.DWARF()
		if err != nil {
			t.Fatalf("%s: %v", o.Tag, err)
		}
		r := d.Reader()
		for {
			e, err := r.Next()
			if err != nil {
				t.Fatalf("%s: %v", o.Tag, err)
			}
			if e == nil {
				break
			}
			if e.Tag == dwarf.TagCompileUnit {
				name, _ := e.Val(dwarf.AttrName).(string)
				prod, _ := e.Val(dwarf.AttrProducer).(string)
				if filepath.Ext(name) == ".c" && !strings.Contains(prod, "clang") {
					t.Errorf("%s: unit %s produced by %q", o.Tag, name, prod)
				}
			}
			r.SkipChildren()
		}
		f.Close()
	}
}

func TestRustGuestBuild(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	g, err := BuildRust(filepath.Join(root, "testdata", "guests", "rust"), ELF64)
	if errors.Is(err, ErrNoRustc) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The three crates' mangling schemes: kernel (DWARF, legacy), drivers
	// (v0), hal (legacy); kmain unmangled.
	var v0, legacy bool
	for name := range g.Symbols {
		if matched, _ := filepath.Match("_RNvNtCs*_7drivers4uart6report", name); matched {
			v0 = true
		}
		if matched, _ := filepath.Match("_ZN3hal4port6notify17h*E", name); matched {
			legacy = true
		}
	}
	if !v0 || !legacy {
		t.Errorf("want a v0 drivers::uart::report and a legacy hal::port::notify symbol (v0 %v, legacy %v)", v0, legacy)
	}
	if _, ok := g.Symbols["kmain"]; !ok {
		t.Error("no kmain")
	}
	f, err := elf.Open(g.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Section(".eh_frame") == nil {
		t.Error("no .eh_frame (the Rust crates' CFI)")
	}
}
