package boot

import (
	"encoding/binary"
	"fmt"

	"vmdap/x86"
)

// The Linux/x86 boot protocol (Documentation/arch/x86/boot.rst): a bzImage
// starts with the real-mode setup code, whose setup header at 0x1f1
// describes the protected-mode kernel that follows it. vmdap loads that
// kernel at its preferred address and enters its 64-bit entry point
// (startup_64, 0x200 past the load address) in long mode with identity-
// mapped page tables and RSI pointing at the zero page (struct
// boot_params), as cloud-hypervisor's loader does. The compressed kernel
// then decompresses itself and runs the real kernel.

// Offsets in the bzImage file (and in the zero page, which embeds the
// setup header at the same offsets).
const (
	lhSetupSects   = 0x1f1
	lhBootFlag     = 0x1fe // 0xaa55
	lhJump         = 0x200 // 2-byte jump; its second byte + 0x202 ends the header
	lhHeader       = 0x202 // "HdrS"
	lhVersion      = 0x206
	lhTypeOfLoader = 0x210
	lhLoadFlags    = 0x211
	lhCode32Start  = 0x214
	lhRamdiskImage = 0x218
	lhRamdiskSize  = 0x21c
	lhCmdLinePtr   = 0x228
	lhInitrdMax    = 0x22c
	lhKernelAlign  = 0x230
	lhRelocatable  = 0x234
	lhXLoadFlags   = 0x236
	lhCmdlineSize  = 0x238
	lhPrefAddress  = 0x258
	lhInitSize     = 0x260
	lhEnd          = 0x268 // end of the fields vmdap reads (protocol 2.12 and later)

	linuxHdrMagic = 0x53726448 // "HdrS"
	// Protocol 2.12 added xloadflags and its XLF_KERNEL_64 (the 64-bit
	// entry); pref_address and init_size date from 2.10.
	linuxMinVersion = 0x020c

	loadedHigh   = 0x01 // loadflags: the protected-mode code is loaded at 0x100000 or above
	xlfKernel64  = 0x01 // xloadflags: the kernel has the 64-bit entry at 0x200
	xlfInitrdHi  = 0x02 // xloadflags: the initrd may sit above 4 GiB
	linuxEntry64 = 0x200

	// LinuxCode32Start is where a loader that runs the real-mode setup code
	// (QEMU's -kernel) places the protected-mode kernel and where the setup
	// code enters it (code32_start of every bzImage).
	LinuxCode32Start = 0x100000
)

// LinuxKernel is what a bzImage's setup header says about loading it.
type LinuxKernel struct {
	// Header is the setup header as found in the file: bytes 0x1f1 up to
	// the end the header's jump instruction gives. It is copied into the
	// zero page at the same offsets.
	Header      []byte
	Version     uint16 // boot protocol version, e.g. 0x020f for 2.15
	LoadAddr    uint64 // where the protected-mode kernel is placed (pref_address)
	InitSize    uint64 // memory the kernel needs from LoadAddr before it reads the memory map
	InitrdMax   uint64 // highest address the initrd may end at (inclusive)
	CmdlineMax  uint32 // longest command line, without the NUL
	XLoadFlags  uint16
	Relocatable bool
}

// isBzImage reports whether data starts like a Linux/x86 boot image: the
// boot-sector signature 0xaa55 at 0x1fe and "HdrS" at 0x202.
func isBzImage(data []byte) bool {
	return len(data) >= lhHeader+4 &&
		binary.LittleEndian.Uint16(data[lhBootFlag:]) == 0xaa55 &&
		binary.LittleEndian.Uint32(data[lhHeader:]) == linuxHdrMagic
}

// parseBzImage reads the setup header of a Linux/x86 boot image and
// returns the protected-mode kernel as one segment at its preferred load
// address, entered at its 64-bit entry point.
func parseBzImage(data []byte) (*Image, error) {
	if !isBzImage(data) {
		return nil, formatErr(`not a Linux bzImage: no boot-sector signature 0xaa55 at offset 0x1fe with "HdrS" at 0x202`)
	}
	if len(data) < lhVersion+2 {
		return nil, formatErr("truncated bzImage: %#x bytes end before its boot protocol version (at 0x206)", len(data))
	}
	le := binary.LittleEndian
	version := le.Uint16(data[lhVersion:])
	if version < linuxMinVersion {
		return nil, formatErr("Linux boot protocol %d.%02d is too old: vmdap needs 2.12 or later (a 64-bit entry point, xloadflags)", version>>8, version&0xff)
	}
	hdrEnd := lhHeader + int(data[lhJump+1])
	if hdrEnd < lhEnd {
		return nil, formatErr("Linux setup header ends at %#x (jump byte at 0x201), before the fields of protocol %d.%02d (%#x)", hdrEnd, version>>8, version&0xff, lhEnd)
	}
	if hdrEnd > len(data) {
		return nil, formatErr("truncated bzImage: the setup header needs %#x bytes, the file has %#x", hdrEnd, len(data))
	}
	sects := int(data[lhSetupSects])
	if sects == 0 {
		sects = 4 // the boot protocol's rule for old images
	}
	kernelOff := (sects + 1) * 512
	if kernelOff >= len(data) {
		return nil, formatErr("truncated bzImage: %d setup sectors put the protected-mode kernel at %#x, the file has %#x bytes", sects, kernelOff, len(data))
	}
	if data[lhLoadFlags]&loadedHigh == 0 {
		return nil, formatErr("not a bzImage: loadflags %#x lacks LOADED_HIGH (a zImage loads below 1 MiB; vmdap boots bzImages)", data[lhLoadFlags])
	}
	xlf := le.Uint16(data[lhXLoadFlags:])
	if xlf&xlfKernel64 == 0 {
		return nil, formatErr("the bzImage has no 64-bit entry point (xloadflags %#x lacks XLF_KERNEL_64): vmdap boots x86-64 kernels", xlf)
	}
	k := &LinuxKernel{
		Header:      append([]byte(nil), data[lhSetupSects:hdrEnd]...),
		Version:     version,
		LoadAddr:    le.Uint64(data[lhPrefAddress:]),
		InitSize:    uint64(le.Uint32(data[lhInitSize:])),
		InitrdMax:   uint64(le.Uint32(data[lhInitrdMax:])),
		CmdlineMax:  le.Uint32(data[lhCmdlineSize:]),
		XLoadFlags:  xlf,
		Relocatable: data[lhRelocatable] != 0,
	}
	if align := uint64(le.Uint32(data[lhKernelAlign:])); align > 1 && k.Relocatable && k.LoadAddr%align != 0 {
		k.LoadAddr = (k.LoadAddr + align - 1) &^ (align - 1)
	}
	if k.LoadAddr < 0x100000 {
		return nil, formatErr("the bzImage prefers load address %#x, below 1 MiB", k.LoadAddr)
	}
	pm := data[kernelOff:]
	mem := uint64(len(pm))
	if k.InitSize > mem {
		mem = k.InitSize
	}
	if k.LoadAddr > MaxRAM || mem > MaxRAM-k.LoadAddr {
		return nil, formatErr("the bzImage wants [%#x,%#x) (pref_address + init_size), beyond the largest guest RAM (%d GiB)", k.LoadAddr, k.LoadAddr+mem, MaxRAM>>30)
	}
	seg := Segment{Phys: k.LoadAddr, Virt: k.LoadAddr, Data: pm, MemSize: mem}
	return &Image{Protocol: ProtoLinux, Entry: k.LoadAddr + linuxEntry64, Segments: []Segment{seg}, Class: 64, Linux: k}, nil
}

