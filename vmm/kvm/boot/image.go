package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Protocol is a boot protocol.
type Protocol string

const (
	ProtoAuto       Protocol = "auto"
	ProtoELF64      Protocol = "elf64"
	ProtoMultiboot  Protocol = "multiboot"
	ProtoMultiboot2 Protocol = "multiboot2"
	ProtoPVH        Protocol = "pvh"
	// ProtoLinux is the Linux/x86 boot protocol of a bzImage (linux.go).
	ProtoLinux Protocol = "linux"
)

// What Parse looks for, for its errors.
const (
	lookedForPVH   = "a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) in a PT_NOTE segment"
	lookedForMB1   = "a Multiboot 1 header (magic 0x1badb002, 4-byte aligned) in the first 8 KiB"
	lookedForMB2   = "a Multiboot 2 header (magic 0xe85250d6, 8-byte aligned) in the first 32 KiB"
	lookedForLinux = "a Linux bzImage setup header (0xaa55 at 0x1fe, \"HdrS\" at 0x202)"
)

// Segment is one piece of the image to copy into guest-physical memory.
type Segment struct {
	Phys    uint64 // destination guest-physical address
	Virt    uint64 // the ELF virtual address (== Phys unless linked high)
	Data    []byte // file bytes
	MemSize uint64 // ≥ len(Data); the rest is zeroed (bss)
}

// Range is a guest-physical address range.
type Range struct {
	Phys, Size uint64
}

// Image is a parsed guest kernel.
type Image struct {
	Protocol Protocol
	Entry    uint64 // physical (32-bit protocols) or virtual (elf64) entry
	Segments []Segment
	// Code is where the image's code went (guest-physical): its
	// executable sections, or its executable segments in an ELF file
	// without section headers. Empty when the format does not say (a
	// Multiboot a.out-kludge file, a bzImage).
	Code []Range
	// Class is 32 or 64 (the ELF class), 0 for a Multiboot a.out-kludge file.
	Class int
	// Linux describes a bzImage (ProtoLinux).
	Linux *LinuxKernel
	// GuestOS is the ELF file's XEN_ELFNOTE_GUEST_OS ("linux" for a
	// vmlinux), "" when absent.
	GuestOS string
}

// IsLinux reports whether the image is a Linux kernel: a bzImage, or an ELF
// whose Xen note names Linux.
func (img *Image) IsLinux() bool { return img.Linux != nil || img.GuestOS == "linux" }

// FormatError says the file is not a kernel vmdap can boot, and why.
type FormatError struct {
	Msg string
}

func (e *FormatError) Error() string { return "guest image: " + e.Msg }

func formatErr(format string, args ...any) error {
	return &FormatError{Msg: fmt.Sprintf(format, args...)}
}

