package core

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"vmdap/x86"
)

// notes is what a dump's ELF notes say about the machine.
type notes struct {
	prstatus [][]uint64 // each CPU's pr_reg (user_regs_struct), in note order
	// i386: the NT_PRSTATUS notes are i386's (a 32-bit kernel's, or
	// QEMU's for a CPU not in long mode), their registers widened into
	// prstatus in x86-64's order.
	i386 bool
	// longMode: the ELF header says EM_X86_64, which QEMU writes when
	// its first CPU is in long mode (EM_386 otherwise).
	longMode bool
	qemu     [][]byte          // each CPU's QEMUCPUState, in note order
	info     map[string]string // VMCOREINFO
}

const (
	ntPRStatus = 1
	// prRegOff is pr_reg's offset in x86-64's struct elf_prstatus, and
	// prRegs its count of registers (struct user_regs_struct).
	prRegOff = 112
	prRegs   = 27
	// i386's struct elf_prstatus (144 bytes): pr_reg at 72, 17 registers
	// of 4 bytes (struct user_regs_struct: ebx, ecx, edx, esi, edi, ebp,
	// eax, xds, xes, xfs, xgs, orig_eax, eip, xcs, eflags, esp, xss).
	prRegOff32 = 72
	prRegs32   = 17
	maxCPUs    = 4096
	// maxInfo bounds the VMCOREINFO text a dump may carry.
	maxInfo = 1 << 20
)

// parseNotes reads a PT_NOTE segment's notes.
func parseNotes(b []byte, n *notes) error {
	for len(b) > 0 {
		if len(b) < 12 {
			return fmt.Errorf("truncated ELF note header (%d bytes left)", len(b))
		}
		namesz := uint64(binary.LittleEndian.Uint32(b))
		descsz := uint64(binary.LittleEndian.Uint32(b[4:]))
		typ := binary.LittleEndian.Uint32(b[8:])
		b = b[12:]
		nameEnd, descEnd := align4(namesz), align4(namesz)+descsz
		if nameEnd > uint64(len(b)) || descEnd > uint64(len(b)) {
			if namesz == 0 && descsz == 0 {
				break
			}
			return fmt.Errorf("ELF note of name size %d and data size %d runs past its segment", namesz, descsz)
		}
		name := string(bytes.TrimRight(b[:namesz], "\x00"))
		desc := b[nameEnd:descEnd]
		switch {
		case name == "CORE" && typ == ntPRStatus:
			r, i386, err := prReg(desc)
			if err != nil {
				return err
			}
			n.prstatus = append(n.prstatus, r)
			n.i386 = n.i386 || i386
		case name == "QEMU" && typ == 0:
			n.qemu = append(n.qemu, desc)
		case name == "VMCOREINFO" && typ == 0 && len(desc) <= maxInfo:
			n.info = parseInfo(desc)
		}
		if len(n.prstatus) > maxCPUs || len(n.qemu) > maxCPUs {
			return fmt.Errorf("more than %d CPUs' notes", maxCPUs)
		}
		b = b[min(align4(descEnd), uint64(len(b))):]
	}
	return nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// prReg reads an NT_PRSTATUS note's pr_reg in x86-64's order: x86-64's
// (336 bytes), or i386's (144 bytes; whatever the ELF class: QEMU writes
// it into an ELF64 core when guest RAM or ROM reaches 4 GiB).
func prReg(desc []byte) (r []uint64, i386 bool, err error) {
	r = make([]uint64, prRegs)
	switch {
	case len(desc) >= prRegOff+prRegs*8:
		for i := range r {
			r[i] = binary.LittleEndian.Uint64(desc[prRegOff+8*i:])
		}
		return r, false, nil
	case len(desc) >= prRegOff32+prRegs32*4:
		// x86-64's index of each of i386's registers.
		for i, j := range [prRegs32]int{5, 11, 12, 13, 14, 4, 10, 23, 24, 25, 26, 15, 16, 17, 18, 19, 20} {
			r[j] = uint64(binary.LittleEndian.Uint32(desc[prRegOff32+4*i:]))
		}
		return r, true, nil
	}
	return nil, false, fmt.Errorf("NT_PRSTATUS note of %d bytes: an x86-64 one has %d, an i386 one %d", len(desc), prRegOff+prRegs*8+8, prRegOff32+prRegs32*4+4)
}

// parseInfo reads VMCOREINFO's KEY=VALUE lines.
func parseInfo(b []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = strings.TrimRight(v, "\x00")
		}
	}
	return m
}

// infoNumber reads a VMCOREINFO value: SYMBOL(...) and KERNELOFFSET are
// hexadecimal without a prefix, NUMBER(...) decimal.
func infoNumber(info map[string]string, key string, base int) (uint64, bool) {
	s, ok := info[key]
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), base, 64)
	if err != nil {
		if i, err := strconv.ParseInt(strings.TrimSpace(s), base, 64); err == nil {
			return uint64(i), true
		}
		return 0, false
	}
	return v, true
}

