package session

import (
	"errors"
	"fmt"
	"strings"

	"vmdap/vmm"
)

// Placing code breakpoints, and the pending ones.
//
// A breakpoint is placed at all its addresses or at none. Where an address
// cannot be written yet (a kernel linked high, before it maps itself) the
// ways to place it, best first:
//
//   - the backend places it all the same (vmdap's VMM at the physical
//     address the image's PT_LOAD segments give; a GDB stub whose Z0 takes
//     an unmapped virtual address, as QEMU TCG's does): it is verified at
//     once;
//   - in the default mode, a free debug register (they compare linear
//     addresses and need no mapping); it moves to a software breakpoint,
//     freeing the register, as soon as the address can be written;
//   - else it is pending (verified false, reason "pending", a message that
//     says why) and tried again at every stop.
//
// A hardware breakpoint refused because all four debug registers are taken
// is pending too, and placed when one frees. A pending breakpoint that is
// placed later is reported with a BreakpointChanged event.

// userLet is the breaklet of l's own breakpoints.
func userLet(l *logical) breaklet { return breaklet{kind: letUser, owner: l} }

// place inserts the physical breakpoints of l and fills its info: verified,
// pending or failed. Target stopped, Session.mu held.
func (b *bpTable) place(l *logical) {
	b.unplace(l)
	if b.awaitingModule(l) {
		return
	}
	if len(l.addrs) == 0 {
		b.settle(l, BPFailed, "no code address for this breakpoint")
		return
	}
	l.info.Addr, l.info.HasAddr = l.addrs[0], true
	if l.kind == KindInstruction || l.kind == KindFunction && strings.HasPrefix(strings.TrimSpace(l.fn), "*") {
		// Addresses the user gave. Source and named-function breakpoints
		// come from the symbols, at instruction starts: decoding their
		// functions (every inlined site of a kernel function) would only
		// cost.
		for _, a := range l.addrs {
			if err := b.s.insnBoundary(b.s.curVCPU, a); err != nil {
				b.settle(l, BPFailed, err.Error())
				return
			}
		}
	}
	hw, err := b.useHW(l.mode)
	if err != nil {
		b.settle(l, BPFailed, err.Error())
		return
	}
	l.hw = hw
	l.modeNote = ""
	if _, sw := b.s.t.SWBreakpoints(); hw && sw && l.mode == "" {
		m, _ := b.swTrap()
		l.modeNote = "in a debug register: a software breakpoint does not trap in " + modeName(m) + " on this host"
	}
	for _, a := range l.addrs {
		k, err := b.placeAt(l, a)
		if err != nil {
			b.unplace(l)
			reason, msg := b.why(err, a)
			b.settle(l, reason, msg)
			return
		}
		l.placed = append(l.placed, k)
	}
	b.settle(l, BPPlaced, "")
}

// placeAt places one address of l: in l's mechanism, else (default mode,
// address not writable yet) in a debug register.
func (b *bpTable) placeAt(l *logical, a uint64) (physKey, error) {
	k := physKey{a, l.hw}
	err := b.insert(k, userLet(l))
	if err == nil || !b.mayFallBack(l, err) {
		return k, err
	}
	k.hw = true
	if herr := b.insert(k, userLet(l)); herr != nil {
		return k, &pendingError{fault: err, hw: herr}
	}
	return k, nil
}

// mayFallBack says whether a software breakpoint of l refused with err may
// go into a debug register instead: the user chose no mode, and the
// address cannot be written yet.
func (b *bpTable) mayFallBack(l *logical, err error) bool {
	var fe *vmm.FaultError
	if l.hw || l.mode != "" || !errors.As(err, &fe) {
		return false
	}
	_, ok := b.s.t.HWBreakpoints()
	return ok
}

// pendingError: an address cannot be written yet (fault), and no debug
// register could take it instead (hw).
type pendingError struct{ fault, hw error }

func (e *pendingError) Error() string { return e.fault.Error() }
func (e *pendingError) Unwrap() error { return e.fault }

