package boot

import (
	"encoding/binary"
	"strings"
)

// Firmware tables: what a PC's BIOS leaves in the reserved area below
// 1 MiB for the kernel to find its processors, interrupt controllers and
// power control. vmdap writes the minimal set Firecracker and
// cloud-hypervisor give their guests:
//
//   - ACPI (ACPI 6.4 §5.2): the RSDP at 0xe0000 (found by the scan of
//     0xe0000-0xfffff, by boot_params.acpi_rsdp_addr and by PVH's
//     rsdp_paddr), an XSDT and an RSDT (for ACPI 1.0 readers such as
//     xv6-x86_64), a hardware-reduced FADT whose sleep control register
//     powers the machine off, a DSDT declaring \_S5 and COM1, and with
//     local APICs a MADT: one local APIC per vCPU and the IOAPIC.
//   - With local APICs, an Intel MultiProcessor Specification 1.4 table at
//     0xf0000: a processor entry per vCPU, an ISA bus, the IOAPIC and its
//     interrupt assignments (for kernels that read MP tables, such as the
//     32-bit xv6).
//
// The tables are skipped when the kernel's own segments cover that area.
const (
	firmwareStart = 0xe0000
	firmwareEnd   = 0x100000
	rsdpAddr      = 0xe0000
	mpAddr        = 0xf0000

	// IOAPICBase is the IOAPIC's physical address (KVM's in-kernel IOAPIC).
	IOAPICBase = 0xfec00000
	ioapicID   = 0 // what KVM's IOAPIC ID register reads after reset

	// ACPI power control: the FADT's hardware-reduced sleep control and
	// status registers are I/O ports. A write of SLP_EN with sleep type 5
	// (\_S5, soft off) to SleepControlPort powers the machine off. The
	// reset register asks for a reboot with ResetValue.
	SleepControlPort = 0x600
	SleepStatusPort  = 0x601
	ResetPort        = 0x602
	ResetValue       = 0x01
	// SleepTypeS5 is the SLP_TYP the DSDT's \_S5 gives; SleepEnable is
	// SLP_EN in the sleep control register (ACPI 6.4 §4.8.3.7).
	SleepTypeS5 = 5
	SleepEnable = 0x20
)

// writeFirmwareTables writes the ACPI and MP tables and returns the RSDP's
// address, or 0 when the image's segments cover the area.
func writeFirmwareTables(ram []byte, img *Image, cfg Config) uint64 {
	for _, s := range img.Segments {
		if s.Phys < firmwareEnd && s.Phys+s.MemSize > firmwareStart {
			return 0
		}
	}
	clear(ram[firmwareStart:firmwareEnd])
	writeACPI(ram, cfg)
	if cfg.APIC {
		writeMPTable(ram, cfg.VCPUs)
	}
	return rsdpAddr
}

// acpiChecksum returns the byte that makes b sum to zero.
func acpiChecksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return -s
}

// sdt builds a system description table: the 36-byte header (ACPI 6.4
// §5.2.6) followed by body, with its checksum.
func sdt(sig string, rev byte, body []byte) []byte {
	t := make([]byte, 36+len(body))
	le := binary.LittleEndian
	copy(t[0:4], sig)
	le.PutUint32(t[4:], uint32(len(t)))
	t[8] = rev
	copy(t[10:16], "VMDAP ")
	copy(t[16:24], "VMDAP"+sig[:3])
	le.PutUint32(t[24:], 1) // OEM revision
	copy(t[28:32], "VMDP")  // creator id
	le.PutUint32(t[32:], 1) // creator revision
	copy(t[36:], body)
	t[9] = acpiChecksum(t)
	return t
}

// gas is a Generic Address Structure (ACPI 6.4 §5.2.3.2) for a byte-wide
// I/O port.
func gas(port uint16) []byte {
	g := make([]byte, 12)
	g[0] = 1 // system I/O space
	g[1] = 8 // bit width
	g[3] = 1 // byte access
	binary.LittleEndian.PutUint64(g[4:], uint64(port))
	return g
}

// FADT flags and IA-PC boot architecture flags (ACPI 6.4 §5.2.9).
const (
	fadtPwrButton   = 1 << 4  // no fixed power button
	fadtSlpButton   = 1 << 5  // no fixed sleep button
	fadtResetRegSup = 1 << 10 // RESET_REG is supported
	fadtHWReduced   = 1 << 20 // HW_REDUCED_ACPI
	bootArchNoVGA   = 1 << 2
	bootArchNoRTC   = 1 << 5 // CMOS RTC not present
)

