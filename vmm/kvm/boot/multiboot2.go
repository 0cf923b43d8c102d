package boot

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// Multiboot 2 (Multiboot2 Specification version 2.0): the header, the
// information structure and the machine state at entry.

const (
	mb2Magic       = 0xE85250D6
	mb2SearchLimit = 32768
	// Multiboot2BootloaderMagic is what a Multiboot 2 kernel finds in EAX.
	Multiboot2BootloaderMagic = 0x36d76289

	mb2ArchI386 = 0 // 32-bit protected mode

	// Header tags (§3.1.3-3.1.13).
	mb2TagEnd       = 0
	mb2TagInfoReq   = 1
	mb2TagAddress   = 2
	mb2TagEntry     = 3
	mb2TagConsole   = 4
	mb2TagFramebuf  = 5
	mb2TagModAlign  = 6
	mb2TagEFIBS     = 7
	mb2TagEFI32     = 8
	mb2TagEFI64     = 9
	mb2TagReloc     = 10
	mb2TagOptional  = 1 // flags bit 0: the boot loader may ignore the tag
	mb2ConsoleReqd  = 1 // console flags bit 0: the console tags must be honoured
	mb2ConsoleEGA   = 2 // console flags bit 1: EGA text support
	mb2MaxHeaderLen = 4096

	// Information tags (§3.6).
	mb2InfoEndTag   = 0
	mb2InfoCmdline  = 1
	mb2InfoLoader   = 2
	mb2InfoModule   = 3
	mb2InfoMeminfo  = 4
	mb2InfoMmap     = 6
	mb2InfoACPIOld  = 14
	mb2InfoACPINew  = 15
	mb2InfoLoadBase = 21
)

// mb2InfoProvided are the information tags vmdap writes.
var mb2InfoProvided = map[uint32]string{
	mb2InfoCmdline: "command line", mb2InfoLoader: "boot loader name", mb2InfoModule: "modules",
	mb2InfoMeminfo: "basic memory information", mb2InfoMmap: "memory map", mb2InfoLoadBase: "image load base",
	mb2InfoACPIOld: "ACPI 1.0 RSDP", mb2InfoACPINew: "ACPI 2.0 RSDP",
}

// mb2InfoNames names the information tags a kernel may request.
var mb2InfoNames = map[uint32]string{
	5: "BIOS boot device", 7: "VBE information", 8: "framebuffer", 9: "ELF sections", 10: "APM table",
	11: "EFI 32-bit system table", 12: "EFI 64-bit system table", 13: "SMBIOS tables", 14: "ACPI 1.0 RSDP",
	15: "ACPI 2.0 RSDP", 16: "network information", 17: "EFI memory map", 18: "EFI boot services not terminated",
	19: "EFI 32-bit image handle", 20: "EFI 64-bit image handle",
}

// mb2Header is a parsed Multiboot 2 header.
type mb2Header struct {
	off      int
	entry    uint32
	hasEntry bool
	// address tag
	hasAddr                               bool
	headerAddr, loadAddr, loadEnd, bssEnd uint32
}

// findMultiboot2 looks for a Multiboot 2 header: 8-byte aligned, in the
// first 32 KiB. It returns nil, nil when there is none, and an error for a
// header vmdap cannot honour (saying which tag).
func findMultiboot2(data []byte) (*mb2Header, error) {
	limit := len(data)
	if limit > mb2SearchLimit {
		limit = mb2SearchLimit
	}
	le := binary.LittleEndian
	for off := 0; off+16 <= limit; off += 8 {
		if le.Uint32(data[off:]) != mb2Magic {
			continue
		}
		arch := le.Uint32(data[off+4:])
		length := le.Uint32(data[off+8:])
		sum := le.Uint32(data[off+12:])
		if mb2Magic+arch+length+sum != 0 {
			return nil, formatErr("Multiboot 2 header at offset %#x has a bad checksum", off)
		}
		if arch != mb2ArchI386 {
			return nil, formatErr("Multiboot 2 header at offset %#x is for architecture %d; vmdap boots architecture 0 (i386 protected mode)", off, arch)
		}
		if length < 24 || length > mb2MaxHeaderLen || off+int(length) > len(data) {
			return nil, formatErr("Multiboot 2 header at offset %#x has a bad length %d", off, length)
		}
		h := &mb2Header{off: off}
		if err := h.parseTags(data[off+16 : off+int(length)]); err != nil {
			return nil, formatErr("Multiboot 2 header at offset %#x: %v", off, err)
		}
		return h, nil
	}
	return nil, nil
}

