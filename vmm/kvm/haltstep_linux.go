//go:build linux && amd64

package kvm

import (
	"vmdap/vmm"
	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
	"vmdap/x86/disasm"
)

// Stepping a halt with an in-kernel irqchip.
//
// There a HLT does not exit to vmdap: the vCPU waits in the kernel until an
// interrupt arrives. A plain single step would hold that interrupt off
// (BLOCKIRQ) and, in a loop such as `while (!ticks) hlt();`, never let the
// guest make progress, so a source-line step over it would spin for ever.
// Instead a step of a HLT, or of a vCPU that is halted, is a step over the
// wait: the vCPU runs freely (interrupts delivered, their handlers running,
// breakpoints and watchpoints live) until it reaches the instruction after
// the HLT, through a temporary software breakpoint, like a step over a
// call. Hosts without software breakpoints keep the plain step: it too
// waits for the interrupt, which then stays pending until the next
// continue. (A debug register cannot stand in: the interrupt frame KVM
// builds carries RFLAGS.RF, so the return to the target does not trap;
// measured under nested AMD-V.)

// StepsHalt implements vmm.Stepper: a step of a hlt ends after it (with an
// irqchip, once its interrupt's handler has run, as above; without one, a
// HLT exits to vmdap at once).
func (m *Machine) StepsHalt() bool { return true }

// haltTarget says whether this step is a wait, and where it ends (only
// asked when overWait: not for the bare step off a breakpoint).
func (v *vcpu) haltTarget(pc uint64, inst disasm.Inst, decoded, overWait bool) (uint64, bool) {
	m := v.m
	if !overWait || !m.irqchip || m.host.SWBreakpoint == swbpNone {
		return 0, false
	}
	if st, err := kvmsys.GetMPState(v.fd); err == nil && st == kvmsys.KVM_MP_STATE_HALTED {
		// Halted with RIP after its HLT: the wait ends back here.
		return pc, true
	}
	if decoded && inst.Kind == disasm.KindHalt {
		return inst.Next(), true
	}
	return 0, false
}

// runTo runs v until it reaches target (a ReasonStep stop there) or stops
// for any other reason on the way. ok=false: the temporary breakpoint
// could not be placed, nothing ran.
func (v *vcpu) runTo(target uint64) (vmm.Stop, bool) {
	m := v.m
	t, ok := m.plantTrapAt(v, target)
	if !ok {
		return vmm.Stop{}, false
	}
	v.runTarget = &t
	s := v.runUntilStop()
	v.runTarget = nil
	m.removeTraps([]trap{t})
	v.rearm = true
	return s, true
}

// atRunTarget recognises the run-to target's breakpoint in the last exit.
func (v *vcpu) atRunTarget() (vmm.Stop, bool) {
	t := v.runTarget
	if t == nil || v.pc() != t.va {
		return vmm.Stop{}, false
	}
	switch v.run.ExitReason() {
	case kvmsys.KVM_EXIT_DEBUG:
		if v.run.Debug().Exception != x86.VecBP {
			return vmm.Stop{}, false
		}
	case kvmsys.KVM_EXIT_INTERNAL_ERROR:
		if !v.emulationFailureAt() {
			return vmm.Stop{}, false
		}
	default:
		return vmm.Stop{}, false
	}
	if pa, _, err := v.m.translate(v, t.va); err != nil || pa != t.gpa {
		return vmm.Stop{}, false
	}
	return vmm.Stop{Reason: vmm.ReasonStep, PC: t.va}, true
}
