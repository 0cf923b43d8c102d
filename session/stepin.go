package session

import (
	"strings"

	"vmdap/session/symbols"
	"vmdap/x86"
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
	return s.launch(thread, true, func(v int) result {
		if s.sym == nil || !s.sym.HasDWARF() {
			return s.nextInsn(v)
		}
		return s.stepLine(v, func(pc uint64) bool { return pc == call })
	})
}

// stepInTarget is where a step in that entered fn stops: after its
// prologue. Where the line table has no prologue to skip (optimised code,
// whose variables are valid from the entry on) a frame setup at the entry
// is still skipped, as gdb's step does (handle_step_into_function asks the
// architecture: amd64_analyze_prologue and i386_analyze_prologue see
// push %rbp; mov %rsp,%rbp, and on i386 a stack adjustment and register
// pushes after it), and then, if that ends mid-row, the rest of the row.
// A breakpoint on the function stays at its entry (gdb's locations_valid).
func (s *Session) stepInTarget(v int, fn *symbols.Func) uint64 {
	pe, ok := s.sym.PrologueEnd(fn)
	if !ok {
		return fn.Low
	}
	if pe != fn.Low {
		return pe
	}
	mode := x86.Mode(64)
	if sr, err := s.t.SRegs(v); err == nil {
		mode = x86.DecodeMode(sr)
	}
	var code [32]byte
	n, _ := s.t.ReadMemory(v, code[:], fn.Low)
	after := x86.FrameSetupLen(code[:n], mode)
	if after == 0 {
		return fn.Low
	}
	pc := fn.Low + uint64(after)
	if pc >= fn.High {
		return fn.Low
	}
	if !s.sym.BeginsRow(pc) {
		if end, ok := s.sym.NextRow(pc); ok && end < fn.High {
			pc = end
		}
	}
	return pc
}

// thunkRegs are the register suffixes of the indirect branch thunks gdb
// steps through (x86_in_indirect_branch_thunk, given amd64's and i386's
// general registers).
var thunkRegs = map[string]bool{
	"rax": true, "rbx": true, "rcx": true, "rdx": true, "rsi": true, "rdi": true, "rbp": true, "rsp": true,
	"r8": true, "r9": true, "r10": true, "r11": true, "r12": true, "r13": true, "r14": true, "r15": true,
	"eax": true, "ebx": true, "ecx": true, "edx": true, "esi": true, "edi": true, "ebp": true, "esp": true,
}

// inBranchThunk reports whether pc is in a Spectre mitigation thunk:
// __x86_return_thunk (where Linux built with return thunks jumps instead
// of returning: every function's ret, and __fentry__'s), or an indirect
// call or jump thunk (__x86_indirect_thunk_rax: a retpoline, or jmp
// *%rax). A line step goes through it, as gdb's next and step do
// ("stepped into indirect branch thunk": infrun keeps going while the pc
// is in one), so it ends where the thunk goes, never in it.
// gdb names the thunks by the ELF symbol at pc, as here.
func (s *Session) inBranchThunk(pc uint64) bool {
	name, _, ok := s.sym.Symbol(pc)
	if !ok {
		return false
	}
	if name == "__x86_return_thunk" {
		return true
	}
	rest, ok := strings.CutPrefix(name, "__x86_indirect_thunk")
	if !ok {
		return false
	}
	if rest == "" || rest == "_array" {
		// __x86_indirect_thunk_array: Linux's name for its array of
		// thunks, which begins with (and whose symbol shadows) the
		// %rax one.
		return true
	}
	reg, ok := strings.CutPrefix(rest, "_")
	return ok && thunkRegs[reg]
}
