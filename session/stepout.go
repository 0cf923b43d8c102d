package session

import (
	"encoding/binary"
	"fmt"

	"vmdap/session/symbols"
	"vmdap/vmm"
	"vmdap/x86"
	"vmdap/x86/disasm"
)

// outPlan is how a stepOut ends: at a known return address (runTo), or
// at the next return instruction of this frame (toReturn).
type outPlan struct {
	addr, minSP uint64
	toReturn    bool
	block       []symbols.Range // out of an inlined call: until the PC leaves these
	why         string
	fn          *symbols.Func // the function left (nil: none known, or an inlined call)
	mode        x86.Mode
}

// planStepOut finds where a stepOut of vCPU v goes, like gdb's finish: the
// caller's return address from the unwind (CFI, the frame-pointer chain),
// else a return address on top of the stack (a frame-pointer-less leaf at
// its entry), each accepted only where it follows a call instruction. When
// there is none, the step runs to the next return instruction of this
// frame. It refuses only the outermost frame, which has nothing to return
// to. Session locked, target stopped.
func (s *Session) planStepOut(v int) (outPlan, error) {
	fs, err := s.framesLocked(v)
	if err != nil {
		return outPlan{}, err
	}
	r, err := s.t.Regs(v)
	if err != nil {
		return outPlan{}, err
	}
	if fs[0].Inlined && len(fs[0].inl.Ranges) > 0 {
		// Out of an inlined call: until the PC leaves its code, as gdb's
		// finish does (by falling through its end, a jump out of it, or
		// the function's return), not to where one of its ranges ends,
		// which a later run of it (another interrupt's) may reach first.
		return outPlan{block: fs[0].inl.Ranges}, nil
	}
	mode := x86.Mode(64)
	if sr, err := s.t.SRegs(v); err == nil {
		mode = x86.DecodeMode(sr)
	}
	p, err := s.planStepOutOf(v, fs, r, mode)
	if s.sym != nil {
		p.fn, p.mode = s.sym.FuncAt(fs[0].PC), mode
	}
	return p, err
}

// planStepOutOf is planStepOut's search for the return address.
func (s *Session) planStepOutOf(v int, fs []Frame, r x86.Regs, mode x86.Mode) (outPlan, error) {
	where := s.where(fs[0].PC)
	switch {
	case mode == 64 && s.sym != nil:
		// The unwinder on frame 0 itself: frames stop at callers without
		// debug information (assembly), a return address does not.
		cur, read, _, err := s.unwindStart(v)
		if err != nil {
			return outPlan{}, err
		}
		caller, cfa, usedCFI, err := s.sym.Unwind(cur, true, read)
		// Without CFI the unwinder follows the frame-pointer chain, which
		// only a function with debug information is known to keep: in
		// assembly RBP may still be a caller's, one level too far.
		known := usedCFI || s.sym.FuncAt(fs[0].PC) != nil
		if err == nil && known && caller.Valid[symbols.RegRIP] {
			if ra := caller.R[symbols.RegRIP]; caller.Exact || s.returnsTo(v, mode, ra) {
				minSP := cfa
				if caller.Switched && caller.Valid[symbols.RegRSP] {
					// Out of an interrupt or exception entry, or off the
					// IRQ stack: the interrupted code's stack is another
					// one, where the frame's CFA says nothing.
					minSP = caller.R[symbols.RegRSP]
				}
				return outPlan{addr: ra, minSP: minSP}, nil
			}
		}
		if err == nil && usedCFI && !caller.Valid[symbols.RegRIP] {
			return outPlan{}, fmt.Errorf("cannot step out of %s: its unwind information marks it as the outermost frame, with no caller to return to", where)
		}
	case mode == 32 && fs[0].HasCFA:
		// The caller: the first frame of another machine frame.
		for _, f := range fs[1:] {
			if f.phys != fs[0].phys {
				return outPlan{addr: f.PC, minSP: fs[0].CFA}, nil
			}
		}
	}
	if mode != 16 {
		w := uint64(8)
		sp := r.RSP
		if mode == 32 {
			w, sp = 4, sp&0xffffffff
		}
		var b [8]byte
		if n, _ := s.t.ReadMemory(v, b[:w], sp); uint64(n) == w {
			ra := binary.LittleEndian.Uint64(b[:])
			if s.returnsTo(v, mode, ra) {
				return outPlan{addr: ra, minSP: sp + w}, nil
			}
		}
	}
	return outPlan{toReturn: true, why: fmt.Sprintf("no return address is known for %s (no unwind information, and the top of the stack is not one)", where)}, nil
}

