package vmm

import (
	"fmt"
	"strings"
)

// Capabilities states, as facts found at run time, what a target can do.
// The DAP layer maps it to DAP capabilities; logs print it.
type Capabilities struct {
	Backend string // "kvm", "gdbremote"
	Host    string // "Intel VMX", "AMD SVM", "PVM", "QEMU", "bhyve", …

	SWBreakpoints      bool
	SWBreakpointMethod string // how a software breakpoint is realised
	HWBreakpointSlots  int
	HWResumeMethod     string
	SingleStep         bool
	StepMethod         string
	// StepHoldsInterrupts: a Step holds interrupts off (a GDB stub's
	// step), so a stepped hlt never wakes; step one by running to the
	// instruction after it.
	StepHoldsInterrupts bool
	DRWatchpoints       bool // debug-register watchpoints fire on this host
	PageWatchpoints     bool
	ReadWatchpoints     bool // read-only watchpoints possible (page or stub)
	StubWatchpoints     bool
	RegisterWrite       bool
	SegmentWrite        bool
	DebugRegisters      bool
	PhysicalMemory      bool
	Pause               bool
	// Notes carries host facts worth telling a user (e.g. "CPL3 code is
	// invisible to debugging on this host").
	Notes []string
}

// Lines renders the capabilities as "name: value" lines for `vmdap check`
// and logs.
func (c Capabilities) Lines() []string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	l := []string{
		"backend: " + c.Backend,
		"host: " + c.Host,
		fmt.Sprintf("software breakpoints: %s (%s)", yes(c.SWBreakpoints), c.SWBreakpointMethod),
		fmt.Sprintf("hardware breakpoints: %d slots (resume: %s)", c.HWBreakpointSlots, c.HWResumeMethod),
		fmt.Sprintf("single-step: %s (%s)", yes(c.SingleStep), c.StepMethod),
		"debug-register watchpoints: " + yes(c.DRWatchpoints),
		"page-protection watchpoints: " + yes(c.PageWatchpoints),
		"read watchpoints: " + yes(c.ReadWatchpoints),
		"register writes: " + yes(c.RegisterWrite),
		"physical memory: " + yes(c.PhysicalMemory),
		"pause: " + yes(c.Pause),
	}
	for _, n := range c.Notes {
		l = append(l, "note: "+n)
	}
	return l
}

func (c Capabilities) String() string { return strings.Join(c.Lines(), "; ") }
