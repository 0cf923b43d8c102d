package session

import (
	"encoding/binary"
	"fmt"
	"strings"

	"vmdap/session/symbols"
	"vmdap/x86"
	"vmdap/x86/disasm"
)

// Frame is one stack frame of a vCPU at the current stop.
type Frame struct {
	Index   int
	PC      uint64
	CFA     uint64
	HasCFA  bool
	Func    string
	FuncLow uint64
	File    string
	Line    int
	// Inlined: the frame is a call that was inlined into its caller; it
	// shares the caller's registers and CFA (gdb shows such frames too).
	Inlined bool
	// Tail: the frame of a function that tail-called the one below it
	// (found from call-site information, as gdb shows such frames); it
	// sees the registers of the frame below it, as in gdb.
	Tail bool
	// tailAfter: a Tail frame's PC is the address after its jump (the
	// call site's return pc), not the jump's.
	tailAfter bool
	phys      int                  // the index of the machine frame it belongs to
	inl       *symbols.InlinedCall // the inlined call, when Inlined
	regs      symbols.Regs
}

// Name is the frame's display name: its function, as gdb names frames
// (the offset into it is the instruction pointer's business), or the
// address when no symbol covers it.
func (f Frame) Name() string {
	if f.Func != "" {
		return f.Func
	}
	return fmt.Sprintf("%#x", f.PC)
}

const maxFrames = 64

// StackTrace returns the frames of a thread (cached for the stop).
func (s *Session) StackTrace(thread int) ([]Frame, error) {
	v, err := s.vcpuOf(thread)
	if err != nil {
		return nil, err
	}
	var out []Frame
	err = s.stopped(func() error {
		fs, err := s.framesLocked(v)
		out = fs
		return err
	})
	return out, err
}

