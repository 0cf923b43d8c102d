package session

import (
	"errors"
	"path/filepath"
	"testing"

	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

// TestEnumArithmeticMatchesGDB: an enumeration whose enumerators are all
// non-negative is unsigned in expressions (conversions, comparisons,
// division), one with a negative enumerator signed, as gdb evaluates
// them on the same ELF file, built by GCC and by clang.
func TestEnumArithmeticMatchesGDB(t *testing.T) {
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "guests", "enums")
	exprs := []string{"fl_hi", "(long)fl_hi", "fl_hi > 0", "fl_hi < 1", "fl_hi / 2", "fl_hi + 0L", "(long)fl_all",
		"fl_all > 1", "neg_min", "(long)neg_min", "neg_min < 0", "neg_min / 2", "neg_min + 0L"}
	for _, o := range []guests.Options{{Tag: "gcc"}, {Tag: "clang", Compiler: "clang"}} {
		t.Run(o.Tag, func(t *testing.T) {
			g, err := guests.BuildWith(dir, o)
			if errors.Is(err, guests.ErrNoClang) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			want := vmmtest.GDBPrint(t, g.Path, exprs)
			sc := newImageScope(t, g.Path)
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
		})
	}
}
