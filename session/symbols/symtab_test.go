package symbols

import (
	"cmp"
	"debug/elf"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
		code := int(s.Section) < len(f.Sections) && f.Sections[s.Section].Flags&elf.SHF_EXECINSTR != 0
		atEnd := code && s.Size == 0 && s.Value == f.Sections[s.Section].Addr+f.Sections[s.Section].Size
		out = append(out, elfSym{name: s.Name, value: s.Value, size: s.Size, typ: typ, code: code, atEnd: atEnd})
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

// TestDataLabelsAreNotFunctions checks which ELF symbols the PC lookup
// takes for functions where DWARF says nothing (an assembly guest's): its
// labels in code are, its labels in data are not (nor are a kernel's
// __ksymtab_ entries or its __crc_ checksums, untyped symbols too).
func TestDataLabelsAreNotFunctions(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mech")
	tb, err := Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, code := range map[string]bool{
		"handler_halt": true, "common_handler": true,
		"rep_count": false, "irq_count": false, "hello": false, "msg": false,
	} {
		addr, ok := g.Symbols[name]
		if !ok {
			t.Fatalf("the guest has no symbol %s", name)
		}
		f := tb.FuncAt(addr)
		if got := f != nil && f.Name == name; got != code {
			t.Errorf("%s at %#x: a function %v, want %v (FuncAt: %+v)", name, addr, got, code, f)
		}
	}
}

// TestRadixSortIsAStableSort checks radixSort against a stable
// comparison sort on values that differ in few bytes, in many, or not at
// all, with repeats (symbols that share an address keep their order).
func TestRadixSortIsAStableSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, mask := range []uint64{0, 0xff, 0xffff00, 0xffffffff_ffffffff, 0x8000_0000_0000_00ff} {
		for _, n := range []int{0, 1, 2, 1000} {
			keys := make([]symKey, n)
			for i := range keys {
				keys[i] = symKey{0xffffffff_81000000 ^ rng.Uint64()&mask, int32(i)}
				if i > 0 && rng.IntN(4) == 0 {
					keys[i].value = keys[rng.IntN(i)].value // a repeat
				}
			}
			want := slices.Clone(keys)
			slices.SortStableFunc(want, func(a, b symKey) int { return cmp.Compare(a.value, b.value) })
			radixSort(keys)
			if !slices.Equal(keys, want) {
				t.Fatalf("mask %#x, %d keys: sorted %v, want %v", mask, n, keys[:min(n, 8)], want[:min(n, 8)])
			}
		}
	}
}

// TestMergeRunsIsAStableMerge checks mergeRuns against a stable sort of
// the runs put end to end, for 0 to 9 runs (the workers' parts).
func TestMergeRunsIsAStableMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	type elem struct{ key, run int }
	byKey := func(a, b elem) int { return cmp.Compare(a.key, b.key) }
	for k := 0; k < 10; k++ {
		runs := make([][]elem, k)
		var all []elem
		for r := range runs {
			for range rng.IntN(50) {
				runs[r] = append(runs[r], elem{rng.IntN(40), r})
			}
			slices.SortStableFunc(runs[r], byKey)
			all = append(all, runs[r]...)
		}
		slices.SortStableFunc(all, byKey)
		if got := mergeRuns(runs, byKey); !slices.Equal(got, all) {
			t.Fatalf("%d runs: merged %v, want %v", k, got, all)
		}
	}
}

// TestSectionEndIsNotAFunction: a sizeless code symbol at its section's
// end (the kernel's _etext, _einittext) names no code, so the code of the
// section after it (.altinstr_aux after .init.text, jumped to by
// static_cpu_has) is not taken for its function, as gdb names none there.
func TestSectionEndIsNotAFunction(t *testing.T) {
	k := filepath.Join(vmmtest.LinuxCacheDir(), "vmlinux")
	if _, err := os.Stat(k); err != nil {
		t.Skipf("skipping: no Linux kernel in the cache %s (run testdata/linux/fetch)", vmmtest.LinuxCacheDir())
	}
	f, err := elf.Open(k)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tb, err := Load(k, "")
	if err != nil {
		t.Fatal(err)
	}
	syms, _ := f.Symbols()
	n := 0
	for _, s := range syms {
		if int(s.Section) >= len(f.Sections) || s.Size != 0 {
			continue
		}
		sec := f.Sections[s.Section]
		if sec.Flags&elf.SHF_EXECINSTR == 0 || s.Value != sec.Addr+sec.Size {
			continue
		}
		n++
		if fn := tb.FuncAt(s.Value); fn != nil && fn.Name == s.Name {
			t.Errorf("%s (the end of %s) is taken for the function at %#x: %+v", s.Name, sec.Name, s.Value, fn)
		}
	}
	if n == 0 {
		t.Fatal("no symbol marks the end of a code section: want _etext, _einittext")
	}
	t.Logf("%d section-end symbols", n)
}

// TestLastLabelRunsToItsSectionEnd: an assembly _start with no .size and
// no symbol after it names the code up to its section's end, as gdb's
// minimal symbols do (frames showed a bare address), and not up to the
// next symbol, a megabyte away in another section.
func TestLastLabelRunsToItsSectionEnd(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the image")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "start.S")
	if err := os.WriteFile(src, []byte(`	.text
	.globl _start
_start:
	nop
	nop
	cli
	hlt
	jmp _start
	.section .othertext, "ax"
other:
	nop
	ret
`), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "start.elf")
	if out, err := exec.Command("gcc", "-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none", "-Wl,-Ttext=0x100000", "-Wl,--section-start=.othertext=0x200000", "-o", img, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	f, err := elf.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text := f.Section(".text")
	tb, err := Load(img, "")
	if err != nil {
		t.Fatal(err)
	}
	for pc := text.Addr; pc < text.Addr+text.Size; pc++ {
		if fn := tb.FuncAt(pc); fn == nil || fn.Name != "_start" {
			t.Fatalf("FuncAt(%#x) in .text [%#x, %#x) = %+v, want _start", pc, text.Addr, text.Addr+text.Size, fn)
		}
	}
	if fn := tb.FuncAt(text.Addr + text.Size); fn != nil && fn.Name == "_start" {
		t.Errorf("_start runs past the end of .text: %+v", fn)
	}
}
