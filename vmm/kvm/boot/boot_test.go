package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"strings"
	"testing"
)

// elf64 builds a minimal ELF64 x86-64 executable with the given segments
// (vaddr, paddr, data, memsz) and optional notes.
func elf64(entry uint64, segs [][4]uint64, note []byte) []byte {
	var b bytes.Buffer
	nph := len(segs)
	if note != nil {
		nph++
	}
	hdr := make([]byte, 64)
	copy(hdr, "\x7fELF\x02\x01\x01")
	le := binary.LittleEndian
	le.PutUint16(hdr[16:], uint16(elf.ET_EXEC))
	le.PutUint16(hdr[18:], uint16(elf.EM_X86_64))
	le.PutUint32(hdr[20:], 1)
	le.PutUint64(hdr[24:], entry)
	le.PutUint64(hdr[32:], 64) // phoff
	le.PutUint16(hdr[52:], 64)
	le.PutUint16(hdr[54:], 56)
	le.PutUint16(hdr[56:], uint16(nph))
	b.Write(hdr)
	dataOff := uint64(64 + 56*nph)
	var payload bytes.Buffer
	for _, s := range segs {
		ph := make([]byte, 56)
		le.PutUint32(ph[0:], uint32(elf.PT_LOAD))
		le.PutUint32(ph[4:], 7)
		le.PutUint64(ph[8:], dataOff+uint64(payload.Len()))
		le.PutUint64(ph[16:], s[0])
		le.PutUint64(ph[24:], s[1])
		le.PutUint64(ph[32:], s[2])
		le.PutUint64(ph[40:], s[3])
		b.Write(ph)
		payload.Write(bytes.Repeat([]byte{0x90}, int(s[2])))
	}
	if note != nil {
		ph := make([]byte, 56)
		le.PutUint32(ph[0:], uint32(elf.PT_NOTE))
		le.PutUint64(ph[8:], dataOff+uint64(payload.Len()))
		le.PutUint64(ph[32:], uint64(len(note)))
		le.PutUint64(ph[40:], uint64(len(note)))
		b.Write(ph)
		payload.Write(note)
	}
	b.Write(payload.Bytes())
	return b.Bytes()
}

func pvhNote(entry uint32) []byte {
	n := make([]byte, 20)
	binary.LittleEndian.PutUint32(n[0:], 4)
	binary.LittleEndian.PutUint32(n[4:], 4)
	binary.LittleEndian.PutUint32(n[8:], 18)
	copy(n[12:], "Xen\x00")
	binary.LittleEndian.PutUint32(n[16:], entry)
	return n
}

func TestParseProtocols(t *testing.T) {
	img, err := Parse(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, nil), "")
	if err != nil || img.Protocol != ProtoELF64 || img.Entry != 0x100000 {
		t.Fatalf("elf64: %+v %v", img, err)
	}
	img, err = Parse(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, pvhNote(0x100004)), "")
	if err != nil || img.Protocol != ProtoPVH || img.Entry != 0x100004 {
		t.Fatalf("pvh: %+v %v", img, err)
	}
	// forcing elf64 ignores the note
	if img, err = Parse(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, pvhNote(0x100004)), ProtoELF64); err != nil || img.Protocol != ProtoELF64 {
		t.Fatalf("forced elf64: %+v %v", img, err)
	}
	if _, err := Parse(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, nil), ProtoMultiboot); err == nil || !strings.Contains(err.Error(), "no Multiboot 1 header") {
		t.Fatalf("forced multiboot without header: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	good := elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 64, 64}}, nil)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"text", []byte("hello world"), "not an ELF file"},
		{"truncated segment", good[:len(good)-10], "truncated"},
		{"overlap", elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 0x100}, {0x100080, 0x100080, 16, 16}}, nil), "overlap"},
		{"filesz > memsz", elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 32, 16}}, nil), "larger than memory size"},
	} {
		if _, err := Parse(tc.data, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A note whose name size wraps the 32-bit offsets: refused, no panic.
	huge := pvhNote(0x100004)
	binary.LittleEndian.PutUint32(huge[0:], 0xfffffff8)
	if _, err := Parse(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, huge), ""); err == nil || !strings.Contains(err.Error(), "note") {
		t.Errorf("a note with namesz 0xfffffff8: %v", err)
	}
	// An error never quotes the file's bytes (it may be any file).
	if _, err := Parse([]byte("root:secret"), ""); err == nil || strings.Contains(err.Error(), "root") {
		t.Errorf("a text file: %v", err)
	}
	bad := append([]byte(nil), good...)
	bad[18] = byte(elf.EM_ARM)
	if _, err := Parse(bad, ""); err == nil || !strings.Contains(err.Error(), "wrong architecture") {
		t.Errorf("arm: %v", err)
	}
}

