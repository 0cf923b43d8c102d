package session

import (
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestFlexibleArraysMatchGDB: a flexible array member shows as gdb
// shows it: its address with the data symbol there (0x102004
// <after_flex>: it was the bare address), and a char one's string too.
func TestFlexibleArraysMatchGDB(t *testing.T) {
	matchGDB(t, vmmtest.BuildGuest(t, "flex").Path, []string{"flex_g", "flex_g.data", "cflex_g", "cflex_g.text"},
		gdbCheck{sameType: sameTypeName})
}
