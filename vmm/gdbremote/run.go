package gdbremote

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/gdbremote/rsp"
)

// Runs: Continue and Step.
//
// A run costs as few round trips as the stub allows. A step is its vCont
// (or Hc and s) and the stop reply, nothing else: the stop's PC is read
// only if the reply carries it (QEMU's carries no registers) and is
// otherwise left to Regs (Stop.PCUnknown).
//
// A continue from a breakpoint must step off it first: a stub re-stops at
// once on a breakpoint at the pc. Whether the stub's step executes the
// instruction under its own breakpoint is found out at run time, on the
// first step off one, per kind (Z0, Z1): the step is tried without
// lifting it, and the pc says whether it moved (QEMU TCG: yes, its
// single step overrides breakpoints; QEMU-KVM: no, the debug register
// fires first). Where it does, a step needs nothing else, and a continue
// from a breakpoint is a step and a continue; where it does not, the
// breakpoint is lifted for the step and put back for the continue, and
// for QEMU, which reads its input in order, the lift goes out with the
// step and the plant with the continue, in one write each. An int3
// vmdap wrote itself (no Z0) is always lifted.

// errPending: a final stop waits for Wait; Continue and Step start nothing.
var errPending = errors.New("a final stop is pending")

func (t *Target) canRun() error {
	switch t.state {
	case running:
		return vmm.ErrRunning
	case exited:
		if len(t.stops) > 0 {
			return errPending
		}
		if err := t.c.Err(); err != nil {
			return fmt.Errorf("%w: %w", vmm.ErrExited, err)
		}
		return vmm.ErrExited
	case closed:
		return vmm.ErrClosed
	}
	return nil
}

// resumed forgets what was learnt at the stop.
func (t *Target) resumed() {
	clear(t.cache)
	clear(t.mem)
	clear(t.curThread)
}

// offBP is our breakpoint at a vCPU's pc, to step off.
type offBP struct {
	addr   uint64 // the breakpoint's linear address, vcpu's pc
	ip     uint64 // vcpu's instruction pointer there (CS.base + ip = addr)
	sw     *swbp  // a software breakpoint there, or nil
	hw     bool   // a hardware breakpoint there
	lifted bool   // taken out for the step (the stub does not step over it)
	probe  bool   // the first step off one of its kinds: try without lifting
	// resteps: how often the step off it was made again (see await).
	resteps int
}

// maxResteps bounds how often a step off a breakpoint that left the pc
// where it was is made again before the continue goes on regardless.
const maxResteps = 8

// plan is a run: a step of vcpu, or a continue of every vCPU, with or
// without a step off a breakpoint first.
type plan struct {
	vcpu int
	step bool
	off  *offBP
}

// Whether the stub's step executes the instruction under its own
// breakpoint, per kind (stepsOver index 0: Z0, 1: Z1).
const (
	overUnknown uint8 = iota
	overYes
	overNo
)

// overOf says how a step treats the breakpoints at o: overYes when all of
// them are stepped over, overNo when one is not (or is an int3 vmdap
// wrote), else overUnknown.
func (t *Target) overOf(o *offBP) uint8 {
	var kinds []uint8
	if o.sw != nil {
		if !o.sw.viaZ0 {
			return overNo
		}
		kinds = append(kinds, t.stepsOver[0])
	}
	if o.hw {
		kinds = append(kinds, t.stepsOver[1])
	}
	res := overYes
	for _, k := range kinds {
		switch k {
		case overNo:
			return overNo
		case overUnknown:
			res = overUnknown
		}
	}
	return res
}

// learnOver records what the probing step off o showed.
func (t *Target) learnOver(o *offBP, moved bool) {
	v := overNo
	if moved {
		v = overYes
	}
	if o.sw != nil {
		t.stepsOver[0] = v
	}
	if o.hw {
		t.stepsOver[1] = v
	}
	t.log.Debugf("the stub's step %s its own breakpoint", map[bool]string{true: "executes the instruction under", false: "stops at"}[moved])
}

// stepsOverAll says whether a step executes the instruction under every
// breakpoint placed (no pc to read before a step).
func (t *Target) stepsOverAll() bool {
	if len(t.hw) > 0 && t.stepsOver[1] != overYes {
		return false
	}
	for _, bp := range t.sw {
		if !bp.viaZ0 || t.stepsOver[0] != overYes {
			return false
		}
	}
	return true
}

