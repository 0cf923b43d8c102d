package gdbremote

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"vmdap/vmm"
	"vmdap/vmm/gdbremote/rsp"
)

// softWatch is a write watchpoint emulated by stepping and comparing.
type softWatch struct {
	w    vmm.Watch
	last []byte
}

// InsertBreakpoint implements vmm.Breakpoints: Z0 where the stub has it,
// else an int3 written with M (the original byte kept for reads). An
// address the stub cannot read takes a Z0 where the stub accepts one
// there (QEMU TCG: probed at attach), and is a *vmm.FaultError otherwise.
func (t *Target) InsertBreakpoint(addr uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	if t.sw[addr] != nil {
		return fmt.Errorf("%w at %#x", vmm.ErrBreakpointExists, addr)
	}
	var orig [1]byte
	_, rerr := t.readMem(orig[:], addr)
	if rerr != nil && !(t.z[0] && t.z0Unmapped) {
		return rerr
	}
	bp := &swbp{orig: orig[0], shadow: rerr == nil}
	if t.z[0] {
		if _, err := t.c.Exchange("inserting a breakpoint", fmt.Sprintf("Z0,%x,1", addr)); err != nil {
			if rerr != nil {
				return rerr
			}
			return err
		}
		bp.viaZ0 = true
		bp.shadow = bp.shadow && t.z0Patches
	} else if _, err := t.writeMem([]byte{0xcc}, addr); err != nil {
		return err
	}
	t.sw[addr] = bp
	return nil
}

// RemoveBreakpoint implements vmm.Breakpoints.
func (t *Target) RemoveBreakpoint(addr uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	bp := t.sw[addr]
	if bp == nil {
		return fmt.Errorf("no software breakpoint at %#x", addr)
	}
	delete(t.sw, addr)
	return t.liftSW(addr, bp)
}

func (t *Target) liftSW(addr uint64, bp *swbp) error {
	if bp.viaZ0 {
		_, err := t.c.Exchange("removing a breakpoint", fmt.Sprintf("z0,%x,1", addr))
		return err
	}
	_, err := t.writeMem([]byte{bp.orig}, addr)
	return err
}

func (t *Target) plantSW(addr uint64, bp *swbp) error {
	if bp.viaZ0 {
		_, err := t.c.Exchange("inserting a breakpoint", fmt.Sprintf("Z0,%x,1", addr))
		return err
	}
	_, err := t.writeMem([]byte{0xcc}, addr)
	return err
}

// InsertHWBreakpoint implements vmm.HWBreakpoints (Z1).
func (t *Target) InsertHWBreakpoint(addr uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	if !t.z[1] {
		return fmt.Errorf("hardware breakpoints: %w by the %s stub", vmm.ErrUnsupported, t.stubName)
	}
	if t.hw[addr] {
		return fmt.Errorf("%w at %#x", vmm.ErrBreakpointExists, addr)
	}
	if _, err := t.c.Exchange("inserting a hardware breakpoint", fmt.Sprintf("Z1,%x,1", addr)); err != nil {
		var pe *rsp.ProtocolError
		if errors.As(err, &pe) && pe.Code != "" {
			return vmm.ErrNoSlots // QEMU-KVM answers ENOSPC/ENOBUFS when DR0-DR3 are full
		}
		return err
	}
	t.hw[addr] = true
	return nil
}

// RemoveHWBreakpoint implements vmm.HWBreakpoints.
func (t *Target) RemoveHWBreakpoint(addr uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	delete(t.hw, addr)
	_, err := t.c.Exchange("removing a hardware breakpoint", fmt.Sprintf("z1,%x,1", addr))
	return err
}

// WatchKinds implements vmm.Watchpoints.
func (t *Target) WatchKinds() []vmm.WatchSupport {
	var acc []vmm.Access
	if t.z[2] {
		acc = append(acc, vmm.AccessWrite)
	}
	if t.z[3] {
		acc = append(acc, vmm.AccessRead)
	}
	if t.z[4] {
		acc = append(acc, vmm.AccessReadWrite)
	}
	if len(acc) > 0 {
		return []vmm.WatchSupport{{Kind: vmm.WatchStub, Accesses: acc}}
	}
	return []vmm.WatchSupport{{Kind: vmm.WatchSoftware, Accesses: []vmm.Access{vmm.AccessWrite}, MaxLen: 4096}}
}

