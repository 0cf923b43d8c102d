package symbols

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Relocatable images: a Linux kernel module (.ko) is an ELF relocatable
// file whose sections the kernel places one by one at run time, and whose
// DWARF holds section offsets that relocations (.rela.debug_*) turn into
// addresses. LoadRelocated places each named section at its run-time
// address, as gdb's add-symbol-file -s does: relocations are applied to
// the debug sections, symbols take their section's address, and the
// result is read like any linked image. Sections not named are not
// loaded: their symbols are dropped.

// maxRelocatable bounds the size of a relocatable file.
const maxRelocatable = 1 << 30

// LoadRelocated opens an ELF relocatable file (a kernel module) with its
// sections at the run-time addresses in sections (by section name). The
// relocated image is written to an unlinked file (in the user's cache
// folder, else the temporary one) and mapped, as Load maps an image: a
// session with dozens of modules' debug files (tens of megabytes each)
// holds them as page cache the system can reclaim, not as heap.
func LoadRelocated(path string, sections map[string]uint64, opts ...Option) (*Table, error) {
	// A relocated image's index depends on where its sections are: it is
	// not kept under its build ID.
	opts = append(opts, WithIndexCache(""))
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
	if st.Size() > maxRelocatable {
		return nil, fmt.Errorf("%s: %d bytes is too large for a relocatable file", path, st.Size())
	}
	b, mapped := mapFile(f, st.Size())
	if mapped {
		defer unmapFile(b)
	} else if b, err = io.ReadAll(io.LimitReader(f, maxRelocatable)); err != nil {
		return nil, err
	}
	out, err := scratchFile()
	if err != nil {
		img, err := Relocate(b, sections) // no file to write: in memory
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return newRelocatedTable(path, bytes.NewReader(img), opts)
	}
	if _, err := out.Write(b); err != nil {
		out.Close()
		return nil, fmt.Errorf("%s: writing its relocated copy: %w", path, err)
	}
	var w relocOut = fileOut{out}
	if m, ok := mapFileWritable(out, int64(len(b))); ok {
		w = mappedOut{out, m} // relocated in place, no copies
		defer unmapFile(m)
	}
	if err := relocate(b, sections, w, int64(len(b))); err != nil {
		out.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	img, err := mapImage(out, path)
	if err == errNotMapped {
		// Read through the file, which stays open while the table is.
		t, err := newRelocatedTable(path, out, opts)
		if err != nil {
			out.Close()
			return nil, err
		}
		runtime.AddCleanup(t, func(f *os.File) { f.Close() }, out)
		return t, nil
	}
	out.Close()
	if err != nil {
		return nil, err
	}
	t, err := newTable(path, img, img, opts)
	if err != nil {
		img.release()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func newRelocatedTable(path string, r io.ReaderAt, opts []Option) (*Table, error) {
	t, err := New(r, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// scratchFile creates an unlinked read-write file in the user's cache
// folder (usually on disk), else in the temporary folder (often memory).
func scratchFile() (*os.File, error) {
	var dirs []string
	if d, err := os.UserCacheDir(); err == nil {
		d = filepath.Join(d, "vmdap")
		if os.MkdirAll(d, 0o700) == nil {
			dirs = append(dirs, d)
		}
	}
	var err error
	for _, d := range append(dirs, os.TempDir()) {
		var f *os.File
		if f, err = os.CreateTemp(d, "module-*.o"); err == nil {
			os.Remove(f.Name()) // the open file and its mapping keep it
			return f, nil
		}
	}
	return nil, err
}

// Relocate returns a copy of the ELF64 x86-64 relocatable file b with its
// sections placed at the addresses in sections: section headers carry
// their addresses, defined symbols their run-time values (symbols of
// sections not placed become undefined), and the relocations of the
// debug sections are applied (a compressed debug section is stored
// decompressed).
func Relocate(b []byte, sections map[string]uint64) ([]byte, error) {
	out := &growBuf{b: append([]byte(nil), b...)}
	if err := relocate(b, sections, out, int64(len(b))); err != nil {
		return nil, err
	}
	return out.b, nil
}

// relocOut is where relocate writes: a copy of the file, written at
// offsets, whose bytes may be open to change in place (nil: they are
// not, write them).
type relocOut interface {
	io.WriterAt
	inPlace(off, n uint64) []byte
}

// growBuf is an in-memory copy that grows as it is written.
type growBuf struct{ b []byte }

func (g *growBuf) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(g.b)) {
		g.b = append(g.b, make([]byte, end-int64(len(g.b)))...)
	}
	return copy(g.b[off:], p), nil
}

func (g *growBuf) inPlace(off, n uint64) []byte { return window(g.b, off, n) }

// fileOut is a file written with pwrite.
type fileOut struct{ *os.File }

func (fileOut) inPlace(off, n uint64) []byte { return nil }

// mappedOut is a file with a writable mapping of its first bytes.
type mappedOut struct {
	*os.File
	m []byte
}

func (o mappedOut) inPlace(off, n uint64) []byte { return window(o.m, off, n) }

// window is b[off:off+n], or nil when that is outside b.
func window(b []byte, off, n uint64) []byte {
	if off > uint64(len(b)) || n > uint64(len(b))-off {
		return nil
	}
	return b[off : off+n : off+n]
}

// relocate writes into out, which holds a copy of b (size bytes), what
// Relocate changes: section addresses, symbol values, and the relocated
// debug sections (in place, or appended when their size changes).
func relocate(b []byte, sections map[string]uint64, out relocOut, size int64) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not an ELF file: %w", err)
	}
	if f.Type != elf.ET_REL {
		return fmt.Errorf("not a relocatable ELF file (%s)", f.Type)
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("relocation is implemented for little-endian ELF64 x86-64 only, not %s %s %s", f.Class, f.Data, f.Machine)
	}
	le := binary.LittleEndian
	shoff, shentsize := le.Uint64(b[0x28:]), uint64(le.Uint16(b[0x3a:]))
	if shentsize < 64 || shoff > uint64(len(b)) || uint64(len(f.Sections))*shentsize > uint64(len(b))-shoff {
		return fmt.Errorf("bad section header table")
	}
	var werr error
	put64 := func(off, v uint64) {
		var w [8]byte
		le.PutUint64(w[:], v)
		if _, err := out.WriteAt(w[:], int64(off)); err != nil && werr == nil {
			werr = err
		}
	}
	put16 := func(off uint64, v uint16) {
		var w [2]byte
		le.PutUint16(w[:], v)
		if _, err := out.WriteAt(w[:], int64(off)); err != nil && werr == nil {
			werr = err
		}
	}
	addr := make([]uint64, len(f.Sections))
	placed := make([]bool, len(f.Sections))
	for i, s := range f.Sections {
		a, ok := sections[s.Name]
		if !ok || s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		addr[i], placed[i] = a, true
		put64(shoff+uint64(i)*shentsize+16, a) // sh_addr
	}
	// Symbols: run-time values, or undefined where their section is not
	// loaded.
	syms, err := symtab(f, b)
	if err != nil {
		return err
	}
	if st := f.SectionByType(elf.SHT_SYMTAB); st != nil && syms != nil {
		for i := range syms.n {
			off := st.Offset + uint64(i)*24
			shndx := elf.SectionIndex(le.Uint16(b[off+6:]))
			if shndx == elf.SHN_UNDEF || shndx >= elf.SHN_LORESERVE || int(shndx) >= len(f.Sections) {
				continue
			}
			if !placed[shndx] {
				if f.Sections[shndx].Flags&elf.SHF_ALLOC != 0 {
					put16(off+6, uint16(elf.SHN_UNDEF))
				}
				continue
			}
			put64(off+8, le.Uint64(b[off+8:])+addr[shndx])
		}
	}
	// The debug sections' relocations.
	for _, rs := range f.Sections {
		if rs.Type != elf.SHT_RELA || int(rs.Info) >= len(f.Sections) || int(rs.Info) == 0 {
			continue
		}
		ti := int(rs.Info)
		target := f.Sections[ti]
		if !strings.HasPrefix(target.Name, ".debug_") && target.Name != ".eh_frame" {
			continue
		}
		rel := window(b, rs.Offset, rs.FileSize)
		if rel == nil || rs.Flags&elf.SHF_COMPRESSED != 0 {
			if rel, err = rs.Data(); err != nil {
				return fmt.Errorf("section %s: %w", rs.Name, err)
			}
		}
		plain := target.Flags&elf.SHF_COMPRESSED == 0 && target.Type != elf.SHT_NOBITS
		if data := out.inPlace(target.Offset, target.FileSize); plain && data != nil {
			if err := applyRela(data, rel, target.Name, addr[ti], syms, f.Sections, addr); err != nil {
				return err
			}
			continue
		}
		data, err := target.Data()
		if err != nil {
			return fmt.Errorf("section %s: %w", target.Name, err)
		}
		data = append([]byte(nil), data...)
		if err := applyRela(data, rel, target.Name, addr[ti], syms, f.Sections, addr); err != nil {
			return err
		}
		hdr := shoff + uint64(ti)*shentsize
		if plain && uint64(len(data)) == target.FileSize {
			if _, err := out.WriteAt(data, int64(target.Offset)); err != nil {
				return err
			}
			continue
		}
		// Stored decompressed at the end of the file.
		size = (size + 7) &^ 7
		put64(hdr+8, uint64(target.Flags&^elf.SHF_COMPRESSED)) // sh_flags
		put64(hdr+24, uint64(size))                            // sh_offset
		put64(hdr+32, uint64(len(data)))                       // sh_size
		if _, err := out.WriteAt(data, size); err != nil {
			return err
		}
		size += int64(len(data))
	}
	return werr
}

// rawSyms is the raw symbol table of a relocatable file: each symbol's
// section index and value, by symbol number.
type rawSyms struct {
	n     int
	shndx []elf.SectionIndex
	value []uint64
}

func symtab(f *elf.File, b []byte) (*rawSyms, error) {
	st := f.SectionByType(elf.SHT_SYMTAB)
	if st == nil {
		return nil, nil
	}
	if st.Offset > uint64(len(b)) || st.Size > uint64(len(b))-st.Offset || st.Size%24 != 0 {
		return nil, fmt.Errorf("bad symbol table")
	}
	n := int(st.Size / 24)
	r := &rawSyms{n: n, shndx: make([]elf.SectionIndex, n), value: make([]uint64, n)}
	for i := range n {
		e := b[st.Offset+uint64(i)*24:]
		r.shndx[i] = elf.SectionIndex(binary.LittleEndian.Uint16(e[6:]))
		r.value[i] = binary.LittleEndian.Uint64(e[8:])
	}
	return r, nil
}

// applyRela applies RELA entries to a section's data placed at base.
func applyRela(data, rel []byte, name string, base uint64, syms *rawSyms, secs []*elf.Section, addr []uint64) error {
	le := binary.LittleEndian
	for len(rel) >= 24 {
		off, info, add := le.Uint64(rel), le.Uint64(rel[8:]), int64(le.Uint64(rel[16:]))
		rel = rel[24:]
		typ, si := elf.R_X86_64(info&0xffffffff), int(info>>32)
		var s uint64
		if si != 0 {
			if syms == nil || si >= syms.n {
				return fmt.Errorf("%s: relocation against symbol %d of %d", name, si, symCount(syms))
			}
			switch shndx := syms.shndx[si]; {
			case shndx == elf.SHN_ABS:
				s = syms.value[si]
			case shndx == elf.SHN_UNDEF || shndx >= elf.SHN_LORESERVE || int(shndx) >= len(secs):
				s = 0
			default:
				s = syms.value[si] + addr[shndx]
			}
		}
		v := s + uint64(add)
		switch typ {
		case elf.R_X86_64_NONE:
		case elf.R_X86_64_64:
			if off > uint64(len(data)) || 8 > uint64(len(data))-off {
				return fmt.Errorf("%s: relocation at %#x outside the section", name, off)
			}
			le.PutUint64(data[off:], v)
		case elf.R_X86_64_32, elf.R_X86_64_32S, elf.R_X86_64_PC32:
			if off > uint64(len(data)) || 4 > uint64(len(data))-off {
				return fmt.Errorf("%s: relocation at %#x outside the section", name, off)
			}
			if typ == elf.R_X86_64_PC32 {
				v -= base + off
			}
			le.PutUint32(data[off:], uint32(v))
		default:
			return fmt.Errorf("%s: relocation type %s is not supported", name, typ)
		}
	}
	return nil
}

func symCount(s *rawSyms) int {
	if s == nil {
		return 0
	}
	return s.n
}
