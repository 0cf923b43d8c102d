package symbols

import (
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestUnitViewCharged: a unit's debug/dwarf view is charged to the unit
// cache for the types it may decode (viewBytesPerInfoByte a byte of the
// unit), not only its line rows: a kernel's cached views, uncharged, held
// 150 MB of types past the cache's bound.
func TestUnitViewCharged(t *testing.T) {
	tb, err := Load(vmmtest.BuildGuest(t, "values").Path, "")
	if err != nil {
		t.Fatal(err)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for ci := range tb.units {
		u := tb.units[ci]
		if u.refs&(refsAddr|refsSig8) != 0 {
			continue // views of more than the unit: charged as they are built
		}
		st := tb.cache.get(int32(ci))
		before, total := st.cost, tb.cache.cost
		if _, err := tb.unitData(st); err != nil {
			t.Fatal(err)
		}
		want := int(u.end-u.off) * viewBytesPerInfoByte / 32
		if st.cost-before != want || tb.cache.cost-total != want {
			t.Fatalf("unit %d (%d bytes): its view cost %d (the cache's %d), want %d", ci, u.end-u.off, st.cost-before, tb.cache.cost-total, want)
		}
		return
	}
	t.Fatal("no unit of its own bytes alone")
}
