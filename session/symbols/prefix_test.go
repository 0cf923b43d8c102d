package symbols

import (
	"slices"
	"strings"
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestNamesWithPrefix: the sorted index answers what a walk over every
// function, global, enumeration constant and ELF symbol finds, in name order, each name once
// with all it names, for every prefix of the guest's names (and none).
func TestNamesWithPrefix(t *testing.T) {
	g := vmmtest.BuildExample(t, "kernel")
	tb, err := Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]NameKind{}
	for n := range tb.names() {
		if !isPadding(n) {
			want[n] |= NameFunc
		}
	}
	for n := range tb.globals {
		want[n] |= NameGlobal
	}
	for n := range tb.enums {
		want[n] |= NameEnumerator
	}
	for _, s := range tb.syms {
		if !isPadding(s.name) {
			want[s.name] |= NameSymbol
		}
	}
	if want["kmain"]&NameFunc == 0 || want["counter"]&NameGlobal == 0 || want["GREEN"] != NameEnumerator {
		t.Fatalf("the guest's names lack kmain, counter or GREEN: %v", want)
	}
	prefixes := []string{"", "k", "km", "kmain", "kmainx", "c", "zzz", "_"}
	for _, p := range prefixes {
		var got, exp []string
		tb.NamesWithPrefix(p, func(name string, kind NameKind) bool {
			if kind != want[name] {
				t.Errorf("%q: kind %b, want %b", name, kind, want[name])
			}
			got = append(got, name)
			return true
		})
		for n := range want {
			if strings.HasPrefix(n, p) {
				exp = append(exp, n)
			}
		}
		slices.Sort(exp)
		if !slices.Equal(got, exp) {
			t.Errorf("prefix %q: %v, want %v", p, got, exp)
		}
	}
	// Stopping early.
	n := 0
	tb.NamesWithPrefix("", func(string, NameKind) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("fn returned false at the third name, yet was called %d times", n)
	}
	// Through a set, at most limit names of each image.
	var got []string
	NewSet(tb).NamesWithPrefix("", 2, func(name string, _ NameKind) { got = append(got, name) })
	if len(got) != 2 {
		t.Errorf("set, limit 2: %v", got)
	}
}

// TestNamesWithPrefixLeavesOutPadding: a kernel's function padding
// symbols (__pfx_start_kernel beside start_kernel) are not offered.
func TestNamesWithPrefixLeavesOutPadding(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	tb, err := Load(k.Vmlinux, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.SymbolAddr("__pfx_start_kernel"); !ok {
		t.Skip("skipping: this kernel has no __pfx_ padding symbols")
	}
	pfx := 0
	tb.NamesWithPrefix("__pfx_", func(string, NameKind) bool { pfx++; return true })
	found := false
	tb.NamesWithPrefix("start_kern", func(n string, k NameKind) bool { found = found || n == "start_kernel" && k&NameFunc != 0; return true })
	if pfx != 0 || !found {
		t.Errorf("%d __pfx_ names offered; start_kernel offered: %v", pfx, found)
	}
}
