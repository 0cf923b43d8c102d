package boot

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// mb2Tag is one Multiboot 2 header tag.
type mb2Tag struct {
	typ, flags uint16
	body       []byte
}

// mb2Hdr builds a Multiboot 2 header with the given tags and an end tag.
func mb2Hdr(tags ...mb2Tag) []byte {
	le := binary.LittleEndian
	b := make([]byte, 16)
	tags = append(tags, mb2Tag{})
	for _, t := range tags {
		h := make([]byte, 8)
		le.PutUint16(h[0:], t.typ)
		le.PutUint16(h[2:], t.flags)
		le.PutUint32(h[4:], uint32(8+len(t.body)))
		b = append(append(b, h...), t.body...)
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
	}
	le.PutUint32(b[0:], mb2Magic)
	le.PutUint32(b[4:], 0)
	le.PutUint32(b[8:], uint32(len(b)))
	le.PutUint32(b[12:], -(mb2Magic + uint32(len(b))))
	return b
}

func u32s(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// withMB2 is an ELF64 kernel whose first segment starts with header h.
func withMB2(h []byte) []byte {
	f := elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 0x200, 0x1000}}, nil)
	copy(f[64+56:], h) // the segment's data: 8-byte aligned
	return f
}

func TestParseMultiboot2(t *testing.T) {
	img, err := Parse(withMB2(mb2Hdr(mb2Tag{typ: mb2TagInfoReq, body: u32s(1, 3, 4, 6)}, mb2Tag{typ: mb2TagEntry, body: u32s(0x100040)})), "")
	if err != nil || img.Protocol != ProtoMultiboot2 || img.Entry != 0x100040 {
		t.Fatalf("auto: %+v %v", img, err)
	}
	// Without an entry tag, the ELF entry.
	if img, err = Parse(withMB2(mb2Hdr()), ProtoMultiboot2); err != nil || img.Entry != 0x100000 {
		t.Fatalf("elf entry: %+v %v", img, err)
	}
	// Forcing elf64 ignores the header.
	if img, err = Parse(withMB2(mb2Hdr()), ProtoELF64); err != nil || img.Protocol != ProtoELF64 {
		t.Fatalf("forced elf64: %+v %v", img, err)
	}
	// Optional tags vmdap cannot honour are ignored.
	if _, err = Parse(withMB2(mb2Hdr(mb2Tag{typ: mb2TagFramebuf, flags: 1, body: u32s(1024, 768, 32)},
		mb2Tag{typ: mb2TagInfoReq, flags: 1, body: u32s(8, 14)})), ""); err != nil {
		t.Fatalf("optional tags: %v", err)
	}
	// A non-ELF kernel with an address tag loads by it.
	raw := make([]byte, 0x400)
	h := mb2Hdr(mb2Tag{typ: mb2TagAddress, body: u32s(0x200000, 0x200000, 0, 0x202000)}, mb2Tag{typ: mb2TagEntry, body: u32s(0x200100)})
	copy(raw, h)
	img, err = Parse(raw, "")
	if err != nil || img.Protocol != ProtoMultiboot2 || img.Entry != 0x200100 || img.Segments[0].Phys != 0x200000 || img.Segments[0].MemSize != 0x2000 {
		t.Fatalf("address tag: %+v %v", img, err)
	}
}

// Every "cannot boot" error names what vmdap looked for or what it
// cannot provide.
func TestCannotBootErrorsSayWhy(t *testing.T) {
	plain := elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, nil)
	for _, tc := range []struct {
		name string
		data []byte
		want Protocol
		says []string
	}{
		{"text", []byte("hello world"), "", []string{"not an ELF file", "Multiboot 1 header", "0x1badb002", "Multiboot 2 header", "0xe85250d6", "first 32 KiB"}},
		{"forced multiboot2", plain, ProtoMultiboot2, []string{"multiboot2 requested", "0xe85250d6", "first 32 KiB"}},
		{"forced multiboot", plain, ProtoMultiboot, []string{"no Multiboot 1 header", "0x1badb002", "first 8 KiB"}},
		{"forced pvh", plain, ProtoPVH, []string{"XEN_ELFNOTE_PHYS32_ENTRY"}},
		{"required framebuffer", withMB2(mb2Hdr(mb2Tag{typ: mb2TagFramebuf, body: u32s(1024, 768, 32)})), "", []string{"framebuffer tag", "no framebuffer"}},
		{"required info", withMB2(mb2Hdr(mb2Tag{typ: mb2TagInfoReq, body: u32s(1, 13, 8, 14)})), "", []string{"13 (SMBIOS tables), 8 (framebuffer) (vmdap provides", "14 (ACPI 1.0 RSDP)"}},
		{"EFI", withMB2(mb2Hdr(mb2Tag{typ: mb2TagEFI64, body: u32s(0x100000)})), "", []string{"EFI"}},
		{"bad checksum", func() []byte { b := withMB2(mb2Hdr()); b[64+56+12]++; return b }(), "", []string{"Multiboot 2 header", "checksum"}},
		{"unknown protocol", plain, "grub", []string{"multiboot2"}},
	} {
		_, err := Parse(tc.data, tc.want)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not say %q", tc.name, err, s)
			}
		}
	}
}

