package boot

import (
	"encoding/binary"
	"fmt"

	"vmdap/x86"
)

// Guest-physical layout of the boot area vmdap writes for every protocol.
// A kernel's segments must not overlap [BootAreaStart, BootAreaEnd).
const (
	BootAreaStart = 0x500
	BootAreaEnd   = 0x80000

	gdtAddr    = 0x500
	gdtLimit   = 0x37
	tssAddr    = 0x600
	infoAddr   = 0x9000 // multiboot info / hvm_start_info
	mmapAddr   = 0x9100 // memory map entries
	cmdAddr    = 0x9400 // kernel command line
	cmdMax     = 0xb00  // bytes, including the NUL
	nameAddr   = 0x9f00 // boot loader name
	tablesAddr = 0x10000
	tablesEnd  = 0x80000
	// The 32-bit protocols build no page tables: their variable-size
	// boot information (Multiboot 2's tags, Multiboot 1's module list)
	// goes there instead.
	mb2InfoAddr = tablesAddr
	mb2InfoEnd  = tablesEnd

	zeroPageAddr = 0x7000 // Linux boot_params
	linuxGDTAddr = 0x8000 // Linux's boot GDT: __BOOT_CS 0x10, __BOOT_DS 0x18
	modlistAddr  = 0x9080 // PVH module list (the initrd)

	// Selectors of the boot GDT.
	SelCode64 = 0x08
	SelData   = 0x10
	SelTSS    = 0x18
	SelCode32 = 0x28

	// DefaultStackSize is each vCPU's stack region at the top of RAM.
	DefaultStackSize = 64 << 10
	// MinRAM and MaxRAM bound the guest RAM size.
	MinRAM = 4 << 20
	MaxRAM = 64 << 30
)

// Config describes the machine an image is placed into.
type Config struct {
	VCPUs     int
	Cmdline   string
	StackSize uint64 // per vCPU; DefaultStackSize when 0
	// Initrd is an initial RAM disk: a Linux kernel's (boot_params), a
	// PVH module placed as high in RAM as the kernel allows, or the first
	// Multiboot module.
	Initrd []byte
	// Modules are loaded after the image, page-aligned, and described to
	// Multiboot 1 and 2 kernels.
	Modules []Module
	// APIC says the machine has local APICs and an IOAPIC (KVM's in-kernel
	// irqchip): the firmware tables then describe them (ACPI MADT, MP
	// table), so a kernel finds every vCPU.
	APIC bool
}

// CPUState is one vCPU's register state at entry.
type CPUState struct {
	Regs  x86.Regs
	SRegs x86.SRegs
	// Halted vCPUs wait (application processors under the protocols that
	// start only the boot processor): with local APICs, for the INIT and
	// startup IPIs the guest sends them.
	Halted bool
}

