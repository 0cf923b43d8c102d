package session

import (
	"fmt"

	"vmdap/vmm"
)

// Watch scopes: a watched local lives as long as its frame, as in gdb.
// When the frame returns, its stack slot becomes another frame's, and a
// watchpoint left on it would report writes to a variable that no longer
// exists. So the data breakpoint on a local also keeps a breakpoint where
// its frame returns to (its caller's pc, with the stack pointer back
// above the frame); reaching it deletes the watchpoint, tells the client
// (a breakpoint event) and stops there, as gdb does ("Watchpoint 2
// deleted because the program has left the block in which its
// expression is valid").

// watchScope is the frame a watched local lives in.
type watchScope struct {
	vcpu     int
	fn       string // the frame's function
	cfa      uint64 // its CFA: the stack pointer once it has returned
	ret      uint64 // where it returns to
	key      physKey
	placed   bool
	left     string // set once the frame has returned: why the watch is gone
	callerFn string
}

// frameOwning finds the frame of vCPU v whose stack holds addr (between
// the stack pointer of the frame below and its own CFA), with a caller to
// return to; nil when addr is in no frame (a global, the heap).
// Session.mu held, target stopped.
func (s *Session) frameOwning(v int, addr uint64) *watchScope {
	fs, err := s.framesLocked(v)
	if err != nil || len(fs) < 2 {
		return nil
	}
	r, err := s.t.Regs(v)
	if err != nil {
		return nil
	}
	low := r.RSP
	for i, f := range fs {
		if f.Inlined || !f.HasCFA {
			continue
		}
		if addr >= low && addr < f.CFA {
			for _, c := range fs[i+1:] {
				if c.phys != f.phys {
					return &watchScope{vcpu: v, fn: f.Name(), cfa: f.CFA, ret: c.PC, callerFn: c.Name()}
				}
			}
			return nil
		}
		low = f.CFA
	}
	return nil
}

// placeScope puts the breakpoint where a watched local's frame returns.
// Without one (no breakpoint fits), the watch simply outlives the frame.
func (b *bpTable) placeScope(l *logical) {
	sc := l.watch.target.scope
	if sc == nil || sc.placed {
		return
	}
	hw, err := b.useHW("")
	if err != nil {
		return
	}
	sc.key = physKey{sc.ret, hw}
	if err := b.insert(sc.key, breaklet{kind: letScope, owner: l}); err != nil {
		b.s.log.WithError(err).Debugf("no scope breakpoint for the watch on %s", l.watch.target.name)
		return
	}
	sc.placed = true
}

func (b *bpTable) unplaceScope(l *logical) {
	sc := l.watch.target.scope
	if sc == nil || !sc.placed {
		return
	}
	b.remove(sc.key, breaklet{kind: letScope, owner: l})
	sc.placed = false
}

// scopeStop handles a stop at the return of a watched local's frame:
// each watch whose frame has returned (the stack pointer is back above
// it) is deleted and reported, and the stop is the user's. Session.mu
// held.
func (s *Session) scopeStop(st vmm.Stop) (*Stopped, bool) {
	desc := s.endScopes(st)
	if desc == "" {
		return nil, false
	}
	return &Stopped{Reason: StopDataBreakpoint, Description: desc, Text: desc}, true
}

// endScopes deletes the watches whose frame returned to where st is, and
// says which ("" when none). Session.mu held.
func (s *Session) endScopes(st vmm.Stop) string {
	var ended []*logical
	for _, l := range s.bps.data {
		if l.watch == nil || l.watch.target.scope == nil {
			continue
		}
		sc := l.watch.target.scope
		if !sc.placed || sc.ret != st.PC || sc.vcpu != st.VCPU {
			continue
		}
		if r, err := s.t.Regs(st.VCPU); err != nil || r.RSP < sc.cfa {
			continue // a deeper, recursive call of the function returning
		}
		ended = append(ended, l)
	}
	if len(ended) == 0 {
		return ""
	}
	var desc string
	for _, l := range ended {
		sc := l.watch.target.scope
		s.bps.unplaceData(l)
		sc.left = fmt.Sprintf("%s went out of scope: %s returned to %s, and the watchpoint was deleted", l.watch.target.name, sc.fn, sc.callerFn)
		l.info.Verified, l.info.State, l.info.Message = false, BPFailed, sc.left
		s.emit(BreakpointChanged{BP: l.info})
		if desc != "" {
			desc += "; "
		}
		desc += sc.left
	}
	return desc
}
