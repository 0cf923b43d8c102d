package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestLinuxCoreBuildIDMismatch opens a dump of Debian's kernel with a
// vmlinux whose build ID is another's (the same file with its
// NT_GNU_BUILD_ID changed, as a rebuilt kernel's would be): the session
// must say that the program is not the dumped kernel (the dump's
// VMCOREINFO records its BUILD-ID), and say nothing with the right one.
func TestLinuxCoreBuildIDMismatch(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	core := linuxCore(t, k, "console=ttyS0 panic=-1 nokaslr", "")(true)
	defer os.Remove(core)
	b, err := os.ReadFile(k.Vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(core)
	if err != nil {
		t.Fatal(err)
	}
	info := make([]byte, 1<<20) // the notes come first
	n, _ := f.ReadAt(info, 0)
	f.Close()
	info = info[:n]
	i := bytes.Index(info, []byte("BUILD-ID="))
	if i < 0 {
		t.Fatal("the dump's VMCOREINFO has no BUILD-ID")
	}
	id, err := hex.DecodeString(string(info[i+9 : i+9+40]))
	info = nil
	if err != nil {
		t.Fatal(err)
	}
	j := bytes.Index(b, id)
	if j < 0 {
		t.Fatalf("the vmlinux does not hold the dump's build ID %x", id)
	}
	for n := range id {
		b[j+n] ^= 0xff
	}
	other := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(other, b, 0o644); err != nil {
		t.Fatal(err)
	}
	b = nil
	for _, tc := range []struct {
		program string
		warn    bool
	}{{other, true}, {k.Vmlinux, false}} {
		c, _ := coreSession(t, core, map[string]any{"program": tc.program})
		out := c.Output("console")
		warned := strings.Contains(out, "WARNING: the dump's kernel (build ID "+hex.EncodeToString(id)+") is not the program's")
		if warned != tc.warn {
			t.Errorf("program %s: the debug console at the start:\n%s\nwant a warning that the build IDs differ: %v", tc.program, out, tc.warn)
		}
		mustOK(t, c.Disconnect())
	}
}
