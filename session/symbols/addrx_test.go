package symbols

import (
	"encoding/binary"
	"os/exec"
	"testing"

	"vmdap/vmm/vmmtest"
)

// regFrame is a frame whose registers hold given values.
type regFrame map[int]uint64

func (f regFrame) Reg(n int) (uint64, bool) { v, ok := f[n]; return v, ok }
func (regFrame) CFA() (uint64, bool)        { return 0, false }
func (regFrame) ReadMemory(p []byte, addr uint64) error {
	clear(p)
	return nil
}

// TestClangIndexedAndTypedOperations: in the corpus built by clang -O2,
// a global's location (DW_OP_addrx) reads as DW_OP_addr of its symbol,
// and level3's union argument w, whose upper half clang describes as the
// low 16 bits of %esi (DW_OP_breg4 0, DW_OP_constu 0xffffffff,
// DW_OP_and, DW_OP_convert u32, DW_OP_convert u16, DW_OP_stack_value,
// DW_OP_piece 2), evaluates to those 16 bits.
func TestClangIndexedAndTypedOperations(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to link the corpus guests")
	}
	g := vmmtest.BuildCorpus(t, "clang-O2") // skips without clang
	tb, err := Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"magic_seen", "big_global", "init_task"} {
		v := tb.GlobalByName(name)
		if v == nil {
			t.Fatalf("no global %s", name)
		}
		want := make([]byte, 9)
		want[0] = opAddr
		binary.LittleEndian.PutUint64(want[1:], vmmtest.Sym(t, g, name))
		if string(v.Loc) != string(want) {
			t.Errorf("%s: location % x, want % x (DW_OP_addr of its symbol)", name, v.Loc, want)
		}
	}
	// Slid (KASLR), as GCC's DW_OP_addr is: once.
	const slide = 0x1000000
	tb.SetSlide(slide)
	if v := tb.GlobalByName("magic_seen"); v == nil || len(v.Loc) != 9 || binary.LittleEndian.Uint64(v.Loc[1:]) != vmmtest.Sym(t, g, "magic_seen")+slide {
		t.Errorf("magic_seen slid by %#x: %+v, want DW_OP_addr %#x", slide, v, vmmtest.Sym(t, g, "magic_seen")+slide)
	}
	tb.SetSlide(0)
	fn := tb.FuncByName("level3")
	if fn == nil {
		t.Fatal("no level3")
	}
	sc, ok := tb.ScopeAt(fn.Low)
	if !ok {
		t.Fatal("no scope at level3")
	}
	var w *Var
	for _, p := range sc.Params {
		if p.Name == "w" {
			w = p
		}
	}
	if w == nil {
		t.Fatalf("no parameter w in %v", sc.Params)
	}
	pl, err := Evaluate(w.Loc, sc.FrameBase, sc.AddrSize, regFrame{4: 0xdead11223344})
	if err != nil {
		t.Fatalf("w: %v (location % x)", err, w.Loc)
	}
	if len(pl.Parts) == 0 || !pl.Parts[0].IsVal || pl.Parts[0].Value != 0x3344 || pl.Parts[0].Bits != 16 {
		t.Errorf("w: %+v, want a first piece of 16 bits with value 0x3344", pl)
	}
}