// Parse reads a kernel file and picks its boot protocol. want may force a
// protocol ("" or ProtoAuto to choose).
func Parse(data []byte, want Protocol) (*Image, error) {
	if want == "" {
		want = ProtoAuto
	}
	switch want {
	case ProtoAuto, ProtoELF64, ProtoMultiboot, ProtoMultiboot2, ProtoPVH, ProtoLinux:
	default:
		return nil, formatErr("unknown boot protocol %q (want auto, elf64, multiboot, multiboot2, pvh or linux)", want)
	}
	if len(data) == 0 {
		return nil, formatErr("the file is empty")
	}
	isELF := len(data) >= 4 && bytes.Equal(data[:4], []byte(elf.ELFMAG))
	if want == ProtoLinux || (want == ProtoAuto && !isELF && isBzImage(data)) {
		if isELF {
			return nil, formatErr(`boot protocol linux requested but the file is an ELF file, not a bzImage (no "HdrS" at 0x202): boot a vmlinux with "pvh"`)
		}
		return parseBzImage(data)
	}
	mbh, mbErr := findMultiboot(data)
	mb2, mb2Err := findMultiboot2(data)

	if !isELF {
		// Only a Multiboot file with load addresses (Multiboot 1's a.out
		// kludge, Multiboot 2's address tag) can be a non-ELF kernel.
		if mbh != nil && mbh.flags&mbAoutKludge != 0 && (want == ProtoAuto || want == ProtoMultiboot) {
			return mbh.kludgeImage(data)
		}
		if mb2 != nil && mb2.hasAddr && (want == ProtoAuto || want == ProtoMultiboot2) {
			return mb2.addressImage(data)
		}
		for _, err := range []error{mbErr, mb2Err} {
			if err != nil {
				return nil, err
			}
		}
		if isBzImage(data) {
			return nil, formatErr("boot protocol %s requested but the file is a Linux bzImage: boot it with \"linux\" (or \"auto\")", want)
		}
		// Never quote the file's bytes: it may be any file the user can read.
		return nil, formatErr("not an ELF file (no \"\\x7fELF\" magic), and no kernel vmdap can boot without one: looked for an ELF header, %s, %s with the a.out-kludge flag and %s with an address tag; found none",
			lookedForLinux, lookedForMB1, lookedForMB2)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, formatErr("malformed or truncated ELF file: %v", err)
	}
	class := 64
	switch {
	case f.Class == elf.ELFCLASS64 && f.Machine == elf.EM_X86_64:
	case f.Class == elf.ELFCLASS32 && (f.Machine == elf.EM_386 || f.Machine == elf.EM_X86_64):
		class = 32
	default:
		return nil, formatErr("wrong architecture: %s %s (vmdap boots x86-64 guests: ELF64 x86-64, or a 32-bit ELF with a Multiboot header or PVH note)", f.Class, f.Machine)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, formatErr("ELF type %s is not an executable", f.Type)
	}
	segs, err := elfSegments(f, data)
	if err != nil {
		return nil, err
	}
	pvhEntry, hasPVH, err := findPVHNote(f)
	if err != nil {
		return nil, err
	}
	img := &Image{Segments: segs, Code: elfCode(f), Class: class, GuestOS: xenGuestOS(f)}
	switch {
	case (want == ProtoAuto || want == ProtoPVH) && hasPVH:
		img.Protocol, img.Entry = ProtoPVH, pvhEntry
	case (want == ProtoAuto || want == ProtoMultiboot) && mbh != nil:
		img.Protocol = ProtoMultiboot
		if mbh.flags&mbAoutKludge != 0 {
			return mbh.kludgeImage(data)
		}
		img.Entry = physEntry(f.Entry, segs)
	case (want == ProtoAuto || want == ProtoMultiboot2) && mb2 != nil:
		if mb2.hasAddr {
			return mb2.addressImage(data)
		}
		img.Protocol = ProtoMultiboot2
		img.Entry = physEntry(f.Entry, segs)
		if mb2.hasEntry {
			img.Entry = uint64(mb2.entry)
		}
	case want == ProtoAuto && (mbErr != nil || mb2Err != nil):
		// A kernel that carries a header vmdap cannot honour would start
		// at the wrong entry, in the wrong mode, as a plain ELF64.
		if mbErr != nil {
			return nil, mbErr
		}
		return nil, mb2Err
	case want == ProtoAuto || want == ProtoELF64:
		if class != 64 {
			return nil, formatErr("a 32-bit ELF file boots through PVH, Multiboot 1 or Multiboot 2: looked for %s, %s and %s; found none",
				lookedForPVH, lookedForMB1, lookedForMB2)
		}
		img.Protocol, img.Entry = ProtoELF64, f.Entry
	case want == ProtoPVH:
		return nil, formatErr("boot protocol pvh requested, but the ELF file has no PVH entry note: looked for %s", lookedForPVH)
	case want == ProtoMultiboot:
		if mbErr != nil {
			return nil, mbErr
		}
		return nil, formatErr("boot protocol multiboot requested, but there is no Multiboot 1 header: looked for %s", lookedForMB1)
	case want == ProtoMultiboot2:
		if mb2Err != nil {
			return nil, mb2Err
		}
		return nil, formatErr("boot protocol multiboot2 requested, but there is no Multiboot 2 header: looked for %s", lookedForMB2)
	}
	if img.Protocol != ProtoELF64 && img.Entry >= 1<<32 {
		return nil, formatErr("%s entry point %#x is above 4 GiB", img.Protocol, img.Entry)
	}
	return img, nil
}

