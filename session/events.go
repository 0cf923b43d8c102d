package session

// Event is something the session tells its client.
type Event interface{ event() }

// StopReason is why the session stopped, in DAP's words.
type StopReason string

const (
	StopStep                  StopReason = "step"
	StopBreakpoint            StopReason = "breakpoint"
	StopFunctionBreakpoint    StopReason = "function breakpoint"
	StopInstructionBreakpoint StopReason = "instruction breakpoint"
	StopDataBreakpoint        StopReason = "data breakpoint"
	StopException             StopReason = "exception"
	StopPause                 StopReason = "pause"
	StopEntry                 StopReason = "entry"
	StopGoto                  StopReason = "goto"
)

// Stopped says the guest stopped (all vCPUs).
type Stopped struct {
	Reason      StopReason
	Thread      int // vCPU index + 1
	HitIDs      []int
	Description string
	Text        string
}

// Continued says the guest runs again (sent for runs the client did not
// start itself, and after steps).
type Continued struct{ Thread int }

// Output is text for the client's console.
type Output struct {
	Category string // "console", "stdout" (guest serial), "stderr", "important"
	Text     string
}

// Exited says the guest ended with a status.
type Exited struct{ Code int }

// Terminated says the session is over.
type Terminated struct{}

// BreakpointChanged reports a breakpoint whose state changed on its own
// (e.g. a pending breakpoint verified later).
type BreakpointChanged struct{ BP BreakpointInfo }

// Invalidated asks the client to refetch state (after memory writes).
type Invalidated struct{ Areas []string }

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
