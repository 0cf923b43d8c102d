package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"

	"vmdap/session/symbols"
	"vmdap/vmm"
	"vmdap/x86"
	"vmdap/x86/disasm"
)

// StepKind is what a step does with calls.
type StepKind uint8

const (
	StepOver StepKind = iota // next: over calls
	StepIn                   // into calls
	StepOut                  // to the caller
)

// Granularity is the unit of a step.
type Granularity uint8

const (
	GranularityLine        Granularity = iota // a source line (a machine instruction where no line is known)
	GranularityInstruction                    // one machine instruction
)

// result is how a run ends.
type result struct {
	stop    vmm.Stop
	ev      *Stopped // the user-visible stop (nil for a final stop)
	final   bool
	reached bool // an internal target (temporary breakpoint) was reached
	err     error
	ret     *returned // what the function a stepOut left returned
	// hide, when hideSet, is the stop's count of hidden inlined calls
	// (inline.go); else a step stop counts those beginning at its PC.
	hide    int
	hideSet bool
}

func userStop(st vmm.Stop, ev *Stopped) result { return result{stop: st, ev: ev} }

// Start is configurationDone: report the entry stop, or run.
func (s *Session) Start(stopOnEntry bool) error {
	s.mu.Lock()
	if s.slideWanted() {
		go s.watchSlide()
	}
	s.mu.Unlock()
	if stopOnEntry {
		s.mu.Lock()
		s.lastStop = vmm.Stop{Reason: vmm.ReasonPause}
		s.checkSlide(s.curVCPU) // attached to a kernel that already relocated itself
		s.linuxAtStop(s.curVCPU)
		ev := s.firstStop()
		s.mu.Unlock()
		s.emit(ev)
		return nil
	}
	return s.Continue(1)
}

// firstStop is the stop a session starts at: the guest's entry (a launch,
// or an attach to a hypervisor that has not run it yet: at the reset
// vector), else, attached to a guest that ran, a pause where it was.
// Session.mu held.
func (s *Session) firstStop() Stopped {
	entry := Stopped{Reason: StopEntry, Thread: s.curVCPU + 1, Description: "stopped at the guest's entry point"}
	if !s.attached {
		return entry
	}
	r, pc, err := s.regsPC(s.curVCPU)
	if err != nil || r.RIP == resetIP {
		return entry // (CS.base is 0xffff0000 there, or 0xf0000 as a stub's selector says)
	}
	return Stopped{Reason: StopPause, Thread: s.curVCPU + 1, Description: "attached: the guest stopped where it was running (" + s.where(pc) + ")"}
}

// resetIP is the instruction pointer an x86 CPU starts at.
const resetIP = 0xfff0

// Continue resumes every vCPU. After a stop the guest cannot go on from
// (a triple fault, a hypervisor error) it ends the session instead.
func (s *Session) Continue(thread int) error {
	if _, err := s.vcpuOf(thread); err != nil {
		return err
	}
	s.mu.Lock()
	if s.state == StateExited && s.fatalStop {
		s.fatalStop = false
		s.mu.Unlock()
		s.emit(Exited{Code: 255})
		s.emit(Terminated{})
		return nil
	}
	s.mu.Unlock()
	return s.launch(thread, func(v int) result { return s.cont(nil) })
}

// Step starts a step of a thread, by source lines or machine
// instructions (always instructions when the image has no line table).
func (s *Session) Step(thread int, kind StepKind, granularity Granularity) error {
	start, err := s.PrepareStep(thread, kind, granularity)
	if err != nil {
		return err
	}
	return start()
}

// PrepareStep checks that a step can be made and returns what starts it.
// A stepOut is planned here, so one that cannot work (the outermost
// frame) is refused before anything runs.
func (s *Session) PrepareStep(thread int, kind StepKind, granularity Granularity) (start func() error, err error) {
	if err := s.steppable(thread); err != nil {
		return nil, err
	}
	if kind == StepOut {
		v, err := s.vcpuOf(thread)
		if err != nil {
			return nil, err
		}
		var plan outPlan
		if err := s.stopped(func() (e error) { plan, e = s.planStepOut(v); return }); err != nil {
			return nil, err
		}
		return func() error { return s.launch(thread, func(v int) result { return s.stepOut(v, plan) }) }, nil
	}
	return func() error { return s.step(thread, kind, granularity) }, nil
}

