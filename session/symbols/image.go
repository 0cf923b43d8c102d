package symbols

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

// image is an opened ELF file: its sections are slices of a read-only
// mapping of the file when it could be mapped, else read through the
// io.ReaderAt on demand.
type image struct {
	path    string // the file's path ("" when read from an io.ReaderAt)
	f       *elf.File
	m       []byte // the mapping, or nil
	cleanup runtime.Cleanup
}

// release unmaps a mapped image at once rather than when it is
// collected: an open that failed or was cancelled gives its pages back
// (a kernel's touched debug sections are a hundred megabytes and more).
// Nothing may read the image after.
func (img *image) release() {
	if img.m != nil {
		img.cleanup.Stop()
		unmapFile(img.m)
		img.m = nil
	}
}

// maxImage bounds what is read of an image that is not mapped.
const maxImage = 4 << 30

func openImage(path string) (*image, error) {
	if err := regularFile(path); err != nil {
		return nil, err // (a FIFO's open would wait for a writer)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fileKind(st.Mode()))
	}
	if img, err := mapImage(f, path); err != errNotMapped {
		if img != nil {
			img.path = path
		}
		return img, err
	}
	// Not mappable: read sections through the file, which stays open
	// for as long as the image is used.
	g, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	img, err := newImage(g, path)
	if err != nil {
		g.Close()
		return nil, err
	}
	runtime.AddCleanup(img, func(g *os.File) { g.Close() }, g)
	img.path = path
	return img, nil
}

var errNotMapped = errors.New("not mapped")

// mapImage maps the open file f as an image (the mapping outlives f), or
// fails with errNotMapped when it cannot be mapped.
func mapImage(f *os.File, name string) (*image, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m, ok := mapFile(f, st.Size())
	if !ok {
		return nil, errNotMapped
	}
	img, err := newImage(readerAt(m), name)
	if err != nil {
		unmapFile(m)
		return nil, err
	}
	img.m = m
	img.cleanup = runtime.AddCleanup(img, unmapFile, m)
	return img, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

// readerAt reads a mapping.
type readerAt []byte

func (b readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func newImage(r io.ReaderAt, name string) (*image, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		// Never echo the file's bytes (debug/elf's magic-number error
		// quotes them).
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("%s: not an ELF file", name)
		}
		return nil, fmt.Errorf("%s: not an ELF file: %w", name, err)
	}
	if f.Machine != elf.EM_X86_64 && f.Machine != elf.EM_386 {
		return nil, fmt.Errorf("%s: an ELF file for %s, not x86", name, f.Machine)
	}
	return &image{f: f}, nil
}

// size is the image file's size (0 when it is not mapped).
func (im *image) size() int { return len(im.m) }

// section returns a section's contents and its file offset (-1 when the
// bytes are a decompressed or read copy). A debug section may be GNU's
// compressed .zdebug_* (compress.go).
func (im *image) section(name string) ([]byte, int) {
	s := im.f.Section(name)
	if s == nil {
		if z := im.zdebugSection(name); z != nil {
			return im.zdebugBytes(z), -1
		}
	}
	return im.sectionBytes(s)
}

// sectionBytes is section for a section header (nil: none).
func (im *image) sectionBytes(s *elf.Section) ([]byte, int) {
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil, -1
	}
	if im.m != nil && s.Flags&elf.SHF_COMPRESSED == 0 {
		if s.Offset > uint64(len(im.m)) || s.Size > uint64(len(im.m))-s.Offset {
			return nil, -1
		}
		return im.m[s.Offset : s.Offset+s.Size : s.Offset+s.Size], int(s.Offset)
	}
	if s.Size > maxImage {
		return nil, -1
	}
	b := readUpTo(s.Open(), s.Size, s.FileSize)
	return b, -1
}

// readUpTo reads exactly size bytes from r, or returns nil. The buffer
// is made for what stored bytes of that length can hold (stored: their
// length; compressed ones, 64 times as many, more than debug information
// compresses by; at most 256 MB) and grows only as r gives more: a
// damaged header (a compressed section's uncompressed size, a size past
// the file's end) does not have a few bytes ask for gigabytes at once
// (Data's way).
func readUpTo(r io.Reader, size, stored uint64) []byte {
	hint := size
	if stored < size {
		hint = min(size, 64*stored+1<<20)
	}
	hint = min(hint, 1<<28) // (a size past the end of a file not mapped)
	var buf bytes.Buffer
	buf.Grow(int(hint) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(r, int64(size))); err != nil || uint64(buf.Len()) != size {
		return nil
	}
	return buf.Bytes()
}
