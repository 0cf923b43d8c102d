package session

// Event is something the session tells its client.
type Event interface{ event() }

// StopReason is why the guest stopped, as the user should be told.
type StopReason uint8

const (
	StopStep                  StopReason = iota + 1 // a step ended
	StopBreakpoint                                  // a source-line breakpoint
	StopFunctionBreakpoint                          // a function breakpoint
	StopInstructionBreakpoint                       // an instruction breakpoint
	StopDataBreakpoint                              // a watchpoint
	StopException                                   // a guest exception, a triple fault, a hypervisor error
	StopPause                                       // a pause, or the guest cannot go on (all vCPUs halted)
	StopEntry                                       // before the first instruction
	StopGoto                                        // a jump moved the vCPU
)

var stopReasonNames = [...]string{StopStep: "step", StopBreakpoint: "breakpoint", StopFunctionBreakpoint: "function breakpoint",
	StopInstructionBreakpoint: "instruction breakpoint", StopDataBreakpoint: "data breakpoint", StopException: "exception",
	StopPause: "pause", StopEntry: "entry", StopGoto: "goto"}

func (r StopReason) String() string {
	if int(r) < len(stopReasonNames) && stopReasonNames[r] != "" {
		return stopReasonNames[r]
	}
	return "unknown"
}

// Stopped says the guest stopped (all vCPUs).
type Stopped struct {
	Reason      StopReason
	Thread      int // vCPU index + 1
	HitIDs      []int
	Description string
	Text        string
}

// Continued says every vCPU runs again: sent when a step first runs the
// whole guest (over a call, out of a function), where the client,
// told only that the stepped thread runs, would show the others paused.
type Continued struct{ Thread int }

// Output is text for the client's console.
type Output struct {
	Kind OutputKind
	Text string
}

// OutputKind says what an Output's text is.
type OutputKind uint8

const (
	OutNote      OutputKind = iota // vmdap's own message, or what the user asked to see (logpoints, the kernel log)
	OutImportant                   // what the user must not miss: why the session ended, a guest's fatal fault
	OutError                       // a breakpoint condition that could not be evaluated
)

// Exited says the guest ended with a status.
type Exited struct{ Code int }

// Terminated says the session is over.
type Terminated struct{}

// BreakpointChanged reports a breakpoint whose state changed on its own
// (e.g. a pending breakpoint verified later).
type BreakpointChanged struct{ BP BreakpointInfo }

// Invalidated asks the client to refetch the variables (after memory or
// register writes), and the stacks too when Stacks is set.
type Invalidated struct{ Stacks bool }

// MemoryChanged reports a memory write.
type MemoryChanged struct {
	Addr  uint64
	Count int
}

func (Stopped) event()           {}
func (Continued) event()         {}
func (Output) event()            {}
func (Exited) event()            {}
func (Terminated) event()        {}
func (BreakpointChanged) event() {}
func (Invalidated) event()       {}
func (MemoryChanged) event()     {}
