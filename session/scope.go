package session

import (
	"errors"
	"fmt"
	"strings"

	"vmdap/session/symbols"
	"vmdap/vmm"
	"vmdap/x86"
)

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
			return fmt.Errorf("%s = %#x was refused (%w): %s", name, v, err, sregRule(name))
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

// sregRule says what a value of a system register must respect for the
// CPU (and so the hypervisor) to take it, for a refused write.
func sregRule(name string) string {
	switch name {
	case "cr0":
		return "PG needs PE, and clearing PG in long mode needs EFER.LME cleared first; CD, NW and the reserved bits have rules of their own"
	case "cr3":
		return "the bits above the CPU's physical address width, and the reserved ones, must be 0"
	case "cr4":
		return "PAE cannot be cleared in long mode, and bits the CPU does not support cannot be set"
	case "efer":
		return "LME cannot change while paging is on, and bits the CPU does not support cannot be set"
	}
	return "the CPU does not take that value in this mode"
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