// Place copies img into ram (guest-physical memory starting at 0), writes
// the boot structures of its protocol and the firmware tables (ACPI, MP),
// places the initrd, and returns each vCPU's entry state.
func Place(img *Image, ram []byte, cfg Config) ([]CPUState, error) {
	size := uint64(len(ram))
	if size < MinRAM || size > MaxRAM {
		return nil, fmt.Errorf("guest RAM of %d MiB is out of range (%d MiB to %d GiB)", size>>20, MinRAM>>20, MaxRAM>>30)
	}
	if cfg.VCPUs < 1 {
		return nil, fmt.Errorf("need at least one vCPU, got %d", cfg.VCPUs)
	}
	stack := cfg.StackSize
	if stack == 0 {
		stack = DefaultStackSize
	}
	if uint64(cfg.VCPUs)*stack >= size {
		return nil, fmt.Errorf("%d vCPU stacks of %d KiB do not fit in %d MiB of guest RAM", cfg.VCPUs, stack>>10, size>>20)
	}
	stacksStart := size - uint64(cfg.VCPUs)*stack
	if len(cfg.Cmdline) >= cmdMax {
		return nil, fmt.Errorf("kernel command line is %d bytes, the limit is %d", len(cfg.Cmdline), cmdMax-1)
	}
	if img.Linux != nil && uint64(len(cfg.Cmdline)) > uint64(img.Linux.CmdlineMax) {
		return nil, fmt.Errorf("kernel command line is %d bytes, this kernel takes at most %d (cmdline_size)", len(cfg.Cmdline), img.Linux.CmdlineMax)
	}
	if len(cfg.Initrd) > 0 && img.Protocol == ProtoELF64 {
		return nil, fmt.Errorf("an initrd needs a boot protocol that passes one (linux, pvh, multiboot or multiboot2); the 64-bit direct entry (elf64) has none")
	}
	if len(cfg.Modules) > 0 && (img.Protocol == ProtoELF64 || img.Protocol == ProtoLinux) {
		return nil, fmt.Errorf("modules are given to Multiboot kernels only; this one boots through %s", img.Protocol)
	}
	for _, s := range img.Segments {
		end := s.Phys + s.MemSize
		what := "segment"
		if img.Linux != nil {
			what = "kernel (pref_address + init_size)"
		}
		switch {
		case end > size:
			return nil, fmt.Errorf("guest image: %s [%#x,%#x) %w of %d MiB", what, s.Phys, end, ErrNoRAM, size>>20)
		case s.Phys < BootAreaEnd && end > BootAreaStart:
			return nil, fmt.Errorf("guest image: %s [%#x,%#x) overlaps vmdap's boot area [%#x,%#x); link the kernel at 1 MiB or above", what, s.Phys, end, BootAreaStart, BootAreaEnd)
		case end > stacksStart:
			return nil, fmt.Errorf("guest image: %s [%#x,%#x) overlaps the vCPU stacks at [%#x,%#x); give the guest more memory", what, s.Phys, end, stacksStart, size)
		}
	}
	for i := range ram[:BootAreaEnd] {
		ram[i] = 0
	}
	for _, s := range img.Segments {
		dst := ram[s.Phys : s.Phys+s.MemSize]
		n := copy(dst, s.Data)
		clear(dst[n:])
	}
	writeGDT(ram)
	rsdp := writeFirmwareTables(ram, img, cfg)
	var initrd memRegion
	if img.Protocol == ProtoLinux || img.Protocol == ProtoPVH {
		var err error
		if initrd, err = placeInitrd(ram, img, cfg.Initrd, stacksStart); err != nil {
			return nil, err
		}
	}

	cpus := make([]CPUState, cfg.VCPUs)
	for i := range cpus {
		cpus[i].Regs.RSP = size - uint64(i)*stack - 16
		cpus[i].Regs.RFLAGS = x86.FlagsFix
	}
	switch img.Protocol {
	case ProtoELF64:
		cr3, err := buildPageTables(ram, img)
		if err != nil {
			return nil, err
		}
		for i := range cpus {
			c := &cpus[i]
			c.SRegs = longModeSRegs(cr3)
			c.Regs.RIP = img.Entry
			c.Regs.RDI = uint64(i)
			c.Regs.RSI = uint64(cfg.VCPUs)
		}
	case ProtoLinux:
		cr3, err := buildPageTables(ram, img)
		if err != nil {
			return nil, err
		}
		zp := writeZeroPage(ram, img.Linux, cfg.Cmdline, initrd, rsdp)
		writeLinuxGDT(ram)
		for i := range cpus {
			c := &cpus[i]
			c.SRegs = linuxSRegs(cr3)
			c.Regs.RIP = img.Entry
			c.Regs.RSI = zp
			c.Halted = i > 0
		}
	case ProtoMultiboot, ProtoMultiboot2, ProtoPVH:
		var info uint64
		var placed [][2]uint64
		mods := cfg.Modules
		if len(cfg.Initrd) > 0 && img.Protocol != ProtoPVH {
			mods = append([]Module{{Data: cfg.Initrd, Cmdline: "initrd"}}, mods...)
		}
		if len(mods) > 0 {
			if img.Protocol == ProtoPVH {
				return nil, fmt.Errorf("modules are given to Multiboot kernels only; this one boots through PVH (which takes an initrd)")
			}
			var err error
			if placed, err = placeModules(ram, img, mods, stacksStart); err != nil {
				return nil, err
			}
		}
		magic := uint64(0)
		switch img.Protocol {
		case ProtoMultiboot:
			info = writeMultibootInfo(ram, cfg.Cmdline)
			writeMultibootModules(ram, mods, placed)
			magic = MultibootBootloaderMagic
		case ProtoMultiboot2:
			var err error
			if info, err = writeMultiboot2Info(ram, img, cfg.Cmdline, mods, placed, rsdp); err != nil {
				return nil, err
			}
			magic = Multiboot2BootloaderMagic
		default:
			info = writeStartInfo(ram, cfg.Cmdline, initrd, rsdp)
		}
		for i := range cpus {
			c := &cpus[i]
			c.SRegs = protectedModeSRegs()
			c.Regs.RIP = img.Entry
			c.Regs.RBX = info
			c.Regs.RAX = magic
			c.Halted = i > 0
		}
	default:
		return nil, fmt.Errorf("guest image: no boot protocol chosen")
	}
	return cpus, nil
}

