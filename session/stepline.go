package session

import (
	"path/filepath"

	"vmdap/session/symbols"
	"vmdap/vmm"
	"vmdap/x86/disasm"
)

// stepFrame is the frame a line step is in, as gdb's frame id tells it
// apart without the stack: the function and the innermost inlined call
// holding the PC.
type stepFrame struct {
	fn         uint64 // the function's entry (0: none known)
	inl        uint64 // the inlined call's entry (0: none)
	inlLine    int
	inlCallers int
}

func (s *Session) stepFrameAt(pc uint64) stepFrame {
	var f stepFrame
	if fn := s.sym.FuncAt(pc); fn != nil {
		f.fn = fn.Low
	}
	if calls := s.sym.InlinedAt(pc); len(calls) > 0 {
		c := calls[len(calls)-1]
		f.inl, f.inlLine, f.inlCallers = c.Entry, c.CallLine, len(calls)
	}
	return f
}

// sameLine reports whether two locations are one line, however the line
// table and a call site spell its file.
func sameLine(a, b symbols.Location) bool {
	return a.Line == b.Line && filepath.Base(a.File) == filepath.Base(b.File)
}

// intoEvery makes stepLine step into every call (step in).
func intoEvery(uint64) bool { return true }

// stepLine steps one source line: over calls (next, into == nil) or into
// the calls into accepts by their address (step in, stopping after the
// callee's prologue), never by single-stepping through a call.
func (s *Session) stepLine(v int, into func(call uint64) bool) result {
	return s.stepLineFrom(v, into, nil)
}

