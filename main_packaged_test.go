package main

import (
	"encoding/hex"
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
// which .dwo files of a split image were read. A debug file under a
// debug directory the configuration gives is found by build ID.
func TestPackagedDWARFConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts guests: not with -short")
	}
	vmmtest.RequireKVM(t)
	launch := func(t *testing.T, program string, more ...any) (console, important string) {
		t.Helper()
		c := stdioClient(t)
		if _, err := c.Initialize(); err != nil {
			t.Fatal(err)
		}
		cfg := map[string]any{"program": program, "memory": 64}
		for i := 0; i+1 < len(more); i += 2 {
			cfg[more[i].(string)] = more[i+1]
		}
		if err := c.Launch(cfg); err != nil {
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
	t.Run("build-id", func(t *testing.T) {
		// The corpus's linker script drops .note.gnu*: a build ID is
		// added, the DWARF moved under a debug directory by it.
		dir := t.TempDir()
		note := filepath.Join(dir, "note")
		id := "0123456789abcdef0123456789abcdef01234567"
		desc, _ := hex.DecodeString(id)
		if err := os.WriteFile(note, append([]byte("\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00"), desc...), 0o644); err != nil {
			t.Fatal(err)
		}
		prog, dbg := filepath.Join(dir, "kernel.elf"), filepath.Join(dir, "debug", ".build-id", id[:2], id[2:]+".debug")
		if err := os.MkdirAll(filepath.Dir(dbg), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"--add-section", ".note.gnu.build-id=" + note, vmmtest.BuildCorpus(t, "O2").Path, prog},
			{"--only-keep-debug", prog, dbg},
			{"--strip-debug", prog},
		} {
			if b, err := exec.Command("objcopy", args...).CombinedOutput(); err != nil {
				t.Fatalf("objcopy %v: %v\n%s", args, err, b)
			}
		}
		console, _ := launch(t, prog, "debugFileDirectories", []string{filepath.Join(dir, "debug")})
		if want := "reading symbols from " + dbg; !strings.Contains(console, want) {
			t.Errorf("console:\n%s\nwant %q", console, want)
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