// memRegion is a placed blob: its guest-physical address and size.
type memRegion struct{ addr, size uint64 }

// placeInitrd copies the initrd page-aligned as high as the kernel allows:
// below the vCPU stacks, below 4 GiB (or the bzImage's initrd_addr_max),
// above the kernel's segments.
func placeInitrd(ram []byte, img *Image, initrd []byte, top uint64) (memRegion, error) {
	if len(initrd) == 0 {
		return memRegion{}, nil
	}
	if top > 1<<32 {
		top = 1 << 32
	}
	if k := img.Linux; k != nil && k.XLoadFlags&xlfInitrdHi == 0 && k.InitrdMax > 0 && k.InitrdMax+1 < top {
		top = k.InitrdMax + 1
	}
	var low uint64 = 0x100000
	for _, s := range img.Segments {
		if e := s.Phys + s.MemSize; e > low {
			low = e
		}
	}
	n := uint64(len(initrd))
	if n > top || (top-n)&^0xfff < low {
		return memRegion{}, fmt.Errorf("the initrd of %d KiB does not fit in guest RAM between the kernel's end %#x and %#x: give the guest more memory", n>>10, low, top)
	}
	addr := (top - n) &^ 0xfff
	copy(ram[addr:], initrd)
	return memRegion{addr, n}, nil
}

func writeGDT(ram []byte) {
	put := func(off int, v uint64) { binary.LittleEndian.PutUint64(ram[gdtAddr+off:], v) }
	put(0x00, 0)
	put(0x08, 0x00af9b000000ffff) // 64-bit code, DPL0
	put(0x10, 0x00cf93000000ffff) // data, 4 GiB
	put(0x18, tssDescriptor())
	put(0x20, 0)
	put(0x28, 0x00cf9b000000ffff) // 32-bit code, 4 GiB
	put(0x30, 0x00009b000000ffff) // 16-bit code
}

// tssDescriptor is the low half of the 16-byte 64-bit TSS descriptor: base
// tssAddr, limit 0x67, type 9 (available), present.
func tssDescriptor() uint64 {
	return uint64(0x67) | uint64(tssAddr&0xffffff)<<16 | uint64(0x89)<<40 | uint64(tssAddr>>24&0xff)<<56
}

func seg(sel uint16, typ uint8, l, db bool) x86.Segment {
	return x86.Segment{Base: 0, Limit: 0xffffffff, Selector: sel, Type: typ, Present: true, S: true, L: l, DB: db, G: true}
}

func commonSRegs() x86.SRegs {
	var s x86.SRegs
	data := seg(SelData, 3, false, true)
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = x86.Segment{Base: tssAddr, Limit: 0x67, Selector: SelTSS, Type: 11, Present: true}
	s.LDT = x86.Segment{Type: 2, Unusable: true}
	s.GDT = x86.Table{Base: gdtAddr, Limit: gdtLimit}
	return s
}

func longModeSRegs(cr3 uint64) x86.SRegs {
	s := commonSRegs()
	s.CS = seg(SelCode64, 11, true, false)
	s.CR0 = x86.CR0PG | x86.CR0WP | x86.CR0NE | x86.CR0ET | x86.CR0MP | x86.CR0PE
	s.CR3 = cr3
	s.CR4 = x86.CR4OSXMMEXCPT | x86.CR4OSFXSR | x86.CR4PAE | x86.CR4DE
	s.EFER = x86.EFERNXE | x86.EFERLMA | x86.EFERLME | x86.EFERSCE
	return s
}