func TestMultibootKludgeAndChecksum(t *testing.T) {
	// An a.out-kludge Multiboot kernel: header at 0 with load addresses.
	raw := make([]byte, 0x200)
	le := binary.LittleEndian
	le.PutUint32(raw[0:], mbMagic)
	le.PutUint32(raw[4:], mbAoutKludge)
	sum := uint32(mbMagic + mbAoutKludge)
	le.PutUint32(raw[8:], -sum)
	le.PutUint32(raw[12:], 0x100000) // header_addr
	le.PutUint32(raw[16:], 0x100000) // load_addr
	le.PutUint32(raw[20:], 0)        // load_end: whole file
	le.PutUint32(raw[24:], 0x101000) // bss_end
	le.PutUint32(raw[28:], 0x100020) // entry
	img, err := Parse(raw, "")
	if err != nil || img.Protocol != ProtoMultiboot || img.Entry != 0x100020 || img.Segments[0].MemSize != 0x1000 {
		t.Fatalf("kludge: %+v %v", img, err)
	}
	le.PutUint32(raw[8:], 1)
	if _, err := Parse(raw, ""); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("bad checksum: %v", err)
	}
}

func TestPlaceLongMode(t *testing.T) {
	img, _ := Parse(elf64(0xffffffff80100000, [][4]uint64{{0x100000, 0x100000, 16, 32}, {0xffffffff80200000, 0x200000, 16, 16}}, nil), "")
	ram := make([]byte, 8<<20)
	cpus, err := Place(img, ram, Config{VCPUs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) != 3 || cpus[2].Regs.RDI != 2 || cpus[2].Regs.RSI != 3 || cpus[1].Halted {
		t.Fatalf("cpus %+v", cpus)
	}
	if cpus[0].Regs.RSP == cpus[1].Regs.RSP || cpus[0].Regs.RSP >= 8<<20 || cpus[0].Regs.RSP%16 != 0 {
		t.Fatalf("stacks %#x %#x", cpus[0].Regs.RSP, cpus[1].Regs.RSP)
	}
	if cpus[0].SRegs.EFER&0x500 != 0x500 || !cpus[0].SRegs.CS.L || cpus[0].Regs.RFLAGS != 2 {
		t.Fatalf("not long mode: %+v", cpus[0].SRegs)
	}
	if ram[0x100000] != 0x90 || ram[0x100010] != 0 || ram[0x200000] != 0x90 {
		t.Fatal("segments not placed (or bss not zeroed)")
	}
	// Too much: a segment past the end of RAM.
	img2, _ := Parse(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32 << 20}}, nil), "")
	if _, err := Place(img2, ram, Config{VCPUs: 1}); err == nil || !strings.Contains(err.Error(), "does not fit in guest RAM") {
		t.Fatalf("oversized: %v", err)
	}
	img3, _ := Parse(elf64(0x1000, [][4]uint64{{0x1000, 0x1000, 16, 16}}, nil), "")
	if _, err := Place(img3, ram, Config{VCPUs: 1}); err == nil || !strings.Contains(err.Error(), "boot area") {
		t.Fatalf("boot area overlap: %v", err)
	}
}

func TestCodeRanges(t *testing.T) {
	// No section headers: the executable segments, placed at their
	// physical addresses.
	img, err := Parse(elf64(0x100000, [][4]uint64{{0xffff800000100000, 0x100000, 16, 32}}, nil), "")
	if err != nil || len(img.Code) != 1 || img.Code[0] != (Range{Phys: 0x100000, Size: 32}) {
		t.Fatalf("without sections: %+v %v", img.Code, err)
	}
	// With sections: only the executable ones, even in a writable and
	// executable segment.
	prog := func(flags elf.ProgFlag, va, pa, size uint64) *elf.Prog {
		return &elf.Prog{ProgHeader: elf.ProgHeader{Type: elf.PT_LOAD, Flags: flags, Vaddr: va, Paddr: pa, Memsz: size}}
	}
	sect := func(name string, flags elf.SectionFlag, addr, size uint64) *elf.Section {
		return &elf.Section{SectionHeader: elf.SectionHeader{Name: name, Flags: flags, Addr: addr, Size: size}}
	}
	f := &elf.File{
		Progs: []*elf.Prog{prog(elf.PF_R|elf.PF_W|elf.PF_X, 0xc0000000, 0x200000, 0x3000), prog(elf.PF_R|elf.PF_W, 0xc0003000, 0x203000, 0x1000)},
		Sections: []*elf.Section{sect("", 0, 0, 0), sect(".text", elf.SHF_ALLOC|elf.SHF_EXECINSTR, 0xc0000000, 0x1234),
			sect(".data", elf.SHF_ALLOC|elf.SHF_WRITE, 0xc0002000, 0x1000), sect(".init.text", elf.SHF_ALLOC|elf.SHF_EXECINSTR, 0xc0001800, 0x100),
			sect(".bss", elf.SHF_ALLOC|elf.SHF_WRITE, 0xc0003000, 0x1000)},
	}
	want := []Range{{0x200000, 0x1234}, {0x201800, 0x100}}
	if got := elfCode(f); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("with sections: %+v, want %+v", got, want)
	}
}
