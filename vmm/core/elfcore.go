package core

import (
	"debug/elf"
	"fmt"
	"io"
)

// maxNotes bounds a dump's notes (a CPU's are well under a kilobyte).
const maxNotes = 64 << 20

// openELF reads an ELF core's layout: its PT_LOAD segments as guest-physical
// memory (and, where they say, virtual), its notes as the CPUs' state.
func openELF(r io.ReaderAt) (*dump, error) {
	f, err := elf.NewFile(r)
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
	return d, nil
}
