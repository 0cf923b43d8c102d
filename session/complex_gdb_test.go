package session

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

// TestComplexMatchGDB: the complex guest's _Complex float, double and
// long double values, built by GCC and clang, have the types and values
// gdb shows for the same ELF file (1.5 + -2.25i, not the bytes of the
// two parts read as one integer).
func TestComplexMatchGDB(t *testing.T) {
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "guests", "complex")
	for _, o := range []guests.Options{
		{Tag: "gcc"},
		{Tag: "clang", Compiler: "clang"},
	} {
		t.Run(o.Tag, func(t *testing.T) {
			g, err := guests.BuildWith(dir, o)
			if errors.Is(err, guests.ErrNoClang) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			exprs := []string{"c_flt", "c_dbl", "c_arr", "c_arr[1]", "c_wave", "c_wave.z"}
			if o.Compiler != "clang" {
				exprs = append(exprs, "c_ld")
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
				// (clang names every complex type "complex", which gdb
				// shows; debug/dwarf names them by their size, as GCC
				// does: complex double.)
				if got := v.typ.String(); got != w.Type && strings.Replace(got, "complex double", "complex", 1) != w.Type &&
					strings.Replace(got, "complex float", "complex", 1) != w.Type {
					t.Errorf("%s: type %q, gdb %q", e, got, w.Type)
				}
				if got := format(v, sc, false); comparable(got, v.typ) != comparable(w.Text, v.typ) {
					t.Errorf("%s = %s, gdb %s", e, got, w.Text)
				}
			}
		})
	}
}
