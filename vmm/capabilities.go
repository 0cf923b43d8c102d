package vmm

import (
	"fmt"
	"strings"
)

// Capabilities names how a target realises the mechanisms it offers, and
// what its host cannot do, for logs and `vmdap check`. Whether a mechanism
// exists is not stated here: the Target's optional accessors
// (SWBreakpoints(), HWBreakpoints(), Stepper(), Watchpoints(), …) are the
// one source of that, for the session, the DAP capabilities and Describe.
type Capabilities struct {
	Backend string // "kvm", "gdbremote"
	Host    string // "Intel VMX", "AMD SVM", "PVM", "QEMU (tcg)", "bhyve", …

	// How each mechanism is realised where the target offers it.
	SWBreakpointMethod string // "int3 (emulation failure)", "Z0", …
	HWResumeMethod     string // how a vCPU resumes from a debug-register breakpoint
	StepMethod         string // "KVM_GUESTDBG_SINGLESTEP + BLOCKIRQ", "vCont;s", …

	// Notes carries host facts worth telling a user (e.g. "CPL3 code is
	// invisible to debugging on this host").
	Notes []string
}

// Describe renders what t offers, from its accessors, with how each
// mechanism is realised, as "name: value" lines for logs.
func Describe(t Target) []string {
	c := t.Capabilities()
	method := func(ok bool, how string) string {
		switch {
		case !ok:
			return "no"
		case how == "":
			return "yes"
		}
		return "yes, by " + how
	}
	_, sw := t.SWBreakpoints()
	hw := "none"
	if h, ok := t.HWBreakpoints(); ok {
		hw = fmt.Sprintf("%d slots (resume: %s)", h.Slots(), c.HWResumeMethod)
	}
	_, step := t.Stepper()
	watch := "none"
	if w, ok := t.Watchpoints(); ok {
		var kinds []string
		for _, k := range w.WatchKinds() {
			kinds = append(kinds, k.String())
		}
		watch = strings.Join(kinds, ", ")
	}
	_, regs := t.RegisterWriter()
	_, dr := t.DebugRegisters()
	_, fp := t.FPRegisters()
	_, phys := t.PhysicalMemory()
	l := []string{
		"backend: " + c.Backend,
		"host: " + c.Host,
		fmt.Sprintf("vCPUs: %d", t.VCPUs()),
		"software breakpoints: " + method(sw, c.SWBreakpointMethod),
		"hardware breakpoints: " + hw,
		"single-step: " + method(step, c.StepMethod),
		"watchpoints: " + watch,
		"register writes: " + method(regs, ""),
		"debug registers: " + method(dr, ""),
		"x87 and SSE registers: " + method(fp, ""),
		"physical memory: " + method(phys, ""),
	}
	for _, n := range c.Notes {
		l = append(l, "note: "+n)
	}
	return l
}

// String renders one watchpoint kind and what it can do, e.g. "debug
// register (write, readWrite; at most 32 bytes)".
func (k WatchSupport) String() string {
	var acc []string
	for _, a := range k.Accesses {
		acc = append(acc, a.String())
	}
	s := k.Kind.String() + " (" + strings.Join(acc, ", ")
	if k.MaxLen > 0 {
		s += fmt.Sprintf("; at most %d bytes", k.MaxLen)
	}
	return s + ")"
}
