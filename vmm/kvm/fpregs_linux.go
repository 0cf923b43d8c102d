//go:build linux && amd64

package kvm

import (
	"encoding/binary"
	"fmt"
	"strings"

	"vmdap/vmm"
	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
)

// FPRegisters implements vmm.Target: KVM_GET_FPU gives every host's
// guest its x87 and SSE state.
func (m *Machine) FPRegisters() (vmm.FPRegisters, bool) { return m, true }

// FPRegs implements vmm.FPRegisters from KVM_GET_XSAVE's legacy area
// (FXSAVE's layout: the st registers in stack order, an abridged tag
// byte, 64-bit instruction and operand pointers with no selectors),
// which holds MXCSR and fills the registers in their initial state in,
// or from KVM_GET_FPU on a host without it (which has no MXCSR).
func (m *Machine) FPRegs(i int) (x86.FPRegs, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.stoppedVCPU(i)
	if err != nil {
		return x86.FPRegs{}, err
	}
	var x kvmsys.XSave
	if kvmsys.GetXSave(v.fd, &x) == nil {
		return fxsaveRegs(&x), nil
	}
	var k kvmsys.FPU
	if err := kvmsys.GetFPU(v.fd, &k); err != nil {
		return x86.FPRegs{}, fmt.Errorf("vcpu %d: %w", i, err)
	}
	f := x86.FPRegs{FCW: k.FCW, FSW: k.FSW, FOP: k.LastOpcode, FIP: k.LastIP, FDP: k.LastDP, XMM: k.XMM, MXCSR: k.MXCSR}
	for n := range f.ST {
		copy(f.ST[n][:], k.FPR[n][:10])
	}
	f.FTW = x86.FullTag(k.FTWX, k.FSW, &f.ST)
	return f, nil
}

// resetFPU gives v the x87 and SSE state of a CPU after reset and FINIT
// (fctrl 0x37f, MXCSR 0x1f80: every exception masked), as QEMU,
// Firecracker and cloud-hypervisor do. KVM can leave MXCSR 0, every
// SIMD exception unmasked: a guest that used SSE before it loaded MXCSR
// would take #XM at its first inexact result. KVM_SET_FPU does not write
// MXCSR, so it goes through the XSAVE area where the host has one.
func (v *vcpu) resetFPU() error {
	if err := kvmsys.SetFPU(v.fd, &kvmsys.FPU{FCW: 0x37f}); err != nil {
		return fmt.Errorf("vcpu %d: %w", v.idx, err)
	}
	var x kvmsys.XSave
	if err := kvmsys.GetXSave(v.fd, &x); err != nil {
		v.m.logOnce("xsave", "the guest's MXCSR stays as KVM set it (no KVM_GET_XSAVE): "+err.Error())
		return nil
	}
	x.Region[kvmsys.XSaveMXCSR] = 0x1f80
	if err := kvmsys.SetXSave(v.fd, &x); err != nil {
		return fmt.Errorf("vcpu %d: %w", v.idx, err)
	}
	return nil
}

// fxsaveRegs decodes the legacy (FXSAVE) area of an XSAVE area in its
// 64-bit format (SDM Vol. 1 §10.5.1, Table 10-2).
func fxsaveRegs(x *kvmsys.XSave) x86.FPRegs {
	b := make([]byte, 512)
	for i := range 128 {
		binary.LittleEndian.PutUint32(b[4*i:], x.Region[i])
	}
	le := binary.LittleEndian
	f := x86.FPRegs{FCW: le.Uint16(b[0:]), FSW: le.Uint16(b[2:]), FOP: le.Uint16(b[6:]) & 0x7ff,
		FIP: le.Uint64(b[8:]), FDP: le.Uint64(b[16:]), MXCSR: le.Uint32(b[24:])}
	for n := range f.ST {
		copy(f.ST[n][:], b[32+16*n:])
	}
	for n := range f.XMM {
		copy(f.XMM[n][:], b[160+16*n:])
	}
	f.FTW = x86.FullTag(b[4], f.FSW, &f.ST)
	return f
}

// SetFPReg implements vmm.FPRegisterWriter: the register is written in
// KVM_GET_XSAVE's legacy area and the area given back (KVM_SET_FPU
// keeps no MXCSR), on a host that has it.
func (m *Machine) SetFPReg(i int, name string, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.stoppedVCPU(i)
	if err != nil {
		return err
	}
	var x kvmsys.XSave
	if err := kvmsys.GetXSave(v.fd, &x); err != nil {
		return fmt.Errorf("vcpu %d: writing %s needs KVM_GET_XSAVE: %w", i, name, err)
	}
	area := make([]byte, 512)
	for n := range 128 {
		binary.LittleEndian.PutUint32(area[4*n:], x.Region[n])
	}
	switch off, n, ok := x86.FXSAVEOffset(name); {
	case ok:
		copy(area[off:off+n], padBytes(b, n))
	case name == "ftag":
		area[4] = x86.AbridgedTag(binary.LittleEndian.Uint16(padBytes(b, 2)))
	default:
		return fmt.Errorf("%s cannot be written: the 64-bit FXSAVE state KVM keeps has no x87 selectors", name)
	}
	for n := range 128 {
		x.Region[n] = binary.LittleEndian.Uint32(area[4*n:])
	}
	// XSTATE_BV (the header's first word, byte 512) says which
	// components the area holds: one in its initial state (x87 after
	// FNINIT, SSE never used) is restored as such, whatever the legacy
	// area says. The component written is marked as held.
	if strings.HasPrefix(name, "xmm") {
		x.Region[128] |= 1 << 1
	} else if name != "mxcsr" { // (MXCSR is restored with either)
		x.Region[128] |= 1 << 0
	}
	if err := kvmsys.SetXSave(v.fd, &x); err != nil {
		return fmt.Errorf("vcpu %d: %w", i, err)
	}
	return nil
}

// padBytes is b cut or padded with zeros to n bytes.
func padBytes(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}