// unwindStart returns the DWARF register set of a vCPU's innermost frame
// (its PC the linear address of the next instruction, see codeAddr), a
// memory reader for unwinding and the vCPU's code width.
func (s *Session) unwindStart(v int) (symbols.Regs, func(uint64) (uint64, error), x86.Mode, error) {
	var cur symbols.Regs
	r, err := s.t.Regs(v)
	if err != nil {
		return cur, nil, 64, err
	}
	mode := x86.Mode(64)
	pc := r.RIP
	if sr, err := s.t.SRegs(v); err == nil {
		mode = x86.DecodeMode(sr)
		pc = codeAddr(r, sr)
	}
	for n := 0; n < 16; n++ {
		name, _ := x86.DWARFRegName(n)
		cur.R[n], _ = r.Get(name)
		cur.Valid[n] = true
	}
	cur.R[symbols.RegRIP], cur.Valid[symbols.RegRIP] = pc, true
	read := func(addr uint64) (uint64, error) {
		var b [8]byte
		if _, err := s.t.ReadMemory(v, b[:], addr); err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	return cur, read, mode, nil
}

// codeAddr is the linear address of a vCPU's next instruction (see
// x86.CodeAddr), which is what memory and the disassembly are read at.
func codeAddr(r x86.Regs, sr x86.SRegs) uint64 { return x86.CodeAddr(r.RIP, sr) }

// innerFrame describes frame 0 only.
func (s *Session) innerFrame(v int) (Frame, error) {
	cur, read, mode, err := s.unwindStart(v)
	if err != nil {
		return Frame{}, err
	}
	f := Frame{PC: cur.R[symbols.RegRIP], regs: cur}
	if s.sym == nil || mode != 64 && !(mode == 32 && s.sym.AddrSize == 4) {
		s.describe(&f)
		return f, nil
	}
	if cfa, ok := s.sym.CFA(cur, true, read); ok {
		f.CFA, f.HasCFA = cfa, true
	}
	return s.withInlined(f, s.hidden[v])[0], nil
}

func (s *Session) framesLocked(v int) ([]Frame, error) {
	if fs, ok := s.frames[v]; ok {
		return fs, nil
	}
	cur, read, mode, err := s.unwindStart(v)
	if err != nil {
		return nil, err
	}
	var frames []Frame
	// A 32-bit image's code unwinds by its CFI (in i386 numbering) like
	// 64-bit code; 32-bit code in a 64-bit image (a boot stub) by the
	// frame-pointer chain.
	unwind := mode == 64 || mode == 32 && s.sym != nil && s.sym.AddrSize == 4
	switch {
	case unwind:
	case mode == 32 && s.sym != nil:
		frames = s.frames32(v, cur)
	case mode != 64:
		// Real mode and 16-bit code: no unwinder applies.
		f := Frame{PC: cur.R[symbols.RegRIP], regs: cur}
		s.describe(&f)
		frames = []Frame{f}
	}
	for i := 0; unwind && i < maxFrames && len(frames) < maxFrames; i++ {
		f := Frame{Index: len(frames), phys: i, PC: cur.R[symbols.RegRIP], regs: cur}
		if s.sym == nil {
			s.describe(&f)
			frames = append(frames, f)
			break
		}
		caller, cfa, _, err := s.sym.Unwind(cur, i == 0, read)
		if err == nil {
			f.CFA, f.HasCFA = cfa, true
		}
		hide := 0
		if i == 0 {
			hide = s.hidden[v]
		}
		frames = append(frames, s.withInlined(f, hide)...)
		if err != nil || !caller.Valid[symbols.RegRIP] {
			break
		}
		ra := caller.R[symbols.RegRIP]
		// The stack grows down: a caller's frame is above, unless the
		// unwinder crossed onto another stack (an interrupt, the IRQ
		// stack), where only a frame that did not move is a loop.
		sp, csp := cur.R[symbols.RegRSP], caller.R[symbols.RegRSP]
		if ra == 0 && caller.Exact && len(frames)+1 < maxFrames {
			// An exception at address 0: a call through a null pointer
			// (the kernel's Oops "BUG: kernel NULL pointer dereference,
			// address 0"). Its caller's return address is at the
			// stack pointer, as the kernel's ORC unwinder takes it.
			// (A kernel thread's zeroed pt_regs at the top of its
			// stack has no code address there: the stack ends.)
			next, ok := nullCallReturn(caller, read)
			if !ok || !s.inCode(next) {
				break
			}
			z := Frame{Index: len(frames), phys: i + 1, regs: caller}
			s.describe(&z)
			frames = append(frames, z)
			cur = next
			i++ // the null frame was machine frame i+1
			continue
		}
		if ra != 0 && !s.inCode(caller) && caller.Switched && caller.Exact && len(frames) < maxFrames {
			// Out of the kernel through its entry's saved registers
			// (a system call's, an interrupt's): where user space was.
			u := Frame{Index: len(frames), phys: i + 1, PC: ra, regs: caller}
			s.describe(&u)
			frames = append(frames, u)
			break
		}
		if ra == 0 || !s.inCode(caller) || !caller.Switched && csp <= sp || csp == sp && ra == cur.R[symbols.RegRIP] {
			break
		}
		frames = append(frames, s.tailFrames(f, ra, len(frames))...)
		cur = caller
	}
	s.frames[v] = frames
	return frames, nil
}

// inCode reports whether an unwound caller's pc is in a known function:
// a return address by the call before it (a call to a function that does
// not return, as rest_init's last, is a function's last instruction).
func (s *Session) inCode(caller symbols.Regs) bool {
	pc := caller.R[symbols.RegRIP]
	if !caller.Exact && pc > 0 {
		pc--
	}
	return s.sym.FuncAt(pc) != nil
}

// nullCallReturn unwinds a frame stopped at address 0 as a call through
// a null pointer: the return address on top of its stack.
func nullCallReturn(r symbols.Regs, read func(uint64) (uint64, error)) (symbols.Regs, bool) {
	if !r.Valid[symbols.RegRSP] {
		return r, false
	}
	sp := r.R[symbols.RegRSP]
	ra, err := read(sp)
	if err != nil || ra == 0 {
		return r, false
	}
	r.R[symbols.RegRIP], r.R[symbols.RegRSP] = ra, sp+8
	r.Exact, r.Switched = false, false
	return r, true
}

// withInlined describes a machine frame, preceded by a frame for each
// inlined call executing at its PC (innermost first). Each frame's line
// is where it is: the innermost at the PC, the others at the call site
// of the frame inside them.
func (s *Session) withInlined(f Frame, hide int) []Frame {
	s.describe(&f)
	calls := s.sym.InlinedAt(f.look())
	// The innermost hide calls are not entered yet (inline.go).
	calls = calls[:len(calls)-min(hide, len(calls))]
	if len(calls) == 0 {
		if hide > 0 {
			f.File, f.Line = s.callSiteOfHidden(f.look(), hide)
		}
		return []Frame{f}
	}
	out := make([]Frame, 0, len(calls)+1)
	for i := len(calls) - 1; i >= 0; i-- {
		c := calls[i]
		g := f
		g.Inlined, g.inl = true, &calls[i]
		g.Func = c.Name
		if i < len(calls)-1 {
			g.File, g.Line = calls[i+1].CallFile, calls[i+1].CallLine
		}
		out = append(out, g)
	}
	f.File, f.Line = calls[0].CallFile, calls[0].CallLine
	out = append(out, f)
	if hide > 0 {
		// The innermost shown frame is at the call of the first hidden one.
		out[0].File, out[0].Line = s.callSiteOfHidden(f.look(), hide)
	}
	for i := range out {
		out[i].Index = f.Index + i
	}
	return out
}

// tailFrames returns frames for the functions that tail-called their way
// from the call at return address ra down to f's function, as gdb shows
// them: found from call-site information when the chain is unique.
func (s *Session) tailFrames(f Frame, ra uint64, index int) []Frame {
	callee := s.sym.FuncAt(f.look())
	site, ok := s.sym.CallSiteAt(s.sym.FuncAt(ra-1), ra)
	target := site.Callee()
	if !ok || callee == nil || target == nil || target == callee {
		return nil
	}
	chain := s.sym.TailCallsFrom(target, callee)
	var out []Frame
	for j := len(chain) - 1; j >= 0; j-- {
		next := callee
		if j+1 < len(chain) {
			next = chain[j+1]
		}
		pc, after := s.sym.TailCallPC(chain[j], next)
		if pc == 0 {
			return nil
		}
		tf := Frame{Index: index + len(out), phys: f.phys, PC: pc, Tail: true, tailAfter: after, CFA: f.CFA, HasCFA: f.HasCFA, regs: f.regs}
		s.describe(&tf)
		out = append(out, tf)
	}
	return out
}

// look is the PC a frame's symbols are looked up at: a return address
// belongs to the call before it.
func (f *Frame) look() uint64 {
	if f.Tail {
		if f.tailAfter {
			return f.PC - 1 // the jump before it
		}
		return f.PC
	}
	if f.phys > 0 && !f.regs.Exact && f.PC > 0 {
		return f.PC - 1
	}
	return f.PC
}

// frames32 walks 32-bit code's frame-pointer chain (push %ebp; mov
// %esp,%ebp: the caller's EBP at [EBP], the return address at [EBP+4]).
// The unwinder and its CFI are 64-bit; 32-bit kernels are built with frame
// pointers. A caller frame is kept only where its return address follows
// a call instruction inside a known function.
func (s *Session) frames32(v int, cur symbols.Regs) []Frame {
	u32 := func(addr uint64) (uint64, bool) {
		var b [4]byte
		if n, _ := s.t.ReadMemory(v, b[:], addr); n < 4 {
			return 0, false
		}
		return uint64(binary.LittleEndian.Uint32(b[:])), true
	}
	f := Frame{PC: cur.R[symbols.RegRIP], regs: cur}
	s.describe(&f)
	frames := []Frame{f}
	sp := cur.R[symbols.RegRSP] & 0xffffffff
	fp := cur.R[symbols.RegRBP] & 0xffffffff
	if fn := s.sym.FuncAt(f.PC); fn != nil && (f.PC == fn.Low || f.PC == fn.Low+1) {
		// At the entry (or after push %ebp): the frame is not set up yet.
		ra, ok := u32(sp + 4*(f.PC-fn.Low))
		if !ok || !s.returnsTo(v, 32, ra) {
			return frames
		}
		f.CFA, f.HasCFA = sp+4*(f.PC-fn.Low)+4, true
		frames[0] = f
		next := Frame{Index: 1, phys: 1, PC: ra, CFA: 0}
		next.regs.R[symbols.RegRSP], next.regs.R[symbols.RegRBP] = f.CFA, fp
		s.describe(&next)
		frames = append(frames, next)
		sp = f.CFA
	}
	for len(frames) < maxFrames && fp > sp && fp != 0 {
		saved, ok1 := u32(fp)
		ra, ok2 := u32(fp + 4)
		if !ok1 || !ok2 || !s.returnsTo(v, 32, ra) {
			break
		}
		last := &frames[len(frames)-1]
		last.CFA, last.HasCFA = fp+8, true
		next := Frame{Index: len(frames), phys: len(frames), PC: ra}
		next.regs.R[symbols.RegRSP], next.regs.R[symbols.RegRBP] = fp+8, saved
		s.describe(&next)
		frames = append(frames, next)
		sp, fp = fp+8, saved
	}
	// Inlined calls as frames of their own, as in 64-bit code.
	var out []Frame
	for _, f := range frames {
		f.Index = len(out)
		out = append(out, s.withInlined(f, 0)...)
	}
	return out
}

// returnsTo reports whether addr is a plausible return address in code of
// the given width: it follows a call instruction, inside a known function
// when there are symbols.
func (s *Session) returnsTo(v int, mode x86.Mode, addr uint64) bool {
	if addr < 2 {
		return false
	}
	if s.sym != nil && len(s.sym.Funcs()) > 0 && s.sym.FuncAt(addr-1) == nil {
		if _, _, ok := s.sym.Symbol(addr - 1); !ok {
			return false
		}
	}
	var code [16]byte
	start := addr - 8
	if addr < 8 {
		start = 0
	}
	n, _ := s.t.ReadMemory(v, code[:addr-start], start)
	if uint64(n) < addr-start {
		return false
	}
	for k := uint64(2); k <= addr-start; k++ {
		in, err := disasm.Decode(code[addr-start-k:addr-start], mode, addr-k)
		if err == nil && uint64(in.Len) == k && in.Kind == disasm.KindCall {
			return true
		}
	}
	return false
}

func (s *Session) describe(f *Frame) {
	if s.sym == nil {
		return
	}
	look := f.look()
	if fn := s.sym.FuncAt(look); fn != nil {
		f.Func, f.FuncLow = fn.Name, fn.Low
	}
	if loc, ok := s.sym.PCToLine(look); ok {
		f.File, f.Line = loc.File, loc.Line
	}
}

func (s *Session) lineOf(addr uint64) (symbols.Location, bool) {
	if s.sym == nil {
		return symbols.Location{}, false
	}
	return s.sym.PCToLine(addr)
}

// symbolize names an address as function+offset.
func (s *Session) symbolize(addr uint64) string {
	if s.sym != nil {
		if name, base, ok := s.sym.Symbol(addr); ok {
			if addr == base {
				return name
			}
			return fmt.Sprintf("%s+%#x", name, addr-base)
		}
	}
	return fmt.Sprintf("%#x", addr)
}

// where describes a PC as "kmain+0x2c (main.c:17)".
func (s *Session) where(pc uint64) string {
	w := s.symbolize(pc)
	if loc, ok := s.lineOf(pc); ok {
		w += fmt.Sprintf(" (%s:%d)", baseName(loc.File), loc.Line)
	}
	return w
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
