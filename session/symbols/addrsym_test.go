package symbols

import (
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestAddrSymbol: addresses in the values guest labelled as gdb 13
// labels them as pointers: inside a sized object or a function, with the
// offset; in the gap after an object, and at a data label of no size
// (the page tables, the stack's top), not at all.
func TestAddrSymbol(t *testing.T) {
	g := vmmtest.BuildGuest(t, "values")
	tb, err := Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	sym := func(n string) uint64 { return vmmtest.Sym(t, g, n) }
	for _, c := range []struct {
		addr uint64
		want string
		off  uint64
	}{
		{sym("points") + 4, "points", 4},
		{sym("points") + 11, "points", 11},
		{sym("points") + 12, "", 0}, // past its 12 bytes, before grid
		{sym("h_inc") + 6, "h_inc", 6},
		{sym("sinkhole"), "sinkhole", 0}, // stack_top (no size) is there too
		{sym("pml4"), "", 0},
		{sym("pml4") + 8, "", 0},
		{sym("entry32"), "entry32", 0}, // a code label of no size
	} {
		name, start, ok := tb.AddrSymbol(c.addr)
		if c.want == "" {
			if ok {
				t.Errorf("%#x: %s+%d, want no symbol", c.addr, name, c.addr-start)
			}
			continue
		}
		if !ok || name != c.want || c.addr-start != c.off {
			t.Errorf("%#x: %s+%d (%v), want %s+%d", c.addr, name, c.addr-start, ok, c.want, c.off)
		}
	}
}