func fadt(dsdt uint64) []byte {
	b := make([]byte, 276-36) // FADT revision 6
	le := binary.LittleEndian
	at := func(off int) []byte { return b[off-36:] }
	le.PutUint32(at(40), uint32(dsdt))
	// No 8042 (bit 1 clear): there is no keyboard controller to probe.
	le.PutUint16(at(109), bootArchNoVGA|bootArchNoRTC)
	le.PutUint32(at(112), fadtPwrButton|fadtSlpButton|fadtResetRegSup|fadtHWReduced)
	copy(at(116), gas(ResetPort))
	at(128)[0] = ResetValue
	at(131)[0] = 4 // FADT minor version (6.4)
	le.PutUint64(at(140), dsdt)
	copy(at(244), gas(SleepControlPort))
	copy(at(256), gas(SleepStatusPort))
	copy(at(268), "VMDAP\x00\x00\x00") // hypervisor vendor identity
	return sdt("FACP", 6, b)
}

// dsdtAML is the DSDT's definition block (ACPI 6.4 §19, AML encoding
// §20.2): Name (_S5, Package () {5, 0, 0, 0}), the soft-off sleep type
// (§7.4.2), and COM1 as a device, \_SB.COM1: EisaId ("PNP0501") with its
// I/O ports and, with irq, IRQNoFlags () {4}, as QEMU's microvm and
// cloud-hypervisor declare it. A hardware-reduced machine has no legacy
// interrupts: Linux maps IRQ 4 to the IOAPIC only for a device that names
// it, and its tty on the ISA port it knows by default could not request
// the interrupt and failed every write (EIO); a COM1 without one is
// polled.
func dsdtAML(irq bool) []byte {
	crs := []byte{
		0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, // IO (Decode16, 0x3f8, 0x3f8, 0, 8)
	}
	if irq {
		crs = append(crs, 0x22, 1<<4, 0x00) // IRQNoFlags () {4}
	}
	crs = append(crs, 0x79, 0x00) // end tag
	dev := []byte("COM1")
	dev = append(dev, 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01) // Name (_HID, EisaId ("PNP0501"))
	dev = append(dev, 0x08, '_', 'U', 'I', 'D', 0x01)                         // Name (_UID, One)
	dev = append(dev, 0x08, '_', 'C', 'R', 'S')                               // Name (_CRS, Buffer () {…})
	dev = append(dev, amlPkg([]byte{0x11}, append([]byte{0x0a, byte(len(crs))}, crs...))...)
	sb := append([]byte{'\\', '_', 'S', 'B', '_'}, amlPkg([]byte{0x5b, 0x82}, dev)...) // Device (COM1)
	b := []byte{
		0x08, '_', 'S', '5', '_', // NameOp "_S5_"
		0x12, 0x07, 0x04, // PackageOp, PkgLength 7, 4 elements
		0x0a, SleepTypeS5, // BytePrefix 5
		0x00, 0x00, 0x00, // ZeroOp ×3
	}
	return append(b, amlPkg([]byte{0x10}, sb)...) // Scope (\_SB)
}

// noIOAPIC reports whether a Linux command line turns the IOAPIC off
// (nosmp and maxcpus=0 imply noapic; nolapic takes the local APICs and
// the IOAPIC with them). A hardware-reduced machine then has no interrupt
// controller for COM1: its tty is polled, which works, rather than given
// IRQ 4, which Linux could not request.
func noIOAPIC(cmdline string) bool {
	for _, f := range strings.Fields(cmdline) {
		switch f {
		case "--":
			return false // the rest is init's
		case "nosmp", "noapic", "nolapic", "maxcpus=0":
			return true
		}
	}
	return false
}

// amlPkg encodes op, then the PkgLength of body (which counts itself, in
// one byte up to 63, else two: ACPI 6.4 §20.2.4), then body.
func amlPkg(op, body []byte) []byte {
	out := append([]byte(nil), op...)
	if n := len(body) + 1; n <= 0x3f {
		out = append(out, byte(n))
	} else {
		n++
		out = append(out, 0x40|byte(n&0xf), byte(n>>4))
	}
	return append(out, body...)
}

