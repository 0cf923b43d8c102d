package gdbremote

import (
	"context"
	"fmt"

	"vmdap/vmm"
)

// Stepping a hlt.
//
// Stubs hold interrupts off while they single-step (QEMU's default sstep
// flags NOIRQ|NOTIMER, bhyve's MASK_HWINTR), so a stepped hlt either never
// wakes or, on QEMU TCG, runs on one instruction too far with the awaited
// interrupt still pending; a source-line step over `while (!ticks) hlt();`
// then never advances. vmdap steps a hlt the way it steps over a call:
// a temporary breakpoint after it and a continue, so the interrupt ends
// the wait and its handler runs (a breakpoint in the handler stops there).
// The step then ends when that vCPU reaches the instruction after the hlt,
// or a pause stops it.

// haltNext says whether the instruction at vCPU's pc is a hlt (0xf4 is no
// prefix: at an instruction's start it is always HLT) and where it ends.
func (t *Target) haltNext(vcpu int, pc uint64) (uint64, bool) {
	if t.sw[pc] != nil || t.hw[pc] {
		return 0, false // stepping off our own breakpoint: stepOff
	}
	if err := t.selectThread('g', vcpu); err != nil {
		return 0, false
	}
	var b [1]byte
	if n, err := t.readMem(b[:], pc); err != nil || n != 1 || b[0] != 0xf4 {
		return 0, false
	}
	return pc + 1, true
}

// tempBreak is the temporary breakpoint of a step over a hlt.
type tempBreak struct {
	vcpu  int
	addr  uint64
	z     int  // 0 or 1: the Z packet type placed, -1: a breakpoint of ours was there already
	owned bool // placed by this step (removed when it ends)
}

// stepOverHalt starts the run that completes a step of a hlt. false:
// no breakpoint could be placed; the caller steps plainly.
func (t *Target) stepOverHalt(vcpu int, next uint64) (bool, error) {
	tb := tempBreak{vcpu: vcpu, addr: next, z: -1}
	switch {
	case t.sw[next] != nil || t.hw[next]:
	case t.z[0] && !t.cfg.NoSWBreakpoints:
		tb.z = 0
	case t.z[1]:
		tb.z = 1
	default:
		return false, nil
	}
	if tb.z >= 0 {
		if _, err := t.c.Exchange("inserting a temporary breakpoint", fmt.Sprintf("Z%d,%x,1", tb.z, next)); err != nil {
			return false, nil
		}
		tb.owned = true
	}
	if err := t.sendContinue(); err != nil {
		t.removeTemp(tb)
		return true, err
	}
	t.state = running
	t.interrupt = false
	go t.awaitHalt(tb)
	return true, nil
}

// awaitHalt receives the stop of a step over a hlt and reports it: a step
// stop when the stepped vCPU reached the instruction after the hlt.
func (t *Target) awaitHalt(tb tempBreak) {
	reply, err := t.c.Recv(context.Background())
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == closed {
		return
	}
	s := t.classify(reply, err, -1, false)
	if !s.Reason.Final() {
		t.removeTemp(tb)
		atTarget := s.VCPU == tb.vcpu && s.PC == tb.addr
		switch s.Reason {
		case vmm.ReasonBreakpoint, vmm.ReasonHWBreakpoint, vmm.ReasonSignal:
		case vmm.ReasonWatchpoint:
			// our execute breakpoint misreported as a watch hit (QEMU-KVM)
			atTarget = atTarget && tb.z == 1 && s.Addr == tb.addr && !t.watchCovers(tb.addr)
		default:
			atTarget = false
		}
		if atTarget {
			s = vmm.Stop{VCPU: s.VCPU, PC: s.PC, Reason: vmm.ReasonStep}
		}
		s = t.checkSoft(s)
	}
	t.deliver(s)
}

func (t *Target) removeTemp(tb tempBreak) {
	if tb.owned {
		t.c.Exchange("removing a temporary breakpoint", fmt.Sprintf("z%d,%x,1", tb.z, tb.addr))
	}
}
