package session

import (
	"errors"
	"fmt"
)

// Jumping: gdb's `jump`, DAP's gotoTargets and goto (VS Code's "Jump to
// Cursor"). The vCPU's instruction pointer moves to the start of a
// source line and it stays stopped there; nothing runs.

// GotoTarget is a place a stopped thread can jump to: the start of a
// line's code in one function.
type GotoTarget struct {
	Addr     uint64
	Line     int
	Function string // "" when no symbol covers Addr
}

// GotoTargets lists where the code of file:line starts, one place per
// function with code on that line. A line without code has none (gdb's
// jump would move on to the next line; an editor's cursor means this
// line).
func (s *Session) GotoTargets(file string, line int) ([]GotoTarget, error) {
	var out []GotoTarget
	err := s.stopped(func() error { // (a jump is made from a stop, and its targets are valid until the guest runs)
		if s.sym == nil || !s.sym.HasDWARF() {
			return errors.New("the guest image has no line information: jump by setting rip in the Registers scope")
		}
		addrs, actual, ok := s.sym.LineAddrs(file, line)
		if !ok || actual != line {
			return nil
		}
		for _, a := range addrs {
			t := GotoTarget{Addr: a, Line: line}
			if fn := s.sym.FuncAt(a); fn != nil {
				t.Function = fn.Name
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// Goto moves a stopped thread's vCPU to addr, which must lie in the
// function the vCPU is stopped in: a jump into another function would
// run it on this one's stack frame (set rip in the Registers scope to do
// that on purpose). The move is reported as a stop with reason goto.
func (s *Session) Goto(thread int, addr uint64) error {
	if err := s.jump(thread, addr); err != nil {
		return err
	}
	desc := fmt.Sprintf("jumped to %s", s.where(addr))
	if loc, ok := s.lineOf(addr); ok {
		desc = fmt.Sprintf("jumped to line %d", loc.Line)
	}
	s.emit(Stopped{Reason: StopGoto, Thread: thread, Description: desc})
	return nil
}

func (s *Session) jump(thread int, addr uint64) error {
	v, err := s.vcpuOf(thread)
	if err != nil {
		return err
	}
	w, ok := s.t.RegisterWriter()
	if !ok {
		return errors.New("this target cannot write registers, so it cannot jump")
	}
	return s.stopped(func() error {
		if s.state != StateStopped {
			return ErrExited
		}
		r, err := s.t.Regs(v)
		if err != nil {
			return err
		}
		if s.sym != nil {
			from, to := s.sym.FuncAt(r.RIP), s.sym.FuncAt(addr)
			switch {
			case to == nil:
				return fmt.Errorf("no function covers %#x", addr)
			case from == nil:
				return fmt.Errorf("%s is in %s, but thread %d is stopped outside any function (%s): a jump there would run it on the wrong stack frame (set rip in the Registers scope to force it)",
					s.where(addr), to.Name, thread, s.where(r.RIP))
			case from.Low != to.Low:
				return fmt.Errorf("%s is in %s, but thread %d is stopped in %s: a jump there would run %s on the wrong stack frame (%s's; set rip in the Registers scope to force it)",
					s.where(addr), to.Name, thread, from.Name, to.Name, from.Name)
			}
		}
		r.RIP = addr
		if err := w.SetRegs(v, r); err != nil {
			return err
		}
		s.frames, s.hidden = map[int][]Frame{}, nil // elsewhere now
		s.excInfo = nil
		s.curVCPU = v
		s.lastStop.VCPU, s.lastStop.PC = v, addr
		return nil
	})
}
