package symbols

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
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

// maxRelocatable bounds the size of a relocatable file read whole.
const maxRelocatable = 256 << 20

// LoadRelocated opens an ELF relocatable file (a kernel module) with its
// sections at the run-time addresses in sections (by section name).
func LoadRelocated(path string, sections map[string]uint64, opts ...Option) (*Table, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fileKind(st.Mode()))
	}
	if st.Size() > maxRelocatable {
		return nil, fmt.Errorf("%s: %d bytes is too large for a relocatable file", path, st.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	img, err := Relocate(b, sections)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t, err := New(bytes.NewReader(img), opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// Relocate returns a copy of the ELF64 x86-64 relocatable file b with its
// sections placed at the addresses in sections: section headers carry
// their addresses, defined symbols their run-time values (symbols of
// sections not placed become undefined), and the relocations of the
// debug sections are applied (a compressed debug section is stored
// decompressed).
func Relocate(b []byte, sections map[string]uint64) ([]byte, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not an ELF file: %w", err)
	}
	if f.Type != elf.ET_REL {
		return nil, fmt.Errorf("not a relocatable ELF file (%s)", f.Type)
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("relocation is implemented for little-endian ELF64 x86-64 only, not %s %s %s", f.Class, f.Data, f.Machine)
	}
	out := append([]byte(nil), b...)
	le := binary.LittleEndian
	shoff, shentsize := le.Uint64(b[0x28:]), uint64(le.Uint16(b[0x3a:]))
	if shentsize < 64 || shoff > uint64(len(b)) || uint64(len(f.Sections))*shentsize > uint64(len(b))-shoff {
		return nil, fmt.Errorf("bad section header table")
	}
	addr := make([]uint64, len(f.Sections))
	placed := make([]bool, len(f.Sections))
	for i, s := range f.Sections {
		a, ok := sections[s.Name]
		if !ok || s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		addr[i], placed[i] = a, true
		le.PutUint64(out[shoff+uint64(i)*shentsize+16:], a) // sh_addr
	}
	// Symbols: run-time values, or undefined where their section is not
	// loaded.
	syms, err := symtab(f, b)
	if err != nil {
		return nil, err
	}
	if st := f.SectionByType(elf.SHT_SYMTAB); st != nil && syms != nil {
		for i := range syms.n {
			off := st.Offset + uint64(i)*24
			shndx := elf.SectionIndex(le.Uint16(out[off+6:]))
			if shndx == elf.SHN_UNDEF || shndx >= elf.SHN_LORESERVE || int(shndx) >= len(f.Sections) {
				continue
			}
			if !placed[shndx] {
				if f.Sections[shndx].Flags&elf.SHF_ALLOC != 0 {
					le.PutUint16(out[off+6:], uint16(elf.SHN_UNDEF))
				}
				continue
			}
			le.PutUint64(out[off+8:], le.Uint64(out[off+8:])+addr[shndx])
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
		data, err := target.Data()
		if err != nil {
			return nil, fmt.Errorf("section %s: %w", target.Name, err)
		}
		data = append([]byte(nil), data...)
		rel, err := rs.Data()
		if err != nil {
			return nil, fmt.Errorf("section %s: %w", rs.Name, err)
		}
		if err := applyRela(data, rel, target.Name, addr[ti], syms, f.Sections, addr); err != nil {
			return nil, err
		}
		hdr := shoff + uint64(ti)*shentsize
		if target.Flags&elf.SHF_COMPRESSED == 0 && uint64(len(data)) == target.FileSize {
			copy(out[target.Offset:], data)
			continue
		}
		// Stored decompressed at the end of the file.
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
		le.PutUint64(out[hdr+8:], uint64(target.Flags&^elf.SHF_COMPRESSED)) // sh_flags
		le.PutUint64(out[hdr+24:], uint64(len(out)))                        // sh_offset
		le.PutUint64(out[hdr+32:], uint64(len(data)))                       // sh_size
		out = append(out, data...)
	}
	return out, nil
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
