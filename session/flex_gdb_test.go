package session

import (
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestFlexibleArraysMatchGDB: a flexible array member shows as gdb
// shows it: its address with the data symbol there (0x102004
// <after_flex>: it was the bare address), and a char one's string too.
func TestFlexibleArraysMatchGDB(t *testing.T) {
	path := vmmtest.BuildGuest(t, "flex").Path
	exprs := []string{"flex_g", "flex_g.data", "cflex_g", "cflex_g.text"}
	want := vmmtest.GDBPrint(t, path, exprs)
	sc := newImageScope(t, path)
	for _, e := range exprs {
		w := want[e]
		v, err := evalExpr(e, sc)
		if err != nil {
			t.Errorf("%s: %v", e, err)
			continue
		}
		if got := v.typ.String(); got != w.Type {
			t.Errorf("%s: type %q, gdb %q", e, got, w.Type)
		}
		if got := format(v, sc, false); comparable(got, v.typ) != comparable(w.Text, v.typ) {
			t.Errorf("%s = %s, gdb %s", e, got, w.Text)
		}
	}
}
