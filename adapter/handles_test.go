package adapter

import (
	"testing"

	"vmdap/session"
)

// TestHandlesBounded: one stop keeps a bounded number of references and
// of expanded lists. A core dump's session is one stop: 20,000
// evaluations and expansions of init_task (Debian's vmlinux) held every
// reference and every list, 4.4 GB.
func TestHandlesBounded(t *testing.T) {
	h := newHandles()
	const n = 200_000
	list := make([]session.Var, 10)
	var ids []int
	for i := 0; i < n; i++ {
		id := h.addVars(varRef{})
		h.setList(id, list)
		ids = append(ids, id)
		h.addFrame(frameRef{thread: 1, index: i})
	}
	kept, lists := 0, 0
	for _, id := range ids {
		if v, ok := h.vars1(id); ok {
			kept++
			if v.list != nil {
				lists++
			}
		}
	}
	if kept > n/2 || lists > n/100 {
		t.Fatalf("after %d references expanded at one stop, %d are kept with %d lists: the stop holds them all", n, kept, lists)
	}
	if _, ok := h.vars1(ids[n-1]); !ok {
		t.Fatal("the newest reference was let go")
	}
	if v, ok := h.vars1(ids[n-1]); !ok || v.list == nil {
		t.Fatal("the newest reference's list was let go")
	}
	if _, ok := h.frame(firstHandle + 2); ok {
		t.Fatal("the oldest frame id of 200,000 is kept")
	}
}
