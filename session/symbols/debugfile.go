package symbols

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// Separate debug files, found as gdb finds them ("Debugging Information
// in Separate Files" in gdb's manual): a distribution's image is stripped
// (strip --strip-debug) and its DWARF shipped apart (objcopy
// --only-keep-debug), named by the image's build ID under a debug
// directory (/usr/lib/debug/.build-id/ab/cdef….debug) or by its
// .gnu_debuglink section (a file name and the file's CRC-32), looked for
// beside the image, in a .debug folder beside it, and under a debug
// directory at the image's own folder.

// DefaultDebugDirs are the debug directories gdb searches by default
// (its --with-separate-debug-dir).
var DefaultDebugDirs = []string{"/usr/lib/debug"}

// WithDebugDirs sets the debug directories the table looks for dwz's
// supplementary file in by build ID (nil: DefaultDebugDirs), as
// FindDebugFile's dirs.
func WithDebugDirs(dirs []string) Option {
	return func(t *Table) { t.debugDirs = dirs }
}

// maxDebugLinkCRC bounds the files whose CRC-32 is computed to check a
// debug link (the whole file is read): larger candidates are taken on
// their build ID alone.
const maxDebugLinkCRC = 4 << 30

// FindDebugFile returns the separate debug file of the ELF file at path
// when path has no DWARF of its own, as gdb looks for it: by build ID in
// each of dirs (DefaultDebugDirs when nil), then by its debug link beside
// it, in .debug beside it, and in each of dirs at its folder. It returns
// "" when path has DWARF, names no debug file, or none of the candidates
// (looked, in order) is there and matches it.
func FindDebugFile(path string, dirs []string) (found string, looked []string) {
	f, err := openELF(path)
	if err != nil {
		return "", nil
	}
	defer f.Close()
	if hasDebugInfo(f) {
		return "", nil
	}
	if dirs == nil {
		dirs = DefaultDebugDirs
	}
	id := buildID(f)
	if len(id) >= 2 {
		h := fmt.Sprintf("%x", id)
		for _, d := range dirs {
			c := filepath.Join(d, ".build-id", h[:2], h[2:]+".debug")
			looked = append(looked, c)
			if matchesBuildID(c, id) {
				return c, looked
			}
		}
	}
	name, crc, ok := debugLink(f)
	if !ok {
		return "", looked
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	dir := filepath.Dir(abs)
	cands := []string{filepath.Join(dir, name), filepath.Join(dir, ".debug", name)}
	for _, d := range dirs {
		cands = append(cands, filepath.Join(d, dir, name))
	}
	for _, c := range cands {
		looked = append(looked, c)
		if c != abs && matchesLink(c, crc, id) {
			return c, looked
		}
	}
	return "", looked
}

// hasDebugInfo reports whether f has a .debug_info section with contents
// (compressed or not).
func hasDebugInfo(f *elf.File) bool {
	for _, n := range []string{".debug_info", ".zdebug_info"} {
		if s := f.Section(n); s != nil && s.Type != elf.SHT_NOBITS && s.Size > 0 {
			return true
		}
	}
	return false
}

// debugLink reads the .gnu_debuglink section: a file name, padding to 4
// bytes, and the file's CRC-32.
func debugLink(f *elf.File) (name string, crc uint32, ok bool) {
	s := f.Section(".gnu_debuglink")
	if s == nil || s.Type == elf.SHT_NOBITS || s.Size > 4096 {
		return "", 0, false
	}
	b, err := s.Data()
	if err != nil {
		return "", 0, false
	}
	i := bytes.IndexByte(b, 0)
	if i <= 0 {
		return "", 0, false
	}
	name = string(b[:i])
	off := (i + 4) &^ 3
	if off+4 > len(b) || name != filepath.Base(name) || name == "." || name == ".." {
		// (a link names a file, never a path: it cannot lead out of the
		// folders searched)
		return "", 0, false
	}
	return name, f.ByteOrder.Uint32(b[off:]), true
}

// openELF is elf.Open of a regular file only. A path found by searching
// (a debug file by build ID or debug link, dwz's supplementary file, a
// .dwo a unit names) can be a FIFO, whose open blocks until a writer
// comes: the launch waited for ever; or a device, which never ends.
func openELF(path string) (*elf.File, error) {
	if err := regularFile(path); err != nil {
		return nil, err
	}
	return elf.Open(path)
}

// regularFile refuses a path that is not a regular file, without
// opening it.
func regularFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", path, fileKind(st.Mode()))
	}
	return nil
}

// matchesBuildID reports whether the file at path is an ELF file with
// DWARF and the build ID id.
func matchesBuildID(path string, id []byte) bool {
	f, err := openELF(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return hasDebugInfo(f) && bytes.Equal(buildID(f), id)
}

// matchesLink reports whether the file at path is the debug file a debug
// link names: an ELF file with DWARF, of the image's build ID when both
// have one, else of the link's CRC-32.
func matchesLink(path string, crc uint32, id []byte) bool {
	f, err := openELF(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if !hasDebugInfo(f) {
		return false
	}
	if other := buildID(f); id != nil && other != nil {
		return bytes.Equal(other, id)
	}
	got, err := fileCRC(path)
	return err == nil && got == crc
}

// fileCRC is the CRC-32 (IEEE, as binutils' bfd_calc_gnu_debuglink_crc32)
// of a file's contents.
func fileCRC(path string) (uint32, error) {
	g, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer g.Close()
	st, err := g.Stat()
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() || st.Size() > maxDebugLinkCRC {
		return 0, errors.New("not a regular file of a debug file's size")
	}
	h := crc32.NewIEEE()
	if _, err := io.Copy(h, g); err != nil {
		return 0, err
	}
	return h.Sum32(), nil
}