// stepLineFrom is stepLine stepping line (when not nil) rather than the
// PC's: the step ends at a statement of another line or the entry of an
// inlined call on another line. A zero line is none: the first statement
// of any line ends it.
func (s *Session) stepLineFrom(v int, into func(call uint64) bool, line *symbols.Location) result {
	regs, pc, err := s.regsPC(v)
	if err != nil {
		return result{err: err}
	}
	start, hasLine := s.sym.PCToLine(pc)
	if !hasLine {
		if into != nil {
			r, _ := s.stepOnce(v)
			return r
		}
		return s.nextInsn(v)
	}
	lo, hi, _ := s.sym.LineRange(pc)
	if line != nil {
		start = *line
	}
	origin := start // the line the step began on
	frame := s.stepFrameAt(pc)
	moved := false
	spinLo, spins := lo, 0 // single steps in the range from spinLo
	for {
		before := pc // where this instruction (or call) began
		if s.pauseRequested() {
			return userStop(vmm.Stop{VCPU: v, PC: pc, Reason: vmm.ReasonPause}, &Stopped{Reason: StopPause})
		}
		if lo != spinLo {
			spinLo, spins = lo, 0
		}
		var last result
		ran := false
		if spins++; spins == loopSteps {
			// A line that loops: the guest runs, every vCPU, to where
			// the range is left (steploop.go).
			r, ok, tried := s.runOutOfRange(v, lo, hi, regs.RSP, into != nil)
			if tried {
				if !ok {
					return r
				}
				last, ran = r, true
			}
		}
		if !ran {
			in, derr := s.decodeAt(v, pc)
			switch {
			case derr == nil && in.Kind == disasm.KindCall && s.inBranchThunk(pc):
				// A retpoline's call to itself (the return address it
				// pushes is replaced by the branch target, and its ret
				// goes there): stepped through, never run over.
				r, ok := s.stepOnce(v)
				if !ok {
					return r
				}
				last = r
			case derr == nil && in.Kind == disasm.KindCall && (into == nil || !into(pc)):
				r, ok := s.runTo(v, in.Next(), regs.RSP)
				if !ok {
					return r
				}
				last = r
			case derr == nil && in.Kind == disasm.KindCall:
				r, ok := s.stepOnce(v)
				if !ok {
					return r
				}
				cr, err := s.t.Regs(v)
				if err != nil {
					return result{err: err}
				}
				// A call through an indirect branch thunk enters the
				// function the thunk branches to, as gdb's step does: it
				// steps through the thunk, then sees the step into that
				// function.
				for s.inBranchThunk(cr.RIP) {
					if s.pauseRequested() {
						return userStop(vmm.Stop{VCPU: v, PC: cr.RIP, Reason: vmm.ReasonPause}, &Stopped{Reason: StopPause})
					}
					if r, ok = s.stepOnce(v); !ok {
						return r
					}
					if cr, err = s.t.Regs(v); err != nil {
						return result{err: err}
					}
				}
				if fn := s.sym.FuncAt(cr.RIP); fn != nil && s.sym.HasLines(fn) {
					target := s.stepInTarget(v, fn)
					if cr.RIP != target {
						r2, ok := s.runTo(v, target, 0)
						if !ok {
							return r2
						}
						r = r2
					}
					return userStop(r.stop, &Stopped{Reason: StopStep})
				}
				// No line information in the callee: run it to its return.
				ra, err := s.readU64(v, cr.RSP)
				if err != nil {
					return result{err: err}
				}
				r2, ok := s.runTo(v, ra, cr.RSP+8)
				if !ok {
					return r2
				}
				last = r2
			default:
				r, ok := s.stepOnce(v)
				if !ok {
					return r
				}
				last = r
			}
		}
		for {
			if regs, pc, err = s.regsPC(v); err != nil {
				return result{err: err}
			}
			last.stop.PC, last.stop.VCPU = pc, v
			if ev := s.userBreakpointAt(vmm.Stop{VCPU: v, PC: pc, Reason: vmm.ReasonBreakpoint}); ev != nil {
				return userStop(last.stop, ev)
			}
			if s.inBranchThunk(pc) {
				// A step goes through an indirect branch thunk, as
				// gdb's next and step do ("stepped into indirect branch
				// thunk"): Linux's functions (and __fentry__) end in
				// jmp __x86_return_thunk, whose ret is then where the
				// step goes on from (back in the caller); stopping at
				// the thunk's line of retpoline.S would show the user
				// a frame gdb never shows.
				break
			}
			// Back at the line's start: a loop. Not a string
			// instruction's next iteration (rep stos, whose step ends at
			// the instruction itself until its count runs out): gdb's
			// step keeps going while the PC is in the line's range, and
			// a next over memset's inlined rep stos stopped again on the
			// same line at every iteration.
			again := pc == lo && moved && pc != before
			moved = true
			// Inlined calls that begin here are looked at before the
			// line's range, as gdb's infrun does ("stepped into inlined
			// function"): its step range is one line-table row, so the
			// inlined code at a later row of the same line (account's at
			// -O2, after an empty first range at the line's start) is
			// entered, not run through to its second line.
			entries := s.inlineEntries(pc)
			if entries > 0 && s.stepFrameAt(pc).fn != frame.fn {
				// Back in a caller (the stepped function returned):
				// gdb takes an inlined call's entry for a stop only in
				// the frame being stepped; in another ("stepped to a
				// different frame") only the start of a statement ends
				// the step. __write_seqlock_irqsave's return address
				// from _raw_spin_lock_irqsave begins an inlined call at
				// a row that is no statement: the step goes on.
				entries = 0
			}
			if entries > 0 {
				if _, on := s.callsOnLine(pc, origin); on == 0 {
					// Called on another line: the step stops at the
					// call, in the caller (the calls hidden), as gdb's
					// does.
					return userStop(last.stop, &Stopped{Reason: StopStep})
				}
			}
			if pc >= lo && pc < hi && !again && entries == 0 {
				break
			}
			loc, ok := s.sym.PCToLine(pc)
			if !ok {
				return userStop(last.stop, &Stopped{Reason: StopStep})
			}
			if calls, n := s.callsOnLine(pc, origin); n > 0 {
				// Inlined calls made on the line being stepped, as gdb
				// takes them: a step in enters the first, a next runs
				// over them and goes on.
				if into != nil {
					r := userStop(last.stop, &Stopped{Reason: StopStep})
					r.hide, r.hideSet = n-1, true
					return r
				}
				r := s.stepOutOfBlock(v, calls[len(calls)-n].Ranges)
				if r.err != nil || r.ev == nil || r.ev.Reason != StopStep {
					return r
				}
				last = r
				continue // look again where it left them
			}
			if s.sym.IsStmtStart(pc) && (!sameLine(loc, start) || pc == lo) {
				return userStop(last.stop, &Stopped{Reason: StopStep})
			}
			if !sameLine(loc, start) && s.sym.BeginsRow(pc) {
				if s.stepFrameAt(pc) == frame {
					// The start of a row of another line that is not a
					// statement, in the frame being stepped: gdb's infrun
					// steps on through its range without taking it as the
					// line being stepped (refresh_step_info false), so the
					// step ends at a statement of a line other than the
					// one it left, not at the next statement of the line
					// it left (a next from kmain's line 267 at -O2, after
					// a finish, stopped on 267 again, where gdb goes on to
					// 268). The range stepped on is that one row, as
					// gdb's updated step range (find_pc_line's): not the
					// rows of its line that follow, since a statement of
					// that line among them ends the step (from
					// memblock_alloc_internal's line 1586, non-statement
					// rows of 1582 and 1589, then 1589's statement at the
					// call, where gdb stops and the step ran on into the
					// callee).
					lo = pc
					if end, ok := s.sym.NextRow(pc); ok {
						hi = end
					} else {
						lo, hi, _ = s.sym.LineRange(pc)
					}
					break
				}
				// The same in another frame (a return to the caller):
				// gdb forgets the line, and the next statement ends the
				// step.
				loc = symbols.Location{}
			}
			// Mid-line (back in a caller after a return): keep going to
			// the start of the next line.
			start = loc
			frame = s.stepFrameAt(pc)
			lo, hi, _ = s.sym.LineRange(pc)
			break
		}
	}
}
