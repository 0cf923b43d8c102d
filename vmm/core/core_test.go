package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"vmdap/vmm"
	"vmdap/x86"
)

// A small ELF core, written here by the layout the ELF spec and the
// kernel's elfcore give (no committed binaries): tests of what the
// notes and segments say, and FuzzOpen's seeds.

// note is one ELF note's bytes.
func note(name string, typ uint32, desc []byte) []byte {
	var b bytes.Buffer
	n := append([]byte(name), 0)
	binary.Write(&b, binary.LittleEndian, [3]uint32{uint32(len(n)), uint32(len(desc)), typ})
	b.Write(n)
	b.Write(make([]byte, int(align4(uint64(len(n))))-len(n)))
	b.Write(desc)
	b.Write(make([]byte, int(align4(uint64(len(desc))))-len(desc)))
	return b.Bytes()
}

// prstatusNote is an x86-64 NT_PRSTATUS of a CPU running ring-0 code
// (CS 0x10) with registers regs.
func prstatusNote(regs x86.Regs) []byte {
	return note("CORE", ntPRStatus, x86.PRStatus(1, regs, x86.SRegs{CS: x86.Segment{Selector: 0x10}}, false))
}

// load is a PT_LOAD segment of a test core.
type load struct {
	va, pa uint64
	data   []byte
	memsz  uint64 // 0: len(data)
}

// elfCore lays out an ELF64 x86-64 core: header, program headers, the
// notes, then each segment's data.
func elfCore(notes []byte, loads ...load) []byte {
	const ehdr, phdr = 64, 56
	nph := 1 + len(loads)
	off := uint64(ehdr + phdr*nph)
	var h bytes.Buffer
	h.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0})
	h.Write(make([]byte, 8))
	binary.Write(&h, binary.LittleEndian, struct {
		Type, Machine     uint16
		Version           uint32
		Entry, Phoff, Sho uint64
		Flags             uint32
		Ehsize, Phentsize uint16
		Phnum, Shentsize  uint16
		Shnum, Shstrndx   uint16
	}{4, 62, 1, 0, ehdr, 0, 0, ehdr, phdr, uint16(nph), 64, 0, 0})
	ph := func(typ uint32, off, va, pa, filesz, memsz uint64) {
		binary.Write(&h, binary.LittleEndian, struct {
			Type, Flags                      uint32
			Off, Va, Pa, Filesz, Memsz, Algn uint64
		}{typ, 0, off, va, pa, filesz, memsz, 0})
	}
	ph(4, off, 0, 0, uint64(len(notes)), uint64(len(notes)))
	off += uint64(len(notes))
	for _, l := range loads {
		memsz := l.memsz
		if memsz == 0 {
			memsz = uint64(len(l.data))
		}
		ph(1, off, l.va, l.pa, uint64(len(l.data)), memsz)
		off += uint64(len(l.data))
	}
	h.Write(notes)
	for _, l := range loads {
		h.Write(l.data)
	}
	return h.Bytes()
}

// kdumpCore is a kdump-style core of a machine whose kernel maps its
// image (at __START_KERNEL_map + phys_base) by a 4-level page table at
// init_top_pgt: NT_PRSTATUS and VMCOREINFO, no control registers. The
// word at kernel virtual 0xffffffff81000010 is marker.
func kdumpCore(marker uint64) []byte {
	// The kernel loaded at physical phys_base = 1 MB: init_top_pgt at
	// phys_base+0x1000 (virtual __START_KERNEL_map+0x1000), a PDPT, a PD
	// and a page table after it, mapping 0xffffffff81000000 to physical
	// phys_base+0x5000.
	const physBase, va = 0x100000, 0xffffffff81000000
	mem := make([]byte, 0x8000)
	put := func(pa, v uint64) { binary.LittleEndian.PutUint64(mem[pa-physBase:], v) }
	put(physBase+0x1000+8*(va>>39&511), physBase+0x2000|3)
	put(physBase+0x2000+8*(va>>30&511), physBase+0x3000|3)
	put(physBase+0x3000+8*(va>>21&511), physBase+0x4000|3)
	put(physBase+0x4000+8*(va>>12&511), physBase+0x5000|3)
	put(physBase+0x5010, marker)
	info := "OSRELEASE=6.12.0-test\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff80001000\nNUMBER(phys_base)=1048576\nKERNELOFFSET=0\n"
	regs := x86.Regs{RIP: va + 0x10, RSP: 0xffffc90000003f00}
	notes := append(prstatusNote(regs), note("VMCOREINFO", 0, []byte(info))...)
	return elfCore(notes, load{pa: physBase, data: mem})
}

