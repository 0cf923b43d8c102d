package boot

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// bzImage builds a minimal Linux boot image: setupSects sectors of setup
// code with a protocol 2.15 header, then a protected-mode kernel of
// kernelLen bytes (0x90 filled).
func bzImage(setupSects int, kernelLen int, mod func(h []byte)) []byte {
	sects := setupSects
	if sects == 0 {
		sects = 4 // the protocol's rule for 0
	}
	size := (sects + 1) * 512
	b := make([]byte, size+kernelLen)
	le := binary.LittleEndian
	b[lhSetupSects] = byte(setupSects)
	le.PutUint16(b[lhBootFlag:], 0xaa55)
	b[lhJump], b[lhJump+1] = 0xeb, 0x6a // jmp to 0x26c: the header ends there
	le.PutUint32(b[lhHeader:], linuxHdrMagic)
	le.PutUint16(b[lhVersion:], 0x020f)
	b[lhLoadFlags] = loadedHigh
	le.PutUint32(b[lhCode32Start:], 0x100000)
	le.PutUint32(b[lhInitrdMax:], 0x7fffffff)
	le.PutUint32(b[lhKernelAlign:], 0x200000)
	b[lhRelocatable] = 1
	le.PutUint16(b[lhXLoadFlags:], xlfKernel64|xlfInitrdHi)
	le.PutUint32(b[lhCmdlineSize:], 2047)
	le.PutUint64(b[lhPrefAddress:], 0x1000000)
	le.PutUint32(b[lhInitSize:], 0x800000)
	for i := size; i < len(b); i++ {
		b[i] = 0x90
	}
	if mod != nil {
		mod(b)
	}
	return b
}

func TestParseBzImage(t *testing.T) {
	data := bzImage(4, 0x3000, nil)
	img, err := Parse(data, "")
	if err != nil {
		t.Fatal(err)
	}
	k := img.Linux
	if img.Protocol != ProtoLinux || k == nil || !img.IsLinux() {
		t.Fatalf("protocol %s, linux %+v", img.Protocol, k)
	}
	if img.Entry != 0x1000200 || k.LoadAddr != 0x1000000 || k.InitSize != 0x800000 || k.Version != 0x020f || k.CmdlineMax != 2047 {
		t.Fatalf("entry %#x, kernel %+v", img.Entry, k)
	}
	if len(img.Segments) != 1 || img.Segments[0].Phys != 0x1000000 || img.Segments[0].MemSize != 0x800000 ||
		len(img.Segments[0].Data) != 0x3000 || img.Segments[0].Data[0] != 0x90 {
		t.Fatalf("segments %+v", img.Segments)
	}
	if len(k.Header) != 0x26c-0x1f1 || !bytes.Equal(k.Header, data[0x1f1:0x26c]) {
		t.Fatalf("header is %d bytes", len(k.Header))
	}
	// Forcing linux on a bzImage works; forcing another protocol names
	// what the file is.
	if _, err := Parse(data, ProtoLinux); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(data, ProtoPVH); err == nil || !strings.Contains(err.Error(), "Linux bzImage") {
		t.Fatalf("pvh on a bzImage: %v", err)
	}
	if _, err := Parse(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, nil), ProtoLinux); err == nil || !strings.Contains(err.Error(), "HdrS") {
		t.Fatalf("linux on an ELF: %v", err)
	}
	// An unaligned preferred address of a relocatable kernel is rounded up
	// to kernel_alignment.
	img, err = Parse(bzImage(4, 0x1000, func(h []byte) { binary.LittleEndian.PutUint64(h[lhPrefAddress:], 0x1000001) }), "")
	if err != nil || img.Linux.LoadAddr != 0x1200000 {
		t.Fatalf("unaligned pref_address: %+v %v", img, err)
	}
}

func TestParseBzImageErrors(t *testing.T) {
	le := binary.LittleEndian
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"old protocol", bzImage(4, 512, func(h []byte) { le.PutUint16(h[lhVersion:], 0x0208) }), "2.08 is too old"},
		{"no 64-bit entry", bzImage(4, 512, func(h []byte) { le.PutUint16(h[lhXLoadFlags:], 0) }), "XLF_KERNEL_64"},
		{"zImage", bzImage(4, 512, func(h []byte) { h[lhLoadFlags] = 0 }), "LOADED_HIGH"},
		{"short header", bzImage(4, 512, func(h []byte) { h[lhJump+1] = 0x20 }), "before the fields"},
		{"truncated setup", bzImage(4, 512, nil)[:0x300], "truncated bzImage"},
		{"no kernel", bzImage(4, 0, nil), "truncated bzImage"},
		{"below 1 MiB", bzImage(4, 512, func(h []byte) { le.PutUint64(h[lhPrefAddress:], 0x10000); h[lhRelocatable] = 0 }), "below 1 MiB"},
		{"huge", bzImage(4, 512, func(h []byte) { le.PutUint64(h[lhPrefAddress:], 1<<62); h[lhRelocatable] = 0 }), "beyond the largest guest RAM"},
	} {
		if _, err := Parse(tc.data, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	// Neither ELF nor bzImage nor Multiboot: the error names all three.
	_, err := Parse([]byte("MZ this is not a kernel at all"), "")
	for _, want := range []string{"ELF", "bzImage", "Multiboot"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("garbage: %v, want it to name %s", err, want)
		}
	}
}

