package session

import (
	"debug/dwarf"
	"encoding/binary"
	"fmt"
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
	s.describe(&f)
	if s.sym != nil {
		if cfa, ok := s.sym.CFA(cur, true, read); ok {
			f.CFA, f.HasCFA = cfa, true
		}
	}
	return f, nil
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
	for i := 0; i < maxFrames; i++ {
		f := Frame{Index: i, PC: cur.R[symbols.RegRIP], regs: cur}
		s.describe(&f)
		if s.sym == nil {
			frames = append(frames, f)
			break
		}
		caller, cfa, _, err := s.sym.Unwind(cur, i == 0, read)
		if err == nil {
			f.CFA, f.HasCFA = cfa, true
		}
		frames = append(frames, f)
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

func (s *Session) describe(f *Frame) {
	if s.sym == nil {
		return
	}
	look := f.PC
	if f.Index > 0 && !f.regs.Exact && look > 0 {
		look-- // a return address belongs to the call before it
	}
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

// functionAddr resolves a function breakpoint name: a DWARF function stops
// after its prologue; an ELF symbol at its address; "*0x…" is an address.
func (s *Session) functionAddr(name string) (uint64, error) {
	name = strings.TrimSpace(name)
	if strings.HasPrefix(name, "*") {
		var a uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(name[1:]), "0x%x", &a); err != nil {
			return 0, fmt.Errorf("bad address %q", name)
		}
		return a, nil
	}
	if s.sym == nil {
		return 0, fmt.Errorf("no symbols are loaded")
	}
	if fn := s.sym.FuncByName(name); fn != nil {
		if pe, ok := s.sym.PrologueEnd(fn); ok {
			return pe, nil
		}
		return fn.Low, nil
	}
	if a, ok := s.sym.SymbolAddr(name); ok {
		return a, nil
	}
	return 0, fmt.Errorf("no function named %q in the guest image", name)
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
	sc := &frameScope{s: s, vcpu: v, f: f, types: map[dwarf.Type]*ctype{}}
	if sc.regs, err = s.t.Regs(v); err != nil {
		return nil, err
	}
	if sc.sregs, err = s.t.SRegs(v); err != nil {
		return nil, err
	}
	if frame > 0 {
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
		look := f.PC
		if frame > 0 {
			look--
		}
		sc.sc, _ = s.sym.ScopeAt(look)
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
	if sc.f.Index != 0 {
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

func (sc *frameScope) lookupType(name string) (*ctype, bool) { return sc.s.typeNamed(name, sc.types) }

// typeNamed resolves a type name: the fixed-width integer names, else a
// typedef or tag of the image.
func (s *Session) typeNamed(name string, cache map[dwarf.Type]*ctype) (*ctype, bool) {
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
	if s.sym == nil {
		return nil, false
	}
	dt, ok := s.sym.TypeByName(name)
	if !ok {
		return nil, false
	}
	return fromDWARF(dt, cache), true
}
