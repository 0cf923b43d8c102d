package core

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
)

// maxNotes bounds a dump's notes (a CPU's are well under a kilobyte).
const maxNotes = 64 << 20

// openELF reads an ELF core's layout: its PT_LOAD segments as guest-physical
// memory (and, where they say, virtual), its notes as the CPUs' state.
func openELF(r io.ReaderAt) (*dump, error) {
	size, sized := fileSize(r)
	f, err := elf.NewFile(r)
	if err != nil {
		// QEMU writes its section names last: a file cut short lost
		// them, which vmdap does not use.
		if g, err2 := elf.NewFile(noSectionNames{r}); err2 == nil {
			f, err = g, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("not an ELF core file: %w", err)
	}
	if f.Type != elf.ET_CORE {
		return nil, fmt.Errorf("an ELF file of type %s, not a core dump (ET_CORE)", f.Type)
	}
	// QEMU writes an i386 machine (qemu-system-i386, or a CPU not in
	// long mode) as EM_386, in an ELF64 core when RAM or ROM reaches
	// 4 GiB (the BIOS ends there), else in an ELF32 one.
	if f.Machine != elf.EM_X86_64 && f.Machine != elf.EM_386 {
		return nil, fmt.Errorf("an ELF core of %s %s: vmdap reads x86 dumps (EM_X86_64, EM_386)", f.Class, f.Machine)
	}
	d := &dump{format: "ELF core"}
	var run []extent
	n := notes{longMode: f.Machine == elf.EM_X86_64}
	noteBytes := 0
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			if p.Paddr+p.Memsz < p.Paddr || p.Off+p.Filesz < p.Off {
				return nil, fmt.Errorf("a PT_LOAD segment at physical %#x of %d bytes (%d at file offset %#x) runs past the end of the address space", p.Paddr, p.Memsz, p.Filesz, p.Off)
			}
			if p.Filesz > p.Memsz {
				return nil, fmt.Errorf("a PT_LOAD segment at physical %#x stores %d bytes in %d", p.Paddr, p.Filesz, p.Memsz)
			}
			run = append(run, extent{pa: p.Paddr, memSize: p.Memsz, off: p.Off, fileSize: p.Filesz})
			if p.Vaddr != 0 {
				d.virt = append(d.virt, vseg{va: p.Vaddr, pa: p.Paddr, size: p.Memsz})
			}
		case elf.PT_NOTE:
			if sized && p.Off+p.Filesz > size {
				return nil, fmt.Errorf("the file is truncated: it has %d bytes, and its notes (the CPUs' registers) end at %d", size, p.Off+p.Filesz)
			}
			noteBytes += int(min(p.Filesz, maxNotes+1))
			if noteBytes > maxNotes {
				return nil, fmt.Errorf("the dump's notes are larger than %d bytes", maxNotes)
			}
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return nil, fmt.Errorf("reading the dump's notes: %w", err)
			}
			if err := parseNotes(b, &n); err != nil {
				return nil, err
			}
		}
	}
	if len(run) == 0 {
		return nil, fmt.Errorf("the core file has no memory (no PT_LOAD segment)")
	}
	var need uint64
	for i := range run {
		e := &run[i]
		need = max(need, e.off+e.fileSize)
		if sized && e.fileSize > 0 && e.off+e.fileSize > size {
			e.fileSize = uint64(max(0, int64(size)-int64(e.off)))
			e.truncatedAt = size
		}
	}
	if len(n.qemu) > 0 {
		// QEMU stores every RAM block whole: a segment with less in the
		// file than in memory is one its paging dump clamped, not zeros.
		for i := range run {
			run[i].unstoredTail = true
		}
	}
	d.phys = newExtents(r, run)
	if err := d.setCPUs(n); err != nil {
		return nil, err
	}
	switch {
	case len(n.qemu) > 0:
		d.format = "QEMU dump-guest-memory ELF core"
	case n.info != nil:
		d.format = "kdump ELF core"
	}
	if sized && need > size {
		d.format += fmt.Sprintf(", truncated: the file has %d of the %d bytes its segments need, the memory past its end is not in the dump", size, need)
	}
	return d, nil
}

// fileSize returns the size of the file r reads, when it is one.
func fileSize(r io.ReaderAt) (uint64, bool) {
	st, ok := r.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return 0, false
	}
	fi, err := st.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return uint64(fi.Size()), true
}

// noSectionNames reads an ELF file as one without a section name table
// (e_shstrndx SHN_UNDEF): debug/elf reads the table, which a core cut
// short may have lost, and a core's layout is in its program headers.
type noSectionNames struct{ r io.ReaderAt }

func (n noSectionNames) ReadAt(p []byte, off int64) (int, error) {
	c, err := n.r.ReadAt(p, off)
	var at int64 = 62 // ELF64's e_shstrndx
	var id [5]byte
	if _, err := n.r.ReadAt(id[:], 0); err == nil && elf.Class(id[4]) == elf.ELFCLASS32 {
		at = 50
	}
	for i := at; i < at+2; i++ {
		if i >= off && i < off+int64(c) {
			p[i-off] = 0
		}
	}
	return c, err
}
