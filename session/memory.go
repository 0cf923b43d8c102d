package session

import (
	"errors"
	"fmt"
	"sort"

	"vmdap/vmm"
	"vmdap/x86"
	"vmdap/x86/disasm"
)

const pageSize = 4096

// ReadMemory reads guest-virtual memory as the current vCPU sees it. It
// returns the readable prefix and how many bytes after it are unreadable
// (up to the next readable page or the end of the request).
func (s *Session) ReadMemory(addr uint64, count int) (data []byte, unreadable int, err error) {
	if count < 0 || count > 16<<20 {
		return nil, 0, fmt.Errorf("count %d out of range", count)
	}
	err = s.stopped(func() error {
		v := s.curVCPU
		buf := make([]byte, count)
		n, rerr := s.t.ReadMemory(v, buf, addr)
		data = buf[:n]
		if n == count {
			return nil
		}
		var fe *vmm.FaultError
		if rerr != nil && !errors.As(rerr, &fe) {
			return rerr
		}
		// Count unreadable bytes page by page.
		pos := addr + uint64(n)
		end := addr + uint64(count)
		for pos < end {
			next := (pos | (pageSize - 1)) + 1
			if next > end || next < pos {
				next = end
			}
			var b [1]byte
			if m, _ := s.t.ReadMemory(v, b[:], pos); m == 1 {
				break
			}
			unreadable += int(next - pos)
			pos = next
		}
		return nil
	})
	return data, unreadable, err
}

// WriteMemory writes guest-virtual memory; with allowPartial a fault ends
// the write early instead of failing.
func (s *Session) WriteMemory(addr uint64, data []byte, allowPartial bool) (int, error) {
	var n int
	err := s.stopped(func() error {
		var err error
		n, err = s.t.WriteMemory(s.curVCPU, data, addr)
		s.frames = map[int][]Frame{}
		if err != nil && (!allowPartial || n == 0) {
			return err
		}
		return nil
	})
	if n > 0 {
		s.emit(MemoryChanged{Addr: addr, Count: n})
		s.emit(Invalidated{Areas: []string{"variables"}})
	}
	return n, err
}

// Insn is one disassembled instruction.
type Insn struct {
	Addr    uint64
	Bytes   []byte
	Text    string
	Symbol  string // "kmain" at a function start, else ""
	File    string
	Line    int
	Invalid bool
}

// Disassemble returns exactly count instructions around addr: starting
// insnOffset instructions from it (negative = before it). Backward
// decoding starts at a synchronisation point (the start of the containing
// function or of earlier ones) and never splits the instruction at addr.
func (s *Session) Disassemble(addr uint64, insnOffset, count int) ([]Insn, error) {
	if count <= 0 {
		return nil, nil
	}
	if count > 10000 {
		return nil, fmt.Errorf("instructionCount %d is too large", count)
	}
	var out []Insn
	err := s.stopped(func() error {
		v := s.curVCPU
		mode := x86.Mode(64)
		if sr, err := s.t.SRegs(v); err == nil {
			mode = x86.DecodeMode(sr)
		}
		var before []Insn
		if insnOffset < 0 {
			before = s.decodeBackward(v, mode, addr, -insnOffset)
			for len(before) < -insnOffset {
				pad := Insn{Addr: addr - uint64(-insnOffset-len(before)), Invalid: true, Text: "??"}
				if len(before) > 0 {
					pad.Addr = before[0].Addr - 1
				}
				before = append([]Insn{pad}, before...)
			}
		}
		out = before
		pc := addr
		skip := 0
		if insnOffset > 0 {
			skip = insnOffset
		}
		for len(out) < count {
			in := s.decodeOne(v, mode, pc)
			pc += uint64(max(len(in.Bytes), 1))
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, in)
		}
		if len(out) > count {
			out = out[len(out)-count:]
		}
		return nil
	})
	return out, err
}

