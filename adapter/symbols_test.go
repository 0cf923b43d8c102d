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
func TestLoadSymbolsOfNonELFProgram(t *testing.T) {
	ex := vmmtest.BuildExample(t, "kernel").Path
	bz := filepath.Join(t.TempDir(), "vmlinuz")
	hdr := make([]byte, 0x400)
	copy(hdr[0x202:], "HdrS")
	if err := os.WriteFile(bz, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	sym, err := loadSymbols(bz, ex)
	if err != nil || sym == nil || sym.Path != ex || !sym.HasDWARF() {
		t.Fatalf("bzImage + symbols: %+v %v", sym, err)
	}
	if sym, err := loadSymbols(bz, ""); sym != nil || err != nil {
		t.Fatalf("bzImage alone: %+v %v, want no symbols and no error", sym, err)
	}
	// An ELF program still reads its own symbols (and a separate debug
	// file when given).
	if sym, err := loadSymbols(ex, ""); err != nil || sym == nil || sym.Path != ex {
		t.Fatalf("ELF program: %+v %v", sym, err)
	}
}