// stepOut runs until the current function returns to its caller.
func (s *Session) stepOut(v int, p outPlan) result {
	if p.block != nil {
		// gdb's finish out of an inlined call is a next in the caller
		// with an empty range and no line (finish_command): it ends where
		// the PC leaves the call only at a statement or an inlined call's
		// entry. pair_sum's code at -O2 ends at a row of line 198 that is
		// not a statement, and gdb's finish goes on to the next
		// instruction, its call on 197, where its second range begins.
		fn := uint64(0)
		if _, pc, err := s.regsPC(v); err == nil {
			fn = s.stepFrameAt(pc).fn
		}
		return s.lineStepOn(v, s.stepOutOfBlock(v, p.block), symbols.Location{}, fn)
	}
	if p.toReturn {
		s.emit(Output{Kind: OutNote, Text: "vmdap: stepOut: " + p.why + ": stepping until this frame executes a return instruction (calls are stepped over; pause stops it)\n"})
		r := s.stepToReturn(v)
		if r.ev != nil && r.ev.Reason == StopStep {
			r.ret = s.readReturned(v, p)
		}
		return r
	}
	res, ok := s.runTo(v, p.addr, p.minSP)
	if !ok {
		return res
	}
	r := userStop(res.stop, &Stopped{Reason: StopStep})
	r.ret = s.readReturned(v, p)
	return r
}

// lineStepOn goes on from where r left inlined code as gdb's next does
// when it leaves one, stepping line (a zero line: none): it ends there at
// a statement of another line or the entry of an inlined call made on
// another line, runs over one made on line, and otherwise steps on, from
// line at the start of a row, from the row's line in the middle of one
// (gdb's refresh_step_info). fn is the entry of the function the inlined
// code is in (0: not known).
func (s *Session) lineStepOn(v int, r result, line symbols.Location, fn uint64) result {
	for {
		if r.err != nil || r.ev == nil || r.ev.Reason != StopStep || s.sym == nil {
			return r
		}
		pc := r.stop.PC
		loc, ok := s.sym.PCToLine(pc)
		if !ok {
			return r
		}
		if fn != 0 && s.stepFrameAt(pc).fn != fn {
			// The inlined code was left by its function's return, back
			// in the caller (a Linux function that ends in an inlined
			// call, as _raw_spin_lock_irqsave in __raw_spin_lock_irqsave,
			// returns through __x86_return_thunk): gdb "stepped to a
			// different frame" stops only at the start of a statement,
			// else steps on with no line, so that the entry of an
			// inlined call at a row that is no statement (the
			// return address in __write_seqlock_irqsave, seqlock.h:408)
			// does not end it.
			if s.sym.IsStmtStart(pc) {
				return r
			}
			if !s.sym.BeginsRow(pc) {
				return s.stepLine(v, nil)
			}
			return s.stepLineFrom(v, nil, &symbols.Location{})
		}
		if n := s.inlineEntries(pc); n > 0 {
			calls, on := s.callsOnLine(pc, line)
			if on == 0 {
				return r
			}
			r = s.stepOutOfBlock(v, calls[len(calls)-on].Ranges)
			continue
		}
		if s.sym.IsStmtStart(pc) && !sameLine(loc, line) {
			return r
		}
		if !s.sym.BeginsRow(pc) {
			return s.stepLine(v, nil)
		}
		return s.stepLineFrom(v, nil, &line)
	}
}

// stepToReturn single-steps vCPU v, running over calls, until it executes
// a return instruction (ret, lret, iret) of the current frame, a user
// breakpoint is reached or a pause is asked for.
func (s *Session) stepToReturn(v int) result {
	for {
		regs, pc, err := s.regsPC(v)
		if err != nil {
			return result{err: err}
		}
		if s.pauseRequested() {
			return userStop(vmm.Stop{VCPU: v, PC: pc, Reason: vmm.ReasonPause}, &Stopped{Reason: StopPause})
		}
		last, in, decoded, ok := s.stepOverCall(v, pc, regs.RSP)
		if !ok {
			return last
		}
		if decoded && (in.Kind == disasm.KindRet || in.Kind == disasm.KindIret) {
			return userStop(last.stop, &Stopped{Reason: StopStep})
		}
		if ev := s.userBreakpointAt(vmm.Stop{VCPU: v, PC: last.stop.PC, Reason: vmm.ReasonBreakpoint}); ev != nil {
			return userStop(last.stop, ev)
		}
	}
}

