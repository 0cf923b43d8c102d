package symbols

import (
	"debug/dwarf"
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestAtomicTarget: an _Atomic global's type, which debug/dwarf leaves
// unsupported, leads to the type it qualifies (int, struct pt); other
// types lead nowhere.
func TestAtomicTarget(t *testing.T) {
	tb, err := Load(vmmtest.BuildGuest(t, "values").Path, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ global, want string }{{"atomic_ctr", "int"}, {"atomic_pt", "struct pt"}} {
		v := tb.GlobalByName(c.global)
		if v == nil {
			t.Fatalf("no global %s", c.global)
		}
		if ut, ok := v.Type.(*dwarf.UnsupportedType); !ok || ut.Tag != dwarf.TagAtomicType {
			t.Fatalf("%s: debug/dwarf gives %T %v, not an unsupported atomic type", c.global, v.Type, v.Type)
		}
		target, ok := tb.AtomicTarget(v.Type)
		if !ok || target.String() != c.want {
			t.Errorf("%s: _Atomic of %v (%v), want %s", c.global, target, ok, c.want)
		}
	}
	if _, ok := tb.AtomicTarget(tb.GlobalByName("sinkhole").Type); ok {
		t.Error("sinkhole's type (volatile int) taken for an _Atomic one")
	}
}