// TestKdumpTranslatesByInitTopPgt reads kernel memory of a kdump-style
// core, whose CPUs' notes have no CR3: through the kernel's own page
// table that VMCOREINFO names, at its physical address (init_top_pgt -
// __START_KERNEL_map + phys_base).
func TestKdumpTranslatesByInitTopPgt(t *testing.T) {
	d, err := openDump(bytes.NewReader(kdumpCore(0x1122334455667788)))
	if err != nil {
		t.Fatal(err)
	}
	if d.format != "kdump ELF core" || len(d.cpus) != 1 || !strings.Contains(d.pagingFrom, "init_top_pgt") {
		t.Fatalf("format %q, %d CPUs, paging by %q", d.format, len(d.cpus), d.pagingFrom)
	}
	tg := &Target{d: d}
	var b [8]byte
	if n, err := tg.ReadMemory(0, b[:], 0xffffffff81000010); err != nil || n != 8 || binary.LittleEndian.Uint64(b[:]) != 0x1122334455667788 {
		t.Fatalf("ReadMemory: %d, %v, % x", n, err, b)
	}
	var fe *vmm.FaultError
	if _, err := tg.ReadMemory(0, b[:], 0xffffffff81001000); !errors.As(err, &fe) {
		t.Errorf("ReadMemory of an unmapped page: %v, want a FaultError", err)
	}
	r, _ := tg.Regs(0)
	s, _ := tg.SRegs(0)
	if r.RIP != 0xffffffff81000010 || s.CS.Selector != 0x10 || !s.CS.L || s.CR3 != 0x101000 {
		t.Errorf("registers: rip %#x cs %#x (L %v) cr3 %#x", r.RIP, s.CS.Selector, s.CS.L, s.CR3)
	}
}

// TestUserCR3FallsBackToKernelTables reads kernel memory through a CPU
// whose CR3 maps none of it (a user page table under page table
// isolation, stopped in user mode): by the kernel's own tables, which
// VMCOREINFO names. Its user addresses stay the CPU's.
func TestUserCR3FallsBackToKernelTables(t *testing.T) {
	core := kdumpCore(0x5566)
	d, err := openDump(bytes.NewReader(core))
	if err != nil {
		t.Fatal(err)
	}
	// QEMU's view of the CPU: paging on, CR3 an empty page table (the
	// dump's page at phys_base+0x6000), in user mode.
	c := d.cpus[0]
	c.sregs.CR3, c.sregs.CS.Selector = 0x106000, 0x33
	for _, kernelOK := range []bool{true, false} {
		d.kernelOK = kernelOK
		tg := &Target{d: &dump{phys: d.phys, cpus: []cpu{c}, kernel: d.kernel, kernelOK: kernelOK}}
		var b [2]byte
		_, err := tg.ReadMemory(0, b[:], 0xffffffff81000010)
		if kernelOK && (err != nil || binary.LittleEndian.Uint16(b[:]) != 0x5566) {
			t.Errorf("kernel memory under a user CR3: %v, % x", err, b)
		}
		if !kernelOK && err == nil {
			t.Errorf("kernel memory under a user CR3 with no kernel tables known: read % x", b)
		}
		if _, err := tg.ReadMemory(0, b[:], 0x400000); err == nil {
			t.Errorf("user memory the CPU's tables do not map: read % x", b)
		}
	}
}