func (h *mb2Header) parseTags(b []byte) error {
	le := binary.LittleEndian
	for len(b) >= 8 {
		typ := le.Uint16(b[0:])
		flags := le.Uint16(b[2:])
		size := le.Uint32(b[4:])
		if size < 8 || int(size) > len(b) {
			return fmt.Errorf("tag type %d has a bad size %d", typ, size)
		}
		body := b[8:size]
		optional := flags&mb2TagOptional != 0
		switch typ {
		case mb2TagEnd:
			return nil
		case mb2TagInfoReq:
			var missing []string
			for i := 0; i+4 <= len(body); i += 4 {
				t := le.Uint32(body[i:])
				if _, ok := mb2InfoProvided[t]; ok || t == mb2InfoEndTag {
					continue
				}
				name := mb2InfoNames[t]
				if name == "" {
					name = "unknown"
				}
				missing = append(missing, fmt.Sprintf("%d (%s)", t, name))
			}
			if len(missing) > 0 && !optional {
				return fmt.Errorf("the information request tag requires tags vmdap does not provide: %s (vmdap provides %s)", strings.Join(missing, ", "), providedList())
			}
		case mb2TagAddress:
			if len(body) < 16 {
				return fmt.Errorf("address tag too short")
			}
			h.hasAddr = true
			h.headerAddr, h.loadAddr, h.loadEnd, h.bssEnd = le.Uint32(body[0:]), le.Uint32(body[4:]), le.Uint32(body[8:]), le.Uint32(body[12:])
		case mb2TagEntry:
			if len(body) < 4 {
				return fmt.Errorf("entry address tag too short")
			}
			h.entry, h.hasEntry = le.Uint32(body[0:]), true
		case mb2TagConsole:
			if len(body) >= 4 && le.Uint32(body[0:])&(mb2ConsoleReqd|mb2ConsoleEGA) == mb2ConsoleReqd|mb2ConsoleEGA && !optional {
				return fmt.Errorf("the console flags tag requires an EGA text console, which vmdap does not emulate (it has COM1)")
			}
		case mb2TagFramebuf:
			if !optional {
				return fmt.Errorf("the framebuffer tag is not optional, and vmdap has no framebuffer")
			}
		case mb2TagEFIBS, mb2TagEFI32, mb2TagEFI64:
			if !optional {
				return fmt.Errorf("tag type %d asks for an EFI boot, and vmdap boots without firmware", typ)
			}
		case mb2TagModAlign, mb2TagReloc:
			// Modules are page-aligned; the image loads at its link address.
		default:
			if !optional {
				return fmt.Errorf("unknown required tag type %d", typ)
			}
		}
		b = b[(size+7)&^7:]
	}
	return fmt.Errorf("no end tag")
}

func providedList() string {
	var t []int
	for k := range mb2InfoProvided {
		t = append(t, int(k))
	}
	sort.Ints(t)
	var s []string
	for _, k := range t {
		s = append(s, fmt.Sprintf("%d (%s)", k, mb2InfoProvided[uint32(k)]))
	}
	return strings.Join(s, ", ")
}

// addressImage loads the file by the address tag, as the a.out kludge of
// Multiboot 1 does.
func (h *mb2Header) addressImage(data []byte) (*Image, error) {
	if !h.hasEntry {
		return nil, formatErr("Multiboot 2 header has an address tag but no entry address tag")
	}
	k := &mbHeader{off: h.off, headerAddr: h.headerAddr, loadAddr: h.loadAddr, loadEnd: h.loadEnd, bssEnd: h.bssEnd, entry: h.entry}
	if h.loadAddr == 0xffffffff {
		// load_addr -1: the file is loaded from its start.
		k.loadAddr = h.headerAddr - uint32(h.off)
	}
	img, err := k.kludgeImage(data)
	if err != nil {
		return nil, fmt.Errorf("%w (Multiboot 2 address tag)", err)
	}
	img.Protocol = ProtoMultiboot2
	return img, nil
}

