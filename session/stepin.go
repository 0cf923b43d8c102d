package session

import (
	"vmdap/x86/disasm"
)

// Step into a chosen call: DAP's stepInTargets and stepIn with a target
// (VS Code's "Step Into Target", for lines such as f(g(x), h(y))).

// StepInTarget is a call on the current line that a step in can enter.
type StepInTarget struct {
	Call  uint64 // the call instruction's address
	Label string // the callee ("indirect: call rax" when computed at run time)
	Line  int
}

// maxStepInTargets and maxLineScan bound the scan of a (pathologically
// long) line.
const (
	maxStepInTargets = 64
	maxLineScan      = 64 << 10
)

// StepInTargets lists the calls from a thread's pc to the end of its
// source line, in code order. Only the innermost frame has targets: an
// outer frame is already inside its call.
func (s *Session) StepInTargets(thread, frame int) ([]StepInTarget, error) {
	v, err := s.vcpuOf(thread)
	if err != nil {
		return nil, err
	}
	var out []StepInTarget
	err = s.stopped(func() error {
		if frame > 0 || s.sym == nil || !s.sym.HasDWARF() {
			return nil
		}
		r, err := s.t.Regs(v)
		if err != nil {
			return err
		}
		loc, ok := s.sym.PCToLine(r.RIP)
		if !ok {
			return nil
		}
		_, hi, _ := s.sym.LineRange(r.RIP)
		var sym disasm.Symbolizer = s.sym.Symbol
		hi = min(hi, r.RIP+maxLineScan) // the last row of a table has no end
		for pc := r.RIP; pc < hi && len(out) < maxStepInTargets; {
			in, err := s.decodeAt(v, pc)
			if err != nil {
				break
			}
			if in.Kind == disasm.KindCall {
				label := "indirect: " + in.Text(sym)
				if in.HasTarget {
					label = s.symbolize(in.Target)
				}
				out = append(out, StepInTarget{Call: pc, Label: label, Line: loc.Line})
			}
			pc = in.Next()
		}
		return nil
	})
	return out, err
}

// StepInto steps a thread's current line, over every call but the one at
// address call, and into that one (stopping after the callee's prologue,
// as a step in does). If the line ends without reaching that call (a
// branch went around it) the step ends at the next line, as next does.
func (s *Session) StepInto(thread int, call uint64) error {
	return s.launch(thread, func(v int) result {
		if s.sym == nil || !s.sym.HasDWARF() {
			return s.nextInsn(v)
		}
		return s.stepLine(v, func(pc uint64) bool { return pc == call })
	})
}
