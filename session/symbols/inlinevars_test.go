package symbols

import (
	"path/filepath"
	"testing"

	"vmdap/vmm/vmmtest/guests"
)

// TestInlinedBlockLocalsInScope: GCC -O2 puts an inlined function's
// locals in a lexical block of the inlined call (w in outer_inl, z in
// inner_inl), and the abstract instance's copies are inherited,
// optimized out, outside it. The block's, with their locations, come
// last, so that they are the ones in scope (the name; the inherited
// copy is the shadowed one), as gdb has them: z was shown and
// evaluated <optimized out>, its value hidden as (z).
func TestInlinedBlockLocalsInScope(t *testing.T) {
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "guests", "inlinevars")
	g, err := guests.BuildWith(dir, guests.Options{Tag: "O2", Flags: []string{"-O2"}})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	fn := tab.FuncByName("by_value")
	if fn == nil {
		t.Fatal("no by_value")
	}
	checked := 0
	for pc := fn.Low; pc < fn.High; pc++ {
		calls := tab.InlinedAt(pc)
		for i, c := range calls {
			want := map[string]string{"outer_inl": "w", "inner_inl": "z"}[c.Name]
			if want == "" || i < len(calls)-1 && c.Name == "inner_inl" {
				continue
			}
			s, ok := tab.ScopeOfInlined(pc, c)
			if !ok {
				t.Fatalf("no scope of %s at %#x", c.Name, pc)
			}
			var last *Var
			live := false
			for _, v := range s.Locals {
				if v.Name == want {
					last = v
					live = live || v.Loc != nil
				}
			}
			if !live {
				continue
			}
			checked++
			if last.Loc == nil {
				t.Errorf("%s at %#x: the %s in scope has no location: the inherited copy shadows the block's", c.Name, pc, want)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no PC in by_value where w or z has a location")
	}
}