func zType(a vmm.Access) int {
	switch a {
	case vmm.AccessWrite:
		return 2
	case vmm.AccessRead:
		return 3
	}
	return 4
}

// InsertWatchpoint implements vmm.Watchpoints.
func (t *Target) InsertWatchpoint(w vmm.Watch) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	switch w.Kind {
	case vmm.WatchStub:
		z := zType(w.Access)
		if !t.z[z] {
			return fmt.Errorf("%s watchpoints: %w by the %s stub", w.Access, vmm.ErrUnsupported, t.stubName)
		}
		if _, err := t.c.Exchange("inserting a watchpoint", fmt.Sprintf("Z%d,%x,%x", z, w.Addr, w.Len)); err != nil {
			var pe *rsp.ProtocolError
			if errors.As(err, &pe) && pe.Code != "" {
				return fmt.Errorf("%w (the stub answered E%s)", vmm.ErrNoSlots, pe.Code)
			}
			return err
		}
		t.watches = append(t.watches, w)
	case vmm.WatchSoftware:
		if w.Access != vmm.AccessWrite {
			return fmt.Errorf("emulated watchpoints can only watch writes: %w", vmm.ErrUnsupported)
		}
		b := make([]byte, w.Len)
		if _, err := t.readMem(b, w.Addr); err != nil {
			return err
		}
		t.soft = append(t.soft, &softWatch{w: w, last: b})
	default:
		return fmt.Errorf("%s watchpoints: %w over a GDB stub", w.Kind, vmm.ErrUnsupported)
	}
	return nil
}