// prstatusRegs converts a pr_reg (r15, r14, r13, r12, rbp, rbx, r11, r10,
// r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss,
// fs_base, gs_base, ds, es, fs, gs).
func prstatusRegs(r []uint64, i386 bool) (x86.Regs, x86.SRegs) {
	g := x86.Regs{
		R15: r[0], R14: r[1], R13: r[2], R12: r[3], RBP: r[4], RBX: r[5], R11: r[6], R10: r[7],
		R9: r[8], R8: r[9], RAX: r[10], RCX: r[11], RDX: r[12], RSI: r[13], RDI: r[14],
		RIP: r[16], RFLAGS: r[18], RSP: r[19],
	}
	seg := func(sel uint64) x86.Segment {
		return x86.Segment{Selector: uint16(sel), Present: true, S: true, Type: 3, DPL: uint8(sel & 3), Limit: 0xffffffff, G: true}
	}
	s := x86.SRegs{CS: seg(r[17]), SS: seg(r[20]), DS: seg(r[23]), ES: seg(r[24]), FS: seg(r[25]), GS: seg(r[26])}
	// Protected mode, and for x86-64 long mode with a 64-bit code
	// segment (the kernel's page tables, where VMCOREINFO names them,
	// replace these): the registers say no more.
	s.CR0 = x86.CR0PE
	s.CS.Type = 0xb
	if i386 {
		for _, sg := range []*x86.Segment{&s.CS, &s.SS, &s.DS, &s.ES, &s.FS, &s.GS} {
			sg.DB = true
		}
	} else {
		s.CS.L = true
		s.EFER = x86.EFERLMA | x86.EFERLME
	}
	s.FS.Base, s.GS.Base = r[21], r[22]
	return g, s
}

// qemuSegment is one QEMUCPUSegment: selector, limit, flags (the
// descriptor's high doubleword, as QEMU keeps it), pad, base.
func qemuSegment(b []byte) x86.Segment {
	s := x86.Segment{
		Selector: uint16(binary.LittleEndian.Uint32(b)),
		Limit:    binary.LittleEndian.Uint32(b[4:]),
		Base:     binary.LittleEndian.Uint64(b[16:]),
	}
	s.SetDescriptorFlags(binary.LittleEndian.Uint32(b[8:]))
	// QEMU has no unusable bit: a segment without P is one (its
	// target/i386/kvm/kvm.c: get_seg writes flags 0 for it, set_seg
	// reads unusable = !P).
	s.Unusable = !s.Present
	return s
}

// qemuState layout: version, size (u32 each), 16 general registers, rip,
// rflags, then cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt (24 bytes each),
// cr[5], and, when size says so, kernel_gs_base.
const (
	qemuRegsOff = 8
	qemuSegsOff = qemuRegsOff + 18*8
	qemuCROff   = qemuSegsOff + 10*24
	qemuGSKOff  = qemuCROff + 5*8
)

// qemuRegs converts a QEMUCPUState.
func qemuRegs(b []byte, longMode bool) (x86.Regs, x86.SRegs, error) {
	if len(b) < qemuCROff+5*8 {
		return x86.Regs{}, x86.SRegs{}, fmt.Errorf("QEMU CPU state note of %d bytes: it has at least %d", len(b), qemuCROff+5*8)
	}
	u := func(off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
	r := x86.Regs{
		RAX: u(8), RBX: u(16), RCX: u(24), RDX: u(32), RSI: u(40), RDI: u(48), RSP: u(56), RBP: u(64),
		R8: u(72), R9: u(80), R10: u(88), R11: u(96), R12: u(104), R13: u(112), R14: u(120), R15: u(128),
		RIP: u(136), RFLAGS: u(144),
	}
	seg := func(i int) x86.Segment { return qemuSegment(b[qemuSegsOff+24*i:]) }
	table := func(i int) x86.Table {
		s := seg(i)
		return x86.Table{Base: s.Base, Limit: uint16(s.Limit)}
	}
	s := x86.SRegs{
		CS: seg(0), DS: seg(1), ES: seg(2), FS: seg(3), GS: seg(4), SS: seg(5), LDT: seg(6), TR: seg(7),
		GDT: table(8), IDT: table(9),
		CR0: u(qemuCROff), CR2: u(qemuCROff + 16), CR3: u(qemuCROff + 24), CR4: u(qemuCROff + 32),
	}
	if size := binary.LittleEndian.Uint32(b[4:]); size >= qemuGSKOff+8 && len(b) >= qemuGSKOff+8 {
		s.KernelGSBase = u(qemuGSKOff)
	}
	// The note has no EFER: long mode is active where paging with PAE
	// runs 64-bit code, or any code in a machine QEMU wrote as EM_X86_64
	// (its first CPU in long mode: this one, in compatibility mode, too).
	if s.CR0&x86.CR0PG != 0 && s.CR4&x86.CR4PAE != 0 && (s.CS.L || longMode) {
		s.EFER = x86.EFERLMA | x86.EFERLME
	}
	return r, s, nil
}
