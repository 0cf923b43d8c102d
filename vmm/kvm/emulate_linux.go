//go:build linux && amd64

package kvm

import (
	"vmdap/vmm/kvm/internal/kvmsys"
)

// Instructions vmdap completes itself when the host's KVM reports that it
// could not emulate them (hosts that emulate ring 0, such as PVM). Only
// instructions without a CPUID bit to hide, that a kernel runs
// unconditionally, and whose effect vmdap can reproduce exactly, are here:
//
//   - FWAIT (9b): Linux's fpu__drop runs it on every task exit and exec to
//     flush delayed x87 exceptions. With no unmasked exception pending
//     (FSW.ES clear) it does nothing (SDM Vol. 2B, WAIT/FWAIT); with one
//     pending it would raise #MF, which vmdap leaves to the failure report.

const fswES = 1 << 7 // x87 status word: error summary (an unmasked exception is pending)

// completeUnemulated finishes the instruction at RIP after an emulation
// failure when it is one vmdap can complete, and reports whether it did
// (RIP then points past it).
func (v *vcpu) completeUnemulated() bool {
	if !v.emulationFailureAt() {
		return false
	}
	var b [1]byte
	if v.peekCode(b[:], v.pc()) != 1 || b[0] != 0x9b {
		return false
	}
	var fpu kvmsys.FPU
	if err := kvmsys.GetFPU(v.fd, &fpu); err != nil || fpu.FSW&fswES != 0 {
		return false
	}
	r := v.regs()
	r.RIP++
	if err := v.setRegs(r); err != nil {
		return false
	}
	v.m.logOnce("fwait", "completing fwait in the VMM: this host's KVM cannot emulate it at ring 0 (no x87 exception is pending, so it does nothing)")
	return true
}

// logOnce logs msg at info level the first time key is seen.
func (m *Machine) logOnce(key, msg string) {
	m.onceMu.Lock()
	defer m.onceMu.Unlock()
	if m.onceLogged[key] {
		return
	}
	if m.onceLogged == nil {
		m.onceLogged = map[string]bool{}
	}
	m.onceLogged[key] = true
	m.log.Info(msg)
}
