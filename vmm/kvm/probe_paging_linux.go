//go:build linux && amd64

package kvm

import (
	"encoding/binary"
	"fmt"

	"vmdap/vmm/kvm/boot"
	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
)

// Protected-mode paging without long mode.
//
// A 32-bit kernel (the 32-bit xv6, most 32-bit hobby kernels, Linux
// built for i386) turns on paging from protected mode: 32-bit paging
// (CR4.PSE for 4 MiB pages) or PAE, with EFER.LME clear. A host whose KVM
// only runs 64-bit guests (PVM) refuses that CR0 write and the guest
// triple-faults on it. QEMU under -accel kvm on the same host fails the
// same way; QEMU's TCG boots it. The probe tries both kinds on a tiny
// guest, `vmdap check` shows the result, and a triple fault on such a CR0
// write names the cause.

// probe addresses of the paging probe (inside the probe's 4 MiB of RAM).
const (
	pPagingCode = pCode + 0x800
	pPageDir    = 0x200000 // 32-bit page directory, or the PAE PDPT
	pPAEDir     = 0x201000 // PAE page directory
)

// probeLegacyPaging runs a 32-bit protected-mode guest that enables 32-bit
// paging with a 4 MiB page, then one that enables PAE paging, each
// followed by an OUT. It must run last: it leaves the probe vCPU in
// 32-bit mode.
func (h *HostInfo) probeLegacyPaging(p *prober) {
	var ks kvmsys.SRegs
	if err := kvmsys.GetSRegs(p.vcpu, &ks); err != nil {
		return
	}
	h.LegacyPagingProbed = true
	le := binary.LittleEndian
	// Page directory: entry 0 maps the first 4 MiB (P|W|PS).
	le.PutUint32(p.ram[pPageDir:], 0x83)
	h.Paging32 = p.tryPaging(ks, 0x10, pPageDir) // CR4.PSE
	// PAE: PDPT[0] → a directory whose entries 0-1 map 2 MiB pages.
	for i := 0; i < 4; i++ {
		le.PutUint64(p.ram[pPageDir+8*i:], 0)
	}
	le.PutUint64(p.ram[pPageDir:], pPAEDir|1)
	le.PutUint64(p.ram[pPAEDir:], 0x83)
	le.PutUint64(p.ram[pPAEDir+8:], 0x200000|0x83)
	h.PAE32 = p.tryPaging(ks, 0x20, pPageDir) // CR4.PAE
}

// tryPaging enters 32-bit protected mode (flat segments, no paging, no
// IDT) and runs: CR4 |= cr4; CR3 = cr3; CR0 |= PG; out %al,$pPort.
func (p *prober) tryPaging(ks kvmsys.SRegs, cr4 uint32, cr3 uint32) bool {
	code := []byte{
		0x0f, 0x20, 0xe0, // mov %cr4,%eax
		0x0d, 0, 0, 0, 0, // or $cr4,%eax
		0x0f, 0x22, 0xe0, // mov %eax,%cr4
		0xb8, 0, 0, 0, 0, // mov $cr3,%eax
		0x0f, 0x22, 0xd8, // mov %eax,%cr3
		0x0f, 0x20, 0xc0, // mov %cr0,%eax
		0x0d, 0, 0, 0, 0x80, // or $0x80000000,%eax
		0x0f, 0x22, 0xc0, // mov %eax,%cr0
		0xe6, pPort, // out %al,$pPort
		0xf4, // hlt
	}
	binary.LittleEndian.PutUint32(code[4:], cr4)
	binary.LittleEndian.PutUint32(code[12:], cr3)
	flat := func(sel uint16, typ uint8) kvmsys.Segment {
		return kvmsys.Segment{Limit: 0xffffffff, Selector: sel, Type: typ, Present: 1, DB: 1, S: 1, G: 1}
	}
	s := ks
	s.CS = flat(boot.SelCode32, 11)
	s.DS, s.ES, s.FS, s.GS, s.SS = flat(boot.SelData, 3), flat(boot.SelData, 3), flat(boot.SelData, 3), flat(boot.SelData, 3), flat(boot.SelData, 3)
	s.IDT = kvmsys.DTable{}
	s.CR0 = x86.CR0PE | x86.CR0ET
	s.CR3, s.CR4, s.EFER = 0, 0, 0
	if err := kvmsys.SetSRegs(p.vcpu, &s); err != nil {
		return false
	}
	p.load(pPagingCode, code)
	reason, _ := p.enter()
	if reason != kvmsys.KVM_EXIT_IO {
		return false
	}
	port, _ := p.ioPort()
	var after kvmsys.SRegs
	_ = kvmsys.GetSRegs(p.vcpu, &after)
	// Complete the OUT before the next run.
	p.run.SetImmediateExit(true)
	_ = kvmsys.Run(p.vcpu)
	p.run.SetImmediateExit(false)
	return port == pPort && after.CR0&x86.CR0PG != 0
}

// legacyPagingNote says what this host does with paging outside long
// mode, for `vmdap check` and capability notes.
func (h *HostInfo) legacyPagingNote() string {
	if !h.LegacyPagingProbed {
		return ""
	}
	yes := func(b bool) string { return pick(b, "yes", "NO") }
	s := fmt.Sprintf("protected-mode paging without long mode: 32-bit paging (4 MiB pages) %s, PAE %s", yes(h.Paging32), yes(h.PAE32))
	if !h.Paging32 || !h.PAE32 {
		s += " (this KVM runs only 64-bit paging: a 32-bit kernel triple-faults when it turns paging on; use hypervisor \"qemu\" with accel \"tcg\" for it)"
	}
	return s
}

// legacyPagingFault explains a triple fault at an instruction that turns
// on paging outside long mode on a host that cannot run it ("" when that
// is not the case).
func (v *vcpu) legacyPagingFault() string {
	h := v.m.host
	if !h.LegacyPagingProbed || (h.Paging32 && h.PAE32) {
		return ""
	}
	s := v.sregs()
	if s.EFER&x86.EFERLME != 0 || s.CR0&x86.CR0PE == 0 {
		return ""
	}
	inst, err := v.decode(v.pc(), x86.DecodeMode(s))
	if err != nil {
		return ""
	}
	cr, val, ok := inst.ControlWrite(v.regs())
	if !ok || cr != 0 || val&x86.CR0PG == 0 || s.CR0&x86.CR0PG != 0 {
		return ""
	}
	pae := s.CR4&x86.CR4PAE != 0
	if (pae && h.PAE32) || (!pae && h.Paging32) {
		return ""
	}
	kind := "32-bit paging"
	if s.CR4&x86.CR4PSE != 0 {
		kind += " with 4 MiB pages (CR4.PSE)"
	}
	if pae {
		kind = "PAE paging"
	}
	return fmt.Sprintf("; the instruction turns on %s outside long mode, which this host's KVM (%s) cannot run (its startup probe found so; see `vmdap check`): boot this kernel with hypervisor \"qemu\" and accel \"tcg\"", kind, h.Vendor)
}
