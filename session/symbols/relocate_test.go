package symbols

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A relocatable object as a kernel module is one: code in .text and in
// .init.text, data in .data, compiled with gcc -c -g, so that its DWARF
// holds relocations (.rela.debug_info, .rela.debug_line, …).
const relocSrc = `int counter = 7;

__attribute__((noinline)) int bump(int by)
{
	counter += by; /* LINE_BUMP */
	return counter;
}

__attribute__((section(".init.text"), noinline)) int start(void)
{
	return bump(3); /* LINE_START */
}

__attribute__((section(".exit.text"), noinline)) void stop(void)
{
	counter = 0; /* LINE_STOP */
}
`

// relocObject compiles relocSrc into an ELF relocatable file.
func relocObject(t testing.TB, flags ...string) []byte {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is needed to build the relocatable object")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "mod.c")
	if err := os.WriteFile(src, []byte(relocSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(dir, "mod.o")
	if out, err := exec.Command(gcc, append([]string{"-c", "-g", "-O1", "-fno-pic", "-mcmodel=kernel", "-o", obj, src}, flags...)...).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	b, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func srcLine(marker string) int {
	for i, l := range strings.Split(relocSrc, "\n") {
		if strings.Contains(l, marker) {
			return i + 1
		}
	}
	return -1
}

const (
	textAt = 0xffffffffc0001000
	initAt = 0xffffffffc0005000
	dataAt = 0xffffffffc0003000
)

func relocTable(t *testing.T, secs map[string]uint64) *Table {
	t.Helper()
	img, err := Relocate(relocObject(t), secs)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := New(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// TestRelocate places the object's sections as the kernel places a
// module's and reads it back: functions, lines and a global's address
// are at the run-time addresses; what is in a section not placed (.exit
// text) has no symbol. Relocated in memory (Relocate), and from a file
// into a mapped scratch file (LoadRelocated), with its debug sections
// as they are and compressed (stored decompressed at the end).
func TestRelocate(t *testing.T) {
	secs := map[string]uint64{".text": textAt, ".init.text": initAt, ".data": dataAt}
	t.Run("in memory", func(t *testing.T) { checkRelocated(t, relocTable(t, secs)) })
	for name, flags := range map[string][]string{"file": nil, "file with compressed debug sections": {"-gz=zlib"}} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mod.ko")
			if err := os.WriteFile(path, relocObject(t, flags...), 0o644); err != nil {
				t.Fatal(err)
			}
			tb, err := LoadRelocated(path, secs)
			if err != nil {
				t.Fatal(err)
			}
			if tb.img.m == nil {
				t.Error("the relocated image is not mapped")
			}
			checkRelocated(t, tb)
		})
	}
}

func checkRelocated(t *testing.T, tb *Table) {
	t.Helper()
	if !tb.HasDWARF() {
		t.Fatal("no DWARF after relocation")
	}
	for _, c := range []struct {
		fn     string
		base   uint64
		marker string
	}{{"bump", textAt, "LINE_BUMP"}, {"start", initAt, "LINE_START"}} {
		f := tb.FuncByName(c.fn)
		if f == nil || f.Low < c.base || f.Low >= c.base+0x1000 {
			t.Fatalf("%s: %+v, want it in the section at %#x", c.fn, f, c.base)
		}
		if got := tb.FuncAt(f.Low + 1); got == nil || got.Name != c.fn {
			t.Errorf("FuncAt(%s+1) = %+v", c.fn, got)
		}
		addrs, line, ok := tb.LineAddrs("mod.c", srcLine(c.marker))
		if !ok || line != srcLine(c.marker) || len(addrs) == 0 || !f.Contains(addrs[0]) {
			t.Errorf("line %d (%s): %x at line %d, %v; want in %s [%#x, %#x)", srcLine(c.marker), c.marker, addrs, line, ok, c.fn, f.Low, f.High)
		}
		if loc, ok := tb.PCToLine(addrs[0]); !ok || loc.Line != srcLine(c.marker) || !strings.HasSuffix(loc.File, "mod.c") {
			t.Errorf("PCToLine(%#x) = %+v %v", addrs[0], loc, ok)
		}
		if a, ok := tb.SymbolAddr(c.fn); !ok || a != f.Low {
			t.Errorf("SymbolAddr(%s) = %#x %v, want %#x", c.fn, a, ok, f.Low)
		}
	}
	g := tb.GlobalByName("counter")
	if g == nil || len(g.Loc) != 9 || g.Loc[0] != 0x03 {
		t.Fatalf("counter: %+v", g)
	}
	if a := binary.LittleEndian.Uint64(g.Loc[1:]); a != dataAt {
		t.Errorf("counter at %#x, want %#x", a, uint64(dataAt))
	}
	if a, ok := tb.SymbolAddr("stop"); ok {
		t.Errorf("stop (in .exit.text, not placed) has a symbol at %#x", a)
	}
	// The CFI follows the code.
	f := tb.FuncByName("bump")
	var r Regs
	r.R[RegRIP], r.Valid[RegRIP] = f.Low, true
	r.R[RegRSP], r.Valid[RegRSP] = 0x1000, true
	if _, ok := tb.CFA(r, true, func(uint64) (uint64, error) { return 0, nil }); !ok {
		t.Errorf("no CFA at bump's entry %#x: the CFI did not move with the code", f.Low)
	}
}

// TestRelocateBadInput: files that are not relocatable x86-64 ELF, or are
// damaged, are refused with an error.
func TestRelocateBadInput(t *testing.T) {
	obj := relocObject(t)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"not ELF":   []byte("hello, world"),
		"truncated": obj[:200],
	} {
		if _, err := Relocate(b, map[string]uint64{".text": textAt}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// An executable is not relocatable.
	exe := append([]byte(nil), obj...)
	exe[16] = byte(elf.ET_EXEC)
	if _, err := Relocate(exe, nil); err == nil || !strings.Contains(err.Error(), "relocatable") {
		t.Errorf("ET_EXEC: %v", err)
	}
}

// FuzzRelocate: no input makes Relocate (and reading its result) panic.
func FuzzRelocate(f *testing.F) {
	f.Add(relocObject(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := Relocate(b, map[string]uint64{".text": textAt, ".init.text": initAt, ".data": dataAt})
		if err != nil {
			return
		}
		if tb, err := New(bytes.NewReader(img)); err == nil {
			exercise(tb)
		}
	})
}

// TestSet: a kernel and a module, each answering for its own addresses;
// names from the kernel first, a module's only within its ranges; a
// module that goes takes its answers with it.
func TestSet(t *testing.T) {
	kern := relocTable(t, map[string]uint64{".text": 0xffffffff81000000, ".init.text": 0xffffffff82000000, ".data": 0xffffffff83000000})
	mod := relocTable(t, map[string]uint64{".text": textAt, ".init.text": initAt, ".data": dataAt})
	s := NewSet(kern)
	if s.AddrSize != 8 || s.Kernel() != kern {
		t.Fatalf("set of the kernel: %+v", s)
	}
	mbump := mod.FuncByName("bump")
	if f := s.FuncAt(mbump.Low); f != kern.FuncAt(mbump.Low) {
		t.Fatalf("before the module: FuncAt(%#x) = %+v", mbump.Low, f)
	}
	// Only the module's code and data are placed; its init code not.
	s.Add("mod", mod, []Range{{textAt, textAt + 0x1000}, {dataAt, dataAt + 0x1000}})
	if f := s.FuncAt(mbump.Low + 1); f != mbump {
		t.Errorf("FuncAt in the module = %+v", f)
	}
	if _, ok := s.ScopeAt(mbump.Low + 1); !ok {
		t.Errorf("no scope in the module's bump")
	}
	if fs := s.FuncsByName("bump"); len(fs) != 2 || fs[0] != kern.FuncByName("bump") || fs[1] != mbump {
		t.Errorf("FuncsByName(bump) = %+v, want the kernel's then the module's", fs)
	}
	if fs := s.FuncsByName("start"); len(fs) != 1 || fs[0] != kern.FuncByName("start") {
		t.Errorf("FuncsByName(start) = %+v: the module's init code is not placed", fs)
	}
	if pe, ok := s.PrologueEnd(mbump); !ok || !mbump.Contains(pe) {
		t.Errorf("PrologueEnd(module's bump) = %#x %v", pe, ok)
	}
	addrs, _, ok := s.LineAddrs("mod.c", srcLine("LINE_BUMP"))
	if !ok || len(addrs) != 2 {
		t.Errorf("LineAddrs in both images: %x %v", addrs, ok)
	}
	n := 0
	for _, f := range s.Funcs() {
		if f == mbump {
			n++
		}
	}
	if n != 1 || len(s.Funcs()) != len(kern.Funcs())+len(mod.Funcs())-2 { // less start and stop
		t.Errorf("Funcs: %d functions (module's bump %d times)", len(s.Funcs()), n)
	}
	// Its init code freed, then the module gone.
	v := s.Version()
	if !s.SetRanges("mod", []Range{{textAt, textAt + 0x1000}}) || s.Version() == v {
		t.Error("SetRanges")
	}
	if !s.Remove("mod") || s.Remove("mod") {
		t.Error("Remove")
	}
	if f := s.FuncAt(mbump.Low + 1); f == mbump {
		t.Errorf("the module's function after it went")
	}
	if fs := s.FuncsByName("bump"); len(fs) != 1 {
		t.Errorf("FuncsByName(bump) after the module went: %+v", fs)
	}
}
