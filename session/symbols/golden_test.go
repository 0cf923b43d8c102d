package symbols

// Golden tests in the style of debug/dwarf's testdata: the corpus guest
// (testdata/guests/corpus, one C kernel built at -O0, -O2, with DWARF 2
// and 4, and -m32) and the Rust guest, built from source by the test
// helper, each compared with what binutils and gdb say about the same
// file in the same run (readelf, addr2line, gdb -batch). Nothing expected
// is written out that depends on the compiler's version.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

// goldenImage is one built guest the golden tests read.
type goldenImage struct {
	tag  string // corpus build tag, or "rust"
	path string
	src  string // the source folder
}

// goldenImages builds the corpus (every build) and the Rust guest (when
// rustc is installed).
func goldenImages(t *testing.T) []goldenImage {
	t.Helper()
	if testing.Short() {
		t.Skip("builds guests and runs binutils and gdb: not with -short")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the corpus guests")
	}
	var out []goldenImage
	for _, o := range guests.Corpus {
		g := vmmtest.BuildCorpus(t, o.Tag)
		out = append(out, goldenImage{tag: o.Tag, path: g.Path, src: g.Dir})
	}
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range guests.ClangCorpus {
		g, err := guests.BuildWith(filepath.Join(root, "testdata", "guests", "corpus"), o)
		if err == guests.ErrNoClang {
			t.Logf("clang builds not checked: %v", err)
			break
		}
		if err != nil {
			t.Fatalf("building corpus %s: %v", o.Tag, err)
		}
		out = append(out, goldenImage{tag: o.Tag, path: g.Path, src: g.Dir})
	}
	g, err := guests.BuildRust(filepath.Join(root, "testdata", "guests", "rust"), guests.ELF64)
	switch {
	case err == guests.ErrNoRustc:
		t.Logf("Rust guest not checked: %v", err)
	case err != nil:
		t.Fatalf("building the Rust guest: %v", err)
	default:
		out = append(out, goldenImage{tag: "rust", path: g.Path, src: g.Dir})
	}
	return out
}

// needTool returns a tool's path or skips the test.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed: the golden values come from it", name)
	}
	return p
}

// runTool runs a tool and returns its standard output.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(needTool(t, name), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func loadGolden(t *testing.T, img goldenImage) *Table {
	t.Helper()
	tb, err := Load(img.path, "")
	if err != nil {
		t.Fatalf("%s: %v", img.tag, err)
	}
	return tb
}

// gdbPython runs a Python script in gdb -batch on an ELF file (no
// target) and returns the lines it printed with the "@@" prefix (the
// prefix removed): gdb's own messages are left out.
func gdbPython(t *testing.T, elfPath, script string) []string {
	t.Helper()
	gdb := needTool(t, "gdb")
	f := filepath.Join(t.TempDir(), "oracle.py")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gdb, "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
		"-ex", "file "+elfPath, "-x", f)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "@@") {
			lines = append(lines, l[2:])
		}
	}
	if len(lines) == 0 {
		t.Fatalf("gdb printed nothing from the script:\n%s\n%s", out, stderr.String())
	}
	return lines
}
