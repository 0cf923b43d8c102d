package adapter

import (
	"os"
	"path/filepath"
	"testing"

	"vmdap/vmm/vmmtest"
)

// A Linux bzImage is not an ELF file: its symbols come from the file named
// in "symbols" (the vmlinux), and without one the launch goes on without
// symbols instead of failing.
func TestSymbolFilesOfNonELFProgram(t *testing.T) {
	ex := vmmtest.BuildExample(t, "kernel").Path
	bz := filepath.Join(t.TempDir(), "vmlinuz")
	hdr := make([]byte, 0x400)
	copy(hdr[0x202:], "HdrS")
	if err := os.WriteFile(bz, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ program, debug, wantProgram, wantDebug string }{
		{bz, ex, ex, ""}, // bzImage + vmlinux: the vmlinux alone
		{bz, "", "", ""}, // bzImage alone: no symbols
		{ex, "", ex, ""}, // an ELF reads its own
		{ex, bz, ex, bz}, // and a debug file given with it (the loader judges it)
		{"", "", "", ""}, // no program
	} {
		p, d := symbolFiles(tc.program, tc.debug)
		if p != tc.wantProgram || d != tc.wantDebug {
			t.Errorf("symbolFiles(%q, %q) = %q, %q; want %q, %q", tc.program, tc.debug, p, d, tc.wantProgram, tc.wantDebug)
		}
	}
}
