package session

import (
	"debug/dwarf"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"vmdap/session/symbols"
	"vmdap/x86"
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
	phys    int                  // the index of the machine frame it belongs to
	inl     *symbols.InlinedCall // the inlined call, when Inlined
	regs    symbols.Regs
}

// Name is the frame's display name: function, or function+offset, or the
// address.
func (f Frame) Name() string {
	switch {
	case f.Func != "" && f.Line > 0:
		return f.Func
	case f.Func != "":
		return fmt.Sprintf("%s+%#x", f.Func, f.PC-f.FuncLow)
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
// and a memory reader for unwinding.
func (s *Session) unwindStart(v int) (symbols.Regs, func(uint64) (uint64, error), error) {
	var cur symbols.Regs
	r, err := s.t.Regs(v)
	if err != nil {
		return cur, nil, err
	}
	for n := 0; n < 16; n++ {
		name, _ := x86.DWARFRegName(n)
		cur.R[n], _ = r.Get(name)
		cur.Valid[n] = true
	}
	cur.R[symbols.RegRIP], cur.Valid[symbols.RegRIP] = r.RIP, true
	read := func(addr uint64) (uint64, error) {
		var b [8]byte
		if _, err := s.t.ReadMemory(v, b[:], addr); err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	return cur, read, nil
}

// innerFrame describes frame 0 only.
func (s *Session) innerFrame(v int) (Frame, error) {
	cur, read, err := s.unwindStart(v)
	if err != nil {
		return Frame{}, err
	}
	f := Frame{PC: cur.R[symbols.RegRIP], regs: cur}
	if s.sym == nil {
		s.describe(&f)
		return f, nil
	}
	if cfa, ok := s.sym.CFA(cur, true, read); ok {
		f.CFA, f.HasCFA = cfa, true
	}
	return s.withInlined(f)[0], nil
}

func (s *Session) framesLocked(v int) ([]Frame, error) {
	if fs, ok := s.frames[v]; ok {
		return fs, nil
	}
	cur, read, err := s.unwindStart(v)
	if err != nil {
		return nil, err
	}
	var frames []Frame
	for i := 0; i < maxFrames && len(frames) < maxFrames; i++ {
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
		frames = append(frames, s.withInlined(f)...)
		if err != nil || !caller.Valid[symbols.RegRIP] {
			break
		}
		ra := caller.R[symbols.RegRIP]
		if ra == 0 || s.sym.FuncAt(ra) == nil || caller.R[symbols.RegRSP] <= cur.R[symbols.RegRSP] {
			break
		}
		cur = caller
	}
	s.frames[v] = frames
	return frames, nil
}

// withInlined describes a machine frame, preceded by a frame for each
// inlined call executing at its PC (innermost first). Each frame's line
// is where it is: the innermost at the PC, the others at the call site
// of the frame inside them.
func (s *Session) withInlined(f Frame) []Frame {
	s.describe(&f)
	calls := s.sym.InlinedAt(f.look())
	if len(calls) == 0 {
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
	for i := range out {
		out[i].Index = f.Index + i
	}
	return out
}

// look is the PC a frame's symbols are looked up at: a return address
// belongs to the call before it.
func (f *Frame) look() uint64 {
	if f.phys > 0 && !f.regs.Exact && f.PC > 0 {
		return f.PC - 1
	}
	return f.PC
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
// address; "*0x…" is an address.
func (s *Session) functionAddrs(name string) ([]uint64, error) {
	name = strings.TrimSpace(name)
	if strings.HasPrefix(name, "*") {
		var a uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(name[1:]), "0x%x", &a); err != nil {
			return nil, fmt.Errorf("bad address %q", name)
		}
		return []uint64{a}, nil
	}
	if s.sym == nil {
		return nil, fmt.Errorf("no symbols are loaded")
	}
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
	if len(out) == 0 {
		return nil, fmt.Errorf("no function named %q in the guest image", name)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// frameScope is the scope an expression sees in one frame.
type frameScope struct {
	s     *Session
	vcpu  int
	f     *Frame
	sc    *symbols.Scope
	regs  x86.Regs
	sregs x86.SRegs
	dregs *x86.DebugRegs
	types map[dwarf.Type]*ctype
	err   error
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
	sc := &frameScope{s: s, vcpu: v, f: f, types: map[dwarf.Type]*ctype{}}
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

func (sc *frameScope) readMem(p []byte, addr uint64) error {
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
		sc.s.frames = map[int][]Frame{}
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
	if n == symbols.RegRIP {
		return sc.f.PC, true
	}
	name, ok := x86.DWARFRegName(n)
	if !ok {
		return 0, false
	}
	return sc.regs.Get(name)
}

func (sc *frameScope) CFA() (uint64, bool) { return sc.f.CFA, sc.f.HasCFA }

func (sc *frameScope) ReadMemory(p []byte, addr uint64) error { return sc.readMem(p, addr) }

func (sc *frameScope) varValue(v *symbols.Var) (value, error) {
	t := fromDWARF(v.Type, sc.types)
	var fb []byte
	if sc.sc != nil {
		fb = sc.sc.FrameBase
	}
	pl, err := symbols.EvalLocation(v.Loc, fb, sc)
	if err != nil {
		return value{typ: t, name: v.Name}, err
	}
	switch {
	case pl.IsVal:
		return rvalue(t, pl.Value), nil
	case pl.InReg:
		name, ok := x86.DWARFRegName(pl.Reg)
		if !ok {
			return value{typ: t, name: v.Name}, fmt.Errorf("variable in DWARF register %d", pl.Reg)
		}
		return value{typ: t, reg: name, name: v.Name}, nil
	}
	return value{typ: t, inMem: true, addr: pl.Addr, name: v.Name}, nil
}

func (sc *frameScope) lookupVar(name string) (value, bool, error) {
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
		if g := sc.s.sym.GlobalByName(name); g != nil {
			val, err := sc.varValue(g)
			return val, true, err
		}
		if a, ok := sc.s.sym.SymbolAddr(name); ok {
			return value{typ: typULong, inMem: true, addr: a, name: name}, true, nil
		}
	}
	return value{}, false, nil
}

func (sc *frameScope) lookupType(name string) (*ctype, bool) {
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
	if sc.s.sym == nil {
		return nil, false
	}
	dt, ok := sc.s.sym.TypeByName(name)
	if !ok {
		return nil, false
	}
	return fromDWARF(dt, sc.types), true
}