// madt describes one local APIC per vCPU (APIC id = vCPU index) and the
// IOAPIC with GSI base 0 (ACPI 6.4 §5.2.12).
func madt(vcpus int) []byte {
	le := binary.LittleEndian
	b := make([]byte, 8, 8+8*vcpus+12)
	le.PutUint32(b[0:], LAPICBase)
	le.PutUint32(b[4:], 1) // PCAT_COMPAT: KVM's irqchip has the dual 8259
	for i := 0; i < vcpus; i++ {
		b = append(b, 0, 8, byte(i), byte(i), 1, 0, 0, 0) // processor local APIC, enabled
	}
	io := []byte{1, 12, ioapicID, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	le.PutUint32(io[4:], IOAPICBase)
	return sdt("APIC", 5, append(b, io...))
}

func writeACPI(ram []byte, cfg Config) {
	le := binary.LittleEndian
	next := uint64(rsdpAddr + 0x40)
	put := func(t []byte) uint64 {
		a := next
		copy(ram[a:], t)
		next = (a + uint64(len(t)) + 15) &^ 15
		return a
	}
	dsdt := put(sdt("DSDT", 2, dsdtAML(cfg.APIC && !noIOAPIC(cfg.Cmdline))))
	tables := []uint64{put(fadt(dsdt))}
	if cfg.APIC {
		tables = append(tables, put(madt(cfg.VCPUs)))
	}
	xs := make([]byte, 8*len(tables))
	rs := make([]byte, 4*len(tables))
	for i, a := range tables {
		le.PutUint64(xs[8*i:], a)
		le.PutUint32(rs[4*i:], uint32(a))
	}
	xsdt := put(sdt("XSDT", 1, xs))
	rsdt := put(sdt("RSDT", 1, rs))

	// RSDP, revision 2 (ACPI 6.4 §5.2.5.3): the first 20 bytes have their
	// own checksum, the whole 36 the extended one.
	r := ram[rsdpAddr : rsdpAddr+36]
	copy(r[0:8], "RSD PTR ")
	copy(r[9:15], "VMDAP ")
	r[15] = 2
	le.PutUint32(r[16:], uint32(rsdt))
	le.PutUint32(r[20:], 36)
	le.PutUint64(r[24:], xsdt)
	r[8] = acpiChecksum(r[:20])
	r[32] = acpiChecksum(r)
}

// writeMPTable writes the MP floating pointer structure and the MP
// configuration table (Intel MultiProcessor Specification 1.4, chapter 4).
func writeMPTable(ram []byte, vcpus int) {
	le := binary.LittleEndian
	const cfgAddr = mpAddr + 16
	var e []byte
	for i := 0; i < vcpus; i++ {
		p := make([]byte, 20)
		p[0] = 0 // processor
		p[1] = byte(i)
		p[2] = 0x14 // local APIC version
		p[3] = 1    // enabled
		if i == 0 {
			p[3] |= 2 // boot processor
		}
		le.PutUint32(p[4:], 0x600) // CPU signature: family 6
		le.PutUint32(p[8:], 0x201) // features: FPU, APIC
		e = append(e, p...)
	}
	e = append(e, 1, 0, 'I', 'S', 'A', ' ', ' ', ' ') // bus 0: ISA
	io := []byte{2, ioapicID, 0x11, 1, 0, 0, 0, 0}    // IOAPIC, version 0x11, enabled
	le.PutUint32(io[4:], IOAPICBase)
	e = append(e, io...)
	n := vcpus + 2
	for irq := byte(0); irq < 16; irq++ {
		// ISA IRQ n → IOAPIC pin n, as KVM's default routing has it.
		e = append(e, 3, 0, 0, 0, 0, irq, ioapicID, irq)
		n++
	}
	e = append(e, 4, 3, 0, 0, 0, 0, 0xff, 0) // ExtINT → LINT0 of every local APIC
	e = append(e, 4, 1, 0, 0, 0, 0, 0xff, 1) // NMI → LINT1
	n += 2

	h := ram[cfgAddr : cfgAddr+44]
	copy(h[0:4], "PCMP")
	le.PutUint16(h[4:], uint16(44+len(e)))
	h[6] = 4 // spec revision 1.4
	copy(h[8:16], "VMDAP   ")
	copy(h[16:28], "VMDAP       ")
	le.PutUint16(h[34:], uint16(n))
	le.PutUint32(h[36:], LAPICBase)
	copy(ram[cfgAddr+44:], e)
	h[7] = acpiChecksum(ram[cfgAddr : cfgAddr+44+uint64(len(e))])

	f := ram[mpAddr : mpAddr+16]
	copy(f[0:4], "_MP_")
	le.PutUint32(f[4:], cfgAddr)
	f[8] = 1 // length in 16-byte units
	f[9] = 4 // spec revision 1.4
	f[10] = acpiChecksum(f)
}