// offAt returns our breakpoint at vcpu's pc, to step off before a run
// (forStep: before a step, where one the stub steps over needs nothing).
// The pc is read only when there are breakpoints that need it.
func (t *Target) offAt(vcpu int, forStep bool) *offBP {
	if len(t.sw) == 0 && len(t.hw) == 0 || forStep && t.stepsOverAll() {
		return nil
	}
	pc := t.pcOf(vcpu)
	bp, hw := t.sw[pc], t.hw[pc]
	if bp == nil && !hw {
		return nil
	}
	o := &offBP{addr: pc, ip: t.ipOf(vcpu), sw: bp, hw: hw}
	switch t.overOf(o) {
	case overYes:
		if forStep {
			return nil
		}
	case overUnknown:
		o.probe = true
	default:
		o.lifted = true
	}
	return o
}

func (o *offBP) lift() []string {
	var p []string
	if o.sw != nil {
		p = append(p, liftPacket(o.addr, o.sw))
	}
	if o.hw {
		p = append(p, fmt.Sprintf("z1,%x,1", o.addr))
	}
	return p
}

// plant puts back what lift took out and is still wanted.
func (t *Target) plant(o *offBP) []string {
	var p []string
	if !o.lifted {
		return nil
	}
	if o.sw != nil && t.sw[o.addr] == o.sw {
		p = append(p, plantPacket(o.addr, o.sw))
	}
	if o.hw && t.hw[o.addr] {
		p = append(p, fmt.Sprintf("Z1,%x,1", o.addr))
	}
	return p
}

// stepPackets are the requests and the resume that step vcpu.
func (t *Target) stepPackets(vcpu int) ([]string, string) {
	if t.vCont {
		return nil, "vCont;s:" + t.threads[vcpu]
	}
	return []string{"Hc" + t.threads[vcpu]}, "s"
}

func (t *Target) continuePacket() string {
	if t.vCont {
		return "vCont;c"
	}
	return "c"
}

// batch sends the requests reqs (breakpoint changes, thread selection)
// and then resume: in one write where the stub allows it, else one by
// one. A refused request is logged (the run goes on without it); a broken
// connection shows in the run's stop.
func (t *Target) batch(ctxName string, reqs []string, resume string) {
	clear(t.mem)
	var err error
	if t.pipeline && len(reqs) > 0 {
		err = t.c.ExchangeThen(ctxName, reqs, resume)
	} else {
		for _, r := range reqs {
			if _, e := t.x(ctxName, r); e != nil && err == nil {
				err = e
			}
		}
		if e := t.c.Send(resume); e != nil {
			err = e
		}
	}
	if err != nil && t.c.Err() == nil {
		t.log.WithError(err).Warn(ctxName)
	}
}

// Continue implements vmm.Target.
func (t *Target) Continue() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.canRun(); err != nil {
		if errors.Is(err, errPending) {
			return nil
		}
		return err
	}
	t.start(plan{vcpu: t.lastVCPU, off: t.offAt(t.lastVCPU, false)})
	return nil
}

// Step implements vmm.Stepper. The stub holds interrupts off while it
// steps (see StepsHalt): a stepped hlt waits for ever, or until a Pause.
func (t *Target) Step(vcpu int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.canRun(); err != nil {
		if errors.Is(err, errPending) {
			return nil
		}
		return err
	}
	if vcpu < 0 || vcpu >= len(t.threads) {
		return fmt.Errorf("%w: %d", vmm.ErrNoVCPU, vcpu)
	}
	t.start(plan{vcpu: vcpu, step: true, off: t.offAt(vcpu, true)})
	return nil
}

// StepsHalt implements vmm.Stepper: no, a stub holds interrupts off while
// it steps (QEMU's sstep NOIRQ|NOTIMER, bhyve's MASK_HWINTR), so a stepped
// hlt never wakes (QEMU TCG runs on past it with the interrupt still
// pending).
func (t *Target) StepsHalt() bool { return false }

