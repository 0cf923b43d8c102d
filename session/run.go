package session

import (
	"errors"
	"fmt"
	"runtime/debug"

	"vmdap/vmm"
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
	if stopOnEntry || s.dump != nil {
		s.mu.Lock()
		s.lastStop = vmm.Stop{Reason: vmm.ReasonPause}
		s.checkSlide(s.curVCPU) // attached to a kernel that already relocated itself
		s.linuxAtStop(s.curVCPU)
		ev := s.firstStop()
		var about []string
		if s.dump != nil {
			about = s.dumpLines()
		}
		s.mu.Unlock()
		for _, l := range about {
			s.emit(Output{Kind: OutNote, Text: "vmdap: " + l + "\n"})
		}
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
	if s.dump != nil {
		return s.dumpStop()
	}
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
	return s.launch(thread, false, func(v int) result { return s.cont(nil) })
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
		return func() error { return s.launch(thread, true, func(v int) result { return s.stepOut(v, plan) }) }, nil
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
	return s.launch(thread, true, func(v int) result {
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
// the guest runs, and once it has exited. A step's run says when it
// first runs the whole guest (announce): the client, told only that the
// stepped thread runs, shows the other vCPUs as paused though they run.
func (s *Session) launch(thread int, step bool, fn func(v int) result) error {
	v, err := s.vcpuOf(thread)
	if err != nil {
		return err
	}
	if s.dump != nil {
		return ErrPostMortem
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
	s.announce = 0
	if step {
		s.announce = thread
	}
	s.frames = map[int][]Frame{}
	s.forgetPTI()
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
			text := fmt.Sprintf("the guest triple-faulted on vCPU %d at %s", r.stop.VCPU, s.where(r.stop.PC))
			if s.bps.exc.triple {
				s.fatalStop = true
				text += "; its registers stay readable"
				s.excInfo = &ExceptionInfo{ID: "triple fault", Description: text, Details: r.stop.Detail}
				evs = append(evs, Stopped{Reason: StopException, Thread: r.stop.VCPU + 1, Text: "Triple fault", Description: text})
			} else {
				text += " and the session ends (the \"Triple fault\" exception breakpoint, which is off, stops there instead, with its registers readable)"
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
		s.mu.Lock()
		th := s.announce
		s.announce = 0
		s.mu.Unlock()
		if th != 0 {
			s.emit(Continued{Thread: th})
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
	s.forgetPTI()
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
