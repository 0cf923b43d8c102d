package vmm

import (
	"errors"
	"fmt"
)

var (
	// ErrUnsupported: the backend or host does not provide the mechanism.
	ErrUnsupported = errors.New("not supported by this target")
	// ErrNotStopped: the request needs the target stopped.
	ErrNotStopped = errors.New("target is running")
	// ErrRunning is returned by Continue/Step on a running target.
	ErrRunning = errors.New("target is already running")
	// ErrExited: the guest has ended; nothing can run any more.
	ErrExited = errors.New("guest has exited")
	// ErrBreakpointExists: a breakpoint is already at that address (the
	// session inserts each address once; see Breakpoints).
	ErrBreakpointExists = errors.New("a breakpoint is already there")
	// ErrNoSlots: all debug-register slots are in use.
	ErrNoSlots = errors.New("all four debug-register slots (DR0-DR3) are in use")
	// ErrClosed: the target was closed.
	ErrClosed = errors.New("target is closed")
	// ErrNoVCPU: the vCPU index is out of range.
	ErrNoVCPU = errors.New("no such vCPU")
)

// FaultError reports guest memory that cannot be accessed.
type FaultError struct {
	Addr   uint64 // first inaccessible address
	Write  bool
	Reason string
}

func (e *FaultError) Error() string {
	op := "read"
	if e.Write {
		op = "write"
	}
	return fmt.Sprintf("cannot %s guest memory at %#x: %s", op, e.Addr, e.Reason)
}
