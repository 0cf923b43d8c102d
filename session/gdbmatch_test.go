package session

import (
	"errors"
	"path/filepath"
	"testing"

	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

// gdbCheck says how an expression's evaluation is compared with gdb's:
// its type as sameType judges it (nil: types not compared), its text
// exactly or as comparable sees it, and an integer's in hex with hex.
type gdbCheck struct {
	sameType func(vmdap, gdb string) bool
	exact    bool
	hex      bool
}

// sameTypeName compares type names as they are spelled.
func sameTypeName(vmdap, gdb string) bool { return vmdap == gdb }

// matchGDB evaluates exprs in the image's scope before it runs and
// compares each with what gdb -batch prints of it on the same file.
func matchGDB(t *testing.T, path string, exprs []string, c gdbCheck) {
	t.Helper()
	want := vmmtest.GDBPrint(t, path, exprs)
	sc := newImageScope(t, path)
	for _, e := range exprs {
		w := want[e]
		v, err := evalExpr(e, sc)
		if err != nil {
			t.Errorf("%s: %v", e, err)
			continue
		}
		if got := v.typ.String(); c.sameType != nil && !c.sameType(got, w.Type) {
			t.Errorf("%s: type %q, gdb %q", e, got, w.Type)
		}
		got := format(v, sc, false)
		if c.exact && got != w.Text || !c.exact && comparable(got, v.typ) != comparable(w.Text, v.typ) {
			t.Errorf("%s = %s, gdb %s", e, got, w.Text)
		}
		if got := format(v, sc, true); c.hex && w.Hex != "" && v.typ.kind == tInt && got != w.Hex {
			t.Errorf("%s in hex = %s, gdb %s", e, got, w.Hex)
		}
	}
}

// eachBuild builds testdata/guests/<name> each way and calls fn with the
// image (a clang build is skipped where clang is missing).
func eachBuild(t *testing.T, name string, builds []guests.Options, fn func(t *testing.T, o guests.Options, path string)) {
	t.Helper()
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "guests", name)
	for _, o := range builds {
		t.Run(o.Tag, func(t *testing.T) {
			g, err := guests.BuildWith(dir, o)
			if errors.Is(err, guests.ErrNoClang) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			fn(t, o, g.Path)
		})
	}
}