// physEntry converts a virtual entry point to physical using the segment
// that contains it (for kernels linked high with 32-bit entry protocols).
func physEntry(entry uint64, segs []Segment) uint64 {
	for _, s := range segs {
		if entry >= s.Virt && entry < s.Virt+s.MemSize {
			return entry - s.Virt + s.Phys
		}
	}
	return entry
}

// elfCode finds where the code of an ELF file goes: its allocated
// executable sections (a segment that is writable as well as executable
// holds data too), placed as their PT_LOAD segment places them; without
// section headers, its executable PT_LOAD segments.
func elfCode(f *elf.File) []Range {
	var out []Range
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X == 0 || p.Memsz == 0 {
			continue
		}
		found := false
		for _, s := range f.Sections {
			const want = elf.SHF_ALLOC | elf.SHF_EXECINSTR
			if s.Flags&want != want || s.Size == 0 || s.Addr < p.Vaddr || s.Addr-p.Vaddr >= p.Memsz {
				continue
			}
			size := min(s.Size, p.Memsz-(s.Addr-p.Vaddr))
			out = append(out, Range{Phys: p.Paddr + (s.Addr - p.Vaddr), Size: size})
			found = true
		}
		if !found && len(f.Sections) <= 1 { // no section headers (only the null section, if any)
			out = append(out, Range{Phys: p.Paddr, Size: p.Memsz})
		}
	}
	return out
}

func elfSegments(f *elf.File, data []byte) ([]Segment, error) {
	var segs []Segment
	for i, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		if p.Filesz > p.Memsz {
			return nil, formatErr("segment %d: file size %#x larger than memory size %#x", i, p.Filesz, p.Memsz)
		}
		end := p.Off + p.Filesz
		if end < p.Off || end > uint64(len(data)) {
			return nil, formatErr("truncated file: segment %d needs bytes %#x-%#x but the file has %#x", i, p.Off, end, len(data))
		}
		if p.Paddr+p.Memsz < p.Paddr {
			return nil, formatErr("segment %d wraps around the address space", i)
		}
		segs = append(segs, Segment{Phys: p.Paddr, Virt: p.Vaddr, Data: data[p.Off:end], MemSize: p.Memsz})
	}
	if len(segs) == 0 {
		return nil, formatErr("no loadable (PT_LOAD) segments")
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Phys < segs[j].Phys })
	for i := 1; i < len(segs); i++ {
		a, b := segs[i-1], segs[i]
		if a.Phys+a.MemSize > b.Phys {
			return nil, formatErr("segments overlap: [%#x,%#x) and [%#x,%#x)", a.Phys, a.Phys+a.MemSize, b.Phys, b.Phys+b.MemSize)
		}
	}
	return segs, nil
}

// XEN_ELFNOTE_PHYS32_ENTRY (xen/include/public/elfnote.h).
const xenElfnotePhys32Entry = 18

func findPVHNote(f *elf.File) (uint64, bool, error) {
	var (
		entry uint64
		found bool
		bad   error
	)
	err := xenNotes(f, func(typ uint32, desc []byte) bool {
		if typ != xenElfnotePhys32Entry {
			return true
		}
		switch len(desc) {
		case 4:
			entry, found = uint64(f.ByteOrder.Uint32(desc)), true
		case 8:
			entry, found = f.ByteOrder.Uint64(desc), true
		default:
			bad = formatErr("PVH entry note has a %d-byte value", len(desc))
		}
		return false
	})
	if err != nil {
		return 0, false, err
	}
	return entry, found, bad
}

// XEN_ELFNOTE_GUEST_OS (xen/include/public/elfnote.h).
const xenElfnoteGuestOS = 6

// xenGuestOS returns the XEN_ELFNOTE_GUEST_OS string, "" when absent.
func xenGuestOS(f *elf.File) string {
	var os string
	_ = xenNotes(f, func(typ uint32, desc []byte) bool {
		if typ == xenElfnoteGuestOS {
			os = string(bytes.TrimRight(desc, "\x00"))
			return false
		}
		return true
	})
	return os
}