// TestMalformedNotes: a note that lies about its size, or a CPU's note
// too short for its registers, is an error, never a panic or a read past
// the segment.
func TestMalformedNotes(t *testing.T) {
	var regs x86.Regs
	good := prstatusNote(regs)
	for name, notes := range map[string][]byte{
		"truncated header":           good[:8],
		"name past the segment":      append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0, 0, 0}, "CORE"...),
		"data past the segment":      good[:len(good)-16],
		"huge sizes":                 {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0},
		"short NT_PRSTATUS":          note("CORE", ntPRStatus, make([]byte, 100)),
		"short QEMU CPU state":       note("QEMU", 0, make([]byte, 40)),
		"no CPU state":               note("VMCOREINFO", 0, []byte("OSRELEASE=6.12\n")),
		"a good note, then garbage":  append(append([]byte{}, good...), 1, 2, 3),
		"a good note, then too long": append(append([]byte{}, good...), note("CORE", ntPRStatus, make([]byte, 400))[:40]...),
	} {
		_, err := openDump(bytes.NewReader(elfCore(notes, load{data: make([]byte, 4096)})))
		if err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

// TestNotCores: what is not an x86-64 core dump is refused with an error
// that says so.
func TestNotCores(t *testing.T) {
	core := kdumpCore(1)
	exec := append([]byte{}, core...)
	exec[16] = 2 // ET_EXEC
	noLoad := elfCore(prstatusNote(x86.Regs{}))
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":        {nil, "first bytes"},
		"text":         {[]byte("hello, world\n"), "neither an ELF core"},
		"executable":   {exec, "not a core dump"},
		"no memory":    {noLoad, "no PT_LOAD"},
		"ELF magic":    {[]byte("\x7fELF"), "first bytes"},
		"KDUMP header": {[]byte(diskdumpMagic), "compressed kdump"},
	} {
		_, err := openDump(bytes.NewReader(c.b))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}

// diskdumpCore lays out a compressed kdump (makedumpfile's format, the
// fields openDiskdump reads) of one uncompressed page of memory with the
// given notes: header, sub-header, the two bitmaps, a page_desc, the
// page.
func diskdumpCore(notes, page []byte) []byte {
	const bs = 4096
	b := make([]byte, 5*bs)
	le := binary.LittleEndian
	copy(b, diskdumpMagic)
	le.PutUint32(b[ddHeaderVersion:], 6)
	le.PutUint32(b[ddBlockSize:], bs)
	le.PutUint32(b[ddSubHdrSize:], 1)
	le.PutUint32(b[ddBitmapBlocks:], 2)
	le.PutUint32(b[ddMaxMapnr:], 1)
	le.PutUint32(b[ddNrCPUs:], 1)
	sub := b[bs:]
	le.PutUint64(sub[subNoteOff:], uint64(len(b)))
	le.PutUint64(sub[subNoteSize:], uint64(len(notes)))
	le.PutUint64(sub[subMaxMapnr64:], 1)
	b[2*bs], b[3*bs] = 1, 1 // frame 0 exists and is dumped
	desc := b[4*bs:]
	le.PutUint64(desc, uint64(len(b)+len(notes)))
	le.PutUint32(desc[8:], bs) // stored whole: no compression flag
	return append(append(b, notes...), page...)
}

// flattened wraps a dump in makedumpfile's flattened format: its header,
// then one record of the whole dump, then the end record.
func flattened(dump []byte) []byte {
	b := make([]byte, flatHeaderLen, flatHeaderLen+16+len(dump)+16)
	copy(b, flatMagic)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(len(dump)))
	b = append(b, dump...)
	b = binary.BigEndian.AppendUint64(b, 1<<64-1)
	return binary.BigEndian.AppendUint64(b, 0)
}

// TestDiskdumpSeed reads the page of the compressed kdump FuzzOpen
// starts from, directly and flattened: the seed is a real dump.
func TestDiskdumpSeed(t *testing.T) {
	var regs x86.Regs
	page := bytes.Repeat([]byte{0x5a}, 4096)
	for name, b := range map[string][]byte{"compressed kdump": diskdumpCore(prstatusNote(regs), page),
		"flattened": flattened(diskdumpCore(prstatusNote(regs), page))} {
		d, err := openDump(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := make([]byte, 16)
		if n, err := d.phys.ReadAt(p, 0xff0); err != nil || n != 16 || !bytes.Equal(p, page[:16]) {
			t.Errorf("%s: read %d, %v, % x", name, n, err, p)
		}
		if len(d.cpus) != 1 {
			t.Errorf("%s: %d CPUs", name, len(d.cpus))
		}
	}
}

// FuzzOpen opens arbitrary bytes as a dump and, when they open, reads
// each CPU's registers and some memory: errors, never a panic or a hang.
func FuzzOpen(f *testing.F) {
	f.Add(kdumpCore(42))
	var regs x86.Regs
	f.Add(elfCore(prstatusNote(regs), load{va: 0xffff888000000000, data: make([]byte, 8192)}, load{pa: 4096, data: make([]byte, 64), memsz: 8192}))
	qemu := x86.QEMUCPUState(x86.Regs{}, x86.SRegs{})
	f.Add(elfCore(note("QEMU", 0, qemu), load{data: make([]byte, 4096)}))
	f.Add(diskdumpCore(prstatusNote(regs), make([]byte, 4096)))
	f.Add(flattened(diskdumpCore(note("QEMU", 0, qemu), make([]byte, 4096))))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := openDump(bytes.NewReader(b))
		if err != nil {
			return
		}
		tg := &Target{d: d}
		p := make([]byte, 64)
		for v := 0; v < min(tg.VCPUs(), 4); v++ {
			r, _ := tg.Regs(v)
			for _, a := range []uint64{r.RIP, r.RSP, 0xffffffff81000000, 0, 1<<64 - 32} {
				tg.ReadMemory(v, p, a)
			}
		}
		tg.DumpInfo()
		if pm, ok := tg.PhysicalMemory(); ok {
			pm.ReadPhysical(p, 0xff0)
		}
	})
}