func TestPlaceLinux(t *testing.T) {
	img, err := Parse(bzImage(4, 0x3000, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	ram := make([]byte, 64<<20)
	initrd := bytes.Repeat([]byte("initrd!!"), 0x280) // 5 KiB
	cpus, err := Place(img, ram, Config{VCPUs: 2, Cmdline: "console=ttyS0 quiet", Initrd: initrd, APIC: true})
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	zp := ram[zeroPageAddr : zeroPageAddr+0x1000]
	if cpus[0].Regs.RIP != 0x1000200 || cpus[0].Regs.RSI != zeroPageAddr || cpus[0].Halted || !cpus[1].Halted {
		t.Fatalf("cpus %+v", cpus)
	}
	s := cpus[0].SRegs
	if s.CS.Selector != 0x10 || !s.CS.L || s.DS.Selector != 0x18 || s.SS.Selector != 0x18 || s.EFER&0x500 != 0x500 || s.GDT.Base != linuxGDTAddr {
		t.Fatalf("sregs %+v", s)
	}
	if got := le.Uint64(ram[linuxGDTAddr+0x10:]); got != 0x00af9b000000ffff {
		t.Fatalf("__BOOT_CS descriptor %#x", got)
	}
	// The setup header is the image's, but for the fields the boot loader
	// owns (loader type, 32-bit entry, initrd, command line).
	want := bytes.Clone(img.Linux.Header[:0x26c-0x1f1])
	got := bytes.Clone(zp[0x1f1:0x26c])
	for _, f := range []struct{ off, n int }{{lhTypeOfLoader, 1}, {lhCode32Start, 4}, {lhRamdiskImage, 4}, {lhRamdiskSize, 4}, {lhCmdLinePtr, 4}} {
		clear(want[f.off-0x1f1 : f.off-0x1f1+f.n])
		clear(got[f.off-0x1f1 : f.off-0x1f1+f.n])
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("setup header not copied: %x, want %x", got, want)
	}
	if zp[lhTypeOfLoader] != loaderUndefined || le.Uint32(zp[lhHeader:]) != linuxHdrMagic {
		t.Fatalf("type_of_loader %#x", zp[lhTypeOfLoader])
	}
	cmd := le.Uint32(zp[lhCmdLinePtr:])
	if got := string(ram[cmd : cmd+19]); got != "console=ttyS0 quiet" || ram[cmd+19] != 0 {
		t.Fatalf("cmdline %q", got)
	}
	rd, rdSize := le.Uint32(zp[lhRamdiskImage:]), le.Uint32(zp[lhRamdiskSize:])
	if rdSize != uint32(len(initrd)) || rd%0x1000 != 0 || !bytes.Equal(ram[rd:rd+rdSize], initrd) {
		t.Fatalf("initrd at %#x size %#x", rd, rdSize)
	}
	if rd < 0x1800000 || uint64(rd)+uint64(rdSize) > uint64(len(ram))-2*DefaultStackSize {
		t.Fatalf("initrd at %#x overlaps the kernel or the stacks", rd)
	}
	n := int(zp[zpE820Entries])
	if n != 3 {
		t.Fatalf("%d e820 entries", n)
	}
	last := zp[zpE820Table+20*2:]
	if le.Uint64(last[0:]) != 0x100000 || le.Uint64(last[8:]) != uint64(len(ram))-0x100000 || le.Uint32(last[16:]) != 1 {
		t.Fatalf("e820[2] % x", last[:20])
	}
	if le.Uint64(zp[zpACPIRSDP:]) != rsdpAddr {
		t.Fatalf("acpi_rsdp_addr %#x", le.Uint64(zp[zpACPIRSDP:]))
	}
	// A command line longer than the kernel takes.
	if _, err := Place(img, ram, Config{VCPUs: 1, Cmdline: strings.Repeat("x", 2048)}); err == nil || !strings.Contains(err.Error(), "cmdline_size") {
		t.Fatalf("long cmdline: %v", err)
	}
	// The kernel's init_size must fit.
	if _, err := Place(img, make([]byte, 16<<20), Config{VCPUs: 1}); err == nil || !strings.Contains(err.Error(), "pref_address + init_size") {
		t.Fatalf("small RAM: %v", err)
	}
	// An initrd too big for what is left.
	if _, err := Place(img, ram, Config{VCPUs: 1, Initrd: make([]byte, 60<<20)}); err == nil || !strings.Contains(err.Error(), "initrd") {
		t.Fatalf("big initrd: %v", err)
	}
}

func TestInitrdModules(t *testing.T) {
	le := binary.LittleEndian
	initrd := []byte("0707010000")
	// PVH: one hvm_modlist_entry.
	img, _ := Parse(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, pvhNote(0x100004)), "")
	ram := make([]byte, 8<<20)
	if _, err := Place(img, ram, Config{VCPUs: 1, Initrd: initrd}); err != nil {
		t.Fatal(err)
	}
	si := ram[infoAddr:]
	if le.Uint32(si[12:]) != 1 || le.Uint64(si[16:]) != modlistAddr || le.Uint64(si[32:]) != rsdpAddr {
		t.Fatalf("start_info nr_modules %d modlist %#x rsdp %#x", le.Uint32(si[12:]), le.Uint64(si[16:]), le.Uint64(si[32:]))
	}
	pa, size := le.Uint64(ram[modlistAddr:]), le.Uint64(ram[modlistAddr+8:])
	if size != uint64(len(initrd)) || string(ram[pa:pa+size]) != string(initrd) {
		t.Fatalf("module at %#x size %d", pa, size)
	}
	// Multiboot: mods_count, mods_addr.
	raw := make([]byte, 0x200)
	le.PutUint32(raw[0:], mbMagic)
	le.PutUint32(raw[4:], mbAoutKludge)
	sum := uint32(mbMagic + mbAoutKludge)
	le.PutUint32(raw[8:], -sum)
	le.PutUint32(raw[12:], 0x100000)
	le.PutUint32(raw[16:], 0x100000)
	le.PutUint32(raw[24:], 0x101000)
	le.PutUint32(raw[28:], 0x100020)
	img, err := Parse(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Place(img, ram, Config{VCPUs: 1, Initrd: initrd}); err != nil {
		t.Fatal(err)
	}
	// Multiboot: the initrd is the first module (mods_count, mods_addr).
	mbi := ram[infoAddr:]
	list := le.Uint32(mbi[24:])
	if le.Uint32(mbi[0:])&(1<<3) == 0 || le.Uint32(mbi[20:]) != 1 {
		t.Fatalf("multiboot flags %#x mods %d at %#x", le.Uint32(mbi[0:]), le.Uint32(mbi[20:]), list)
	}
	start, end := le.Uint32(ram[list:]), le.Uint32(ram[list+4:])
	if string(ram[start:end]) != string(initrd) {
		t.Fatalf("module [%#x,%#x)", start, end)
	}
	str := le.Uint32(ram[list+8:])
	if string(ram[str:str+7]) != "initrd\x00" {
		t.Fatalf("module string %q", ram[str:str+7])
	}
	// The 64-bit direct entry has no way to pass one.
	img, _ = Parse(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, nil), "")
	if _, err := Place(img, ram, Config{VCPUs: 1, Initrd: initrd}); err == nil || !strings.Contains(err.Error(), "initrd") {
		t.Fatalf("elf64 with initrd: %v", err)
	}
}

// FuzzParse feeds arbitrary files to Parse (auto and every forced
// protocol) and places what parses: a crafted image gives an error, never
// a panic. The seed corpus under testdata/fuzz/FuzzParse has bzImage
// headers (good, truncated, with hostile fields), ELF files with Xen notes
// and Multiboot headers.
func FuzzParse(f *testing.F) {
	f.Add(bzImage(4, 64, nil))
	f.Add(bzImage(0, 64, func(h []byte) {
		binary.LittleEndian.PutUint64(h[lhPrefAddress:], 0x200000)
		binary.LittleEndian.PutUint32(h[lhInitSize:], 0x100000)
	}))
	f.Add(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, pvhNote(0x100004)))
	ram := make([]byte, MinRAM)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range []Protocol{ProtoLinux, ProtoPVH, ProtoMultiboot, ProtoELF64} {
			_, _ = Parse(data, p)
		}
		img, err := Parse(data, ProtoAuto)
		if err != nil {
			return
		}
		if img.Linux != nil && img.Entry != img.Linux.LoadAddr+linuxEntry64 {
			t.Fatalf("entry %#x, load address %#x", img.Entry, img.Linux.LoadAddr)
		}
		_, _ = Place(img, ram, Config{VCPUs: 2, Cmdline: "console=ttyS0", Initrd: []byte("initrd"), APIC: true})
	})
}

