package session

import (
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestTypedefChainsMatchGDB: whatis and ptype of typedefs of qualified
// types and of other typedefs print what gdb prints: ptype keeps the
// qualifiers under the typedefs (ptype cvint: const volatile int, not
// int), whatis of a typedef name goes one level down (whatis top_u32:
// mid_u32, not unsigned int).
func TestTypedefChainsMatchGDB(t *testing.T) {
	typesMatchGDB(t, []typeCase{
		{vmmtest.BuildGuest(t, "typedefs").Path, []string{"cvint", "cvint2", "cvint_ptr", "ccvint", "top_u32", "mid_u32",
			"cptr", "cv", "cv2", "cvp", "*cvp", "ccv", "top", "cp"}},
	})
}
