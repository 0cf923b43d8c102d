package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"

	"vmdap/session/symbols"
	"vmdap/vmm"
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
	if !ok || callee == nil || site.Target == nil || site.Target == callee {
		return nil
	}
	chain := s.sym.TailCallsFrom(site.Target, callee)
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

// functionAddrs resolves a function breakpoint name to every place it
// binds, as gdb's break does: each copy of the function (a static
// function defined in several units has one in each) after its
// prologue, each inlined copy where it begins, else an ELF symbol at its
// address; "*0x…" is an address. A name no function has that holds * or
// ? is a pattern (patternAddrs).
func (s *Session) functionAddrs(name string) ([]uint64, error) {
	name = strings.TrimSpace(name)
	if a, ok := strings.CutPrefix(name, "*"); ok && strings.HasPrefix(strings.TrimSpace(a), "0x") {
		var a uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(name[1:]), "0x%x", &a); err != nil {
			return nil, fmt.Errorf("bad address %q", name)
		}
		return []uint64{a}, nil
	}
	if s.sym == nil {
		return nil, fmt.Errorf("no symbols are loaded")
	}
	out := s.nameAddrs(name)
	if len(out) == 0 && isFuncPattern(name) {
		return s.patternAddrs(name)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no function named %q in the guest image", name)
	}
	return out, nil
}

// maxPatternFuncs bounds the functions a function breakpoint's pattern
// may match (each may have several copies).
var maxPatternFuncs = 100

// isFuncPattern reports whether a function breakpoint's name, which no
// function has, is a pattern (sched_*, *_lock, jhash?): a C function's
// name has neither * nor ? (a [a-z] class counts only beside them: Rust's
// names hold [T]).
func isFuncPattern(name string) bool {
	return strings.ContainsAny(name, "*?")
}

// patternError refuses a function breakpoint's pattern whatever the
// modules have: malformed, or matching too many functions.
type patternError struct{ msg string }

func (e *patternError) Error() string { return e.msg }

