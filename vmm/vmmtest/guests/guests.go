// Package guests builds vmdap's test and example guests from their C and
// assembly sources with gcc and binutils, caching each build by the hash
// of its sources, flags and compiler version.
package guests

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Guest is a built test guest.
type Guest struct {
	Name    string
	Path    string // the ELF file
	Data    []byte
	Symbols map[string]uint64
	Dir     string // the source folder
}

// Variant selects how a guest is linked.
type Variant string

const (
	// ELF64 is the default: a 64-bit ELF entered in long mode.
	ELF64 Variant = ""
	// ELF32 converts the linked file to ELF32 (objcopy -O elf32-i386), the
	// form QEMU's Multiboot loader accepts.
	ELF32 Variant = "elf32"
)

// CFlags are the flags C guests are compiled with: freestanding, no red
// zone (interrupt frames), no SSE, full debug information.
var CFlags = []string{"-O0", "-g", "-ffreestanding", "-fno-pic", "-fno-pie", "-mno-red-zone", "-mgeneral-regs-only",
	"-fno-stack-protector", "-fcf-protection=none", "-fno-asynchronous-unwind-tables", "-fno-omit-frame-pointer", "-fno-builtin"}

// buildMu orders the builds of one process (its gcc runs and cache
// writes); processes build side by side (see the temporary name below).
var buildMu sync.Mutex

// RepoRoot returns the module root (the folder holding go.mod), or the
// folder VMDAP_REPO_ROOT names.
func RepoRoot() (string, error) {
	if r := os.Getenv("VMDAP_REPO_ROOT"); r != "" {
		return r, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Options say how to build a guest beyond its folder's sources, so that
// one folder builds several ways (optimisation levels, DWARF versions,
// -m32) without changing the defaults the other guests use.
type Options struct {
	Variant Variant
	// Flags are added after CFlags: a later -O, -g or -m option wins over
	// CFlags' own.
	Flags []string
	// Tag names the build beside the folder's name: the guest's Name, its
	// cache entry and its prebuilt file are "<folder>-<tag>".
	Tag string
	// Compiler is the C compiler driver: "" (gcc) or "clang". Assembly
	// sources go through the same driver; linking is GNU ld's either way.
	Compiler string
	// Post are commands run on the linked ELF64 file before it is cached,
	// in order, to repackage its debug information as users' images
	// carry it (objcopy --compress-debug-sections, a separate debug file,
	// dwz). In their arguments "{elf}" is the file being built and
	// "{out}" the path it is cached at (so that a file made beside it,
	// "{out}.debug", has the name a debug link records). The ELF32
	// variant is converted from the file before these run.
	Post [][]string
}

// ErrNoClang says a clang build cannot be made here (tests skip).
var ErrNoClang = errors.New("clang is not installed (the clang corpus builds are compiled with it)")

// Build compiles the guest whose sources are in dir: every .S and .c file,
// linked with dir/link.ld, with CFlags and the flags in dir/cflags (if
// any). The result is cached under the user cache folder by the hash of
// the sources, the flags and the compiler's version.
func Build(dir string, variant Variant) (*Guest, error) {
	return BuildWith(dir, Options{Variant: variant})
}

// BuildWith is Build with options.
func BuildWith(dir string, o Options) (*Guest, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	variant := o.Variant
	name := filepath.Base(dir)
	if o.Tag != "" {
		name += "-" + o.Tag
	}
	if pre := os.Getenv(PrebuiltEnv); pre != "" {
		return load(filepath.Join(pre, PrebuiltName(name, variant)), dir, name)
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return nil, fmt.Errorf("gcc is needed to build test guests: %w", err)
	}
	switch o.Compiler {
	case "", "gcc":
	case "clang":
		if gcc, err = exec.LookPath("clang"); err != nil {
			return nil, ErrNoClang
		}
	default:
		return nil, fmt.Errorf("unknown compiler %q", o.Compiler)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var srcs, extra []string // extra: the guest's own compiler flags (its cflags file)
	h := sha256.New()
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".S") || strings.HasSuffix(n, ".c") || strings.HasSuffix(n, ".h") || n == "link.ld" || n == "cflags" {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
			h.Write(b)
			if n == "cflags" {
				extra = strings.Fields(string(b))
			} else if !strings.HasSuffix(n, ".h") && n != "link.ld" {
				srcs = append(srcs, n)
			}
		}
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no .S or .c sources in %s", dir)
	}
	// Sources shared by several guests (#include "../common/…").
	common := filepath.Join(filepath.Dir(dir), "common")
	if ents, err := os.ReadDir(common); err == nil {
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(common, e.Name()))
			if err == nil {
				fmt.Fprintf(h, "common/%s\x00%d\x00", e.Name(), len(b))
				h.Write(b)
			}
		}
	}
	sort.Strings(srcs)
	ver, _ := exec.Command(gcc, "--version").Output()
	h.Write(ver)
	// The folder too: the DWARF names the sources by absolute path, and a
	// guest built in another checkout would point the debugger there.
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(h, "%q %s %s", CFlags, variant, abs)
	if len(o.Flags) > 0 {
		fmt.Fprintf(h, " %q", o.Flags)
	}
	if o.Compiler != "" {
		fmt.Fprintf(h, " cc=%s", o.Compiler)
	}
	if len(o.Post) > 0 && variant == ELF64 {
		fmt.Fprintf(h, " post=%q", o.Post)
	}
	// Split DWARF's .dwo files are written where the compiler runs
	// (clang: <source>.dwo in its working folder): it runs in the
	// build's own folder, which the image names as their folder.
	splitDWARF := slices.Contains(o.Flags, "-gsplit-dwarf")
	if splitDWARF {
		fmt.Fprintf(h, " dwo-in-build-folder")
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	outDir := filepath.Join(cache, "vmdap", "guests", name+"-"+key)
	out := filepath.Join(outDir, name+".elf")
	if _, err := os.Stat(out); err != nil {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return nil, err
		}
		// A private temporary name: test binaries of several packages
		// (separate processes, which buildMu does not order) build the
		// same guest at once on a cold cache; the rename is atomic.
		f, err := os.CreateTemp(outDir, name+".*.tmp")
		if err != nil {
			return nil, err
		}
		tmp := f.Name()
		f.Close()
		defer os.Remove(tmp)
		defer os.Remove(tmp + ".32")
		args := withFlags(CFlags, extra)
		args = append(args, o.Flags...)
		buildID := "-Wl,--build-id=none" // (a build that wants one asks for it in its flags)
		if slices.ContainsFunc(o.Flags, func(f string) bool { return strings.HasPrefix(f, "-Wl,--build-id") }) {
			buildID = "-Wl,--build-id"
		}
		args = append(args, "-nostdlib", "-static", "-no-pie", buildID, "-Wl,-z,max-page-size=4096", "-Wl,-z,noexecstack",
			"-Wl,-T,"+filepath.Join(dir, "link.ld"), "-I", dir, "-o", tmp)
		for _, s := range srcs {
			args = append(args, filepath.Join(dir, s))
		}
		cmd := exec.Command(gcc, args...)
		if splitDWARF {
			cmd.Dir = outDir
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s %s: %v\n%s", filepath.Base(gcc), strings.Join(args, " "), err, stderr.String())
		}
		if variant == ELF32 {
			conv := exec.Command("objcopy", "-O", "elf32-i386", tmp, tmp+".32")
			if b, err := conv.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("objcopy -O elf32-i386: %v\n%s", err, b)
			}
			if err := os.Rename(tmp+".32", tmp); err != nil {
				return nil, err
			}
		}
		if variant == ELF64 {
			for _, c := range o.Post {
				if err := runPost(c, tmp, out); err != nil {
					return nil, err
				}
			}
		}
		if err := os.Rename(tmp, out); err != nil {
			return nil, err
		}
	}
	return load(out, dir, name)
}