// xenNotes calls fn with the type and descriptor of each "Xen" ELF note in
// the PT_NOTE segments, until fn returns false. A note that runs past its
// segment ends the walk of that segment.
func xenNotes(f *elf.File, fn func(typ uint32, desc []byte) bool) error {
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return formatErr("reading PT_NOTE: %v", err)
		}
		for len(b) >= 12 {
			nameSz := uint64(f.ByteOrder.Uint32(b[0:]))
			descSz := uint64(f.ByteOrder.Uint32(b[4:]))
			typ := f.ByteOrder.Uint32(b[8:])
			nameEnd := 12 + align4(nameSz) // in 64 bits: sizes near 4 GiB must not wrap
			descEnd := nameEnd + align4(descSz)
			if descEnd > uint64(len(b)) {
				return formatErr("PT_NOTE: a note of %d name and %d description bytes overruns its segment (%d bytes)", nameSz, descSz, len(b))
			}
			name := string(bytes.TrimRight(b[12:12+uint64(nameSz)], "\x00"))
			if name == "Xen" && !fn(typ, b[nameEnd:nameEnd+uint64(descSz)]) {
				return nil
			}
			b = b[descEnd:]
		}
	}
	return nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// Multiboot 1 header (Multiboot Specification 0.6.96 §3.1.1).
const (
	mbMagic       = 0x1BADB002
	mbAoutKludge  = 1 << 16
	mbSearchLimit = 8192
	// BootloaderMagic is what a Multiboot kernel finds in EAX.
	MultibootBootloaderMagic = 0x2BADB002
)

type mbHeader struct {
	off                                          int
	flags                                        uint32
	headerAddr, loadAddr, loadEnd, bssEnd, entry uint32
}

func findMultiboot(data []byte) (*mbHeader, error) {
	limit := len(data)
	if limit > mbSearchLimit {
		limit = mbSearchLimit
	}
	for off := 0; off+12 <= limit; off += 4 {
		if binary.LittleEndian.Uint32(data[off:]) != mbMagic {
			continue
		}
		flags := binary.LittleEndian.Uint32(data[off+4:])
		sum := binary.LittleEndian.Uint32(data[off+8:])
		if mbMagic+flags+sum != 0 {
			return nil, formatErr("Multiboot header at offset %#x has a bad checksum", off)
		}
		h := &mbHeader{off: off, flags: flags}
		if flags&mbAoutKludge != 0 {
			if off+32 > len(data) {
				return nil, formatErr("truncated Multiboot header at offset %#x", off)
			}
			w := func(i int) uint32 { return binary.LittleEndian.Uint32(data[off+12+4*i:]) }
			h.headerAddr, h.loadAddr, h.loadEnd, h.bssEnd, h.entry = w(0), w(1), w(2), w(3), w(4)
		}
		return h, nil
	}
	return nil, nil
}

func (h *mbHeader) kludgeImage(data []byte) (*Image, error) {
	if h.headerAddr < h.loadAddr {
		return nil, formatErr("Multiboot header_addr %#x below load_addr %#x", h.headerAddr, h.loadAddr)
	}
	start := h.off - int(h.headerAddr-h.loadAddr)
	if start < 0 {
		return nil, formatErr("Multiboot load_addr places the file start before offset 0")
	}
	end := len(data)
	if h.loadEnd != 0 {
		if h.loadEnd < h.loadAddr {
			return nil, formatErr("Multiboot load_end_addr %#x below load_addr %#x", h.loadEnd, h.loadAddr)
		}
		end = start + int(h.loadEnd-h.loadAddr)
	}
	if end > len(data) {
		return nil, formatErr("truncated file: Multiboot header wants %#x bytes, the file has %#x", end, len(data))
	}
	mem := uint64(end - start)
	if h.bssEnd > h.loadAddr && uint64(h.bssEnd-h.loadAddr) > mem {
		mem = uint64(h.bssEnd - h.loadAddr)
	}
	seg := Segment{Phys: uint64(h.loadAddr), Virt: uint64(h.loadAddr), Data: data[start:end], MemSize: mem}
	return &Image{Protocol: ProtoMultiboot, Entry: uint64(h.entry), Segments: []Segment{seg}}, nil
}

// ErrNoRAM is wrapped by placement errors about guest RAM bounds.
var ErrNoRAM = errors.New("does not fit in guest RAM")
