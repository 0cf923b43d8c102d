package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestPackagedDWARFConsole: the debug console says where a stripped
// program's symbols came from (its debug file, found by its debug link),
// and, for one whose debug file is nowhere, where it was looked for; and
// which .dwo files of a split image were read.
func TestPackagedDWARFConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts guests: not with -short")
	}
	vmmtest.RequireKVM(t)
	launch := func(t *testing.T, program string) (console, important string) {
		t.Helper()
		c := stdioClient(t)
		if _, err := c.Initialize(); err != nil {
			t.Fatal(err)
		}
		if err := c.Launch(map[string]any{"program": program, "memory": 64}); err != nil {
			t.Fatalf("launch: %v", err)
		}
		if _, err := c.WaitEvent("initialized"); err != nil {
			t.Fatal(err)
		}
		return c.Output("console"), c.Output("important")
	}
	g := vmmtest.BuildCorpus(t, "debuglink")
	t.Run("found", func(t *testing.T) {
		console, important := launch(t, g.Path)
		if want := "reading symbols from " + g.Path + ".debug"; !strings.Contains(console, want) {
			t.Errorf("console:\n%s\nwant %q", console, want)
		}
		if strings.Contains(important, "no DWARF") {
			t.Errorf("important: %s", important)
		}
	})
	t.Run("missing", func(t *testing.T) {
		b, err := os.ReadFile(g.Path)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		p := filepath.Join(dir, filepath.Base(g.Path))
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		_, important := launch(t, p)
		want := "its separate debug file is not in " + p + ".debug, " + filepath.Join(dir, ".debug", filepath.Base(p)+".debug")
		if !strings.Contains(important, want) {
			t.Errorf("important:\n%s\nwant %q", important, want)
		}
	})
	t.Run("split", func(t *testing.T) {
		if _, err := exec.LookPath("gcc"); err != nil {
			t.Skip("gcc is needed to build the corpus guests")
		}
		console, _ := launch(t, vmmtest.BuildCorpus(t, "split").Path)
		if want := "vmdap: the image's DWARF is split (-gsplit-dwarf): read the .dwo files of 3 of its units"; !strings.Contains(console, want) {
			t.Errorf("console:\n%s\nwant %q", console, want)
		}
	})
}
