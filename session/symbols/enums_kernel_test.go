package symbols

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestKernelEnumeratorsEveryOpen: each open of a kernel indexes the same
// enumerators, those of enumerations that share a name or a first
// enumerator with another unit's among them (C's enumerations local to a
// file: EPP_INDEX_POWERSAVE is in two enum energy_perf_value_index, the
// mount options' enum { Opt_... } in many files). Which of them a worker
// read first depended on the scheduling.
func TestKernelEnumeratorsEveryOpen(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	var first []string
	for i := 0; i < 3; i++ {
		tb, err := Load(filepath.Join(k.Dir, "vmlinux"), "")
		if err != nil {
			t.Fatal(err)
		}
		names := slices.Sorted(maps.Keys(tb.enums))
		for _, n := range []string{"EPP_INDEX_POWERSAVE", "Opt_context", "FILE_CHECK"} {
			if _, ok := tb.EnumeratorByName(n); !ok {
				t.Errorf("open %d: no enumerator %s", i, n)
			}
		}
		if i == 0 {
			first = names
			continue
		}
		if !slices.Equal(names, first) {
			t.Fatalf("open %d indexed %d enumerators, the first %d", i, len(names), len(first))
		}
	}
}
