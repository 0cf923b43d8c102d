package symbols

import (
	enchex "encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"vmdap/vmm/vmmtest"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := enchex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFindDebugFile: a stripped image's debug file is found where gdb
// finds it: by build ID under a debug directory, and by debug link beside
// the image and in .debug beside it; one of another CRC is not taken; an
// image with DWARF looks for none.
func TestFindDebugFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds guests: not with -short")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the corpus guests")
	}
	needTool(t, "objcopy")
	// The corpus's linker script drops .note.gnu*: the build ID is added
	// (a note of GNU's type 3, NT_GNU_BUILD_ID).
	id := "abcdef0123456789abcdef0123456789abcdef01"
	note := []byte("\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00")
	note = append(note, mustHex(t, id)...)
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, "note"), note, 0o644); err != nil {
		t.Fatal(err)
	}
	withID := filepath.Join(tmp, "kernel.elf")
	runTool(t, "objcopy", "--add-section", ".note.gnu.build-id="+filepath.Join(tmp, "note"), vmmtest.BuildCorpus(t, "O2").Path, withID)
	if found, looked := FindDebugFile(withID, nil); found != "" || looked != nil {
		t.Errorf("an image with DWARF: found %q, looked in %q", found, looked)
	}
	g := struct{ Path string }{withID}

	// strip makes the image and its debug file in dir: the debug file at
	// debug (relative to dir), the link naming it by its base name.
	strip := func(t *testing.T, debug string, link bool) (prog, dbg string) {
		dir := t.TempDir()
		prog, dbg = filepath.Join(dir, "kernel.elf"), filepath.Join(dir, debug)
		if err := os.MkdirAll(filepath.Dir(dbg), 0o755); err != nil {
			t.Fatal(err)
		}
		runTool(t, "objcopy", "--only-keep-debug", g.Path, dbg)
		runTool(t, "objcopy", "--strip-debug", g.Path, prog)
		if link {
			runTool(t, "objcopy", "--add-gnu-debuglink="+dbg, prog)
		}
		return prog, dbg
	}
	t.Run("build-id", func(t *testing.T) {
		prog, dbg := strip(t, filepath.Join("debug", ".build-id", id[:2], id[2:]+".debug"), false)
		dirs := []string{filepath.Join(t.TempDir(), "none"), filepath.Join(filepath.Dir(prog), "debug")}
		found, looked := FindDebugFile(prog, dirs)
		if found != dbg || len(looked) != 2 {
			t.Errorf("found %q after %q, want %q", found, looked, dbg)
		}
		if tb, err := Load(prog, found); err != nil || !tb.HasDWARF() {
			t.Errorf("loading with %s: %v", found, err)
		}
	})
	t.Run("link-beside", func(t *testing.T) {
		prog, dbg := strip(t, "kernel.debug", true)
		if found, looked := FindDebugFile(prog, []string{}); found != dbg {
			t.Errorf("found %q after %q, want %q", found, looked, dbg)
		}
	})
	t.Run("link-in-.debug", func(t *testing.T) {
		prog, dbg := strip(t, filepath.Join(".debug", "kernel.debug"), false)
		// (the link is added with the file beside, then it moves)
		beside := filepath.Join(filepath.Dir(prog), "kernel.debug")
		if err := os.Link(dbg, beside); err != nil {
			t.Fatal(err)
		}
		runTool(t, "objcopy", "--add-gnu-debuglink="+beside, prog)
		os.Remove(beside)
		found, looked := FindDebugFile(prog, []string{"/nonexistent"})
		if found != dbg {
			t.Errorf("found %q after %q, want %q", found, looked, dbg)
		}
		want := []string{filepath.Join("/nonexistent", ".build-id", id[:2], id[2:]+".debug"), beside, dbg}
		if !slices.Equal(looked, want) {
			t.Errorf("looked in %q, want %q", looked, want)
		}
	})
	t.Run("link-other-crc", func(t *testing.T) {
		prog, dbg := strip(t, "kernel.debug", true)
		// Another build's debug file under the linked name (this one
		// without a build ID: its CRC differs).
		other := vmmtest.BuildCorpus(t, "O0").Path
		runTool(t, "objcopy", "--only-keep-debug", other, dbg)
		found, looked := FindDebugFile(prog, []string{})
		if found != "" {
			t.Errorf("found %q (after %q): not the image's debug file", found, looked)
		}
		if len(looked) != 2 {
			t.Errorf("looked in %q, want the folder and its .debug", looked)
		}
	})
}
