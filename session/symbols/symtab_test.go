package symbols

import (
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vmdap/vmm/vmmtest"
)

// symsOf is the ELF symbols vmdap keeps, as debug/elf's Symbols gives
// them: the oracle for readSymtab.
func symsOf(f *elf.File) []elfSym {
	syms, _ := f.Symbols()
	out := make([]elfSym, 0, len(syms))
	for _, s := range syms {
		typ := elf.ST_TYPE(s.Info)
		if s.Name == "" || s.Section == elf.SHN_UNDEF || (typ != elf.STT_FUNC && typ != elf.STT_OBJECT && typ != elf.STT_NOTYPE) {
			continue
		}
		if typ == elf.STT_NOTYPE && (strings.HasPrefix(s.Name, ".") || strings.HasPrefix(s.Name, "$")) {
			continue
		}
		out = append(out, elfSym{name: s.Name, value: s.Value, size: s.Size, typ: typ})
	}
	return out
}

// TestSymtabAsDebugELF checks readSymtab, which reads the symbol table
// where it lies, against debug/elf's Symbols on the 64- and 32-bit corpus
// builds, and on the cached Linux kernel when there is one.
func TestSymtabAsDebugELF(t *testing.T) {
	var paths []string
	for _, tag := range []string{"O2", "dwarf2", "m32"} {
		paths = append(paths, vmmtest.BuildCorpus(t, tag).Path)
	}
	k := filepath.Join(vmmtest.LinuxCacheDir(), "vmlinux")
	if _, err := os.Stat(k); err == nil {
		paths = append(paths, k)
	}
	for _, p := range paths {
		im, err := openImage(p)
		if err != nil {
			t.Fatal(err)
		}
		want, got := symsOf(im.f), readSymtab(im)
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("%s: %d symbols, debug/elf %d", p, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: symbol %d is %+v, debug/elf %+v", p, i, got[i], want[i])
			}
		}
		t.Logf("%s: %d symbols", filepath.Base(p), len(got))
		im.release()
	}
}
