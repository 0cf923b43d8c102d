package core

import (
	"errors"
	"testing"

	"vmdap/vmm"
)

// TestPostMortemIsUnsupported: callers that ask whether a mechanism
// exists (errors.Is ErrUnsupported) learn that a dump has none.
func TestPostMortemIsUnsupported(t *testing.T) {
	var tg Target
	for name, err := range map[string]error{"Continue": tg.Continue(), "WritePhysical": func() error { _, e := physical{}.WritePhysical(nil, 0); return e }()} {
		if !errors.Is(err, vmm.ErrUnsupported) || err.Error() != ErrPostMortem.Error() {
			t.Errorf("%s: %v, want the post-mortem error, a vmm.ErrUnsupported", name, err)
		}
	}
}