// String describes the kernel for logs.
func (k *LinuxKernel) String() string {
	return fmt.Sprintf("Linux boot protocol %d.%02d, load %#x, init_size %d MiB", k.Version>>8, k.Version&0xff, k.LoadAddr, k.InitSize>>20)
}

// Offsets in the zero page (struct boot_params,
// arch/x86/include/uapi/asm/bootparam.h) outside the setup header.
const (
	zpACPIRSDP       = 0x070
	zpExtRamdiskImg  = 0x0c0
	zpExtRamdiskSize = 0x0c4
	zpExtCmdLinePtr  = 0x0c8
	zpE820Entries    = 0x1e8
	zpE820Table      = 0x2d0
	zpE820Max        = 128
	loaderUndefined  = 0xff // type_of_loader: a boot loader without an assigned id
)

// writeZeroPage fills the zero page for the 64-bit entry: the setup header
// copied from the image, then what the boot loader owns: loader type,
// command line, initrd, the e820 memory map and the ACPI RSDP.
func writeZeroPage(ram []byte, k *LinuxKernel, cmd string, initrd memRegion, rsdp uint64) uint64 {
	le := binary.LittleEndian
	zp := ram[zeroPageAddr : zeroPageAddr+0x1000]
	clear(zp)
	copy(zp[lhSetupSects:], k.Header)
	zp[lhTypeOfLoader] = loaderUndefined
	le.PutUint32(zp[lhCode32Start:], uint32(k.LoadAddr))
	writeCmdline(ram, cmd)
	le.PutUint32(zp[lhCmdLinePtr:], cmdAddr)
	le.PutUint32(zp[zpExtCmdLinePtr:], 0)
	le.PutUint32(zp[lhRamdiskImage:], uint32(initrd.addr))
	le.PutUint32(zp[lhRamdiskSize:], uint32(initrd.size))
	le.PutUint32(zp[zpExtRamdiskImg:], uint32(initrd.addr>>32))
	le.PutUint32(zp[zpExtRamdiskSize:], uint32(initrd.size>>32))
	le.PutUint64(zp[zpACPIRSDP:], rsdp)
	mm := memoryMap(uint64(len(ram)))
	for i, r := range mm {
		e := zp[zpE820Table+20*i:]
		le.PutUint64(e[0:], r.addr)
		le.PutUint64(e[8:], r.size)
		le.PutUint32(e[16:], r.typ)
	}
	zp[zpE820Entries] = byte(len(mm))
	return zeroPageAddr
}

// Selectors the 64-bit boot protocol asks for: __BOOT_CS and __BOOT_DS.
const (
	linuxBootCS  = 0x10
	linuxBootDS  = 0x18
	linuxBootTSS = 0x20
)

// writeLinuxGDT writes the GDT of the Linux 64-bit entry: flat 64-bit code
// at __BOOT_CS (0x10), flat data at __BOOT_DS (0x18), the TSS at 0x20.
func writeLinuxGDT(ram []byte) {
	put := func(off int, v uint64) { binary.LittleEndian.PutUint64(ram[linuxGDTAddr+off:], v) }
	put(0x00, 0)
	put(0x08, 0)
	put(0x10, 0x00af9b000000ffff)
	put(0x18, 0x00cf93000000ffff)
	put(0x20, tssDescriptor())
	put(0x28, 0)
}

func linuxSRegs(cr3 uint64) x86.SRegs {
	s := longModeSRegs(cr3)
	s.CS = seg(linuxBootCS, 11, true, false)
	data := seg(linuxBootDS, 3, false, true)
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR.Selector = linuxBootTSS
	s.GDT = x86.Table{Base: linuxGDTAddr, Limit: 0x2f}
	return s
}