// stepOverCall makes one step of vCPU v at pc: over a call (run to its
// return, with RSP at least sp), else one instruction. in is what was at
// pc when decoded; ok=false: something else stopped the run (last says
// what).
func (s *Session) stepOverCall(v int, pc, sp uint64) (last result, in disasm.Inst, decoded, ok bool) {
	in, derr := s.decodeAt(v, pc)
	if derr == nil && in.Kind == disasm.KindCall {
		last, ok = s.runTo(v, in.Next(), sp)
		return last, in, true, ok
	}
	last, ok = s.stepOnce(v)
	return last, in, derr == nil, ok
}

// stepOutOfBlock single-steps vCPU v, running over calls, until its PC
// leaves the ranges of an inlined call, a user breakpoint is reached or a
// pause is asked for.
func (s *Session) stepOutOfBlock(v int, block []symbols.Range) result {
	inside := func(pc uint64) bool {
		for _, r := range block {
			if pc >= r.Low && pc < r.High {
				return true
			}
		}
		return false
	}
	for {
		regs, pc, err := s.regsPC(v)
		if err != nil {
			return result{err: err}
		}
		if s.pauseRequested() {
			return userStop(vmm.Stop{VCPU: v, PC: pc, Reason: vmm.ReasonPause}, &Stopped{Reason: StopPause})
		}
		last, _, _, ok := s.stepOverCall(v, pc, regs.RSP)
		if !ok {
			return last
		}
		if _, pc, err = s.regsPC(v); err != nil {
			return result{err: err}
		}
		last.stop.PC, last.stop.VCPU = pc, v
		if ev := s.userBreakpointAt(vmm.Stop{VCPU: v, PC: pc, Reason: vmm.ReasonBreakpoint}); ev != nil {
			return userStop(last.stop, ev)
		}
		// Code left for an indirect branch thunk is not left yet: the
		// step goes through the thunk, as gdb's does (an inlined call
		// at the end of a Linux function leaves by its jmp
		// __x86_return_thunk).
		if !inside(pc) && !s.inBranchThunk(pc) {
			return userStop(last.stop, &Stopped{Reason: StopStep})
		}
	}
}

func (s *Session) readU64(v int, addr uint64) (uint64, error) {
	var b [8]byte
	if _, err := s.t.ReadMemory(v, b[:], addr); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// runTo runs all vCPUs until vCPU v reaches addr with RSP ≥ minSP (the
// frame that asked, not a deeper recursion), using a temporary breakpoint.
// ok=false means something else stopped the run first (r says what).
func (s *Session) runTo(v int, addr, minSP uint64) (result, bool) {
	r, ok, placed := s.runToBP(v, addr, minSP)
	if !placed {
		return s.stepTo(v, addr, minSP)
	}
	return r, ok
}

// runToBP is runTo with a temporary breakpoint only; placed=false: none
// could be placed and nothing ran.
func (s *Session) runToBP(v int, addr, minSP uint64) (r result, ok, placed bool) {
	s.mu.Lock()
	hw, err := s.bps.useHW("")
	k := physKey{addr, hw}
	if err == nil {
		err = s.bps.insert(k, runToLet)
	}
	s.mu.Unlock()
	if err != nil {
		return result{}, false, false
	}
	defer func() {
		s.mu.Lock()
		s.bps.remove(k, runToLet)
		s.mu.Unlock()
	}()
	r = s.cont(func(st vmm.Stop) bool {
		if st.PC != addr || st.VCPU != v {
			return false
		}
		regs, err := s.t.Regs(v)
		return err == nil && regs.RSP >= minSP
	})
	return r, r.reached, true
}

// stepTo is runTo without a breakpoint: single steps (slow), for targets
// whose breakpoints are all taken.
func (s *Session) stepTo(v int, addr, minSP uint64) (result, bool) {
	for {
		if s.pauseRequested() {
			_, pc, _ := s.regsPC(v)
			return userStop(vmm.Stop{VCPU: v, PC: pc, Reason: vmm.ReasonPause}, &Stopped{Reason: StopPause}), false
		}
		r, ok := s.stepOnce(v)
		if !ok {
			return r, false
		}
		regs, pc, err := s.regsPC(v)
		if err != nil {
			return result{err: err}, false
		}
		if pc == addr && regs.RSP >= minSP {
			return r, true
		}
	}
}
