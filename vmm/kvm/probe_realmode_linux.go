//go:build linux && amd64

package kvm

import (
	"fmt"

	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
)

// Real mode (a reset vector, a boot sector, a BIOS): does our int3 reach
// the VMM there? VT-x and AMD-V intercept the #BP in every mode; a KVM
// that emulates real-mode code can deliver the int3 through the guest's
// own interrupt vector table instead, and the guest then runs whatever
// vector 3 points at. Where it does, software breakpoints are placed in
// debug registers while a vCPU is in real mode (Machine.SWBreakpointTraps).

// Real-mode probe addresses: code at 0600:0000, vector 3's handler at
// 0000:6100 (both below the long-mode probes' tables, restored after).
const (
	pRealCode    = 0x6000
	pRealHandler = 0x6100
)

// probeRealModeInt3 runs int3 in real mode with software breakpoints on.
// It restores the vCPU's long-mode state and the memory it used.
func (h *HostInfo) probeRealModeInt3(p *prober) {
	if h.SWBreakpoint != swbpInt3Exit && h.SWBreakpoint != swbpEmulation {
		return
	}
	saved := append([]byte(nil), p.ram[:pRealHandler+16]...)
	defer func() {
		copy(p.ram, saved)
		_ = kvmsys.SetSRegs(p.vcpu, &p.sregs0)
		p.debug(0, [8]uint64{})
	}()
	// Vector 3 → 0000:6100, which reports vector 3 on pVecPort.
	copy(p.ram[3*4:], []byte{pRealHandler & 0xff, pRealHandler >> 8, 0, 0})
	copy(p.ram[pRealHandler:], []byte{0xb0, x86.VecBP, 0xe6, pVecPort, 0xf4})
	s := p.sregs0
	data := kvmsys.Segment{Limit: 0xffff, Type: 3, Present: 1, S: 1}
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.CS = kvmsys.Segment{Selector: pRealCode >> 4, Base: pRealCode, Limit: 0xffff, Type: 11, Present: 1, S: 1}
	s.IDT = kvmsys.DTable{Base: 0, Limit: 0x3ff}
	s.CR0, s.CR3, s.CR4, s.EFER = x86.CR0ET, 0, 0, 0
	if err := kvmsys.SetSRegs(p.vcpu, &s); err != nil {
		h.RealModeWhy = fmt.Sprintf("KVM_SET_SREGS to real mode: %v", err)
		return
	}
	copy(p.ram[pRealCode:], []byte{0xcc, 0xe6, pPort, 0xf4}) // int3; out %al,$pPort; hlt
	r := p.regs0
	r.RIP, r.RSP, r.RFLAGS = 0, pRealCode+0x1000, 2
	_ = kvmsys.SetRegs(p.vcpu, &r)
	p.debug(kvmsys.KVM_GUESTDBG_ENABLE|kvmsys.KVM_GUESTDBG_USE_SW_BP, [8]uint64{})
	h.RealModeProbed = true
	reason, r := p.enter()
	switch {
	case reason == kvmsys.KVM_EXIT_DEBUG && p.run.Debug().Exception == x86.VecBP && r.RIP == 0:
		h.RealModeInt3 = true
	case reason == kvmsys.KVM_EXIT_INTERNAL_ERROR && p.run.Internal().Suberror == kvmsys.KVM_INTERNAL_ERROR_EMULATION && r.RIP == 0:
		h.RealModeInt3 = true
	case reason == kvmsys.KVM_EXIT_IO:
		if port, al := p.ioPort(); port == pVecPort && al == x86.VecBP {
			h.RealModeWhy = "KVM delivered it through the guest's interrupt vector table"
		} else {
			h.RealModeWhy = fmt.Sprintf("it ran on to port %#x", port)
		}
		p.run.SetImmediateExit(true) // complete the OUT
		_ = kvmsys.Run(p.vcpu)
		p.run.SetImmediateExit(false)
	default:
		h.RealModeWhy = fmt.Sprintf("KVM exit reason %d at ip %#x", reason, r.RIP)
	}
}

// realModeNote says what the probe found, for `vmdap check` and notes.
func (h *HostInfo) realModeNote() string {
	if !h.RealModeProbed {
		return ""
	}
	if h.RealModeInt3 {
		return "software breakpoints in real mode: int3 traps"
	}
	return "software breakpoints in real mode: int3 does not reach vmdap (" + h.RealModeWhy + "): breakpoints set while a vCPU is in real mode go into the debug registers"
}

// SWBreakpointTraps implements vmm.SWBreakpointModes: a software
// breakpoint traps in every mode except, on a host whose probe says so,
// real mode.
func (m *Machine) SWBreakpointTraps(mode x86.Mode) bool {
	return mode != 16 || !m.host.RealModeProbed || m.host.RealModeInt3
}
