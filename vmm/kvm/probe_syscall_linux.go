//go:build linux && amd64

package kvm

import (
	"encoding/binary"
	"fmt"
	"time"

	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
)

// System calls from guest ring 3.
//
// A kernel's user space enters it with SYSCALL: the CPU switches to ring
// 0 at the address in MSR_LSTAR. On a VT-x or AMD-V host the guest does
// this natively. A PVM host runs guest ring 3 natively and the guest
// kernel under its own scheme; without a PVM-aware guest kernel, its
// SYSCALL was seen to jump to LSTAR while staying in ring 3 (Linux's /init
// then dies with a fault at entry_SYSCALL_64). The probe drops to ring 3
// and makes one system call; `vmdap check` and the session notes say what
// happened.

// probe addresses of the syscall probe.
const (
	pSysCode   = pCode + 0xa00
	pSysUser   = pSysCode + 0x3c // the syscall instruction
	pSysEntry  = pSysCode + 0x40 // LSTAR
	pSysGDT    = pData + 0x1000
	pSysStack  = pData + 0x3ff0 // ring-0 stack (TSS.RSP0)
	pSysUStack = pData + 0x2ff0 // ring-3 stack
)

// probeSyscall sets up a GDT with Linux's layout (kernel code 0x10, user
// code 0x33), STAR/LSTAR/FMASK, user-accessible pages, drops to ring 3 with
// iretq and runs syscall; LSTAR's code reports CS on the probe port.
func (h *HostInfo) probeSyscall(p *prober) {
	h.SyscallProbed = true
	le := binary.LittleEndian
	ram := p.ram
	// User-accessible pages: the U bit on the PML4, PDPT and the two 2 MiB
	// pages holding the code and the data (restored afterwards).
	cr3 := p.sregs0.CR3
	pdpt := le.Uint64(ram[cr3:]) &^ 0xfff
	pd := le.Uint64(ram[pdpt:]) &^ 0xfff
	entries := []uint64{cr3, pdpt, pd, pd + 8}
	saved := make([]uint64, len(entries))
	for i, a := range entries {
		saved[i] = le.Uint64(ram[a:])
		le.PutUint64(ram[a:], saved[i]|4)
	}
	tss := uint64(0x600)
	savedRSP0 := le.Uint64(ram[tss+4:])
	le.PutUint64(ram[tss+4:], pSysStack)
	defer func() {
		for i, a := range entries {
			le.PutUint64(ram[a:], saved[i])
		}
		le.PutUint64(ram[tss+4:], savedRSP0)
	}()

	// GDT: 0x08 kernel code (the probe IDT's gates), 0x10 kernel code,
	// 0x18 kernel data, 0x20 user code (32-bit), 0x28 user data, 0x30
	// user code, 0x38 the TSS.
	gdt := ram[pSysGDT : pSysGDT+0x48]
	clear(gdt)
	for off, d := range map[int]uint64{0x08: 0x00af9b000000ffff, 0x10: 0x00af9b000000ffff, 0x18: 0x00cf93000000ffff,
		0x20: 0x00cffb000000ffff, 0x28: 0x00cff3000000ffff, 0x30: 0x00affb000000ffff,
		0x38: uint64(0x67) | tss<<16 | uint64(0x89)<<40} {
		le.PutUint64(gdt[off:], d)
	}
	code := []byte{
		0xb9, 0x81, 0x00, 0x00, 0xc0, 0x31, 0xc0, 0xba, 0x10, 0x00, 0x23, 0x00, 0x0f, 0x30, // STAR: syscall CS 0x10, sysret base 0x23
		0xb9, 0x82, 0x00, 0x00, 0xc0, 0xb8, 0, 0, 0, 0, 0x31, 0xd2, 0x0f, 0x30, // LSTAR = entry
		0xb9, 0x84, 0x00, 0x00, 0xc0, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x31, 0xd2, 0x0f, 0x30, // FMASK = IF
		0x6a, 0x2b, 0x68, 0, 0, 0, 0, 0x6a, 0x02, 0x6a, 0x33, 0x68, 0, 0, 0, 0, // SS, RSP, RFLAGS, CS, RIP
		0x48, 0xcf, // iretq
		0x0f, 0x05, 0xeb, 0xfe, // user: syscall; jmp .
		0x8c, 0xc8, 0xe6, pPort, 0xf4, // entry: mov %cs,%eax; out %al,$pPort; hlt
	}
	le.PutUint32(code[0x14:], pSysEntry)
	le.PutUint32(code[0x2d:], pSysUStack)
	le.PutUint32(code[0x36:], pSysUser)

	s := p.sregs0
	s.GDT = kvmsys.DTable{Base: pSysGDT, Limit: 0x47}
	s.CS.Selector = 0x10
	for _, sg := range []*kvmsys.Segment{&s.DS, &s.ES, &s.SS, &s.FS, &s.GS} {
		sg.Selector = 0x18
	}
	s.TR.Selector = 0x38
	_ = kvmsys.SetSRegs(p.vcpu, &s)
	p.debug(0, [8]uint64{})
	p.load(pSysCode, code)
	reason, r := p.enterFor(200 * time.Millisecond)
	switch {
	case reason == kvmsys.KVM_EXIT_IO:
		port, v := p.ioPort()
		switch {
		case port == pPort && v == 0x10:
			h.SyscallWorks = true
		case port == pPort:
			h.SyscallWhy = fmt.Sprintf("it arrived at LSTAR with CS %#x", v)
		case port == pVecPort && r.RIP >= pHandler:
			h.SyscallWhy = fmt.Sprintf("it arrived at LSTAR still in ring 3 (%s there)", x86.VectorInfo(int(v)).Mnemonic)
		default:
			h.SyscallWhy = fmt.Sprintf("port %#x written", port)
		}
	case reason == kvmsys.KVM_EXIT_INTR:
		h.SyscallWhy = fmt.Sprintf("it never reached LSTAR (the vCPU was at %#x)", r.RIP)
	default:
		h.SyscallWhy = fmt.Sprintf("KVM exit reason %d at %#x", reason, r.RIP)
	}
}