func TestPlaceMultiboot2(t *testing.T) {
	img, err := Parse(withMB2(mb2Hdr()), "")
	if err != nil {
		t.Fatal(err)
	}
	ram := make([]byte, 8<<20)
	mods := []Module{{Data: []byte("first module"), Cmdline: "one"}, {Data: make([]byte, 5000), Cmdline: "two"}}
	cpus, err := Place(img, ram, Config{VCPUs: 2, Cmdline: "hello", Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	c := cpus[0]
	if c.Regs.RAX != Multiboot2BootloaderMagic || c.Regs.RIP != 0x100000 || c.SRegs.CS.L || c.SRegs.CR0 != 0x11 || !cpus[1].Halted {
		t.Fatalf("entry state %+v", c)
	}
	info := c.Regs.RBX
	if info%8 != 0 {
		t.Fatalf("info at %#x is not 8-byte aligned", info)
	}
	le := binary.LittleEndian
	total := le.Uint32(ram[info:])
	tags := map[uint32][][]byte{}
	for p := info + 8; p < info+uint64(total); {
		typ, size := le.Uint32(ram[p:]), le.Uint32(ram[p+4:])
		tags[typ] = append(tags[typ], ram[p+8:p+uint64(size)])
		if typ == 0 {
			if p+8 != info+uint64(total) {
				t.Fatalf("end tag at %#x, total size says %#x", p, info+uint64(total))
			}
			break
		}
		p += uint64(size+7) &^ 7
	}
	if string(tags[1][0]) != "hello\x00" || string(tags[2][0]) != "vmdap\x00" {
		t.Fatalf("cmdline %q loader %q", tags[1], tags[2])
	}
	if m := tags[4][0]; le.Uint32(m) != 640 || le.Uint32(m[4:]) != (8<<20-1<<20)>>10 {
		t.Fatalf("meminfo % x", m)
	}
	if mm := tags[6][0]; le.Uint32(mm) != 24 || (len(mm)-8)/24 != 3 {
		t.Fatalf("mmap % x", mm)
	}
	if len(tags[3]) != 2 {
		t.Fatalf("%d module tags", len(tags[3]))
	}
	// The ACPI RSDP, as GRUB gives it: its ACPI 1.0 part, and all of it.
	if len(tags[14]) != 1 || len(tags[15]) != 1 {
		t.Fatalf("%d ACPI 1.0 and %d ACPI 2.0 RSDP tags, want one each", len(tags[14]), len(tags[15]))
	}
	if old, rsdp := tags[14][0], ram[0xe0000:0xe0000+36]; !bytes.Equal(old, rsdp[:20]) || !bytes.HasPrefix(old, []byte("RSD PTR ")) || !bytes.Equal(tags[15][0], rsdp) || rsdp[15] != 2 {
		t.Fatalf("RSDP tags % x, % x; the RSDP % x", old, tags[15][0], rsdp)
	}
	for i, m := range tags[3] {
		start, end := le.Uint32(m), le.Uint32(m[4:])
		if start%4096 != 0 || end-start != uint32(len(mods[i].Data)) || string(ram[start:end]) != string(mods[i].Data) ||
			string(m[8:]) != mods[i].Cmdline+"\x00" || start < 0x101000 {
			t.Fatalf("module %d: [%#x,%#x) %q", i, start, end, m[8:])
		}
	}
	// Multiboot 1 gets the same modules in its own format.
	raw := make([]byte, 0x200)
	le.PutUint32(raw[0:], mbMagic)
	le.PutUint32(raw[4:], mbAoutKludge)
	sum := uint32(mbMagic + mbAoutKludge)
	le.PutUint32(raw[8:], -sum)
	le.PutUint32(raw[12:], 0x100000)
	le.PutUint32(raw[16:], 0x100000)
	le.PutUint32(raw[24:], 0x101000)
	le.PutUint32(raw[28:], 0x100020)
	img1, _ := Parse(raw, "")
	cpus, err = Place(img1, ram, Config{VCPUs: 1, Modules: mods[:1]})
	if err != nil {
		t.Fatal(err)
	}
	mbi := ram[cpus[0].Regs.RBX:]
	if le.Uint32(mbi)&8 == 0 || le.Uint32(mbi[20:]) != 1 {
		t.Fatalf("mb1 flags %#x mods_count %d", le.Uint32(mbi), le.Uint32(mbi[20:]))
	}
	e := ram[le.Uint32(mbi[24:]):]
	if s := le.Uint32(e); string(ram[s:le.Uint32(e[4:])]) != "first module" || string(ram[le.Uint32(e[8:]):][:4]) != "one\x00" {
		t.Fatalf("mb1 module entry % x", e[:16])
	}
	// Modules that do not fit are refused, naming the module.
	if _, err := Place(img, ram, Config{VCPUs: 1, Modules: []Module{{Data: make([]byte, 9<<20)}}}); err == nil || !strings.Contains(err.Error(), "module 0") {
		t.Fatalf("oversized module: %v", err)
	}
}
