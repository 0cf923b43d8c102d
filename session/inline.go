package session

import (
	"path/filepath"
	"strings"

	"vmdap/session/symbols"
	"vmdap/vmm"
)

// Stops at the first instruction of inlined calls, as gdb shows them.
//
// A step that ends where inlined calls begin (their entry PC, or the
// start of one of their ranges) has not entered them yet, as far as the
// source goes: gdb shows the stop at the call, in the caller
// (skip_inline_frames), a step then enters the first of them without
// running (one frame more, the same PC), and a next runs over them, to
// the caller's next line. A breakpoint stop there is shown in the
// function the breakpoint names. Without this, a step out of a
// function whose call is followed by an inlined one (start_kernel's
// setup_boot_config) showed the inlined callee on top, and the next next
// went on inside it.

// inlineEntries counts the innermost inlined calls at pc that begin at
// it (Session.mu held).
func (s *Session) inlineEntries(pc uint64) int {
	if s.sym == nil {
		return 0
	}
	calls := s.sym.InlinedAt(pc)
	n := 0
	for i := len(calls) - 1; i >= 0 && calls[i].BeginsAt(pc); i-- {
		n++
	}
	return n
}

// callsOnLine returns the inlined calls at pc and how many of the
// innermost begin at pc with the outermost of those called on line at
// (the line a step began on): 0 when none is.
func (s *Session) callsOnLine(pc uint64, at symbols.Location) ([]symbols.InlinedCall, int) {
	n := s.inlineEntries(pc)
	if n == 0 {
		return nil, 0
	}
	calls := s.sym.InlinedAt(pc)
	if n > len(calls) {
		return nil, 0
	}
	c := calls[len(calls)-n]
	if c.CallLine != at.Line || filepath.Base(c.CallFile) != filepath.Base(at.File) {
		return nil, 0
	}
	return calls, n
}

// callSiteOfHidden is where the outermost of the hide innermost inlined
// calls at pc is called: the caller's line at such a stop.
func (s *Session) callSiteOfHidden(pc uint64, hide int) (string, int) {
	calls := s.sym.InlinedAt(pc)
	if hide > len(calls) || hide <= 0 {
		return "", 0
	}
	c := calls[len(calls)-hide]
	return c.CallFile, c.CallLine
}

// hiddenOf is the count of hidden inlined calls at a run's stop: what the
// run said (a step in that entered one), else, after a step, the calls
// that begin at its PC (Session.mu held).
func (s *Session) hiddenOf(r result) int {
	if r.hideSet {
		return r.hide
	}
	if r.ev == nil {
		return 0
	}
	_, pc, err := s.regsPC(r.stop.VCPU)
	if err != nil {
		return 0
	}
	switch r.ev.Reason {
	case StopStep:
		return s.inlineEntries(pc)
	case StopBreakpoint, StopFunctionBreakpoint:
		return s.hiddenAtBreakpoint(r.ev.HitIDs, pc)
	}
	return 0
}

// hiddenAtBreakpoint is how many of the inlined calls beginning at pc a
// breakpoint stop there has not entered, as gdb tells (its
// stopped_by_user_bp_inline_frame): a function breakpoint stops in the
// function it names (on kmain, not in what kmain inlines first; on an
// inlined function, in it); a line breakpoint on the line of a call in
// the caller, at the call (Session.mu held).
func (s *Session) hiddenAtBreakpoint(ids []int, pc uint64) int {
	if len(ids) == 0 || s.sym == nil {
		return 0
	}
	var l *logical
	for _, x := range s.bps.all() {
		if x.id == ids[0] {
			l = x
		}
	}
	if l == nil {
		return 0
	}
	calls := s.sym.InlinedAt(pc)
	n := 0
	for i := len(calls) - 1; i >= 0 && calls[i].BeginsAt(pc); i-- {
		c := calls[i]
		switch l.kind {
		case KindFunction:
			if c.Name == l.fn || strings.HasSuffix(l.fn, "::"+c.Name) {
				return n // the breakpoint's own function
			}
		case KindSource:
			if c.CallLine == l.info.Line && filepath.Base(c.CallFile) == filepath.Base(l.file) {
				return len(calls) - i // at its call, on the caller's line
			}
			continue
		default:
			return 0
		}
		n++
	}
	if l.kind == KindSource {
		return 0
	}
	return n
}

// hiddenAt is the stop's hidden count on vCPU v (Session.mu held).
func (s *Session) hiddenAt(v int) int { return s.hidden[v] }

// enterInlined is a step in at a stop before hidden inlined calls: the
// next one is entered, and the stop reported again, without running.
func (s *Session) enterInlined(v, hidden int) result {
	_, pc, err := s.regsPC(v)
	if err != nil {
		return result{err: err}
	}
	r := userStop(vmm.Stop{VCPU: v, PC: pc, Reason: vmm.ReasonStep}, &Stopped{Reason: StopStep})
	r.hide = hidden - 1
	r.hideSet = true
	return r
}

// nextOverInlined is a next at a stop before hidden inlined calls: it runs
// over the outermost of them (until the PC leaves its code), then steps on
// as gdb's next does, stepping the caller's line (the call's): past the
// rest of it, and past a row of another line that is not a statement (the
// ret after implicit_user's inlined pair_sum at -O2, where the next
// stopped and gdb's goes on into kmain).
func (s *Session) nextOverInlined(v, hidden int) result {
	_, pc, err := s.regsPC(v)
	if err != nil {
		return result{err: err}
	}
	s.mu.Lock()
	calls := s.sym.InlinedAt(pc)
	s.mu.Unlock()
	if hidden > len(calls) {
		return s.stepLine(v, nil)
	}
	outer := calls[len(calls)-hidden]
	r := s.stepOutOfBlock(v, outer.Ranges)
	return s.lineStepOn(v, r, symbols.Location{File: outer.CallFile, Line: outer.CallLine}, s.stepFrameAt(pc).fn)
}