// TestResolveIndexed rewrites indexed operands through a unit's
// .debug_addr table (at DW_AT_addr_base 8, after the table's header), in
// nested entry values too, and leaves what it cannot rewrite alone.
func TestResolveIndexed(t *testing.T) {
	addr := make([]byte, 8+3*8)
	for i, v := range []uint64{0x104000, 0x105008, 0x7} {
		binary.LittleEndian.PutUint64(addr[8+8*i:], v)
	}
	tb := &Table{sec: secs{addr: addr}}
	u := &unit{addrBase: 8, format: unitFormat{version: 5, addrSize: 8, offSize: 4}}
	a8 := func(op byte, v uint64) []byte {
		b := []byte{op}
		return binary.LittleEndian.AppendUint64(b, v)
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, c := range []struct {
		name     string
		in, want []byte
	}{
		{"addrx", []byte{opAddrx, 0}, a8(opAddr, 0x104000)},
		{"addrx then plus_uconst", []byte{opAddrx, 1, opPlusUconst, 4}, cat(a8(opAddr, 0x105008), []byte{opPlusUconst, 4})},
		{"constx", []byte{opConstx, 2, opStackValue}, cat(a8(0x0e, 7), []byte{opStackValue})},
		{"GNU addr_index", []byte{opGNUAddrIndex, 1}, a8(opAddr, 0x105008)},
		{"in an entry value", []byte{opEntryValue, 2, opAddrx, 0, opStackValue},
			cat([]byte{opEntryValue, 9}, a8(opAddr, 0x104000), []byte{opStackValue})},
		{"after operands that look like it", []byte{opBreg0 + 7, 0xa1, 0x7f, opAddrx, 0, opPlus},
			cat([]byte{opBreg0 + 7, 0xa1, 0x7f}, a8(opAddr, 0x104000), []byte{opPlus})},
		{"nothing indexed", []byte{opFbreg, 0xa1, 0x7f}, []byte{opFbreg, 0xa1, 0x7f}},
		{"a branch: left alone", []byte{opAddrx, 0, opSkip, 0, 0}, []byte{opAddrx, 0, opSkip, 0, 0}},
		{"an unknown operation: left alone", []byte{0xe5, opAddrx, 0}, []byte{0xe5, opAddrx, 0}},
		{"truncated: left alone", []byte{opAddrx}, []byte{opAddrx}},
	} {
		if got := tb.resolveIndexed(c.in, u); string(got) != string(c.want) {
			t.Errorf("%s: % x, want % x", c.name, got, c.want)
		}
	}
}

// TestExprAtEntry: an empty location-list entry holds at its address
// when that is its function's entry, and nowhere else.
func TestExprAtEntry(t *testing.T) {
	list := []locEntry{{0x100, 0x100, []byte{opReg0 + 6}}, {0x100, 0x110, []byte{opReg0 + 5}}, {0x120, 0x120, []byte{opReg0 + 3}}}
	isEntry := func(pc uint64) bool { return pc == 0x100 }
	for _, c := range []struct {
		pc   uint64
		want []byte
	}{
		{0x100, []byte{opReg0 + 6}}, // the empty entry first, at the function's entry
		{0x104, []byte{opReg0 + 5}},
		{0x120, nil}, // empty, not at an entry
	} {
		if got := exprAt(list, c.pc, isEntry); string(got) != string(c.want) {
			t.Errorf("%#x: % x, want % x", c.pc, got, c.want)
		}
	}
	if got := exprAt(list, 0x100, nil); string(got) != string([]byte{opReg0 + 5}) {
		t.Errorf("without entry knowledge: % x, want the non-empty entry", got)
	}
}

// TestCallValuesSlide: a call-site parameter's value that is an address
// (GCC's DW_OP_addr of a global passed by reference) moves with the
// image, as the global's own location does.
func TestCallValuesSlide(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the corpus guests")
	}
	tb, err := Load(vmmtest.BuildCorpus(t, "O2").Path, "")
	if err != nil {
		t.Fatal(err)
	}
	type site struct {
		fn       *Func
		i, j     int
		addr, ra uint64
	}
	var found []site
	for _, fn := range tb.Funcs() {
		for i, cs := range tb.CallSites(fn) {
			for j, p := range cs.Params {
				if len(p.Value) == 9 && p.Value[0] == opAddr {
					found = append(found, site{fn, i, j, binary.LittleEndian.Uint64(p.Value[1:]), cs.ReturnPC})
				}
			}
		}
	}
	if len(found) == 0 {
		t.Fatal("no call-site value that is a DW_OP_addr in the -O2 corpus")
	}
	const slide = 0x200000
	tb.SetSlide(slide)
	for _, s := range found {
		cs := tb.CallSites(s.fn)[s.i]
		v := cs.Params[s.j].Value
		if cs.ReturnPC != s.ra+slide || len(v) != 9 || binary.LittleEndian.Uint64(v[1:]) != s.addr+slide {
			t.Errorf("%s's call returning to %#x: value % x, want DW_OP_addr %#x", s.fn.Name, cs.ReturnPC, v, s.addr+slide)
		}
	}
}

// TestCallSiteCallee: every direct call site of the -O2 corpus names a
// callee of that name, found by address where the site gives one, by
// name otherwise (looked up when asked for), before and after the image
// slides; a tail call's is resolved at once.
func TestCallSiteCallee(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the corpus guests")
	}
	tb, err := Load(vmmtest.BuildCorpus(t, "O2").Path, "")
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		n, byAddr := 0, 0
		for _, fn := range tb.Funcs() {
			for _, cs := range tb.CallSites(fn) {
				if cs.tname == "" {
					continue
				}
				n++
				got := cs.Callee()
				if got == nil || got.Name != cs.tname {
					t.Errorf("%s: %s's call returning to %#x: callee %v, want %s", when, fn.Name, cs.ReturnPC, got, cs.tname)
					continue
				}
				if cs.Tail && cs.Target != got {
					t.Errorf("%s: %s's tail call to %s not resolved at once", when, fn.Name, cs.tname)
				}
				if cs.tlow != 0 {
					byAddr++
					if got.Low != cs.tlow+tb.Slide() {
						t.Errorf("%s: %s's call to %s at link address %#x: callee at %#x (slide %#x)", when, fn.Name, cs.tname, cs.tlow, got.Low, tb.Slide())
					}
				}
			}
		}
		if n == 0 || byAddr == 0 {
			t.Fatalf("%s: %d direct call sites, %d with the callee's address: the corpus has both", when, n, byAddr)
		}
	}
	check("at its link address")
	tb.SetSlide(0x200000)
	check("slid")
}
