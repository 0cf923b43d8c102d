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
	PC     uint64
	// Addr is the breakpoint address for breakpoint stops.
	Addr uint64
	// Watch describes a watchpoint hit.
	Watch *WatchHit
	// ExitCode is the guest's exit status for ReasonExited.
	ExitCode int
	// Signal is the stub's signal number for ReasonSignal.
	Signal int
	// Detail is a human-readable explanation (internal errors, shutdowns).
	Detail string
}

func (s Stop) String() string {
	switch s.Reason {
	case ReasonExited:
		return fmt.Sprintf("exited with status %d", s.ExitCode)
	case ReasonWatchpoint:
		if s.Watch != nil {
			return fmt.Sprintf("vCPU %d: watchpoint %s %#x+%d at pc %#x", s.VCPU, s.Watch.Access, s.Watch.Watch.Addr, s.Watch.Watch.Len, s.PC)
		}
	case ReasonInternalError, ReasonShutdown:
		return fmt.Sprintf("vCPU %d: %s at pc %#x: %s", s.VCPU, s.Reason, s.PC, s.Detail)
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