func (s *Session) decodeOne(v int, mode x86.Mode, pc uint64) Insn {
	var code [disasm.MaxLen]byte
	n, _ := s.t.ReadMemory(v, code[:], pc)
	if n == 0 {
		return Insn{Addr: pc, Invalid: true, Text: "<unreadable memory>"}
	}
	in, err := disasm.Decode(code[:n], mode, pc)
	ins := Insn{Addr: pc}
	if err != nil {
		ins.Bytes, ins.Text, ins.Invalid = code[:1], fmt.Sprintf("(bad) .byte %#02x", code[0]), true
	} else {
		ins.Bytes = in.Bytes
		var sym disasm.Symbolizer
		if s.sym != nil {
			sym = s.sym.Symbol
		}
		ins.Text = in.Text(sym)
	}
	if s.sym != nil {
		if name, base, ok := s.sym.Symbol(pc); ok && base == pc {
			ins.Symbol = name
		}
		if loc, ok := s.sym.PCToLine(pc); ok {
			ins.File, ins.Line = loc.File, loc.Line
		}
	}
	return ins
}

// decodeBackward returns up to n instructions that end exactly at addr.
func (s *Session) decodeBackward(v int, mode x86.Mode, addr uint64, n int) []Insn {
	// Synchronisation points: starts of functions at or before addr,
	// nearest first, then a byte-wise heuristic.
	var starts []uint64
	if s.sym != nil {
		// The nearest function starts below addr (sorted by Low), a few.
		fs := s.sym.Funcs()
		i := sort.Search(len(fs), func(i int) bool { return fs[i].Low > addr })
		for j := i - 1; j >= 0 && len(starts) < 8; j-- {
			if addr-fs[j].Low >= 1<<20 {
				break
			}
			if len(starts) == 0 || starts[len(starts)-1] != fs[j].Low {
				starts = append(starts, fs[j].Low)
			}
		}
	}
	var best []Insn
	try := func(start uint64) bool {
		var list []Insn
		pc := start
		for pc < addr {
			in := s.decodeOne(v, mode, pc)
			list = append(list, in)
			pc += uint64(max(len(in.Bytes), 1))
		}
		if pc != addr {
			return false
		}
		if len(list) > n {
			list = list[len(list)-n:]
		}
		if len(list) > len(best) {
			best = list
		}
		return len(best) >= n
	}
	for _, st := range starts {
		if try(st) {
			return best
		}
	}
	// Heuristic: start far enough back and keep the first start that
	// lands exactly on addr.
	span := uint64(n * disasm.MaxLen)
	for back := span; back > 0 && len(best) < n; back-- {
		if back > addr {
			continue
		}
		if try(addr - back) {
			break
		}
		if span-back > 64 {
			break
		}
	}
	return best
}

// SetSourceBreakpoints replaces a source file's breakpoints (the guest may
// run: it is halted and resumed around the change).
func (s *Session) SetSourceBreakpoints(file string, bps []SourceBP) ([]BreakpointInfo, error) {
	var out []BreakpointInfo
	err := s.halted(func() error { out = s.bps.setSource(file, bps); return nil })
	return out, err
}

// SetFunctionBreakpoints replaces the function breakpoints.
func (s *Session) SetFunctionBreakpoints(bps []FunctionBP) ([]BreakpointInfo, error) {
	var out []BreakpointInfo
	err := s.halted(func() error { out = s.bps.setFunctions(bps); return nil })
	return out, err
}

// SetInstructionBreakpoints replaces the instruction breakpoints.
func (s *Session) SetInstructionBreakpoints(bps []InstructionBP) ([]BreakpointInfo, error) {
	var out []BreakpointInfo
	err := s.halted(func() error { out = s.bps.setInstructions(bps); return nil })
	return out, err
}

// SetDataBreakpoints replaces the data breakpoints.
func (s *Session) SetDataBreakpoints(bps []DataBP) ([]BreakpointInfo, error) {
	var out []BreakpointInfo
	err := s.halted(func() error { out = s.bps.setData(bps); s.bps.retry(nil); return nil })
	return out, err
}

// Sources lists the source files the image's line table names (sorted).
func (s *Session) Sources() []string {
	if s.sym == nil {
		return nil
	}
	return s.sym.Files()
}

// BreakpointLines lists lines of a file with code in [from, to].
func (s *Session) BreakpointLines(file string, from, to int) []int {
	if s.sym == nil {
		return nil
	}
	return s.sym.FileLines(file, from, to)
}
