package x86

import (
	"encoding/binary"
	"fmt"
)

// The register layouts of an x86 machine's ELF core notes, both ways:
// Linux's struct elf_prstatus (the NT_PRSTATUS note of a kdump, of
// makedumpfile's and of QEMU's dump-guest-memory: x86-64's, and i386's
// for a 32-bit kernel or a CPU not in long mode; include/uapi/linux/
// elfcore.h, arch/x86/include/asm/user_64.h and user_32.h) and QEMU's
// QEMUCPUState (its "QEMU" note: target/i386/arch_dump.c).
const (
	// PRStatusSize is x86-64's struct elf_prstatus; pr_pid is at 32, and
	// pr_reg (struct user_regs_struct, 27 registers of 8 bytes) at 112.
	PRStatusSize = 336
	prPidOff     = 32
	prRegOff     = 112
	prRegs       = 27
	// PRStatus32Size is i386's: pr_pid at 24, pr_reg (17 registers of 4
	// bytes) at 72.
	PRStatus32Size = 144
	prPid32Off     = 24
	prReg32Off     = 72
	prRegs32       = 17
	// QEMUCPUStateSize is a QEMUCPUState with kernel_gs_base: version,
	// size (u32 each), 16 general registers, rip, rflags, then cs ds es
	// fs gs ss ldt tr gdt idt (24 bytes each: selector, limit, flags,
	// pad, base), cr[5], kernel_gs_base.
	QEMUCPUStateSize = 440
	qemuVersion      = 1
	qemuRegsOff      = 8
	qemuSegsOff      = qemuRegsOff + 18*8
	qemuCROff        = qemuSegsOff + 10*24
	qemuGSKOff       = qemuCROff + 5*8
)

// i386Reg is, for each of i386's pr_reg (ebx, ecx, edx, esi, edi, ebp,
// eax, xds, xes, xfs, xgs, orig_eax, eip, xcs, eflags, esp, xss), the
// index of x86-64's that holds the same register (r15, r14, r13, r12,
// rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs,
// eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs).
var i386Reg = [prRegs32]int{5, 11, 12, 13, 14, 4, 10, 23, 24, 25, 26, 15, 16, 17, 18, 19, 20}

// userRegs is a user_regs_struct of x86-64 (orig_rax 0).
func userRegs(r Regs, s SRegs) [prRegs]uint64 {
	return [prRegs]uint64{r.R15, r.R14, r.R13, r.R12, r.RBP, r.RBX, r.R11, r.R10, r.R9, r.R8,
		r.RAX, r.RCX, r.RDX, r.RSI, r.RDI, 0, r.RIP, uint64(s.CS.Selector), r.RFLAGS, r.RSP, uint64(s.SS.Selector),
		s.FS.Base, s.GS.Base, uint64(s.DS.Selector), uint64(s.ES.Selector), uint64(s.FS.Selector), uint64(s.GS.Selector)}
}

// PRStatus is the struct elf_prstatus QEMU writes for a CPU: pr_pid
// (QEMU's is the CPU's index + 1) and pr_reg, x86-64's or, for i386,
// i386's (each register cut to 32 bits).
func PRStatus(pid uint32, r Regs, s SRegs, i386 bool) []byte {
	u := userRegs(r, s)
	if i386 {
		d := make([]byte, PRStatus32Size)
		binary.LittleEndian.PutUint32(d[prPid32Off:], pid)
		for i, j := range i386Reg {
			binary.LittleEndian.PutUint32(d[prReg32Off+4*i:], uint32(u[j]))
		}
		return d
	}
	d := make([]byte, PRStatusSize)
	binary.LittleEndian.PutUint32(d[prPidOff:], pid)
	for i, x := range u {
		binary.LittleEndian.PutUint64(d[prRegOff+8*i:], x)
	}
	return d
}

// ParsePRStatus reads an NT_PRSTATUS note's registers: x86-64's (336
// bytes) or i386's (144 bytes, whatever the core's ELF class: QEMU
// writes i386's into an ELF64 core when guest RAM reaches 4 GiB). The
// note has only the general registers and selectors, and FS's and GS's
// bases in x86-64's: the segments are flat, the CPU in protected mode
// and, for x86-64, in long mode with a 64-bit code segment; it has no
// page tables (a reader takes those from elsewhere: a kdump's
// VMCOREINFO names the kernel's).
func ParsePRStatus(desc []byte) (Regs, SRegs, bool, error) {
	var u [prRegs]uint64
	var i386 bool
	switch {
	case len(desc) >= prRegOff+prRegs*8:
		for i := range u {
			u[i] = binary.LittleEndian.Uint64(desc[prRegOff+8*i:])
		}
	case len(desc) >= prReg32Off+prRegs32*4:
		i386 = true
		for i, j := range i386Reg {
			u[j] = uint64(binary.LittleEndian.Uint32(desc[prReg32Off+4*i:]))
		}
	default:
		return Regs{}, SRegs{}, false, fmt.Errorf("NT_PRSTATUS note of %d bytes: an x86-64 one has %d, an i386 one %d", len(desc), PRStatusSize, PRStatus32Size)
	}
	r := Regs{
		R15: u[0], R14: u[1], R13: u[2], R12: u[3], RBP: u[4], RBX: u[5], R11: u[6], R10: u[7],
		R9: u[8], R8: u[9], RAX: u[10], RCX: u[11], RDX: u[12], RSI: u[13], RDI: u[14],
		RIP: u[16], RFLAGS: u[18], RSP: u[19],
	}
	seg := func(sel uint64) Segment {
		return Segment{Selector: uint16(sel), Present: true, S: true, Type: 3, DPL: uint8(sel & 3), Limit: 0xffffffff, G: true}
	}
	s := SRegs{CS: seg(u[17]), SS: seg(u[20]), DS: seg(u[23]), ES: seg(u[24]), FS: seg(u[25]), GS: seg(u[26])}
	s.CR0 = CR0PE
	s.CS.Type = 0xb
	if i386 {
		for _, sg := range []*Segment{&s.CS, &s.SS, &s.DS, &s.ES, &s.FS, &s.GS} {
			sg.DB = true
		}
	} else {
		s.CS.L = true
		s.EFER = EFERLMA | EFERLME
	}
	s.FS.Base, s.GS.Base = u[21], u[22]
	return r, s, i386, nil
}

