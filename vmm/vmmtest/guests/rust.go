package guests

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoRustc says the Rust guest cannot be built here (tests skip).
var ErrNoRustc = errors.New("rustc is not installed (the Rust guest is built from source with rustc, host target, no_std)")

// BuildRust builds a Rust no_std guest from dir: the crates its "crates"
// file lists (one per line, "name rustc-flags…", in dependency order,
// each from name.rs; the last is the kernel, built as a staticlib), linked
// with dir's .S files by gcc with dir/link.ld. Every crate gets the ones
// before it as --extern. The host target is used, with panic=abort. The
// result is cached like Build's, keyed also by rustc's version.
func BuildRust(dir string, variant Variant) (*Guest, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	name := filepath.Base(dir)
	if pre := os.Getenv(PrebuiltEnv); pre != "" {
		return load(filepath.Join(pre, PrebuiltName(name, variant)), dir, name)
	}
	rustc, err := exec.LookPath("rustc")
	if err != nil {
		return nil, ErrNoRustc
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return nil, fmt.Errorf("gcc is needed to link the Rust guest: %w", err)
	}
	crates, err := readCrates(filepath.Join(dir, "crates"))
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	var asm []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".rs") || strings.HasSuffix(n, ".S") || n == "link.ld" || n == "crates" {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
			h.Write(b)
			if strings.HasSuffix(n, ".S") {
				asm = append(asm, filepath.Join(dir, n))
			}
		}
	}
	sort.Strings(asm)
	rver, err := exec.Command(rustc, "-vV").Output()
	if err != nil {
		return nil, fmt.Errorf("rustc -vV: %w", err)
	}
	gver, _ := exec.Command(gcc, "--version").Output()
	h.Write(rver)
	h.Write(gver)
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(h, "%s %s", variant, abs)
	key := hex.EncodeToString(h.Sum(nil))[:16]
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	outDir := filepath.Join(cache, "vmdap", "guests", name+"-"+key)
	out := filepath.Join(outDir, name+".elf")
	if _, err := os.Stat(out); err == nil {
		return load(out, dir, name)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	// A private work folder (see Build: several test binaries may build
	// the same guest at once); only the final rename is shared.
	work, err := os.MkdirTemp(outDir, "build-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	run := func(prog string, args ...string) error {
		cmd := exec.Command(prog, args...)
		cmd.Dir = work
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %v\n%s", filepath.Base(prog), strings.Join(args, " "), err, stderr.String())
		}
		return nil
	}
	var externs []string
	for i, c := range crates {
		last := i == len(crates)-1
		typ, file := "rlib", "lib"+c.name+".rlib"
		if last {
			typ, file = "staticlib", "lib"+c.name+".a"
		}
		args := []string{"--edition=2021", "--crate-type=" + typ, "--crate-name=" + c.name, "-C", "panic=abort",
			"-L", "dependency=" + work}
		args = append(args, externs...)
		args = append(args, c.flags...)
		args = append(args, "-o", filepath.Join(work, file), filepath.Join(dir, c.name+".rs"))
		if err := run(rustc, args...); err != nil {
			return nil, err
		}
		externs = append(externs, "--extern", c.name+"="+filepath.Join(work, file))
	}
	elfOut := filepath.Join(work, name+".elf")
	args := []string{"-g", "-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none", "-Wl,-z,max-page-size=4096",
		"-Wl,-z,noexecstack", "-Wl,--gc-sections", "-Wl,-T," + filepath.Join(dir, "link.ld"), "-o", elfOut}
	args = append(args, asm...)
	args = append(args, filepath.Join(work, "lib"+crates[len(crates)-1].name+".a"))
	if err := run(gcc, args...); err != nil {
		return nil, err
	}
	if variant == ELF32 {
		if err := run("objcopy", "-O", "elf32-i386", elfOut, elfOut+".32"); err != nil {
			return nil, err
		}
		if err := os.Rename(elfOut+".32", elfOut); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(elfOut, out); err != nil {
		return nil, err
	}
	return load(out, dir, name)
}

type crate struct {
	name  string
	flags []string
}

// readCrates reads a "crates" file: "name flags…" per line, # comments.
func readCrates(path string) ([]crate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []crate
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		out = append(out, crate{name: fs[0], flags: fs[1:]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no crates", path)
	}
	return out, nil
}
