//go:build linux && amd64

package kvm

import (
	"fmt"

	"vmdap/vmm"
	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
)

// outcome is what the run or step loop does after an exit.
type outcome uint8

const (
	// outStop: report the stop.
	outStop outcome = iota
	// outAgain: nothing to report; enter the guest again.
	outAgain
	// outServed (runs only): a device access was served; it is completed
	// on the next entry, or with immediate_exit if a pause comes first.
	outServed
	// outStepped (steps only): a single-step trap, or a completed access,
	// after which the stepped instruction may be done (the step loop
	// decides: a rep string chunk or a duplicate trap is stepped again).
	outStepped
)

// classifyExit says what the exit KVM_RUN just returned means. It is the
// one place that switches on exit reasons, for runs (runUntilStop) and
// single steps (stepLoop) alike: each exit is read from its own kvm_run
// union member and reported in the same words either way. Where the two
// differ, it is by what stepping means: a step completes an I/O or MMIO
// access before reporting (the instruction must end there), recognises a
// breakpoint byte it runs into as the end of the step, and re-arms the
// single-step state after any exit that may have dropped it.
func (v *vcpu) classifyExit(reason uint32, stepping bool) (vmm.Stop, outcome) {
	m := v.m
	switch reason {
	case kvmsys.KVM_EXIT_IO:
		if req := v.io(); req != nil {
			return req.stop(v.pc()), outStop
		}
		if !stepping {
			return vmm.Stop{}, outServed
		}
		if s, ok := v.completeStep(); !ok {
			return s, outStop
		}
		return vmm.Stop{Reason: vmm.ReasonStep, PC: v.pc()}, outStepped
	case kvmsys.KVM_EXIT_MMIO:
		hit := m.mmio(v)
		if stepping {
			if s, ok := v.completeStep(); !ok {
				return s, outStop
			}
		} else if hit != nil {
			if _, err := v.complete(); err != nil {
				return v.failed(err), outStop
			}
		}
		if hit != nil {
			return m.watchStop(v, hit), outStop
		}
		if !stepping {
			return vmm.Stop{}, outServed
		}
		return vmm.Stop{Reason: vmm.ReasonStep, PC: v.pc()}, outStepped
	case kvmsys.KVM_EXIT_DEBUG:
		return v.debugExit(stepping)
	case kvmsys.KVM_EXIT_HLT:
		if !stepping {
			if s, ok := m.dbg.hltBreakpoint(v); ok {
				return s, outStop
			}
			return vmm.Stop{Reason: vmm.ReasonHalted, PC: v.pc()}, outStop
		}
		v.rearm = true
		if m.host.SWBreakpoint == swbpHLT {
			if s, ok := v.trapOrBreakpoint(v.pc() - 1); ok {
				r := v.regs()
				r.RIP--
				if err := v.setRegs(r); err != nil {
					return v.failed(err), outStop
				}
				return s, outStop
			}
		}
		v.halted = true
		return vmm.Stop{Reason: vmm.ReasonStep, PC: v.pc()}, outStop
	case kvmsys.KVM_EXIT_INTERNAL_ERROR:
		return v.internalErrorExit(stepping)
	case kvmsys.KVM_EXIT_SHUTDOWN:
		d := "the guest triple-faulted (an exception could not be delivered)" + v.legacyPagingFault() + v.readTrapShutdown()
		if m.host.Vendor == "AMD SVM" {
			d += "; on AMD SVM KVM resets the vCPU at a shutdown, so its registers show the reset state"
		}
		return vmm.Stop{Reason: vmm.ReasonShutdown, PC: v.pc(), Detail: d}, outStop
	case kvmsys.KVM_EXIT_FAIL_ENTRY:
		return vmm.Stop{Reason: vmm.ReasonInternalError, PC: v.pc(),
			Detail: fmt.Sprintf("VM entry failed, hardware reason %#x (invalid guest state)", v.run.FailEntryReason())}, outStop
	case kvmsys.KVM_EXIT_SYSTEM_EVENT:
		return vmm.Stop{Reason: vmm.ReasonShutdown, PC: v.pc(), Detail: "the guest requested a system reset or power-off"}, outStop
	case kvmsys.KVM_EXIT_INTR:
		if stepping {
			v.rearm = true
		}
		return vmm.Stop{}, outAgain
	}
	return vmm.Stop{Reason: vmm.ReasonInternalError, PC: v.pc(), Detail: fmt.Sprintf("unexpected KVM exit reason %d", reason)}, outStop
}

// debugExit classifies a KVM_EXIT_DEBUG.
func (v *vcpu) debugExit(stepping bool) (vmm.Stop, outcome) {
	m := v.m
	if !stepping {
		if s, ok := v.atRunTarget(); ok {
			return s, outStop
		}
		if s, ok := m.dbg.classifyDebug(v, false); ok {
			return s, outStop
		}
		return vmm.Stop{}, outAgain
	}
	if v.run.Debug().Exception == x86.VecBP {
		if s, ok := v.trapOrBreakpoint(v.pc()); ok {
			return s, outStop
		}
		v.inject |= kvmsys.KVM_GUESTDBG_INJECT_BP
		return vmm.Stop{}, outAgain
	}
	s, ok := m.dbg.classifyDebug(v, true)
	switch {
	case !ok:
		return vmm.Stop{}, outAgain
	case s.Reason == vmm.ReasonWatchpoint:
		return s, outStop
	}
	return vmm.Stop{Reason: vmm.ReasonStep, PC: v.pc()}, outStepped
}

// internalErrorExit classifies a KVM_EXIT_INTERNAL_ERROR: on hosts whose
// KVM emulates the guest, an int3 (ours, or the guest's own) arrives this
// way.
func (v *vcpu) internalErrorExit(stepping bool) (vmm.Stop, outcome) {
	m := v.m
	if stepping {
		v.rearm = true
		if v.emulationFailureAt() {
			if s, ok := v.trapOrBreakpoint(v.pc()); ok {
				return s, outStop
			}
		}
	} else {
		if s, ok := v.atRunTarget(); ok {
			return s, outStop
		}
		if s, ok := m.dbg.emulationBreakpoint(v); ok {
			return s, outStop
		}
	}
	if m.dbg.reinjectGuestInt3(v) {
		return vmm.Stop{}, outAgain
	}
	if v.completeUnemulated() {
		if stepping {
			return vmm.Stop{Reason: vmm.ReasonStep, PC: v.pc()}, outStepped
		}
		return vmm.Stop{}, outAgain
	}
	d := v.internalError()
	if v.emulationFailureAt() {
		if why := v.readTrapFailure(); why != "" {
			d = why + " (" + d + ")"
		}
	}
	return vmm.Stop{Reason: vmm.ReasonInternalError, PC: v.pc(), Detail: d}, outStop
}
