package vmm

import "fmt"

// Reason says why a target stopped.
type Reason uint8

const (
	ReasonNone Reason = iota
	// ReasonBreakpoint: a software breakpoint was hit; PC is its address.
	ReasonBreakpoint
	// ReasonHWBreakpoint: a debug-register execute breakpoint was hit.
	ReasonHWBreakpoint
	// ReasonWatchpoint: a watched range was accessed; see Stop.Watch.
	ReasonWatchpoint
	// ReasonStep: a single step completed.
	ReasonStep
	// ReasonPause: the stop was requested with Pause.
	ReasonPause
	// ReasonExited: the guest ended itself (debug-exit port, W packet);
	// see Stop.ExitCode. The target cannot run again.
	ReasonExited
	// ReasonShutdown: the guest triple-faulted. Registers stay readable.
	ReasonShutdown
	// ReasonHalted: every vCPU executed HLT and nothing can wake them.
	ReasonHalted
	// ReasonInternalError: the hypervisor could not run the guest; see
	// Stop.Detail.
	ReasonInternalError
	// ReasonSignal: a remote stub reported a stop vmdap did not ask for
	// (e.g. a guest int3 it reflected); see Stop.Signal.
	ReasonSignal
)

var reasonNames = [...]string{"none", "breakpoint", "hardware breakpoint", "watchpoint", "step", "pause",
	"exited", "shutdown", "halted", "internal error", "signal"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", r)
}

// Final reports whether the guest cannot run after a stop with this reason.
func (r Reason) Final() bool {
	return r == ReasonExited || r == ReasonShutdown || r == ReasonInternalError
}

// Stop is why and where a target stopped.
type Stop struct {
	VCPU   int
	Reason Reason
	// PC is where the vCPU stopped, as a linear address (RIP in 64-bit
	// mode, CS.base + IP in real mode: x86.CodeAddr), except on a step
	// stop with PCUnknown set: a remote stub whose stop reply carries no
	// registers (QEMU's) would need a round trip to read it, so Regs
	// reads it when someone asks.
	PC        uint64
	PCUnknown bool
	// Addr is the breakpoint address for breakpoint stops.
	Addr uint64
	// Watch describes a watchpoint hit.
	Watch *WatchHit
	// ExitCode is the guest's exit status for ReasonExited: the
	// hypervisor's own status when the guest's is not visible, -1 when
	// neither is known (a remote stub's connection lost, as lldb says).
	ExitCode int
	// Signal is the stub's signal number for ReasonSignal.
	Signal int
	// Detail is a human-readable explanation (internal errors, shutdowns;
	// for ReasonExited, how an ending that was not the guest's own came:
	// a hypervisor killed, a stub that stopped answering).
	Detail string
}

func (s Stop) String() string {
	switch s.Reason {
	case ReasonExited:
		if s.Detail != "" {
			return fmt.Sprintf("exited with status %d: %s", s.ExitCode, s.Detail)
		}
		return fmt.Sprintf("exited with status %d", s.ExitCode)
	case ReasonWatchpoint:
		if s.Watch != nil {
			return fmt.Sprintf("vCPU %d: watchpoint %s %#x+%d at pc %#x", s.VCPU, s.Watch.Access, s.Watch.Watch.Addr, s.Watch.Watch.Len, s.PC)
		}
	case ReasonInternalError, ReasonShutdown:
		return fmt.Sprintf("vCPU %d: %s at pc %#x: %s", s.VCPU, s.Reason, s.PC, s.Detail)
	}
	if s.PCUnknown {
		return fmt.Sprintf("vCPU %d: %s", s.VCPU, s.Reason)
	}
	return fmt.Sprintf("vCPU %d: %s at pc %#x", s.VCPU, s.Reason, s.PC)
}

// WatchHit describes the access that triggered a watchpoint.
type WatchHit struct {
	Watch  Watch  // the watchpoint as inserted
	Access Access // what the guest did: AccessRead or AccessWrite (ReadWrite when unknown)
	Addr   uint64 // the accessed address, when known (else Watch.Addr)
	// Old and New hold the watched bytes before and after the access, when
	// known (len == Watch.Len, or nil).
	Old, New []byte
}
