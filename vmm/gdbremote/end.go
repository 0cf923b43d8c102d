package gdbremote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/gdbremote/rsp"
)

// The end of a target.
//
// A stub's connection can end at any time: the hypervisor exits or is
// killed, QEMU's guest exits (QEMU closes the socket without a W packet),
// or vmdap gives up on a stub that stopped answering. The target notices
// at once, running or stopped: a run's goroutine gets the error from its
// Recv; lifeline watches while the guest is stopped. Either way one final
// stop (ReasonExited) says what happened; its ExitCode is the launched
// hypervisor's status, or -1 when it is not known (an attached stub), as
// lldb reports a lost connection.
//
// Ending it on purpose: Close is the default for how the target began
// (attached: detach, the guest runs on; launched: QEMU stopped). Detach
// and Terminate (vmm.Detacher) do what a DAP client asks instead.

// exitInfo is how a launched hypervisor ended.
type exitInfo struct {
	ended  bool   // the process has exited
	status int    // its exit status (-1 when a signal killed it)
	signal string // the signal that killed it
	stderr string // its last lines on stderr
}

// Ended implements vmm.Ender: closed once the connection to the stub has
// ended, when the final stop is ready for Wait (if nothing else took it).
func (t *Target) Ended() <-chan struct{} { return t.ended }

// lifeline reports a connection that ends while the guest is stopped
// (a running guest's end is its run's stop).
func (t *Target) lifeline() {
	defer close(t.ended)
	<-t.c.Done()
	t.mu.Lock()
	st := t.state
	t.mu.Unlock()
	if st != stopped {
		return
	}
	s := t.lostStop(t.c.Err(), true)
	t.mu.Lock()
	if t.state == stopped {
		t.deliver(s)
	}
	t.mu.Unlock()
}

// lostStop is the final stop for a connection that ended with err. It may
// wait a little for a launched hypervisor's exit status (call it without
// t.mu).
func (t *Target) lostStop(err error, whileStopped bool) vmm.Stop {
	when := ""
	if whileStopped {
		when = " while the guest was stopped"
	}
	hangup := errors.Is(err, rsp.ErrHangup)
	if t.onExit == nil {
		detail := fmt.Sprintf("vmdap lost the GDB stub at %s%s: %v", t.cfg.Addr, when, err)
		if hangup {
			detail = fmt.Sprintf("the GDB stub at %s closed the connection%s: the hypervisor ended (perhaps with its guest) or was killed; an attached debugger does not learn an exit status", t.cfg.Addr, when)
		}
		return vmm.Stop{Reason: vmm.ReasonExited, ExitCode: -1, Detail: detail}
	}
	e := t.onExit()
	var parts []string
	if !hangup {
		parts = append(parts, fmt.Sprintf("vmdap gave up on QEMU's GDB stub%s: %v", when, err))
	}
	switch {
	case !e.ended:
		parts = append(parts, "QEMU is still running; vmdap stops it")
	case e.signal != "":
		parts = append(parts, fmt.Sprintf("QEMU was killed by signal %s%s", e.signal, when))
	case whileStopped || e.stderr != "":
		parts = append(parts, fmt.Sprintf("QEMU exited with status %d%s", e.status, when))
	}
	if e.stderr != "" {
		parts = append(parts, "it said: "+e.stderr)
	}
	code := e.status
	if !e.ended {
		code = -1
	}
	return vmm.Stop{Reason: vmm.ReasonExited, ExitCode: code, Detail: strings.Join(parts, "; ")}
}

type ending uint8

const (
	endDetach  ending = iota // breakpoints out, the guest runs on
	endSuspend               // breakpoints out, the guest stays stopped
	endKill                  // the guest (and its hypervisor) ends
)

// Close implements vmm.Target: an attached target is detached with the
// guest running; a launched QEMU is stopped and reaped.
func (t *Target) Close() error {
	if t.onClose != nil {
		return t.end(endKill)
	}
	return t.end(endDetach)
}

// Detach implements vmm.Detacher: breakpoints and watchpoints are taken
// out and the stub is left with the guest running ('D'), or stopped
// (suspend: the connection just closes, which QEMU takes as leaving the
// guest as it is). A launched QEMU keeps running (Released); it is still
// vmdap's child, and ends if vmdap is killed.
func (t *Target) Detach(suspend bool) error {
	if suspend {
		return t.end(endSuspend)
	}
	return t.end(endDetach)
}

// Terminate implements vmm.Detacher: the guest ends ('k' makes QEMU
// exit; a launched QEMU is also stopped and reaped).
func (t *Target) Terminate() error { return t.end(endKill) }

func (t *Target) end(how ending) error {
	t.mu.Lock()
	if t.state == closed {
		t.mu.Unlock()
		return nil
	}
	if t.state == running && t.c.Err() == nil {
		t.haltLocked()
	}
	var err error
	if t.state == stopped && t.c.Err() == nil {
		switch how {
		case endDetach:
			t.liftAll()
			// bhyve's D does not resume; closing the socket does.
			if _, e := t.x("detaching", "D"); e != nil && !rsp.Unsupported(e) {
				err = e
			}
		case endSuspend:
			t.liftAll()
			if t.stubName == "bhyve" {
				err = errors.New("bhyve resumes the guest when its debugger disconnects: it could not be left suspended")
			}
		case endKill:
			if t.onClose == nil {
				err = t.kill()
			}
		}
	}
	t.state = closed
	close(t.closing)
	if t.intTimer != nil {
		t.intTimer.Stop()
		t.intTimer = nil
	}
	t.mu.Unlock()
	t.c.Close()
	switch {
	case how == endKill && t.onClose != nil:
		t.onClose()
	case how != endKill && t.onRelease != nil:
		t.onRelease()
	}
	<-t.ended
	return err
}

// haltLocked stops a running guest before it is let go (its breakpoints
// must come out): ^C, and a bounded wait for the run's stop (t.mu held,
// released while waiting).
func (t *Target) haltLocked() {
	done := t.delivered
	t.interrupt = true
	if err := t.c.Interrupt(); err != nil || done == nil {
		return
	}
	t.mu.Unlock()
	select {
	case <-done:
	case <-time.After(t.interruptTimeout()):
		t.log.Warn("the GDB stub did not stop the guest for the detach")
	}
	t.mu.Lock()
	// The stop is the session's no more.
	select {
	case <-t.stops:
	default:
	}
}

// kill ends an attached guest with 'k' (QEMU exits; no reply is due, the
// connection just ends). A stub without 'k' answers it empty.
func (t *Target) kill() error {
	if err := t.c.Send("k"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.interruptTimeout())
	defer cancel()
	for {
		r, err := t.c.Recv(ctx)
		switch {
		case err != nil && errors.Is(err, rsp.ErrClosed):
			return nil
		case err != nil:
			return fmt.Errorf("the %s stub did not end the guest ('k'): %w", t.stubName, err)
		case r == "":
			return fmt.Errorf("the %s stub cannot end the guest (it does not support 'k'); the guest runs on", t.stubName)
		case r[0] == 'W' || r[0] == 'X':
			return nil
		}
	}
}
