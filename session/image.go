package session

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"vmdap/session/symbols"
)

// Image is a guest image's symbols (functions, line table, variables,
// unwind tables), loaded before the target starts so that a bad file
// fails a launch before a guest exists.
type Image struct {
	t      *symbols.Table
	srcMap map[string]string // applied to the kernel modules' symbols too
	// debugFile is the separate debug file found for a program without
	// DWARF (none given); debugLooked, where it was looked for.
	debugFile   string
	debugLooked []string
}

// MaxImageBytes bounds the program and symbols files: the whole file is
// read.
const MaxImageBytes = 4 << 30

// ImageOptions tune LoadImage.
type ImageOptions struct {
	// SourceMap maps source path prefixes of the debug information to
	// local folders.
	SourceMap map[string]string
	// Progress, when set, hears how far indexing is (done and total bytes
	// of debug information).
	Progress func(done, total int64)
	// Context, when set, stops the load early when it is done.
	Context context.Context
	// BaseDir, when set, is where the source files of units compiled in
	// a relative directory are looked for, as gdb looks from its working
	// directory (the adapter's; VS Code's extension starts it in the
	// workspace folder): see withRelativeDirs.
	BaseDir string
	// IndexCache, when set, is the folder the index of a large image
	// (a kernel's) is kept in, by its build ID: the next load of the same
	// image reads it there, a few times faster than building it.
	IndexCache string
	// DebugDirs are the folders a program's separate debug file is
	// looked for in, by build ID and debug link, when it has no DWARF and
	// no debug file is given (nil: symbols.DefaultDebugDirs, as gdb's
	// debug-file-directory).
	DebugDirs []string
}

// LoadImage reads a guest image's symbols: program's own, or those of a
// separate debug file (objcopy --only-keep-debug), given or, for a
// stripped program (or symbols file), found as gdb finds it (by its build ID or its
// .gnu_debuglink; DebugFound says which and where). Only regular files are
// read (a FIFO or a device would block or never end), and an error never
// quotes the file's bytes: a path the user did not mean to show stays
// unshown.
func LoadImage(program, debugFile string, o ImageOptions) (*Image, error) {
	if err := CheckImageFile(program, "program"); err != nil {
		return nil, err
	}
	if debugFile != "" {
		if err := CheckImageFile(debugFile, "symbols"); err != nil {
			return nil, err
		}
	}
	// The file that should hold the DWARF (the symbols file, else the
	// program), when stripped, names where its DWARF went.
	owner := program
	if debugFile != "" {
		owner = debugFile
	}
	found, looked := symbols.FindDebugFile(owner, o.DebugDirs)
	if found != "" {
		debugFile = found
	}
	var opts []symbols.Option
	if o.Context != nil {
		opts = append(opts, symbols.WithContext(o.Context))
	}
	if o.Progress != nil {
		opts = append(opts, symbols.WithProgress(o.Progress))
	}
	if o.IndexCache != "" {
		opts = append(opts, symbols.WithIndexCache(o.IndexCache))
	}
	if o.DebugDirs != nil {
		opts = append(opts, symbols.WithDebugDirs(o.DebugDirs))
	}
	t, err := symbols.Load(program, debugFile, opts...)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			// elf.FormatError quotes the bytes it did not like.
			return nil, fmt.Errorf("reading the guest's symbols: %s is not an ELF file vmdap can read (no ELF header, or a damaged one)", describeFiles(program, debugFile))
		}
		return nil, fmt.Errorf("reading the guest's symbols: %w", err)
	}
	m := withRelativeDirs(o.SourceMap, t.RelativeCompDirs(), o.BaseDir)
	t.MapSources(m)
	return &Image{t: t, srcMap: m, debugFile: found, debugLooked: looked}, nil
}