// patternAddrs returns the addresses of the functions whose names match a
// shell pattern (path.Match's: * any run of characters, ? one, [a-z] a
// class), as gdb's rbreak sets one breakpoint on each, at most
// maxPatternFuncs functions.
func (s *Session) patternAddrs(pattern string) ([]uint64, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, &patternError{fmt.Sprintf("bad pattern %q: %v", pattern, err)}
	}
	if s.sym == nil {
		return nil, fmt.Errorf("no symbols are loaded")
	}
	prefix := pattern[:strings.IndexAny(pattern, "*?[\\")]
	// A piece of the pattern every match holds, checked first: a
	// pattern that begins with * is matched against every name.
	piece := ""
	if !strings.ContainsAny(pattern, "[\\") {
		for _, p := range strings.FieldsFunc(pattern, func(r rune) bool { return r == '*' || r == '?' }) {
			if len(p) > len(piece) {
				piece = p
			}
		}
	}
	seen := map[string]bool{}
	var names []string
	s.sym.NamesWithPrefix(prefix, math.MaxInt, func(n string, k symbols.NameKind) {
		if k&symbols.NameFunc != 0 && !seen[n] && strings.Contains(n, piece) {
			if ok, _ := path.Match(pattern, n); ok {
				seen[n] = true
				names = append(names, n)
			}
		}
	})
	switch {
	case len(names) == 0:
		return nil, fmt.Errorf("no function matches %q in the guest image", pattern)
	case len(names) > maxPatternFuncs:
		return nil, &patternError{fmt.Sprintf("%q matches %d functions, more than %d: narrow the pattern", pattern, len(names), maxPatternFuncs)}
	}
	var out []uint64
	for _, n := range names {
		out = append(out, s.nameAddrs(n)...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no function matches %q in the guest image", pattern)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// nameAddrs returns where a breakpoint on a function by name goes: past
// the prologue of each copy, and each place it is inlined (none: no such
// function).
func (s *Session) nameAddrs(name string) []uint64 {
	var out []uint64
	for _, fn := range s.sym.FuncsByName(name) {
		if pe, ok := s.sym.PrologueEnd(fn); ok {
			out = append(out, pe)
		} else {
			out = append(out, fn.Low)
		}
	}
	out = append(out, s.sym.InlinedSites(name)...)
	if len(out) == 0 {
		if a, ok := s.sym.SymbolAddr(name); ok {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// frameScope is the scope an expression sees in one frame.
type frameScope struct {
	refSize    int // the DIE reference size of the variable being evaluated
	synthDepth int // synthetic pointers being followed (bounded)
	vlaDepth   int // variable-length array bounds being read (bounded)
	s          *Session
	vcpu       int
	f          *Frame
	sc         *symbols.Scope
	regs       x86.Regs
	sregs      x86.SRegs
	dregs      *x86.DebugRegs
	fp         *x86.FPRegs // fpregs.go: read on first use
	fpTried    bool
	types      *typeCache
	window     *memWindow // memory read ahead (nil: none)
	err        error
}

// NoFrame, as a frame index, asks for the global scope: globals, symbols
// and the registers of the thread's vCPU, no locals.
const NoFrame = -1

// scopeOf is newScope, or the global scope for NoFrame.
func (s *Session) scopeOf(v, frame int) (*frameScope, error) {
	if frame != NoFrame {
		return s.newScope(v, frame)
	}
	sc, err := s.newScope(v, 0)
	if err != nil {
		return nil, err
	}
	sc.sc = nil
	return sc, nil
}

// newScope builds the scope of a frame (session locked, target stopped).
func (s *Session) newScope(v, frame int) (*frameScope, error) {
	var f *Frame
	if _, cached := s.frames[v]; !cached && frame == 0 {
		// Conditions and logpoints need only the innermost frame: skip
		// the full unwind.
		fr, err := s.innerFrame(v)
		if err != nil {
			return nil, err
		}
		f = &fr
	} else {
		fs, err := s.framesLocked(v)
		if err != nil {
			return nil, err
		}
		if frame < 0 || frame >= len(fs) {
			return nil, ErrNoFrame
		}
		f = &fs[frame]
	}
	var err error
	sc := &frameScope{s: s, vcpu: v, f: f, types: s.stopTypes()}
	if sc.regs, err = s.t.Regs(v); err != nil {
		return nil, err
	}
	if sc.sregs, err = s.t.SRegs(v); err != nil {
		return nil, err
	}
	if f.phys > 0 {
		// A caller frame: RIP, RSP and the registers CFI recovered.
		for n := 0; n < 17; n++ {
			if !f.regs.Valid[n] {
				continue
			}
			name := "rip"
			if n < 16 {
				name, _ = x86.DWARFRegName(n)
			}
			sc.regs.Set(name, f.regs.R[n])
		}
	}
	if s.sym != nil {
		if f.inl != nil {
			sc.sc, _ = s.sym.ScopeOfInlined(f.look(), *f.inl)
		} else {
			sc.sc, _ = s.sym.ScopeAt(f.look())
		}
	}
	return sc, nil
}

// memWindow is guest memory read ahead in one piece: the bytes of the
// elements of an array a variables request makes, each of which would
// otherwise be a read of its own (a round trip to QEMU's stub each).
type memWindow struct {
	addr, end uint64 // the span read: [addr, end)
	b         []byte // its readable bytes, from addr
	fault     error  // why the bytes after b could not be read (nil: all were)
}

// maxWindow bounds a read-ahead.
const maxWindow = 1 << 20

// readAhead reads [addr, addr+n) in one piece for the reads that follow,
// until the returned func is called.
func (sc *frameScope) readAhead(addr uint64, n int64) (done func()) {
	old := sc.window
	if n <= 0 || n > maxWindow || addr+uint64(n) < addr {
		return func() {}
	}
	b := make([]byte, n)
	got, err := sc.s.t.ReadMemory(sc.vcpu, b, addr)
	var fe *vmm.FaultError
	if got < len(b) && !errors.As(err, &fe) {
		return func() {} // not a fault: each read finds out for itself
	}
	w := &memWindow{addr: addr, end: addr + uint64(n), b: b[:got]}
	if got < len(b) {
		w.fault = fe
	}
	sc.window = w
	return func() { sc.window = old }
}

func (sc *frameScope) readMem(p []byte, addr uint64) error {
	if w := sc.window; w != nil && addr >= w.addr && addr+uint64(len(p)) <= w.end && addr+uint64(len(p)) >= addr {
		off := addr - w.addr
		if off+uint64(len(p)) <= uint64(len(w.b)) {
			copy(p, w.b[off:])
			return nil
		}
		// Wholly on the page where the read-ahead faulted: faults too.
		var fe *vmm.FaultError
		if errors.As(w.fault, &fe) && len(p) > 0 && addr >= fe.Addr && addr+uint64(len(p))-1 <= fe.Addr|(pageSize-1) {
			return &vmm.FaultError{Addr: addr, Reason: fe.Reason}
		}
	}
	n, err := sc.s.t.ReadMemory(sc.vcpu, p, addr)
	if n < len(p) {
		if err == nil {
			err = fmt.Errorf("short read at %#x", addr)
		}
		return err
	}
	return nil
}

func (sc *frameScope) writeMem(p []byte, addr uint64) error {
	n, err := sc.s.t.WriteMemory(sc.vcpu, p, addr)
	if n > 0 {
		sc.s.written = append(sc.s.written, MemoryChanged{Addr: addr, Count: n})
	}
	if n < len(p) && err == nil {
		err = fmt.Errorf("short write at %#x", addr)
	}
	sc.s.frames = map[int][]Frame{}
	return err
}

func (sc *frameScope) debugRegs() *x86.DebugRegs {
	if sc.dregs == nil {
		if dr, ok := sc.s.t.DebugRegisters(); ok {
			if d, err := dr.DebugRegs(sc.vcpu); err == nil {
				sc.dregs = &d
			}
		}
	}
	return sc.dregs
}

func (sc *frameScope) regGet(name string) (uint64, bool) {
	if v, ok := sc.regs.Get(name); ok {
		return v, true
	}
	if v, ok := sc.sregs.Get(name); ok {
		return v, true
	}
	if strings.HasPrefix(name, "dr") {
		if d := sc.debugRegs(); d != nil {
			return d.Get(name)
		}
	}
	return 0, false
}

func (sc *frameScope) regSet(name string, v uint64) error {
	if sc.f.phys != 0 {
		return fmt.Errorf("registers can only be changed in the innermost frame")
	}
	w, ok := sc.s.t.RegisterWriter()
	if !ok {
		return fmt.Errorf("this target cannot write registers")
	}
	r := sc.regs
	if r.Set(name, v) {
		if err := w.SetRegs(sc.vcpu, r); err != nil {
			return err
		}
		sc.regs = r
		sc.s.frames, sc.s.hidden = map[int][]Frame{}, nil // $rip may have moved
		return nil
	}
	sr := sc.sregs
	if sr.Set(name, v) {
		if err := w.SetSRegs(sc.vcpu, sr); err != nil {
			return err
		}
		sc.sregs = sr
		return nil
	}
	if d := sc.debugRegs(); d != nil {
		nd := *d
		if nd.Set(name, v) {
			dr, _ := sc.s.t.DebugRegisters()
			if err := dr.SetDebugRegs(sc.vcpu, nd); err != nil {
				return err
			}
			*sc.dregs = nd
			return nil
		}
	}
	return fmt.Errorf("no writable register %q", name)
}

// Reg, CFA and ReadMemory implement symbols.Context.
func (sc *frameScope) Reg(n int) (uint64, bool) {
	name, ok := sc.regName(n)
	if !ok {
		return 0, false
	}
	if name == "rip" || name == "eip" {
		return sc.f.PC, true
	}
	return sc.regs.Get(name)
}

// regName names DWARF register n of the frame's code: i386 numbering in
// a 32-bit unit, x86-64's otherwise.
func (sc *frameScope) regName(n int) (string, bool) {
	if sc.sc != nil && sc.sc.AddrSize == 4 {
		return x86.DWARF32RegName(n)
	}
	return x86.DWARFRegName(n)
}

func (sc *frameScope) CFA() (uint64, bool) { return sc.f.CFA, sc.f.HasCFA }

func (sc *frameScope) ReadMemory(p []byte, addr uint64) error { return sc.readMem(p, addr) }

func (sc *frameScope) varValue(v *symbols.Var) (value, error) {
	sc.types.rust = v.Rust
	t := fromDWARF(v.Type, sc.types)
	sc.types.rust = false
	if t.kind == tArray && hasRuntimeDim(t) && sc.vlaDepth < 2 {
		sc.vlaDepth++
		t = sc.vlaType(v, t)
		sc.vlaDepth--
	}
	var fb []byte
	if sc.sc != nil {
		fb = sc.sc.FrameBase
	}
	if v.Loc == nil && v.HasConst {
		return value{typ: t, raw: padTo(v.Const, int(t.size)), name: v.Name}, nil
	}
	as := v.AddrSize
	if as == 0 {
		as = 8
	}
	sc.refSize = v.RefSize
	pl, err := symbols.Evaluate(v.Loc, fb, as, sc)
	if err != nil {
		return value{typ: t, name: v.Name}, err
	}
	switch {
	case pl.PtrTo != 0:
		return sc.syntheticPointer(t, v.Name, pl)
	case pl.Pieces:
		b, out, err := sc.pieces(pl.Parts)
		if err != nil {
			return value{typ: t, name: v.Name}, err
		}
		val := value{typ: t, raw: padTo(b, int(t.size)), name: v.Name}
		if out != nil || len(b) < int(t.size) {
			// Bytes no piece describes are optimized out too.
			val.opt = make([]byte, len(val.raw))
			for i := range val.opt {
				switch {
				case i >= len(b):
					val.opt[i] = 0xff
				case out != nil:
					val.opt[i] = out[i]
				}
			}
		}
		return val, nil
	case pl.Implicit != nil:
		return value{typ: t, raw: padTo(pl.Implicit, int(t.size)), name: v.Name}, nil
	case pl.IsVal:
		return rvalue(t, pl.Value), nil
	case pl.InReg:
		name, ok := sc.regName(pl.Reg)
		if !ok {
			return value{typ: t, name: v.Name}, fmt.Errorf("variable in DWARF register %d", pl.Reg)
		}
		if isFPReg(name) { // a float or vector in xmm or st: its bytes, read-only
			b, ok := sc.fpBytes(name)
			if !ok {
				return value{typ: t, name: v.Name}, fmt.Errorf("register %s unavailable (the target does not read x87 and SSE registers)", name)
			}
			return value{typ: t, raw: padTo(b, int(t.size)), name: v.Name}, nil
		}
		return value{typ: t, reg: name, name: v.Name}, nil
	}
	return value{typ: t, inMem: true, addr: pl.Addr, name: v.Name}, nil
}

// RefSize implements symbols.RefSizer for the variable being evaluated.
func (sc *frameScope) RefSize() int { return sc.refSize }

// syntheticPointer is a pointer DW_OP_implicit_pointer describes: its
// target is the variable at pl.PtrTo (its value here), pl.PtrOff bytes
// in, as gdb's "<synthetic pointer>" shows it.
func (sc *frameScope) syntheticPointer(t *ctype, name string, pl symbols.Place) (value, error) {
	v := value{typ: t, name: name}
	if t.kind != tPtr || sc.s.sym == nil || sc.synthDepth > 4 {
		return v, errors.New("a synthetic pointer vmdap cannot follow")
	}
	tv, ok := sc.s.sym.VarOfDIE(pl.PtrTo, sc.f.look())
	if !ok {
		return v, errors.New("a synthetic pointer to a variable vmdap cannot find")
	}
	sc.synthDepth++
	target, err := sc.varValue(tv)
	sc.synthDepth--
	if err != nil {
		return v, fmt.Errorf("a synthetic pointer to %s: %w", tv.Name, err)
	}
	target.typ, target.name = t.elem, ""
	switch off := pl.PtrOff; {
	case off == 0:
	case target.inMem:
		target.addr += uint64(off)
	case off > 0 && int(off) < len(target.raw):
		target.raw = target.raw[off:]
	default:
		return v, fmt.Errorf("a synthetic pointer %d bytes into %s", off, tv.Name)
	}
	v.synth = &target
	return v, nil
}

// pieces assembles a composite location's bytes (DW_OP_piece,
// DW_OP_bit_piece); out marks, bit by bit, those of its empty pieces
// (optimized out: gdb shows the rest), nil when it has none. All of them
// empty is ErrOptimizedOut.
func (sc *frameScope) pieces(parts []symbols.Piece) (b, out []byte, err error) {
	var bits, gone []byte // one byte per bit: simple, and values are small
	for _, p := range parts {
		if p.Empty {
			if p.Bits <= 0 || p.Bits > 1<<12 {
				return nil, nil, fmt.Errorf("a composite location piece of %d bits", p.Bits)
			}
			for i := 0; i < p.Bits; i++ {
				bits, gone = append(bits, 0), append(gone, 1)
			}
			continue
		}
		if p.PtrTo != 0 {
			return nil, nil, errors.New("a synthetic pointer inside a composite value")
		}
		n := (p.BitOffset + p.Bits + 7) / 8
		if p.Bits <= 0 || n > 64 {
			return nil, nil, fmt.Errorf("a composite location piece of %d bits", p.Bits)
		}
		src := make([]byte, n)
		switch {
		case p.Implicit != nil:
			copy(src, p.Implicit)
		case p.IsVal:
			var b [8]byte // a constant piece may be narrower than 8 bytes
			binary.LittleEndian.PutUint64(b[:], p.Value)
			copy(src, b[:])
		case p.InReg:
			name, ok := sc.regName(p.Reg)
			if !ok {
				return nil, nil, fmt.Errorf("a piece in DWARF register %d", p.Reg)
			}
			if fb, ok := sc.fpBytes(name); ok { // a piece in xmm or st
				copy(src, fb)
				break
			}
			v, ok := sc.regGet(name)
			if !ok {
				return nil, nil, fmt.Errorf("register %s unavailable", name)
			}
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], v)
			copy(src, b[:])
		default:
			if err := sc.readMem(src, p.Addr); err != nil {
				return nil, nil, err
			}
		}
		for i := 0; i < p.Bits; i++ {
			bit := p.BitOffset + i
			bits, gone = append(bits, (src[bit/8]>>(bit%8))&1), append(gone, 0)
		}
	}
	b = make([]byte, (len(bits)+7)/8)
	out = make([]byte, len(b))
	some, all := false, true
	for i, x := range bits {
		b[i/8] |= x << (i % 8)
		if gone[i] == 1 {
			out[i/8] |= 1 << (i % 8)
			some = true
		} else {
			all = false
		}
	}
	switch {
	case all:
		return nil, nil, symbols.ErrOptimizedOut
	case !some:
		out = nil
	}
	return b, out, nil
}

// padTo returns b as n bytes (zero-extended or cut).
func padTo(b []byte, n int) []byte {
	if n <= 0 {
		return b
	}
	out := make([]byte, n)
	copy(out, b)
	return out
}

// EntryValue implements symbols.EntryValuer: what a register held when
// the frame's function was entered, from the call site in its caller
// (DW_TAG_call_site_parameter's DW_AT_call_value, evaluated in the
// caller's frame), as gdb resolves DW_OP_entry_value.
func (sc *frameScope) EntryValue(expr []byte) (uint64, error) {
	return sc.callValue(func(p symbols.CallParam) bool { return p.Loc != nil && string(p.Loc) == string(expr) })
}

// ParamValue implements symbols.ParamValuer: what the caller passed for
// the parameter whose DIE is at off in the function's unit, as gdb
// resolves DW_OP_GNU_parameter_ref (a .constprop clone's parameter).
func (sc *frameScope) ParamValue(off uint64) (uint64, error) {
	if sc.s.sym == nil {
		return 0, symbols.ErrOptimizedOut
	}
	die, ok := sc.s.sym.UnitDIE(sc.f.look(), off)
	if !ok {
		return 0, symbols.ErrOptimizedOut
	}
	return sc.callValue(func(p symbols.CallParam) bool { return p.Param == die })
}

// callValue evaluates, in the caller's frame, the call-site parameter of
// the call to this frame that match accepts.
func (sc *frameScope) callValue(match func(symbols.CallParam) bool) (uint64, error) {
	fs, ok := sc.s.frames[sc.vcpu]
	if !ok {
		var err error
		if fs, err = sc.s.framesLocked(sc.vcpu); err != nil {
			return 0, err
		}
	}
	// The caller: the frame of the next machine frame (past inlined and
	// tail-call frames of this one, which have no call site of their own).
	ci := -1
	for i, f := range fs {
		if f.phys == sc.f.phys+1 && !f.Inlined && !f.Tail {
			ci = i
			break
		}
		if f.phys == sc.f.phys+1 && f.Tail {
			return 0, fmt.Errorf("entry value through a tail call")
		}
	}
	if ci < 0 || sc.s.sym == nil {
		return 0, symbols.ErrOptimizedOut
	}
	caller := fs[ci]
	fn := sc.s.sym.FuncAt(caller.look())
	site, ok := sc.s.sym.CallSiteAt(fn, caller.PC)
	if !ok {
		return 0, symbols.ErrOptimizedOut
	}
	for _, p := range site.Params {
		if !match(p) {
			continue
		}
		csc, err := sc.s.newScope(sc.vcpu, ci)
		if err != nil {
			return 0, err
		}
		var fb []byte
		as := 8
		if csc.sc != nil {
			fb, as = csc.sc.FrameBase, csc.sc.AddrSize
		}
		pl, err := symbols.Evaluate(p.Value, fb, as, csc)
		if err != nil {
			return 0, err
		}
		switch {
		case pl.IsVal:
			return pl.Value, nil
		case pl.InReg:
			name, ok := csc.regName(pl.Reg)
			if !ok {
				return 0, symbols.ErrOptimizedOut
			}
			v, ok := csc.regGet(name)
			if !ok {
				return 0, symbols.ErrOptimizedOut
			}
			return v, nil
		}
		return pl.Addr, nil // a DWARF expression's result is the value
	}
	return 0, symbols.ErrOptimizedOut
}

func (sc *frameScope) lookupVar(name string) (value, bool, error) {
	if name == retvalName {
		v, err := sc.s.lookupRetval(sc.vcpu, sc.types)
		return v, true, err
	}
	if r, ok := strings.CutPrefix(name, "$"); ok && isFPReg(r) {
		v, ok := sc.fpRegValue(r)
		if !ok {
			return value{}, true, fmt.Errorf("$%s is unavailable: the target does not read x87 and SSE registers", r)
		}
		return v, true, nil
	}
	if sc.sc != nil {
		for i := len(sc.sc.Locals) - 1; i >= 0; i-- {
			if v := sc.sc.Locals[i]; v.Name == name {
				val, err := sc.varValue(v)
				return val, true, err
			}
		}
		for _, v := range sc.sc.Params {
			if v.Name == name {
				val, err := sc.varValue(v)
				return val, true, err
			}
		}
	}
	if sc.s.sym != nil {
		if v, ok := sc.s.unitEnumerator(sc.f.look(), name, sc.types); ok {
			return v, true, nil
		}
		if g := sc.s.sym.GlobalByName(name); g != nil {
			val, err := sc.varValue(g)
			return val, true, err
		}
		if v, ok := sc.s.globalName(name, sc.f.look(), sc.types); ok {
			return v, true, nil
		}
	}
	return value{}, false, nil
}

// unitEnumerator is an enumeration constant visible in the unit of the
// code at pc, typed as its enumeration (as C sees it there: before the
// image's other globals).
func (s *Session) unitEnumerator(pc uint64, name string, cache *typeCache) (value, bool) {
	e, ok := s.sym.EnumeratorAt(pc, name)
	if !ok {
		return value{}, false
	}
	return enumValue(e, name, cache), true
}

func enumValue(e symbols.Enumerator, name string, cache *typeCache) value {
	v := rvalue(fromDWARF(e.Type, cache), uint64(e.Value))
	v.name = name
	return v
}

// globalName resolves a name that is no variable in scope, as gdb does
// after the variables: an enumeration constant of any unit; a function,
// a value of its type at its address (a function known only by its ELF
// symbol of gdb's "<text variable, no debug info>"), which reads as its
// address; any other ELF symbol, an unsigned long at its address.
func (s *Session) globalName(name string, pc uint64, cache *typeCache) (value, bool) {
	if e, ok := s.sym.EnumeratorByName(name); ok {
		return enumValue(e, name, cache), true
	}
	if fn := s.sym.FuncByName(name); fn != nil && !fn.Inline && fn.High > fn.Low {
		t := typNoDebugFunc
		if ft, ok := s.sym.FuncType(fn); ok {
			t = fromDWARF(ft, cache)
		}
		return value{typ: t, inMem: true, addr: fn.Low, name: name}, true
	}
	if a, ok := s.sym.SymbolAddr(name); ok {
		// An ELF symbol: the type a declaration in the code's unit
		// gives it (Linux's jiffies, which its linker script places),
		// else gdb's default, an unsigned long.
		t := typULong
		if dt, ok := s.sym.DeclaredType(pc, name); ok {
			t = fromDWARF(dt, cache)
		}
		return value{typ: t, inMem: true, addr: a, name: name}, true
	}
	return value{}, false
}

// symbolName names the code or data at addr (see symbolAt).
func (s *Session) symbolName(addr uint64) (string, bool) { return symbolAt(s.sym, addr) }

func (sc *frameScope) symbolName(addr uint64) (string, bool) { return sc.s.symbolName(addr) }

func (sc *frameScope) lookupType(name string) (*ctype, bool) {
	return typeNamed(sc.s.sym, name, sc.types)
}

// typeNamed resolves a type name: the fixed-width integer names, else a
// typedef or tag of the image.
func typeNamed(sym *symbols.Set, name string, cache *typeCache) (*ctype, bool) {
	switch name {
	case "uint8_t":
		return typUChar, true
	case "int8_t":
		return typChar, true
	case "uint16_t":
		return typUShrt, true
	case "int16_t":
		return typShort, true
	case "uint32_t":
		return typUInt, true
	case "int32_t":
		return typInt, true
	case "uint64_t", "size_t", "uintptr_t":
		return typULong, true
	case "int64_t", "ssize_t", "intptr_t":
		return typLong, true
	}
	if sym == nil {
		return nil, false
	}
	dt, ok := sym.TypeByName(name)
	if !ok {
		return nil, false
	}
	return fromDWARF(dt, cache), true
}