func sum8(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

func TestFirmwareTables(t *testing.T) {
	le := binary.LittleEndian
	img, _ := Parse(elf64(0x100000, [][4]uint64{{0x100000, 0x100000, 16, 32}}, pvhNote(0x100004)), "")
	ram := make([]byte, 8<<20)
	if _, err := Place(img, ram, Config{VCPUs: 3, APIC: true}); err != nil {
		t.Fatal(err)
	}
	r := ram[rsdpAddr : rsdpAddr+36]
	if string(r[:8]) != "RSD PTR " || sum8(r[:20]) != 0 || sum8(r) != 0 || r[15] != 2 {
		t.Fatalf("RSDP % x", r)
	}
	table := func(addr uint64, sig string) []byte {
		t.Helper()
		h := ram[addr:]
		n := le.Uint32(h[4:])
		if string(h[:4]) != sig || n < 36 || sum8(h[:n]) != 0 {
			t.Fatalf("table at %#x: signature %q length %d checksum %#x, want %s", addr, h[:4], n, sum8(h[:n]), sig)
		}
		return h[:n]
	}
	xsdt := table(le.Uint64(r[24:]), "XSDT")
	rsdt := table(uint64(le.Uint32(r[16:])), "RSDT")
	found := map[string][]byte{}
	for i := 36; i < len(xsdt); i += 8 {
		a := le.Uint64(xsdt[i:])
		if uint64(le.Uint32(rsdt[36+(i-36)/2:])) != a {
			t.Fatalf("RSDT and XSDT differ at entry %d", (i-36)/8)
		}
		found[string(ram[a:a+4])] = table(a, string(ram[a:a+4]))
	}
	fadt, madt := found["FACP"], found["APIC"]
	if fadt == nil || madt == nil || len(found) != 2 {
		t.Fatalf("XSDT lists %v", found)
	}
	if le.Uint32(fadt[112:])&fadtHWReduced == 0 || fadt[244] != 1 || le.Uint64(fadt[248:]) != SleepControlPort {
		t.Fatalf("FADT flags %#x, sleep control % x", le.Uint32(fadt[112:]), fadt[244:256])
	}
	dsdt := table(le.Uint64(fadt[140:]), "DSDT")
	if !bytes.Contains(dsdt, []byte("_S5_\x12")) {
		t.Fatalf("DSDT has no \\_S5: % x", dsdt[36:])
	}
	var lapics, ioapics int
	for e := madt[44:]; len(e) >= 2 && int(e[1]) <= len(e) && e[1] > 0; e = e[e[1]:] {
		switch e[0] {
		case 0:
			if e[3] != byte(lapics) || e[4]&1 == 0 {
				t.Fatalf("local APIC entry % x", e[:8])
			}
			lapics++
		case 1:
			if le.Uint32(e[4:]) != IOAPICBase {
				t.Fatalf("IOAPIC entry % x", e[:12])
			}
			ioapics++
		}
	}
	if lapics != 3 || ioapics != 1 || le.Uint32(madt[36:]) != LAPICBase {
		t.Fatalf("MADT: %d local APICs, %d IOAPICs", lapics, ioapics)
	}
	// MP table: floating pointer and configuration table, both summing to 0.
	fp := ram[mpAddr : mpAddr+16]
	if string(fp[:4]) != "_MP_" || sum8(fp) != 0 {
		t.Fatalf("MP floating pointer % x", fp)
	}
	cfg := ram[le.Uint32(fp[4:]):]
	n := le.Uint16(cfg[4:])
	if string(cfg[:4]) != "PCMP" || sum8(cfg[:n]) != 0 {
		t.Fatalf("MP config table % x", cfg[:44])
	}
	cpus := 0
	for e := cfg[44:n]; len(e) > 0; {
		if e[0] == 0 {
			cpus++
			e = e[20:]
		} else {
			e = e[8:]
		}
	}
	if cpus != 3 {
		t.Fatalf("MP table lists %d processors", cpus)
	}

	// Without local APICs: no MADT, no MP table.
	ram = make([]byte, 8<<20)
	if _, err := Place(img, ram, Config{VCPUs: 1}); err != nil {
		t.Fatal(err)
	}
	if xsdt := ram[le.Uint64(ram[rsdpAddr+24:]):]; le.Uint32(xsdt[4:]) != 36+8 || string(ram[mpAddr:mpAddr+4]) == "_MP_" {
		t.Fatal("tables describe APICs the machine does not have")
	}
	// A kernel whose segments cover the BIOS area keeps it: no tables.
	low, _ := Parse(elf64(0xe0000, [][4]uint64{{0xe0000, 0xe0000, 16, 0x30000}}, pvhNote(0xe0000)), "")
	ram = make([]byte, 8<<20)
	if _, err := Place(low, ram, Config{VCPUs: 1, APIC: true}); err != nil {
		t.Fatal(err)
	}
	if string(ram[rsdpAddr:rsdpAddr+8]) == "RSD PTR " || le.Uint64(ram[infoAddr+32:]) != 0 {
		t.Fatal("firmware tables written over the kernel")
	}
}