// why turns a placement error at address a into a state and a message.
func (b *bpTable) why(err error, a uint64) (BPState, string) {
	var fe *vmm.FaultError
	switch {
	case errors.As(err, &fe):
		msg := fmt.Sprintf("address %#x cannot be written yet (%s)", a, fe.Reason)
		var pe *pendingError
		if errors.As(err, &pe) && errors.Is(pe.hw, vmm.ErrNoSlots) {
			msg += ", and all four debug registers (DR0-DR3) are in use"
		}
		return BPPending, msg + "; vmdap places the breakpoint as soon as the guest maps it (checked at every stop)"
	case errors.Is(err, vmm.ErrNoSlots):
		return BPPending, "all four hardware breakpoint slots (DR0-DR3) are in use; vmdap places the breakpoint when one frees"
	}
	return BPFailed, err.Error()
}

// settle sets l's state: placed (verified), pending or failed.
func (b *bpTable) settle(l *logical, state BPState, msg string) {
	l.info.Verified = state == BPPlaced
	l.info.State = state
	switch {
	case state != BPPlaced:
		l.info.Message = msg
	case b.inDR(l):
		l.info.Message = "placed in a debug register for now: the address cannot be written yet"
	case l.modeNote != "" && l.note != "":
		l.info.Message = l.modeNote + "; " + l.note
	case l.modeNote != "":
		l.info.Message = l.modeNote
	default:
		l.info.Message = l.note
	}
	if state == BPPlaced && (l.kind == KindSource || l.kind == KindFunction) && b.s.slideWanted() && len(l.addrs) > 0 && l.addrs[0] >= kernelHalf {
		// Nothing can tell yet whether the kernel will relocate itself.
		note := "at the kernel's link address: a kernel booted with KASLR (no nokaslr) runs elsewhere, " +
			"and vmdap moves its breakpoints when it finds where, at the first stop in the kernel " +
			"(boot with nokaslr, or set kernelOffset, for a breakpoint that must stop before that)"
		if l.info.Message != "" {
			note = l.info.Message + "; " + note
		}
		l.info.Message = note
	}
}

// inDR says whether a software breakpoint of l sits in a debug register
// for now (its address could not be written).
func (b *bpTable) inDR(l *logical) bool {
	for _, k := range l.placed {
		if k.hw != l.hw {
			return true
		}
	}
	return false
}

func (b *bpTable) unplace(l *logical) {
	for _, k := range l.placed {
		b.remove(k, userLet(l))
	}
	l.placed = nil
}

// retry places what could not be placed before: breakpoints sitting in a
// debug register move to software ones where their addresses can be
// written now (freeing the registers), then pending ones are tried again.
// Each one that changes is reported with a BreakpointChanged event, except
// those in skip (the request being answered reports them). Target stopped,
// Session.mu held.
func (b *bpTable) retry(skip map[*logical]bool) {
	for _, l := range b.all() {
		if skip[l] || !b.inDR(l) {
			continue
		}
		if b.toSoftware(l) {
			b.changed(l)
		}
	}
	for _, l := range b.all() {
		// An internal one (a Linux exception filter's) that failed
		// because software breakpoints do not trap in the vCPUs' mode
		// is tried again too.
		if skip[l] || l.info.State != BPPending && !(l.exc != "" && len(l.placed) == 0) {
			continue
		}
		if b.place(l); l.info.Verified {
			b.changed(l)
		}
	}
}

// toSoftware moves l's breakpoints that sit in debug registers to software
// ones where their addresses can be written now. It reports whether all
// did.
func (b *bpTable) toSoftware(l *logical) bool {
	for i, k := range l.placed {
		if k.hw == l.hw {
			continue
		}
		sw := physKey{k.addr, l.hw}
		if b.insert(sw, userLet(l)) != nil {
			continue
		}
		b.remove(k, userLet(l))
		l.placed[i] = sw
	}
	if b.inDR(l) {
		return false
	}
	b.settle(l, BPPlaced, "")
	return true
}