// withRelativeDirs returns the user's sourceMap with a mapping added for
// each relative compile directory it does not cover, as gdb finds such a
// unit's files (its source path "$cdir:$cwd"): to base/dir where that
// folder exists, else to base, where a kernel tree's files are when it
// is the working directory (Debian's kernel, compiled in
// debian/build/build_amd64_none_cloud-amd64, names init/main.c from the
// tree's top). Without it a frame's source is a relative path no editor
// can open. With no base, the map is the user's.
func withRelativeDirs(user map[string]string, dirs []string, base string) map[string]string {
	if base == "" || len(dirs) == 0 {
		return user
	}
	m := make(map[string]string, len(user)+len(dirs))
	for k, v := range user {
		m[k] = v
	}
	for _, d := range dirs {
		covered := false
		for from := range user {
			from = path.Clean(strings.ReplaceAll(strings.TrimSpace(from), `\`, "/"))
			if d == from || strings.HasPrefix(d, from+"/") {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		to := base
		if st, err := os.Stat(filepath.Join(base, d)); err == nil && st.IsDir() {
			to = filepath.Join(base, d)
		}
		m[d] = to
	}
	return m
}

// DebugFound returns the separate debug file found for a program (or
// symbols file) without DWARF ("" when it has its own or none was found), and
// the paths looked at for it, in order.
func (im *Image) DebugFound() (file string, looked []string) { return im.debugFile, im.debugLooked }

// Notes says what about the image's debug information the user should
// know (a supplementary or split DWARF file read, or missing).
func (im *Image) Notes() []string { return im.t.Notes() }

// IndexCached reports whether the image's index was read from the index
// cache.
func (im *Image) IndexCached() bool { return im.t.IndexCached() }

// Summary describes the image's size ("12 compile units, 340 functions").
func (im *Image) Summary() string {
	return fmt.Sprintf("%d compile units, %d functions", im.t.Units(), len(im.t.Funcs()))
}

func describeFiles(program, debugFile string) string {
	if debugFile == "" {
		return fmt.Sprintf("%q", program)
	}
	return fmt.Sprintf("%q or its symbols file %q", program, debugFile)
}

// CheckImageFile refuses what cannot be an image file: something missing,
// a directory, anything but a regular file (FIFO, device, socket) and a
// file over MaxImageBytes. what names the setting ("program").
func CheckImageFile(path, what string) error {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("%q (%s) cannot be read: %w", path, what, unwrapPath(err))
	case st.IsDir():
		return fmt.Errorf("%q (%s) is a directory, not a file", path, what)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%q (%s) is not a regular file (it is a %s): vmdap reads images from regular files only", path, what, fileKind(st.Mode()))
	case st.Size() > MaxImageBytes:
		return fmt.Errorf("%q (%s) is %d bytes, more than vmdap reads (%d)", path, what, st.Size(), int64(MaxImageBytes))
	}
	return nil
}

// CheckDumpFile refuses a core dump path that is missing or not a
// regular file; a dump has no size limit (it is read as asked).
func CheckDumpFile(path string) error {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("%q (coreFile) cannot be read: %w", path, unwrapPath(err))
	case st.IsDir():
		return fmt.Errorf("%q (coreFile) is a directory, not a file", path)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%q (coreFile) is not a regular file (it is a %s)", path, fileKind(st.Mode()))
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "block device"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}

// Sources lists the source files the image's line table names (sorted).
func (s *Session) Sources() []string {
	if s.sym == nil {
		return nil
	}
	return s.sym.Files()
}

// Features is what a session can do: what the target's accessors offer,
// as the client should be told, and what the image provides. The target's
// names and notes come with it for the user.
type Features struct {
	Backend, Host string   // "kvm", "gdbremote"; the hypervisor
	Notes         []string // what the host cannot do, for the user
	VCPUs         int

	SWBreakpoints bool // software breakpoints (breakpoint mode "software")
	HWBreakpoints int  // debug-register execute breakpoints (mode "hardware")
	Step          bool // single steps (instruction granularity)
	Watchpoints   bool // data breakpoints
	RegisterWrite bool // registers can change (setVariable on them, goto)
	LineInfo      bool // the image has source lines
	Linux         bool // the image is a Linux kernel (its exception filters: LinuxExceptionFilters)
	PostMortem    bool // a core dump: nothing runs or changes
}

// Breakpoints says whether any breakpoint can be placed (software or in a
// debug register): conditions, logpoints, function, instruction and
// exception breakpoints all stand on them.
func (f Features) Breakpoints() bool { return f.SWBreakpoints || f.HWBreakpoints > 0 }

// Features reports what this session can do, from the accessors of the
// target (the one source of what it offers) and the image.
func (s *Session) Features() Features {
	f := Features{Backend: s.caps.Backend, Host: s.caps.Host, Notes: s.caps.Notes, VCPUs: s.t.VCPUs()}
	_, f.SWBreakpoints = s.t.SWBreakpoints()
	if hw, ok := s.t.HWBreakpoints(); ok {
		f.HWBreakpoints = hw.Slots()
	}
	_, f.Step = s.t.Stepper()
	_, f.Watchpoints = s.t.Watchpoints()
	_, f.RegisterWrite = s.t.RegisterWriter()
	f.LineInfo = s.sym != nil && s.sym.HasDWARF()
	f.PostMortem = s.dump != nil
	s.mu.Lock()
	f.Linux = s.isLinux()
	s.mu.Unlock()
	return f
}