// RemoveWatchpoint implements vmm.Watchpoints.
func (t *Target) RemoveWatchpoint(w vmm.Watch) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	for i, x := range t.watches {
		if x == w {
			t.watches = append(t.watches[:i], t.watches[i+1:]...)
			_, err := t.c.Exchange("removing a watchpoint", fmt.Sprintf("z%d,%x,%x", zType(w.Access), w.Addr, w.Len))
			return err
		}
	}
	for i, x := range t.soft {
		if x.w == w {
			t.soft = append(t.soft[:i], t.soft[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("no such watchpoint")
}

func (t *Target) canRun() error {
	switch t.state {
	case running:
		return vmm.ErrRunning
	case exited:
		return vmm.ErrExited
	case closed:
		return vmm.ErrClosed
	}
	return nil
}

// resumed forgets per-stop state.
func (t *Target) resumed() {
	t.cache = map[int]*regBlock{}
	t.curThread = map[byte]string{}
}

// stepRaw steps one vCPU and waits for the stub's reply (session locked).
func (t *Target) stepRaw(vcpu int) (string, error) {
	if err := t.sendStep(vcpu); err != nil {
		return "", err
	}
	return t.c.Recv(context.Background())
}

// sendStep sends the step of one vCPU (vCont;s, or Hc and s).
func (t *Target) sendStep(vcpu int) error {
	t.resumed()
	if t.vCont {
		return t.c.Send(fmt.Sprintf("vCont;s:%s", t.threads[vcpu]))
	}
	if err := t.selectThread('c', vcpu); err != nil {
		return err
	}
	return t.c.Send("s")
}

// stepOff executes the instruction under our breakpoint at vCPU's PC (z,
// s, Z). done reports a stop that is not a plain step.
func (t *Target) stepOff(vcpu int) (vmm.Stop, bool) {
	pc := t.pcOf(vcpu)
	bp := t.sw[pc]
	hw := t.hw[pc]
	if bp == nil && !hw {
		return vmm.Stop{}, false
	}
	if bp != nil {
		t.liftSW(pc, bp)
	}
	if hw {
		t.c.Exchange("stepping off a breakpoint", fmt.Sprintf("z1,%x,1", pc))
	}
	reply, err := t.stepRaw(vcpu)
	if bp != nil && t.sw[pc] == bp {
		t.plantSW(pc, bp)
	}
	if hw {
		t.c.Exchange("stepping off a breakpoint", fmt.Sprintf("Z1,%x,1", pc))
	}
	s := t.classify(reply, err, vcpu, true)
	if s.Reason == vmm.ReasonStep {
		return vmm.Stop{}, false
	}
	return s, true
}

// Continue implements vmm.Target.
func (t *Target) Continue() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.canRun(); err != nil {
		return err
	}
	if s, done := t.stepOff(t.lastVCPU); done {
		t.deliver(s)
		return nil
	}
	if len(t.soft) > 0 {
		t.state = running
		go t.softRun(t.lastVCPU)
		return nil
	}
	if err := t.sendContinue(); err != nil {
		return err
	}
	t.state = running
	t.interrupt = false
	go t.await(-1)
	return nil
}

// sendContinue resumes every vCPU (vCont;c, or c).
func (t *Target) sendContinue() error {
	t.resumed()
	if t.vCont {
		return t.c.Send("vCont;c")
	}
	return t.c.Send("c")
}

// Step implements vmm.Stepper.
func (t *Target) Step(vcpu int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.canRun(); err != nil {
		return err
	}
	if vcpu < 0 || vcpu >= len(t.threads) {
		return fmt.Errorf("%w: %d", vmm.ErrNoVCPU, vcpu)
	}
	pc := t.pcOf(vcpu)
	if len(t.soft) == 0 {
		if next, ok := t.haltNext(vcpu, pc); ok {
			if started, err := t.stepOverHalt(vcpu, next); started || err != nil {
				return err
			}
		}
	}
	if t.sw[pc] != nil || t.hw[pc] {
		s, done := t.stepOff(vcpu)
		if !done {
			r, _ := t.regsNoLock(vcpu)
			s = vmm.Stop{VCPU: vcpu, Reason: vmm.ReasonStep, PC: r}
		}
		s = t.checkSoft(s)
		t.deliver(s)
		return nil
	}
	t.resumed()
	var err error
	if t.vCont {
		err = t.c.Send(fmt.Sprintf("vCont;s:%s", t.threads[vcpu]))
	} else if err = t.selectThread('c', vcpu); err == nil {
		err = t.c.Send("s")
	}
	if err != nil {
		return err
	}
	t.state = running
	t.stepping = vcpu
	go t.await(vcpu)
	return nil
}

func (t *Target) regsNoLock(vcpu int) (uint64, error) { return t.pcOf(vcpu), nil }

// await receives the stop reply of a run and reports it.
func (t *Target) await(stepping int) {
	reply, err := t.c.Recv(context.Background())
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == closed {
		return
	}
	s := t.classify(reply, err, stepping, stepping >= 0)
	if stepping >= 0 {
		s = t.checkSoft(s)
	}
	t.stepping = -1
	t.deliver(s)
}

// softRun emulates write watchpoints: single steps, comparing the watched
// bytes after each, until one changes, a breakpoint is reached or a pause
// is asked for. The lock is not held while a step is in flight: a step
// can wait for ever (a stub stepping a hlt with interrupts held off), and
// Pause and Close must still get through (Pause interrupts it).
func (t *Target) softRun(vcpu int) {
	for {
		t.mu.Lock()
		if t.state == closed {
			t.mu.Unlock()
			return
		}
		if t.interrupt {
			pc := t.pcOf(vcpu)
			t.deliver(vmm.Stop{VCPU: vcpu, Reason: vmm.ReasonPause, PC: pc})
			t.mu.Unlock()
			return
		}
		err := t.sendStep(vcpu)
		t.softStepping = err == nil
		t.mu.Unlock()
		reply := ""
		if err == nil {
			reply, err = t.c.Recv(context.Background())
		}
		t.mu.Lock()
		t.softStepping = false
		if t.state == closed {
			t.mu.Unlock()
			return
		}
		s := t.classify(reply, err, vcpu, true)
		if s.Reason == vmm.ReasonStep {
			s = t.checkSoft(s)
			if s.Reason == vmm.ReasonStep {
				pc := s.PC
				if t.sw[pc] != nil {
					s.Reason, s.Addr = vmm.ReasonBreakpoint, pc
				} else if t.hw[pc] {
					s.Reason, s.Addr = vmm.ReasonHWBreakpoint, pc
				} else {
					t.mu.Unlock()
					continue
				}
			}
		}
		t.deliver(s)
		t.mu.Unlock()
		return
	}
}

// checkSoft turns a step into a watchpoint stop when emulated watched
// bytes changed.
func (t *Target) checkSoft(s vmm.Stop) vmm.Stop {
	if s.Reason != vmm.ReasonStep {
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
			return vmm.Stop{VCPU: s.VCPU, Reason: vmm.ReasonWatchpoint, PC: s.PC, Addr: sw.w.Addr,
				Watch: &vmm.WatchHit{Watch: sw.w, Access: vmm.AccessWrite, Addr: sw.w.Addr, Old: old, New: cur}}
		}
	}
	return s
}

// classify turns a stop reply into a Stop (session locked).
func (t *Target) classify(reply string, err error, vcpu int, stepping bool) vmm.Stop {
	t.resumed()
	if err != nil {
		if errors.Is(err, rsp.ErrClosed) {
			code := 0
			if t.onExit != nil {
				code, _ = t.onExit()
			}
			return vmm.Stop{Reason: vmm.ReasonExited, ExitCode: code, Detail: "the stub closed the connection"}
		}
		return vmm.Stop{Reason: vmm.ReasonInternalError, Detail: err.Error()}
	}
	r, perr := rsp.ParseStopReply(reply)
	if perr != nil {
		return vmm.Stop{Reason: vmm.ReasonInternalError, Detail: fmt.Sprintf("unexpected stop reply %q", reply)}
	}
	switch r.Kind {
	case 'W':
		return vmm.Stop{Reason: vmm.ReasonExited, ExitCode: r.Signal}
	case 'X':
		return vmm.Stop{Reason: vmm.ReasonExited, ExitCode: 128 + r.Signal, Detail: fmt.Sprintf("terminated by signal %d", r.Signal)}
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
	// By the protocol's convention the thread that reports a stop becomes
	// the stub's current thread: no Hg needed before reading it.
	if r.Thread != "" || len(t.threads) == 1 {
		t.curThread['g'] = t.threads[v]
	}
	pc := t.pcOf(v)
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
	case stepping:
		s.Reason = vmm.ReasonStep
	case t.interrupt:
		s.Reason = vmm.ReasonPause
	case t.sw[pc] != nil || r.SWBreak:
		s.Reason, s.Addr = vmm.ReasonBreakpoint, pc
	case t.hw[pc] || r.HWBreak || execHit:
		s.Reason, s.Addr = vmm.ReasonHWBreakpoint, pc
	default:
		s.Reason, s.Signal = vmm.ReasonSignal, r.Signal
		s.Detail = fmt.Sprintf("stopped with signal %d", r.Signal)
	}
	return s
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

// deliver makes s the next stop (session locked).
func (t *Target) deliver(s vmm.Stop) {
	t.interrupt = false
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
	case <-ctx.Done():
		return vmm.Stop{}, ctx.Err()
	case <-t.closed:
		// Closed while a run or step was in flight (a disconnect during a
		// long step): its stop is never delivered.
		return vmm.Stop{}, vmm.ErrClosed
	}
}

// Pause implements vmm.Target: the 0x03 break.
func (t *Target) Pause() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != running {
		return nil
	}
	t.interrupt = true
	if len(t.soft) > 0 && !t.softStepping {
		return nil // softRun sees the flag before its next step
	}
	// A single step can wait for ever too (a stub stepping a hlt with
	// interrupts held off): interrupt it like a run.
	return t.c.Interrupt()
}

// Close implements vmm.Target: breakpoints removed, the stub detached
// (the guest resumes) and the connection closed.
func (t *Target) Close() error {
	t.mu.Lock()
	if t.state == closed {
		t.mu.Unlock()
		return nil
	}
	wasRunning := t.state == running
	if t.state == stopped {
		for a, bp := range t.sw {
			t.liftSW(a, bp)
		}
		for a := range t.hw {
			t.c.Exchange("removing a hardware breakpoint", fmt.Sprintf("z1,%x,1", a))
		}
		for _, w := range t.watches {
			t.c.Exchange("removing a watchpoint", fmt.Sprintf("z%d,%x,%x", zType(w.Access), w.Addr, w.Len))
		}
		// bhyve's D does not resume the guest; closing the socket does.
		t.c.Send("D")
	}
	t.state = closed
	close(t.closed)
	t.mu.Unlock()
	_ = wasRunning
	err := t.c.Close()
	if t.onClose != nil {
		t.onClose()
	}
	return err
}