// Module is a file loaded next to the kernel (Multiboot modules).
type Module struct {
	Data    []byte
	Cmdline string
}

// placeModules puts each module at the next page boundary after the
// image (and after the previous module); it returns their physical
// ranges.
func placeModules(ram []byte, img *Image, mods []Module, limit uint64) ([][2]uint64, error) {
	next := uint64(0x100000)
	for _, s := range img.Segments {
		if e := s.Phys + s.MemSize; e > next {
			next = e
		}
	}
	var out [][2]uint64
	for i, m := range mods {
		next = (next + 0xfff) &^ 0xfff
		end := next + uint64(len(m.Data))
		if end > limit {
			return nil, fmt.Errorf("module %d (%d bytes) does not fit below %#x: give the guest more memory", i, len(m.Data), limit)
		}
		copy(ram[next:end], m.Data)
		out = append(out, [2]uint64{next, end})
		next = end
	}
	return out, nil
}

// mb2Writer appends information tags, each 8-byte aligned.
type mb2Writer struct {
	b []byte
}

func (w *mb2Writer) tag(typ uint32, body []byte) {
	le := binary.LittleEndian
	var hdr [8]byte
	le.PutUint32(hdr[0:], typ)
	le.PutUint32(hdr[4:], uint32(8+len(body)))
	w.b = append(w.b, hdr[:]...)
	w.b = append(w.b, body...)
	for len(w.b)%8 != 0 {
		w.b = append(w.b, 0)
	}
}

// writeMultiboot2Info writes the Multiboot 2 information structure at
// mb2InfoAddr: command line, boot loader name, basic memory information,
// the memory map, one tag per module, the image's load base, and copies
// of the ACPI RSDP at rsdp, as GRUB gives them (none when rsdp is 0: the
// kernel's own segments cover the firmware area).
func writeMultiboot2Info(ram []byte, img *Image, cmd string, mods []Module, placed [][2]uint64, rsdp uint64) (uint64, error) {
	le := binary.LittleEndian
	size := uint64(len(ram))
	w := &mb2Writer{b: make([]byte, 8, 1024)}
	w.tag(mb2InfoCmdline, append([]byte(cmd), 0))
	w.tag(mb2InfoLoader, []byte("vmdap\x00"))
	for i, m := range mods {
		body := make([]byte, 8, 8+len(m.Cmdline)+1)
		le.PutUint32(body[0:], uint32(placed[i][0]))
		le.PutUint32(body[4:], uint32(placed[i][1]))
		body = append(append(body, m.Cmdline...), 0)
		w.tag(mb2InfoModule, body)
	}
	var mi [8]byte
	le.PutUint32(mi[0:], 640)
	le.PutUint32(mi[4:], uint32((size-0x100000)>>10))
	w.tag(mb2InfoMeminfo, mi[:])
	mm := memoryMap(size)
	body := make([]byte, 8+24*len(mm))
	le.PutUint32(body[0:], 24) // entry_size
	le.PutUint32(body[4:], 0)  // entry_version
	for i, r := range mm {
		e := body[8+24*i:]
		le.PutUint64(e[0:], r.addr)
		le.PutUint64(e[8:], r.size)
		le.PutUint32(e[16:], r.typ)
	}
	w.tag(mb2InfoMmap, body)
	if rsdp != 0 && rsdp+36 <= size {
		w.tag(mb2InfoACPIOld, ram[rsdp:rsdp+20]) // the RSDP's ACPI 1.0 part
		w.tag(mb2InfoACPINew, ram[rsdp:rsdp+36])
	}
	if len(img.Segments) > 0 {
		var lb [4]byte
		le.PutUint32(lb[:], uint32(img.Segments[0].Phys))
		w.tag(mb2InfoLoadBase, lb[:])
	}
	w.tag(mb2InfoEndTag, nil)
	le.PutUint32(w.b[0:], uint32(len(w.b)))
	if mb2InfoAddr+uint64(len(w.b)) > mb2InfoEnd {
		return 0, fmt.Errorf("the Multiboot 2 information (%d bytes) does not fit in vmdap's boot area", len(w.b))
	}
	copy(ram[mb2InfoAddr:], w.b)
	return mb2InfoAddr, nil
}
