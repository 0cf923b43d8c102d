package symbols

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"testing"

	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

// The fuzz targets start from the corpus guest as the test helper builds
// it (no committed binaries): its ELF file whole (FuzzNew), and each of
// its debug sections rewritten in place (FuzzDebugSections), so that
// most mutations reach the DWARF readers rather than debug/elf's header
// checks. Crashers the fuzzer finds are kept under testdata/fuzz.

// seedELFs returns small guests' ELF files: the corpus at -O0 (DWARF 5),
// DWARF 2 with location lists, and -m32, GNU-compressed (.zdebug_*) and
// split (-gsplit-dwarf); and clang's -O2 build (DWARF 5's
// indexed forms, location lists by index, typed operations) where clang
// is installed.
func seedELFs(f *testing.F) [][]byte {
	f.Helper()
	var out [][]byte
	tags := []string{"O0", "dwarf2", "m32", "gz-zlib-gnu", "split"} // (split: its .dwo files are read where the image names them)
	if _, err := exec.LookPath("clang"); err == nil {
		tags = append(tags, "clang-O2") // DWARF 5's indexed forms and operations
	}
	for _, tag := range tags {
		if _, ok := guests.CorpusOptions(tag); !ok {
			f.Fatalf("no corpus build %s", tag)
		}
		b, err := os.ReadFile(vmmtest.BuildCorpus(f, tag).Path)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// exercise calls every lookup a session makes on an image, on the
// addresses, names and files the image itself mentions. None may panic
// or run for long.
func exercise(t *Table) {
	n := 0
	for _, fn := range t.Funcs() {
		if n++; n > 64 {
			break
		}
		for _, pc := range []uint64{fn.Low, fn.Low + 1, fn.High - 1} {
			t.FuncAt(pc)
			t.PCToLine(pc)
			t.LineRange(pc)
			t.IsStmtStart(pc)
			t.BeginsRow(pc)
			t.NextRow(pc)
			t.Symbol(pc)
			t.Globals(pc)
			if sc, ok := t.ScopeAt(pc); ok {
				for _, v := range append(append([]*Var{}, sc.Params...), sc.Locals...) {
					Evaluate(v.Loc, sc.FrameBase, v.AddrSize, exprFrame{})
				}
			}
			var r Regs
			r.R[RegRIP], r.R[RegRSP], r.R[RegRBP] = pc, 0x9000, 0x9100
			r.Valid[RegRIP], r.Valid[RegRSP], r.Valid[RegRBP] = true, true, true
			mem := func(a uint64) (uint64, error) { return a + 8, nil }
			t.Unwind(r, true, mem)
			t.Unwind(r, false, mem)
		}
		t.PrologueEnd(fn)
		t.HasLines(fn)
		if fn.Name != "" {
			t.FuncsByName(fn.Name)
			t.InlinedSites(fn.Name)
		}
	}
	for i, file := range t.Files() {
		if i > 16 {
			break
		}
		for _, l := range []int{1, 50, 100} {
			t.LineAddrs(file, l)
		}
		t.FileLines(file, 0, 0)
		t.MatchFile(file)
	}
	n = 0
	t.GlobalNames(func(name string) {
		if n++; n <= 64 {
			t.GlobalByName(name)
		}
	})
	for _, name := range []string{"task", "atomic_t", "int", "list_head", "ticks_t"} {
		t.TypeByName(name)
	}
	t.InlinedSites("square")
	t.InlinedSites("account")
}

// FuzzNew reads mutated ELF files with New and looks everything up: bad
// input gets an error or empty answers, never a panic or a hang.
func FuzzNew(f *testing.F) {
	for _, b := range seedELFs(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := New(bytes.NewReader(b))
		if err != nil {
			return
		}
		exercise(tb)
	})
}

// FuzzDebugSections rewrites one debug section of a seed (chosen by the
// first input byte, the rest of the input laid over the section's bytes
// from an offset the second byte chooses) and looks everything up.
func FuzzDebugSections(f *testing.F) {
	seeds := seedELFs(f)
	type sec struct {
		seed     int
		off, len int
	}
	var secs []sec
	for i, b := range seeds {
		ef, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			f.Fatal(err)
		}
		for _, s := range ef.Sections {
			if s.Type == elf.SHT_PROGBITS && s.Size > 0 && (len(s.Name) > 7 && s.Name[:7] == ".debug_" || s.Name == ".eh_frame") {
				secs = append(secs, sec{i, int(s.Offset), int(s.Size)})
			}
		}
	}
	for i := range secs {
		s := secs[i]
		f.Add(byte(i), byte(0), append([]byte(nil), seeds[s.seed][s.off:s.off+min(s.len, 256)]...))
	}
	f.Fuzz(func(t *testing.T, which, at byte, data []byte) {
		s := secs[int(which)%len(secs)]
		b := append([]byte(nil), seeds[s.seed]...)
		start := s.off + int(at)*s.len/256
		copy(b[start:s.off+s.len], data)
		tb, err := New(bytes.NewReader(b))
		if err != nil {
			return
		}
		exercise(tb)
	})
}

// FuzzJoinSup: the join of an image's DWARF with dwz's supplementary
// file (altlink.go) on damaged sections of either fails or succeeds, and
// never panics. Seeded with the corpus's dwz -m build where dwz is
// installed.
func FuzzJoinSup(f *testing.F) {
	f.Add([]byte{}, []byte{}, []byte{}, []byte{})
	if _, err := exec.LookPath("dwz"); err == nil {
		g := vmmtest.BuildCorpus(f, "dwz-m")
		sec := func(path, name string) []byte {
			e, err := elf.Open(path)
			if err != nil {
				f.Fatal(err)
			}
			defer e.Close()
			b, err := e.Section(name).Data()
			if err != nil {
				f.Fatal(err)
			}
			return b
		}
		f.Add(sec(g.Path, ".debug_info"), sec(g.Path, ".debug_abbrev"), sec(g.Path+".sup", ".debug_info"), sec(g.Path+".sup", ".debug_abbrev"))
	}
	f.Fuzz(func(t *testing.T, info, abbrev, supInfo, supAbbrev []byte) {
		s := &secs{info: info, abbrev: abbrev, str: []byte("a\x00"), line: []byte{0}}
		joinSup(s, supSecs{info: supInfo, abbrev: supAbbrev, str: []byte("b\x00")})
	})
}

// FuzzDWPIndex: a damaged .debug_cu_index of a split DWARF package is
// refused or read, and the contributions of any DWO id are inside the
// package's sections, never a panic.
func FuzzDWPIndex(f *testing.F) {
	f.Add([]byte{5, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0}, uint64(0))
	if _, err := exec.LookPath("llvm-dwp"); err == nil {
		g := vmmtest.BuildCorpus(f, "split-dwp")
		e, err := elf.Open(g.Path + ".dwp")
		if err != nil {
			f.Fatal(err)
		}
		b, err := e.Section(".debug_cu_index").Data()
		e.Close()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint64(0))
	}
	f.Fuzz(func(t *testing.T, idx []byte, id uint64) {
		d := &dwp{secs: dwoSecs{info: make([]byte, 64), abbrev: make([]byte, 16)}}
		if !d.readIndex(idx) {
			return
		}
		d.unit(id)
		for sig := range d.rows {
			d.unit(sig)
		}
	})
}
