package session

import (
	"errors"
	"fmt"

	"vmdap/vmm"
	"vmdap/x86"
	"vmdap/x86/disasm"
)

// stepOnce executes one instruction on v. ok=true means a plain step
// completed and the caller may go on; otherwise r is the run's outcome.
func (s *Session) stepOnce(v int) (result, bool) {
	stp, ok := s.t.Stepper()
	if !ok {
		return result{err: errors.New("this target cannot single-step")}, false
	}
	if !stp.StepsHalt() {
		if r, ok, done := s.stepHalt(v); done {
			return r, ok
		}
	}
	if err := stp.Step(v); err != nil {
		return result{err: err}, false
	}
	if err := s.repause(); err != nil {
		return result{err: err}, false
	}
	st, err := s.t.Wait(s.life)
	if err != nil {
		return result{err: err}, false
	}
	if st.Reason.Final() {
		return result{stop: st, final: true}, false
	}
	s.mu.Lock()
	s.frames = map[int][]Frame{}
	if desc := s.endScopes(st); desc != "" {
		// A step out of a watched local's frame: the watch goes (the
		// step's stop stays the step's).
		s.emit(Output{Kind: OutNote, Text: "vmdap: " + desc + "\n"})
	}
	s.mu.Unlock()
	switch st.Reason {
	case vmm.ReasonWatchpoint:
		s.mu.Lock()
		ev, hit := s.dataStop(st)
		s.mu.Unlock()
		if hit {
			return userStop(st, ev), false
		}
	case vmm.ReasonPause:
		s.mu.Lock()
		st = s.pausedOn(st)
		s.mu.Unlock()
		return userStop(st, &Stopped{Reason: StopPause}), false
	case vmm.ReasonSignal:
		return userStop(st, &Stopped{Reason: StopException, Text: fmt.Sprintf("signal %d", st.Signal)}), false
	}
	st.Reason = vmm.ReasonStep
	return userStop(st, &Stopped{Reason: StopStep}), true
}

// stepHalt steps a hlt on a target whose steps hold interrupts off (a GDB
// stub's: QEMU's NOIRQ|NOTIMER, bhyve's MASK_HWINTR), where a stepped hlt
// would never wake, or on QEMU TCG run on with its interrupt still
// pending, so that a line step over `while (!ticks) hlt();` never
// advances. It runs to the instruction after the hlt instead, as a step
// over a call does: the interrupt ends the wait and its handler runs (a
// breakpoint in it stops there), and a pause ends a wait that lasts for
// ever (cli; hlt). done=false: not a hlt, step plainly.
func (s *Session) stepHalt(v int) (r result, ok, done bool) {
	_, pc, err := s.regsPC(v)
	if err != nil {
		return result{}, false, false
	}
	in, err := s.decodeAt(v, pc)
	if err != nil || in.Kind != disasm.KindHalt {
		return result{}, false, false
	}
	res, reached, placed := s.runToBP(v, in.Next(), 0)
	if !placed {
		return result{}, false, false
	}
	if !reached {
		return res, false, true
	}
	st := res.stop
	st.Reason = vmm.ReasonStep
	return userStop(st, &Stopped{Reason: StopStep}), true, true
}

// regsPC returns vCPU v's registers and the linear address of its next
// instruction (codeAddr: CS.base + IP outside 64-bit mode), which is what
// breakpoints, stops and the code are at.
func (s *Session) regsPC(v int) (x86.Regs, uint64, error) {
	r, err := s.t.Regs(v)
	if err != nil {
		return r, 0, err
	}
	pc := r.RIP
	if sr, err := s.t.SRegs(v); err == nil {
		pc = codeAddr(r, sr)
	}
	return r, pc, nil
}

func (s *Session) decodeAt(v int, pc uint64) (disasm.Inst, error) {
	var code [disasm.MaxLen]byte
	n, _ := s.t.ReadMemory(v, code[:], pc)
	mode := x86.Mode(64)
	if sr, err := s.t.SRegs(v); err == nil {
		mode = x86.DecodeMode(sr)
	}
	return disasm.Decode(code[:n], mode, pc)
}

// nextInsn steps one instruction, running over calls.
func (s *Session) nextInsn(v int) result {
	r, pc, err := s.regsPC(v)
	if err != nil {
		return result{err: err}
	}
	in, err := s.decodeAt(v, pc)
	if err == nil && in.Kind == disasm.KindCall {
		res, ok := s.runTo(v, in.Next(), r.RSP)
		if !ok {
			return res
		}
		return userStop(res.stop, &Stopped{Reason: StopStep})
	}
	res, _ := s.stepOnce(v)
	return res
}