// start sends a run's first packets and hands the rest to a goroutine
// (t.mu held).
func (t *Target) start(p plan) {
	t.resumed()
	t.interrupt = false
	t.state = running
	t.delivered = make(chan struct{})
	switch {
	case p.off != nil && p.off.lifted:
		reqs, resume := t.stepPackets(p.vcpu)
		t.batch("stepping off a breakpoint", append(p.off.lift(), reqs...), resume)
	case p.off != nil:
		reqs, resume := t.stepPackets(p.vcpu)
		t.batch("stepping off a breakpoint", reqs, resume)
	case p.step:
		reqs, resume := t.stepPackets(p.vcpu)
		t.batch("stepping", reqs, resume)
	case len(t.soft) > 0:
		go t.softRun(p.vcpu)
		return
	default:
		t.batch("continuing", nil, t.continuePacket())
	}
	if p.step || p.off != nil {
		t.stepping = p.vcpu
	}
	go t.await(p)
}

// await receives a run's stop reply and reports the stop; after the step
// off a breakpoint of a continue it puts the breakpoint back and goes on.
func (t *Target) await(p plan) {
	reply, err := t.c.Recv(context.Background())
	t.awaitExit(reply, err)
	var lost *vmm.Stop
	if err != nil {
		s := t.lostStop(err, false)
		lost = &s
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != running {
		return // Close took over
	}
	if lost != nil {
		t.deliver(*lost)
		return
	}
	s := t.classify(reply, p.vcpu, p.step || p.off != nil)
	if t.trapped && !p.step && p.off == nil {
		// A step a pause cut short, still on in the stub, ended: the
		// continue goes on.
		t.log.Debugf("vCPU %d stopped at %#x for a step a pause had cut short: continuing", s.VCPU, s.PC)
		t.batch("continuing", nil, t.continuePacket())
		go t.await(p)
		return
	}
	if p.off != nil && p.off.probe && s.Reason == vmm.ReasonStep && !t.interrupt {
		pc := t.pcOf(p.vcpu)
		if pc == p.off.addr && p.off.resteps == 0 {
			// Perhaps a step that executed nothing (see below), not a
			// stub that stops at its own breakpoint: what is learnt
			// here holds for the session, so ask once more.
			p.off.resteps++
			reqs, resume := t.stepPackets(p.vcpu)
			t.batch("stepping off a breakpoint again", reqs, resume)
			go t.await(p)
			return
		}
		p.off.probe = false
		t.learnOver(p.off, pc != p.off.addr)
		if pc == p.off.addr {
			// The stub stopped at its breakpoint: lift it and step again.
			p.off.lifted = true
			reqs, resume := t.stepPackets(p.vcpu)
			t.batch("stepping off a breakpoint", append(p.off.lift(), reqs...), resume)
			go t.await(p)
			return
		}
		s.PC, s.PCUnknown = pc, false
	}
	if p.off != nil {
		plant := t.plant(p.off)
		if s.Reason == vmm.ReasonStep && !p.step && !t.interrupt && len(t.soft) == 0 {
			if t.stayed(p.vcpu, s, p.off) && p.off.resteps < maxResteps {
				// QEMU TCG, under load, now and then answers a step at
				// once with nothing executed: the continue would stop
				// at this breakpoint again, every register as it was,
				// and report a hit that never was. The pc says so (the
				// cost: one register read per continue from a
				// breakpoint); the step is made again. (A rep-prefixed
				// instruction also stays at its address until it is
				// done; an instruction that jumps to itself, for ever:
				// hence the bound.)
				p.off.resteps++
				t.log.Debugf("the step off %#x left the pc there: stepping again", p.off.addr)
				reqs, resume := t.stepPackets(p.vcpu)
				t.batch("stepping off a breakpoint again", reqs, resume)
				go t.await(p)
				return
			}
			// Stepped off: the breakpoint back in, and on.
			t.stepping = -1
			t.batch("putting a breakpoint back", plant, t.continuePacket())
			go t.await(plan{vcpu: p.vcpu})
			return
		}
		if len(plant) > 0 && !s.Reason.Final() {
			for _, pk := range plant {
				if _, err := t.x("putting a breakpoint back", pk); err != nil && t.c.Err() == nil {
					t.log.WithError(err).Warn("putting a breakpoint back")
				}
			}
		}
		if !p.step && !s.Reason.Final() {
			if len(t.soft) > 0 && s.Reason == vmm.ReasonStep && !t.interrupt {
				go t.softRun(p.vcpu)
				return
			}
			if s.Reason == vmm.ReasonStep {
				// A pause came while stepping off: the continue ends here.
				s = vmm.Stop{VCPU: p.vcpu, Reason: vmm.ReasonPause, PC: t.pcOf(p.vcpu)}
			}
		}
	}
	if p.step {
		s = t.checkSoft(s)
	}
	t.deliver(s)
}

// stayed says whether a step off breakpoint o left vcpu where it was: by
// the stop reply's instruction pointer (the raw IP, compared with the one
// o was planned at: in real mode the breakpoint's linear address is
// CS.base + IP), else by the pc read.
func (t *Target) stayed(vcpu int, s vmm.Stop, o *offBP) bool {
	if !s.PCUnknown {
		return s.PC == o.ip
	}
	return t.pcOf(vcpu) == o.addr
}

// softRun emulates write watchpoints: single steps, comparing the watched
// bytes after each, until one changes, a breakpoint is reached or a pause
// is asked for.
func (t *Target) softRun(vcpu int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.softRunning = true
	for {
		if t.state != running {
			return
		}
		if t.interrupt {
			t.deliver(vmm.Stop{VCPU: vcpu, Reason: vmm.ReasonPause, PC: t.pcOf(vcpu)})
			return
		}
		t.resumed()
		reqs, resume := t.stepPackets(vcpu)
		t.batch("stepping", reqs, resume)
		t.mu.Unlock()
		reply, err := t.c.Recv(context.Background())
		t.awaitExit(reply, err)
		var lost *vmm.Stop
		if err != nil {
			s := t.lostStop(err, false)
			lost = &s
		}
		t.mu.Lock()
		if t.state != running {
			return
		}
		if lost != nil {
			t.deliver(*lost)
			return
		}
		s := t.classify(reply, vcpu, true)
		if s.Reason == vmm.ReasonStep {
			s = t.checkSoft(s)
		}
		if s.Reason == vmm.ReasonStep {
			if t.interrupt {
				continue // a pause: reported at the top
			}
			pc := t.pcOf(vcpu)
			s.PC, s.PCUnknown = pc, false
			switch {
			case t.sw[pc] != nil:
				s.Reason, s.Addr = vmm.ReasonBreakpoint, pc
			case t.hw[pc]:
				s.Reason, s.Addr = vmm.ReasonHWBreakpoint, pc
			default:
				continue
			}
		}
		t.deliver(s)
		return
	}
}

// checkSoft turns a step into a watchpoint stop when emulated watched
// bytes changed.
func (t *Target) checkSoft(s vmm.Stop) vmm.Stop {
	if s.Reason != vmm.ReasonStep || len(t.soft) == 0 {
		return s
	}
	for _, sw := range t.soft {
		cur := make([]byte, sw.w.Len)
		if _, err := t.readMem(cur, sw.w.Addr); err != nil {
			continue
		}
		if !bytes.Equal(cur, sw.last) {
			old := sw.last
			sw.last = cur
			if s.PCUnknown {
				s.PC, s.PCUnknown = t.pcOf(s.VCPU), false
			}
			return vmm.Stop{VCPU: s.VCPU, Reason: vmm.ReasonWatchpoint, PC: s.PC, Addr: sw.w.Addr,
				Watch: &vmm.WatchHit{Watch: sw.w, Access: vmm.AccessWrite, Addr: sw.w.Addr, Old: old, New: cur}}
		}
	}
	return s
}

// awaitExit waits, at a stop reply that says the guest ended (W, X), for
// the QEMU vmdap launched to exit (a few seconds at most; t.mu not held):
// the guest's last console output, written just before it powered off,
// is copied from QEMU's standard output by then, and reaches the client
// before the end it led to.
func (t *Target) awaitExit(reply string, err error) {
	if err == nil && t.onExit != nil && (strings.HasPrefix(reply, "W") || strings.HasPrefix(reply, "X")) {
		t.onExit()
	}
}

// classify turns a stop reply into a Stop (t.mu held). vcpu is the vCPU
// stepped (stepping), or the one to blame when the reply names none.
func (t *Target) classify(reply string, vcpu int, stepping bool) vmm.Stop {
	t.resumed()
	r, perr := rsp.ParseStopReply(reply)
	if perr != nil {
		return vmm.Stop{VCPU: max(vcpu, 0), Reason: vmm.ReasonInternalError, Detail: fmt.Sprintf("unexpected stop reply %q", trunc(reply))}
	}
	switch r.Kind {
	case 'W':
		return vmm.Stop{Reason: vmm.ReasonExited, ExitCode: r.Signal}
	case 'X':
		return vmm.Stop{Reason: vmm.ReasonExited, ExitCode: 128 + r.Signal, Detail: fmt.Sprintf("the guest was terminated by signal %d", r.Signal)}
	}
	v := vcpu
	if r.Thread != "" {
		if n, err := rsp.ThreadNum(r.Thread); err == nil {
			for i, id := range t.threads {
				if m, err := rsp.ThreadNum(id); err == nil && m == n {
					v = i
				}
			}
		}
	}
	if v < 0 {
		v = 0
	}
	// QEMU turns a vCPU's single-step off only when a stop names that
	// vCPU, and it answers a ^C for its current thread: a step of another
	// vCPU that a pause cut short (a halted vCPU's step waits for ever)
	// stays on, and that vCPU's first instruction after a later resume
	// stops the guest with a bare SIGTRAP. Such a vCPU is remembered until
	// a stop names it; its bare trap is no stop (see await).
	t.trapped = false
	stale := false
	if r.Thread != "" {
		stale = t.staleStep[v]
		delete(t.staleStep, v)
	}
	if stepping && t.interrupt && r.Signal != 5 && vcpu >= 0 && vcpu != v {
		if t.staleStep == nil {
			t.staleStep = map[int]bool{}
		}
		t.staleStep[vcpu] = true
	}
	// By the protocol's convention the thread that reports a stop becomes
	// the stub's current thread: no Hg needed before reading it.
	if r.Thread != "" || len(t.threads) == 1 {
		t.curThread['g'] = t.threads[v]
	}
	pc, pcKnown := t.expeditedPC(r)
	if stepping && r.Watch == "" && !(t.interrupt && r.Signal != 5) {
		// A plain step: nothing more to learn, nothing read.
		return vmm.Stop{VCPU: v, Reason: vmm.ReasonStep, PC: pc, PCUnknown: !pcKnown}
	}
	if !pcKnown {
		pc = t.pcOf(v) // the registers are read: no cost
	} else if t.sw[pc] == nil && !t.hw[pc] {
		pc = t.linearPC(v, pc) // not one of ours: perhaps CS.base + IP is
	}
	s := vmm.Stop{VCPU: v, PC: pc}
	// QEMU-KVM can report an execute breakpoint's debug-register hit as a
	// watch stop at the breakpoint (seen on a PVM host).
	execHit := r.Watch != "" && r.WatchAt == pc && t.hw[pc] && !t.watchCovers(pc)
	switch {
	case r.Watch != "" && !execHit:
		s.Reason, s.Addr = vmm.ReasonWatchpoint, r.WatchAt
		acc := map[string]vmm.Access{"watch": vmm.AccessWrite, "rwatch": vmm.AccessRead, "awatch": vmm.AccessReadWrite}[r.Watch]
		w := vmm.Watch{Addr: r.WatchAt, Len: 1, Access: acc, Kind: vmm.WatchStub}
		for _, x := range t.watches {
			if r.WatchAt >= x.Addr && r.WatchAt < x.Addr+uint64(x.Len) {
				w = x
				break
			}
		}
		s.Watch = &vmm.WatchHit{Watch: w, Access: acc, Addr: r.WatchAt}
	case stepping && t.interrupt && r.Signal != 5:
		s.Reason = vmm.ReasonPause // the step was interrupted, not completed
	case t.interrupt:
		s.Reason = vmm.ReasonPause
	case t.sw[pc] != nil || r.SWBreak:
		s.Reason, s.Addr = vmm.ReasonBreakpoint, pc
	case t.hw[pc] || r.HWBreak || execHit:
		s.Reason, s.Addr = vmm.ReasonHWBreakpoint, pc
	default:
		s.Reason, s.Signal = vmm.ReasonSignal, r.Signal
		s.Detail = fmt.Sprintf("stopped with signal %d", r.Signal)
		t.trapped = stale && r.Signal == 5 && !stepping
	}
	return s
}

// expeditedPC returns the pc when the stop reply carries it (an
// "NN:value" pair for the layout's rip).
func (t *Target) expeditedPC(r rsp.StopReply) (uint64, bool) {
	if len(r.Regs) == 0 {
		return 0, false
	}
	reg, ok := t.regNamed("rip")
	if !ok {
		return 0, false
	}
	h, ok := r.Regs[reg.Num]
	if !ok || len(h) != reg.Bits/4 || reg.Bits > 64 {
		return 0, false
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return 0, false
	}
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, true
}

// watchCovers says whether one of the stub's watchpoints covers addr.
func (t *Target) watchCovers(addr uint64) bool {
	for _, w := range t.watches {
		if addr >= w.Addr && addr < w.Addr+uint64(w.Len) {
			return true
		}
	}
	return false
}

// deliver makes s the next stop (t.mu held).
func (t *Target) deliver(s vmm.Stop) {
	t.interrupt = false
	t.stepping = -1
	t.softRunning = false
	if t.intTimer != nil {
		t.intTimer.Stop()
		t.intTimer = nil
	}
	if s.Reason.Final() {
		t.state = exited
		t.exitCode = s.ExitCode
	} else {
		t.state = stopped
		t.lastVCPU = s.VCPU
	}
	select {
	case t.stops <- s:
	default:
		t.log.WithField("stop", s.String()).Error("a stop nobody collected was dropped")
	}
	if t.delivered != nil {
		close(t.delivered)
		t.delivered = nil
	}
}

// Wait implements vmm.Target.
func (t *Target) Wait(ctx context.Context) (vmm.Stop, error) {
	// deliver sets the state and queues the stop under t.mu: look at both
	// under it, or a stop delivered between the two looks is missed and
	// the target reads as "stopped, nothing to wait for".
	t.mu.Lock()
	select {
	case s := <-t.stops:
		t.mu.Unlock()
		return s, nil
	default:
	}
	st := t.state
	t.mu.Unlock()
	switch st {
	case closed:
		return vmm.Stop{}, vmm.ErrClosed
	case exited:
		return vmm.Stop{}, vmm.ErrExited
	case stopped:
		return vmm.Stop{}, errors.New("target is stopped: nothing to wait for")
	}
	select {
	case s := <-t.stops:
		return s, nil
	case <-t.closing:
		return vmm.Stop{}, vmm.ErrClosed
	case <-ctx.Done():
		return vmm.Stop{}, ctx.Err()
	}
}

// Pause implements vmm.Target: the 0x03 break. A stub that does not
// answer it within the interrupt timeout is given up: the target ends
// with a final stop that says so.
func (t *Target) Pause() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != running || t.interrupt {
		return nil // not running, or ^C already sent: a second one could stop the next run
	}
	t.interrupt = true
	if t.intTimer == nil {
		d := t.interruptTimeout()
		t.intTimer = time.AfterFunc(d, func() { t.interruptUnanswered(d) })
	}
	// A single step can wait for ever too (a stub stepping a hlt with
	// interrupts held off): interrupt it like a run. (softRun also sees
	// the flag between its steps.)
	return t.c.Interrupt()
}

func (t *Target) interruptTimeout() time.Duration {
	if t.cfg.InterruptTimeout > 0 {
		return t.cfg.InterruptTimeout
	}
	return DefaultInterruptTimeout
}

// interruptUnanswered gives up on a stub that did not stop after ^C: the
// connection is closed, and the run's goroutine reports the end.
func (t *Target) interruptUnanswered(d time.Duration) {
	t.mu.Lock()
	waiting := t.state == running && t.interrupt
	t.mu.Unlock()
	if !waiting {
		return
	}
	t.log.Warnf("the GDB stub did not answer ^C within %s; giving up on it", d)
	t.c.Fail(fmt.Errorf("the stub did not answer the interrupt (^C) within %s", d))
}