func protectedModeSRegs() x86.SRegs {
	s := commonSRegs()
	s.CS = seg(SelCode32, 11, false, true)
	s.CR0 = x86.CR0PE | x86.CR0ET
	return s
}

// pageTables allocates 4 KiB tables from the boot area.
type pageTables struct {
	ram  []byte
	next uint64
}

func (p *pageTables) alloc() (uint64, error) {
	if p.next+0x1000 > tablesEnd {
		return 0, fmt.Errorf("guest image: too many page tables for the boot area")
	}
	a := p.next
	p.next += 0x1000
	return a, nil
}

func (p *pageTables) entry(table uint64, idx uint64) uint64 {
	return binary.LittleEndian.Uint64(p.ram[table+idx*8:])
}

func (p *pageTables) set(table, idx, v uint64) { binary.LittleEndian.PutUint64(p.ram[table+idx*8:], v) }

// child returns the table an entry points to, allocating it if absent.
func (p *pageTables) child(table, idx uint64) (uint64, error) {
	e := p.entry(table, idx)
	if e&1 != 0 {
		return e & 0x000ffffffffff000, nil
	}
	c, err := p.alloc()
	if err != nil {
		return 0, err
	}
	p.set(table, idx, c|3) // present, writable
	return c, nil
}

// LAPICBase is the local APIC's default physical address.
const LAPICBase = 0xfee00000

// map2M maps one 2 MiB page va → pa.
func (p *pageTables) map2M(pml4, va, pa uint64) error {
	return p.map2MFlags(pml4, va, pa, 0x83) // present, writable, 2 MiB
}

func (p *pageTables) map2MFlags(pml4, va, pa, flags uint64) error {
	pdpt, err := p.child(pml4, va>>39&0x1ff)
	if err != nil {
		return err
	}
	pd, err := p.child(pdpt, va>>30&0x1ff)
	if err != nil {
		return err
	}
	p.set(pd, va>>21&0x1ff, pa|flags)
	return nil
}

// buildPageTables identity-maps guest RAM with 2 MiB pages and maps each
// segment linked at a virtual address other than its physical one.
func buildPageTables(ram []byte, img *Image) (uint64, error) {
	pt := &pageTables{ram: ram, next: tablesAddr}
	pml4, err := pt.alloc()
	if err != nil {
		return 0, err
	}
	size := uint64(len(ram))
	for a := uint64(0); a < size; a += 2 << 20 {
		if err := pt.map2M(pml4, a, a); err != nil {
			return 0, err
		}
	}
	// The local APIC's page (identity, uncached), for guests that use
	// interrupts.
	if err := pt.map2MFlags(pml4, LAPICBase, LAPICBase, 0x83|0x18); err != nil {
		return 0, err
	}
	for _, s := range img.Segments {
		if s.Virt == s.Phys {
			continue
		}
		if (s.Virt-s.Phys)%(2<<20) != 0 {
			return 0, fmt.Errorf("guest image: segment linked at %#x loads at %#x; the difference must be a multiple of 2 MiB", s.Virt, s.Phys)
		}
		if !canonical(s.Virt) || !canonical(s.Virt+s.MemSize-1) {
			return 0, fmt.Errorf("guest image: segment virtual address %#x is not canonical", s.Virt)
		}
		for off := uint64(0); off < s.MemSize+(s.Virt&(2<<20-1)); off += 2 << 20 {
			va := (s.Virt &^ (2<<20 - 1)) + off
			if err := pt.map2M(pml4, va, va-s.Virt+s.Phys); err != nil {
				return 0, err
			}
		}
	}
	return pml4, nil
}

func canonical(va uint64) bool {
	top := va >> 47
	return top == 0 || top == 0x1ffff
}

// E820 types used in the memory maps.
const (
	e820RAM      = 1
	e820Reserved = 2
)

type memRange struct {
	addr, size uint64
	typ        uint32
}

func memoryMap(ram uint64) []memRange {
	return []memRange{
		{0, 0x9fc00, e820RAM},
		{0x9fc00, 0x100000 - 0x9fc00, e820Reserved},
		{0x100000, ram - 0x100000, e820RAM},
	}
}