// QEMUCPUState is QEMU's QEMUCPUState for a CPU. A segment QEMU holds
// unusable is written without P (its target/i386/kvm/kvm.c: get_seg
// writes flags 0 for one, set_seg reads unusable = !P).
func QEMUCPUState(r Regs, s SRegs) []byte {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, QEMUCPUStateSize), qemuVersion)
	b = binary.LittleEndian.AppendUint32(b, QEMUCPUStateSize)
	for _, x := range []uint64{r.RAX, r.RBX, r.RCX, r.RDX, r.RSI, r.RDI, r.RSP, r.RBP,
		r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15, r.RIP, r.RFLAGS} {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	seg := func(sel uint16, limit, flags uint32, base uint64) {
		b = binary.LittleEndian.AppendUint32(b, uint32(sel))
		b = binary.LittleEndian.AppendUint32(b, limit)
		b = binary.LittleEndian.AppendUint32(b, flags)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint64(b, base)
	}
	for _, g := range []Segment{s.CS, s.DS, s.ES, s.FS, s.GS, s.SS, s.LDT, s.TR} {
		flags := g.DescriptorFlags()
		if g.Unusable {
			flags &^= 1 << 15
		}
		seg(g.Selector, g.Limit, flags, g.Base)
	}
	seg(0, uint32(s.GDT.Limit), 0, s.GDT.Base)
	seg(0, uint32(s.IDT.Limit), 0, s.IDT.Base)
	for _, x := range []uint64{s.CR0, 0, s.CR2, s.CR3, s.CR4, s.KernelGSBase} {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	return b
}

// ParseQEMUCPUState reads a QEMUCPUState (kernel_gs_base where its size
// has it). The note has no EFER: long mode is active where paging with
// PAE runs 64-bit code, or any code in a machine QEMU wrote as EM_X86_64
// (longMode: its first CPU in long mode, so this one, in compatibility
// mode, too).
func ParseQEMUCPUState(b []byte, longMode bool) (Regs, SRegs, error) {
	if len(b) < qemuCROff+5*8 {
		return Regs{}, SRegs{}, fmt.Errorf("QEMU CPU state note of %d bytes: it has at least %d", len(b), qemuCROff+5*8)
	}
	u := func(off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
	var gp [18]uint64 // rax rbx rcx rdx rsi rdi rsp rbp r8-r15 rip rflags
	for i := range gp {
		gp[i] = u(qemuRegsOff + 8*i)
	}
	r := Regs{
		RAX: gp[0], RBX: gp[1], RCX: gp[2], RDX: gp[3], RSI: gp[4], RDI: gp[5], RSP: gp[6], RBP: gp[7],
		R8: gp[8], R9: gp[9], R10: gp[10], R11: gp[11], R12: gp[12], R13: gp[13], R14: gp[14], R15: gp[15],
		RIP: gp[16], RFLAGS: gp[17],
	}
	seg := func(i int) Segment {
		o := qemuSegsOff + 24*i
		g := Segment{
			Selector: uint16(binary.LittleEndian.Uint32(b[o:])),
			Limit:    binary.LittleEndian.Uint32(b[o+4:]),
			Base:     u(o + 16),
		}
		g.SetDescriptorFlags(binary.LittleEndian.Uint32(b[o+8:]))
		g.Unusable = !g.Present
		return g
	}
	table := func(i int) Table {
		g := seg(i)
		return Table{Base: g.Base, Limit: uint16(g.Limit)}
	}
	s := SRegs{
		CS: seg(0), DS: seg(1), ES: seg(2), FS: seg(3), GS: seg(4), SS: seg(5), LDT: seg(6), TR: seg(7),
		GDT: table(8), IDT: table(9),
		CR0: u(qemuCROff), CR2: u(qemuCROff + 16), CR3: u(qemuCROff + 24), CR4: u(qemuCROff + 32),
	}
	if size := binary.LittleEndian.Uint32(b[4:]); size >= qemuGSKOff+8 && len(b) >= qemuGSKOff+8 {
		s.KernelGSBase = u(qemuGSKOff)
	}
	if s.CR0&CR0PG != 0 && s.CR4&CR4PAE != 0 && (s.CS.L || longMode) {
		s.EFER = EFERLMA | EFERLME
	}
	return r, s, nil
}