func (s *Session) step(thread int, kind StepKind, granularity Granularity) error {
	insn := granularity == GranularityInstruction || s.sym == nil || !s.sym.HasDWARF()
	hidden := 0
	if v, err := s.vcpuOf(thread); err == nil {
		s.mu.Lock()
		hidden = s.hiddenAt(v)
		s.mu.Unlock()
	}
	return s.launch(thread, func(v int) result {
		switch {
		case kind == StepOver && insn:
			return s.nextInsn(v)
		case kind == StepOver && hidden > 0:
			return s.nextOverInlined(v, hidden)
		case kind == StepOver:
			return s.stepLine(v, nil)
		case insn:
			r, _ := s.stepOnce(v)
			return r
		case hidden > 0:
			return s.enterInlined(v, hidden)
		}
		return s.stepLine(v, intoEvery)
	})
}

// launch starts a run on its own goroutine; the outcome becomes events.
// It fails, and nothing runs, for a thread that does not exist, while
// the guest runs, and once it has exited.
func (s *Session) launch(thread int, fn func(v int) result) error {
	v, err := s.vcpuOf(thread)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case StateRunning:
		return ErrRunning
	case StateExited:
		return s.exitedErr()
	}
	s.state = StateRunning
	s.userPause = false
	s.pauseVCPU = -1
	s.frames = map[int][]Frame{}
	s.types = nil
	s.excInfo = nil
	s.ret = nil
	s.hidden = nil
	done := make(chan struct{})
	s.runDone = done
	go func() {
		defer close(done)
		var r result
		func() {
			defer func() {
				if p := recover(); p != nil {
					s.log.Errorf("panic in run: %v\n%s", p, debug.Stack())
					r = result{err: fmt.Errorf("internal error: %v", p)}
				}
			}()
			r = fn(v)
		}()
		s.finish(r)
	}()
	return nil
}

// finish turns a run's result into state and events.
func (s *Session) finish(r result) {
	s.mu.Lock()
	s.frames = map[int][]Frame{}
	if s.closed {
		s.state = StateExited
		s.mu.Unlock()
		return
	}
	var evs []Event
	switch {
	case r.err != nil:
		s.state = StateExited
		evs = append(evs, Output{Kind: OutImportant, Text: "vmdap: the debug session ended: " + r.err.Error() + "\n"},
			Exited{Code: 255}, Terminated{})
	case r.final:
		s.lastStop = r.stop
		s.curVCPU = r.stop.VCPU
		s.state = StateExited
		switch r.stop.Reason {
		case vmm.ReasonExited:
			s.exitCode = r.stop.ExitCode
			if r.stop.Detail != "" {
				s.endDetail = r.stop.Detail
				evs = append(evs, Output{Kind: OutImportant, Text: "vmdap: " + r.stop.Detail + "\n"})
			}
			evs = append(evs, Exited{Code: r.stop.ExitCode}, Terminated{})
		case vmm.ReasonShutdown:
			text := fmt.Sprintf("the guest triple-faulted on vCPU %d at %s; its registers stay readable", r.stop.VCPU, s.where(r.stop.PC))
			if s.bps.exc.triple {
				s.fatalStop = true
				s.excInfo = &ExceptionInfo{ID: "triple fault", Description: text, Details: r.stop.Detail}
				evs = append(evs, Stopped{Reason: StopException, Thread: r.stop.VCPU + 1, Text: "Triple fault", Description: text})
			} else {
				evs = append(evs, Output{Kind: OutImportant, Text: text + "\n"}, Exited{Code: 255}, Terminated{})
			}
		default:
			text := fmt.Sprintf("%s on vCPU %d at %s: %s", r.stop.Reason, r.stop.VCPU, s.where(r.stop.PC), r.stop.Detail)
			s.fatalStop = true
			s.excInfo = &ExceptionInfo{ID: "internal error", Description: text, Details: r.stop.Detail}
			evs = append(evs, Output{Kind: OutImportant, Text: text + "\n"},
				Stopped{Reason: StopException, Thread: r.stop.VCPU + 1, Text: "Hypervisor error", Description: text})
		}
	default:
		s.lastStop = r.stop
		s.curVCPU = r.stop.VCPU
		s.state = StateStopped
		s.checkSlide(r.stop.VCPU)
		s.refreshExceptionBPs()
		s.linuxAtStop(r.stop.VCPU)
		s.bps.retry(nil)
		// After the slide and the modules' symbols are known here; frames
		// read before it are read again.
		s.hidden = map[int]int{r.stop.VCPU: s.hiddenOf(r)}
		s.frames = map[int][]Frame{}
		s.ret = r.ret
		ev := *r.ev
		ev.Thread = r.stop.VCPU + 1

		evs = append(evs, ev)
	}
	s.mu.Unlock()
	for _, e := range evs {
		s.emit(e)
	}
}