func writeCmdline(ram []byte, cmd string) {
	copy(ram[cmdAddr:], cmd)
	ram[cmdAddr+len(cmd)] = 0
}

// writeMultibootInfo writes the Multiboot 1 information structure
// (Multiboot Specification 0.6.96 §3.3) with mem_lower/upper, the command
// line, a memory map and the boot loader name.
func writeMultibootInfo(ram []byte, cmd string) uint64 {
	size := uint64(len(ram))
	le := binary.LittleEndian
	mbi := ram[infoAddr:]
	const (
		flagMem     = 1 << 0
		flagCmdline = 1 << 2
		flagMmap    = 1 << 6
		flagName    = 1 << 9
	)
	le.PutUint32(mbi[0:], flagMem|flagCmdline|flagMmap|flagName)
	le.PutUint32(mbi[4:], 640)
	le.PutUint32(mbi[8:], uint32((size-0x100000)>>10))
	writeCmdline(ram, cmd)
	le.PutUint32(mbi[16:], cmdAddr)
	n := 0
	for _, r := range memoryMap(size) {
		e := ram[mmapAddr+n*24:]
		le.PutUint32(e[0:], 20)
		le.PutUint64(e[4:], r.addr)
		le.PutUint64(e[12:], r.size)
		le.PutUint32(e[20:], r.typ)
		n++
	}
	le.PutUint32(mbi[44:], uint32(n*24))
	le.PutUint32(mbi[48:], mmapAddr)
	copy(ram[nameAddr:], "vmdap\x00")
	le.PutUint32(mbi[64:], nameAddr)
	return infoAddr
}

// writeMultibootModules adds the module list to a Multiboot 1
// information structure (flags bit 3, mods_count, mods_addr): 16-byte
// entries (mod_start, mod_end, string, reserved) and their strings, in the
// boot area.
func writeMultibootModules(ram []byte, mods []Module, placed [][2]uint64) {
	if len(mods) == 0 {
		return
	}
	le := binary.LittleEndian
	mbi := ram[infoAddr:]
	list := uint64(mb2InfoAddr)
	str := list + uint64(16*len(mods))
	for i, m := range mods {
		e := ram[list+uint64(16*i):]
		le.PutUint32(e[0:], uint32(placed[i][0]))
		le.PutUint32(e[4:], uint32(placed[i][1]))
		le.PutUint32(e[8:], uint32(str))
		le.PutUint32(e[12:], 0)
		n := copy(ram[str:mb2InfoEnd-1], m.Cmdline)
		ram[str+uint64(n)] = 0
		str += uint64(n) + 1
	}
	le.PutUint32(mbi[0:], le.Uint32(mbi[0:])|1<<3)
	le.PutUint32(mbi[20:], uint32(len(mods)))
	le.PutUint32(mbi[24:], uint32(list))
}

// PVH hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h).
const (
	PVHStartMagic = 0x336ec578
)

func writeStartInfo(ram []byte, cmd string, initrd memRegion, rsdp uint64) uint64 {
	size := uint64(len(ram))
	le := binary.LittleEndian
	si := ram[infoAddr:]
	le.PutUint32(si[0:], PVHStartMagic)
	le.PutUint32(si[4:], 1) // version
	if initrd.size > 0 {
		// nr_modules, modlist_paddr; one hvm_modlist_entry {paddr, size,
		// cmdline_paddr, reserved}.
		le.PutUint32(si[12:], 1)
		le.PutUint64(si[16:], modlistAddr)
		le.PutUint64(ram[modlistAddr:], initrd.addr)
		le.PutUint64(ram[modlistAddr+8:], initrd.size)
	}
	le.PutUint64(si[32:], rsdp)
	writeCmdline(ram, cmd)
	le.PutUint64(si[24:], cmdAddr)
	mm := memoryMap(size)
	for i, r := range mm {
		e := ram[mmapAddr+i*24:]
		le.PutUint64(e[0:], r.addr)
		le.PutUint64(e[8:], r.size)
		le.PutUint32(e[16:], r.typ)
	}
	le.PutUint64(si[40:], mmapAddr)
	le.PutUint32(si[48:], uint32(len(mm)))
	return infoAddr
}
