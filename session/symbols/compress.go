package symbols

import (
	"bytes"
	"compress/zlib"
	"debug/elf"
	"encoding/binary"
	"strings"
	"sync"
)

// lazySection is a debug section read when first needed (its bytes); its
// size is known before.
type lazySection struct {
	size uint64 // (uncompressed)
	once sync.Once
	load func() []byte // nil once read, or for a section that is a slice of the mapping
	b    []byte
}

// bytes returns the section's contents (nil when absent or unreadable).
func (l *lazySection) bytes() []byte {
	l.once.Do(func() {
		if l.load != nil {
			l.b, l.load = l.load(), nil
		}
	})
	return l.b
}

// lazySection sets l to the section name: its bytes at once when they are
// the mapping's, else a load for its first use.
func (im *image) lazySection(name string, l *lazySection) {
	s := im.f.Section(name)
	switch {
	case s == nil:
		z := im.zdebugSection(name)
		if z == nil {
			return
		}
		raw, _ := im.sectionBytes(z)
		if len(raw) < 12 || string(raw[:4]) != "ZLIB" {
			return
		}
		l.size = binary.BigEndian.Uint64(raw[4:12])
		l.load = func() []byte { return im.zdebugBytes(z) }
	case s.Type == elf.SHT_NOBITS:
	case im.m != nil && s.Flags&elf.SHF_COMPRESSED == 0:
		l.b, _ = im.sectionBytes(s)
		l.size = uint64(len(l.b))
	default:
		l.size = s.Size // (debug/elf's: the uncompressed size)
		l.load = func() []byte { b, _ := im.sectionBytes(s); return b }
	}
}

// Compressed debug sections. Distributions ship debug information
// compressed: ELF's SHF_COMPRESSED sections (gcc -gz=zlib, objcopy
// --compress-debug-sections=zlib|zstd), which debug/elf's Section.Data
// decompresses (zlib and zstd both), and GNU's older .zdebug_* sections
// (gcc -gz=zlib-gnu), which it does not: those start with "ZLIB" and
// the uncompressed size, big-endian in eight bytes, before a zlib
// stream. A compressed section is decompressed once: the sections the
// index reads when the table finds its sections, the location lists and
// .debug_frame when first needed (lazySection); an uncompressed one stays
// a slice of the mapping.

// zdebugSection returns the GNU-compressed section standing for the
// debug section name (".debug_info" → ".zdebug_info"), or nil.
func (im *image) zdebugSection(name string) *elf.Section {
	rest, ok := strings.CutPrefix(name, ".debug_")
	if !ok {
		return nil
	}
	s := im.f.Section(".zdebug_" + rest)
	if s == nil || s.Type == elf.SHT_NOBITS || s.Flags&elf.SHF_COMPRESSED != 0 {
		return nil
	}
	return s
}

// zdebugBytes decompresses a .zdebug_* section: nil when it is damaged or
// larger than an image vmdap reads.
func (im *image) zdebugBytes(s *elf.Section) []byte {
	raw, _ := im.sectionBytes(s)
	if len(raw) < 12 || string(raw[:4]) != "ZLIB" {
		return nil
	}
	size := binary.BigEndian.Uint64(raw[4:12])
	if size > maxImage {
		return nil
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw[12:]))
	if err != nil {
		return nil
	}
	defer zr.Close()
	return readUpTo(zr, size, uint64(len(raw)))
}
