package session

import (
	"fmt"
	"strings"

	"vmdap/vmm"
)

func (s *Session) exceptionStopIfOn(st vmm.Stop) (*Stopped, bool) {
	vecs, ok := s.bps.exc.handlers[st.PC]
	if !ok {
		return nil, false
	}
	for _, v := range vecs {
		if s.bps.exc.on[v] {
			return s.exceptionStop(st)
		}
	}
	return nil, false
}

// codeBreakpointStop evaluates the user breakpoints at a stop's PC
// (conditions, hit counts, logpoints). It returns the stop to report, or
// nil to go on.
func (s *Session) codeBreakpointStop(st vmm.Stop) *Stopped {
	var ids []int
	var reason StopReason
	exc := ""
	for _, l := range s.bps.at(st.PC) {
		if l.exc != "" {
			exc = l.exc // reported unless a user breakpoint is here too
			continue
		}
		if !s.conditionMet(l, st.VCPU) {
			continue
		}
		if l.logMsg != "" {
			s.emit(Output{Kind: OutNote, Text: s.interpolate(l.logMsg, st.VCPU) + "\n"})
			continue
		}
		ids = append(ids, l.id)
		if reason == 0 {
			switch l.kind {
			case KindFunction:
				reason = StopFunctionBreakpoint
			case KindInstruction:
				reason = StopInstructionBreakpoint
			default:
				reason = StopBreakpoint
			}
		}
	}
	if len(ids) == 0 {
		if exc != "" {
			return s.kernelFailureStop(st, exc)
		}
		return nil
	}
	return &Stopped{Reason: reason, HitIDs: ids}
}

// conditionMet evaluates a breakpoint's condition and hit condition,
// counting the hit when the condition holds.
func (s *Session) conditionMet(l *logical, vcpu int) bool {
	if strings.TrimSpace(l.cond) != "" {
		sc, err := s.newScope(vcpu, 0)
		var ok bool
		if err == nil {
			var v value
			if v, err = evalExpr(l.cond, sc); err == nil {
				ok, err = truthy(v, sc)
			}
		}
		if err != nil {
			s.emit(Output{Kind: OutError, Text: fmt.Sprintf("breakpoint %d: condition %q: %v (stopping)\n", l.id, l.cond, err)})
			ok = true
		}
		if !ok {
			return false
		}
	}
	l.hits++
	return hitCondMet(l.hitCond, l.hits)
}

// interpolate expands {expression} in a logpoint message.
func (s *Session) interpolate(msg string, vcpu int) string {
	var out strings.Builder
	for _, p := range logParts(msg) {
		if !p.expr {
			out.WriteString(p.text)
			continue
		}
		expr := p.text
		sc, err := s.newScope(vcpu, 0)
		if err == nil {
			var v value
			e, hex := formatSpec(expr)
			if v, err = evalExpr(e, sc); err == nil {
				out.WriteString(format(v, sc, hex))
			}
		}
		if err != nil {
			fmt.Fprintf(&out, "<%s: %v>", expr, err)
		}
	}
	return out.String()
}

// userBreakpointAt reports a user breakpoint at pc after an internal
// step landed there (so stepping onto a breakpoint counts as hitting it).
func (s *Session) userBreakpointAt(st vmm.Stop) *Stopped {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.codeBreakpointStop(st)
}