// cont continues all vCPUs until a user-visible stop, or until want
// accepts an internal stop.
func (s *Session) cont(want func(vmm.Stop) bool) result {
	for {
		if s.pauseRequested() {
			// A pause that came before the target ran (while a step was
			// still deciding how to go) would find nothing to interrupt.
			s.mu.Lock()
			v := s.curVCPU
			if s.pauseVCPU >= 0 {
				v = s.pauseVCPU
			}
			s.mu.Unlock()
			return userStop(vmm.Stop{VCPU: v, Reason: vmm.ReasonPause, PCUnknown: true}, &Stopped{Reason: StopPause, Description: "paused"})
		}
		if err := s.t.Continue(); err != nil {
			if errors.Is(err, vmm.ErrExited) {
				return result{final: true, stop: vmm.Stop{Reason: vmm.ReasonExited, ExitCode: s.exitCode}}
			}
			return result{err: err}
		}
		if err := s.repause(); err != nil {
			return result{err: err}
		}
		st, err := s.waitInterruptible()
		if r, done := s.judge(st, err, want); done {
			return r
		}
	}
}

// pausedOn reports a user's pause on the vCPU it named (all of them are
// stopped; the backend names one of its own choosing). Session.mu held.
func (s *Session) pausedOn(st vmm.Stop) vmm.Stop {
	if s.pauseVCPU >= 0 && s.pauseVCPU != st.VCPU && s.pauseVCPU < s.t.VCPUs() {
		st.VCPU, st.PC, st.PCUnknown = s.pauseVCPU, 0, true
	}
	return st
}

// judge classifies one stop of the target.
func (s *Session) judge(st vmm.Stop, err error, want func(vmm.Stop) bool) (result, bool) {
	if err != nil {
		return result{err: err}, true
	}
	if st.Reason.Final() {
		return result{stop: st, final: true}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames = map[int][]Frame{}
	s.bps.retry(nil) // pending breakpoints, at every stop
	switch st.Reason {
	case vmm.ReasonPause:
		if s.userPause {
			return userStop(s.pausedOn(st), &Stopped{Reason: StopPause, Description: "paused"}), true
		}
		return result{}, false
	case vmm.ReasonHalted:
		return userStop(st, &Stopped{Reason: StopPause, Description: "every vCPU is halted (hlt) and nothing can wake it"}), true
	case vmm.ReasonBreakpoint, vmm.ReasonHWBreakpoint:
		s.linuxHook(st)
		scopeEv, scoped := s.scopeStop(st)
		if ev := s.codeBreakpointStop(st); ev != nil {
			return userStop(st, ev), true
		}
		if scoped {
			return userStop(st, scopeEv), true
		}
		if ev, ok := s.exceptionStopIfOn(st); ok {
			return userStop(st, ev), true
		}
		if s.bps.exc.isLIDTStop(st.PC) {
			s.refreshExceptionBPs()
		}
		if want != nil && want(st) {
			return result{stop: st, reached: true}, true
		}
		return result{}, false
	case vmm.ReasonWatchpoint:
		if ev, ok := s.dataStop(st); ok {
			return userStop(st, ev), true
		}
		return result{}, false
	case vmm.ReasonStep:
		if want != nil && want(st) {
			return result{stop: st, reached: true}, true
		}
		return userStop(st, &Stopped{Reason: StopStep}), true
	case vmm.ReasonSignal:
		return userStop(st, &Stopped{Reason: StopException, Text: fmt.Sprintf("signal %d", st.Signal),
			Description: fmt.Sprintf("the stub reported signal %d at %s", st.Signal, s.where(st.PC))}), true
	}
	return userStop(st, &Stopped{Reason: StopPause, Description: st.String()}), true
}

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
	for {
		i := strings.IndexByte(msg, '{')
		if i < 0 {
			out.WriteString(msg)
			return out.String()
		}
		j := strings.IndexByte(msg[i:], '}')
		if j < 0 {
			out.WriteString(msg)
			return out.String()
		}
		out.WriteString(msg[:i])
		expr := msg[i+1 : i+j]
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
		msg = msg[i+j+1:]
	}
}

// userBreakpointAt reports a user breakpoint at pc after an internal
// step landed there (so stepping onto a breakpoint counts as hitting it).
func (s *Session) userBreakpointAt(st vmm.Stop) *Stopped {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.codeBreakpointStop(st)
}

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
	for {
		if s.pauseRequested() {
			return userStop(vmm.Stop{VCPU: v, PC: pc, Reason: vmm.ReasonPause}, &Stopped{Reason: StopPause})
		}
		in, derr := s.decodeAt(v, pc)
		var last result
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
			again := pc == lo && moved // back at the line's start: a loop
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