// runPost runs one of Options.Post's commands on the file elf, which is
// cached at out.
func runPost(c []string, elf, out string) error {
	if len(c) == 0 {
		return nil
	}
	args := make([]string, len(c))
	for i, a := range c {
		args[i] = strings.NewReplacer("{elf}", elf, "{out}", out).Replace(a)
	}
	cmd := exec.Command(args[0], args[1:]...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// withFlags is the default flags with a guest's own: "!-flag" drops a
// default flag (the fpu guest's !-mgeneral-regs-only), the rest are
// added after the defaults.
func withFlags(defaults, own []string) []string {
	var drop, add []string
	for _, f := range own {
		if d, ok := strings.CutPrefix(f, "!"); ok {
			drop = append(drop, d)
		} else {
			add = append(add, f)
		}
	}
	var out []string
	for _, f := range defaults {
		if !slices.Contains(drop, f) {
			out = append(out, f)
		}
	}
	return append(out, add...)
}

// PrebuiltEnv names a folder of guests built elsewhere (for machines
// without gcc, such as the nested-KVM lanes' initramfs).
const PrebuiltEnv = "VMDAP_GUESTS_DIR"

// PrebuiltName is a guest's file name in a prebuilt folder.
func PrebuiltName(name string, v Variant) string {
	if v == "" {
		return name + ".elf"
	}
	return name + "-" + string(v) + ".elf"
}

func load(out, dir, name string) (*Guest, error) {
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	g := &Guest{Name: name, Path: out, Data: data, Dir: dir, Symbols: map[string]uint64{}}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	syms, _ := f.Symbols()
	for _, s := range syms {
		if s.Name != "" {
			g.Symbols[s.Name] = s.Value
		}
	}
	return g, nil
}
