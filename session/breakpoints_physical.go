package session

import (
	"errors"
	"fmt"

	"vmdap/vmm"
	"vmdap/x86"
)

// Physical breakpoints: what is written into the target, and why.
//
// The session is the one owner of breakpoint bookkeeping. Several reasons
// can want a breakpoint at one address at once (a user breakpoint where a
// step over a call also waits, an exception handler that is also a
// function breakpoint), as Delve stacks Breaklets on one Breakpoint: each
// reason is a breaklet, the address is written into the target once, when
// its first breaklet arrives, and erased when its last one goes. Backends
// only write and erase at an address (vmm.Breakpoints).

// physKey names one physical breakpoint: an address (guest-virtual) and
// its mechanism, software (int3 or the backend's equivalent) or a debug
// register.
type physKey struct {
	addr uint64
	hw   bool
}

// breakletKind is why a physical breakpoint is in the target.
type breakletKind uint8

const (
	// letUser: a source, function or instruction breakpoint (its owner).
	letUser breakletKind = iota
	// letRunTo: the temporary breakpoint of a step: over a call, out of a
	// function, into a callee's prologue.
	letRunTo
	// letException: the handler of an enabled exception filter.
	letException
	// letLIDT: the instruction after an lidt, to find exception handlers
	// as soon as the guest loads its IDT.
	letLIDT
	// letScope: where the frame a watched local lives in returns (its
	// owner, the data breakpoint, ends there).
	letScope
)

// breaklet is one reason for a physical breakpoint.
type breaklet struct {
	kind  breakletKind
	owner *logical // letUser and letScope only
}

var (
	runToLet     = breaklet{kind: letRunTo}
	exceptionLet = breaklet{kind: letException}
	lidtLet      = breaklet{kind: letLIDT}
)

// physical is one breakpoint written into the target, with the breaklets
// that keep it there (never empty while it is in the table).
type physical struct {
	lets []breaklet
}

// insert adds breaklet why to the physical breakpoint k, writing it into
// the target when it is the first.
func (b *bpTable) insert(k physKey, why breaklet) error {
	if p := b.phys[k]; p != nil {
		p.lets = append(p.lets, why)
		return nil
	}
	if err := b.write(k); err != nil {
		return err
	}
	b.phys[k] = &physical{lets: []breaklet{why}}
	return nil
}

// remove takes breaklet why off the physical breakpoint k, erasing it
// from the target when it was the last.
func (b *bpTable) remove(k physKey, why breaklet) {
	p := b.phys[k]
	if p == nil {
		return
	}
	for i, l := range p.lets {
		if l == why {
			p.lets = append(p.lets[:i], p.lets[i+1:]...)
			break
		}
	}
	if len(p.lets) > 0 {
		return
	}
	delete(b.phys, k)
	if err := b.erase(k); err != nil {
		b.s.log.WithError(err).Warnf("removing breakpoint at %#x", k.addr)
	}
}

// write places k in the target.
func (b *bpTable) write(k physKey) error {
	if k.hw {
		hw, ok := b.s.t.HWBreakpoints()
		if !ok {
			return fmt.Errorf("hardware breakpoints: %w", vmm.ErrUnsupported)
		}
		return hw.InsertHWBreakpoint(k.addr)
	}
	sw, ok := b.s.t.SWBreakpoints()
	if !ok {
		return fmt.Errorf("software breakpoints: %w", vmm.ErrUnsupported)
	}
	return sw.InsertBreakpoint(k.addr)
}

// erase takes k out of the target.
func (b *bpTable) erase(k physKey) error {
	if k.hw {
		if hw, ok := b.s.t.HWBreakpoints(); ok {
			return hw.RemoveHWBreakpoint(k.addr)
		}
		return nil
	}
	if sw, ok := b.s.t.SWBreakpoints(); ok {
		return sw.RemoveBreakpoint(k.addr)
	}
	return nil
}

// useHW decides the mechanism for a mode. Without one, a software
// breakpoint, unless a vCPU is in a mode where it would not trap on this
// target (swTrap): then a debug register.
func (b *bpTable) useHW(mode string) (bool, error) {
	_, sw := b.s.t.SWBreakpoints()
	_, hw := b.s.t.HWBreakpoints()
	if b.s.dump != nil {
		return false, errors.New("this is a core dump: the machine it recorded never runs again, so no breakpoint can be hit")
	}
	switch mode {
	case "", ModeSoftware:
		if sw {
			if m, trap := b.swTrap(); !trap {
				if mode == "" && hw {
					return true, nil
				}
				return false, fmt.Errorf("a software breakpoint does not trap in %s on this target (vmdap check says why): use a hardware breakpoint", modeName(m))
			}
			return false, nil
		}
		if hw {
			return true, nil
		}
	case ModeHardware:
		if hw {
			return true, nil
		}
		return false, errors.New("this target has no hardware breakpoints")
	default:
		return false, fmt.Errorf("unknown breakpoint mode %q (use %q or %q)", mode, ModeSoftware, ModeHardware)
	}
	return false, errors.New("this target supports no breakpoints")
}

// swTrap reports whether a software breakpoint traps in the mode every
// vCPU is in now (vmm.SWBreakpointModes; a target without it: always),
// else the mode where it does not.
func (b *bpTable) swTrap() (x86.Mode, bool) {
	t := b.s.t
	if tt, ok := t.(*taskTarget); ok {
		t = tt.unwrap() // the vCPUs, not the sleeping tasks
	}
	m, ok := t.(vmm.SWBreakpointModes)
	if !ok {
		return 0, true
	}
	for v := 0; v < t.VCPUs(); v++ {
		sr, err := t.SRegs(v)
		if err != nil {
			continue
		}
		if mode := x86.DecodeMode(sr); !m.SWBreakpointTraps(mode) {
			return mode, false
		}
	}
	return 0, true
}

func modeName(m x86.Mode) string {
	switch m {
	case 16:
		return "real mode"
	case 32:
		return "32-bit mode"
	}
	return "64-bit mode"
}
