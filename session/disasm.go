package session

import (
	"context"
	"fmt"
	"sort"

	"vmdap/x86"
	"vmdap/x86/disasm"
)

// Disassembly for the client's disassembly view and the console's x/i.

// Insn is one disassembled instruction.
type Insn struct {
	Addr    uint64
	Bytes   []byte
	Text    string
	Symbol  string // "kmain" at a function start, else ""
	File    string
	Line    int
	Invalid bool
	// Beyond is a placeholder for a slot outside the address space
	// (before address 0, or past its top): no address at all.
	Beyond bool
}

// Bounds on one disassembly: instructions returned, instructions away
// from the reference, and bytes decoded while looking backwards for a
// synchronisation point.
const (
	maxDisasmCount  = 10000
	maxDisasmOffset = 10000
	maxBackBytes    = 4 << 20
)

// Disassemble returns exactly count instructions around addr: starting
// insnOffset instructions from it (negative = before it). Backward
// decoding starts at a synchronisation point (the start of the containing
// function or of earlier ones) and never splits the instruction at addr.
// ctx ends it early (the request was cancelled).
func (s *Session) Disassemble(ctx context.Context, addr uint64, insnOffset, count int) ([]Insn, error) {
	switch {
	case count <= 0:
		return nil, nil
	case count > maxDisasmCount:
		return nil, fmt.Errorf("instructionCount %d is too large (at most %d)", count, maxDisasmCount)
	case insnOffset > maxDisasmOffset || insnOffset < -maxDisasmOffset:
		return nil, fmt.Errorf("instructionOffset %d is out of range (at most %d instructions either side of the reference)", insnOffset, maxDisasmOffset)
	}
	var out []Insn
	err := s.stopped(func() error {
		rd := s.codeReader(s.curVCPU)
		var before []Insn
		if insnOffset < 0 {
			var err error
			if before, err = s.decodeBackward(ctx, rd, addr, -insnOffset); err != nil {
				return err
			}
			for len(before) < -insnOffset {
				next := addr // the slot after the pad
				if len(before) > 0 {
					next = before[0].Addr
				}
				pad := Insn{Addr: next - 1, Invalid: true, Text: "??"}
				if next == 0 || before != nil && before[0].Beyond {
					pad = Insn{Invalid: true, Beyond: true, Text: "??"}
				}
				before = append([]Insn{pad}, before...)
			}
		}
		out = before
		pc := addr
		past := false
		skip := max(insnOffset, 0)
		for n := 0; len(out) < count; n++ {
			if n%256 == 255 && ctx.Err() != nil {
				return ctx.Err()
			}
			in := Insn{Invalid: true, Beyond: true, Text: "??"}
			if !past {
				in = s.decodeWith(rd, pc)
				next := pc + uint64(max(len(in.Bytes), 1))
				past = next < pc // wrapped past the top
				pc = next
			}
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, in)
		}
		if len(out) > count {
			// Only the instructions before the reference: the window
			// starts at insnOffset and ends before reaching it.
			out = out[:count]
		}
		return nil
	})
	return out, err
}

// codeBuf reads guest code a page at a time for one request (over a GDB
// stub every read is a packet) in one vCPU's decode mode.
type codeBuf struct {
	s     *Session
	v     int
	mode  x86.Mode
	pages map[uint64][]byte // page address -> its readable prefix
}

func (s *Session) codeReader(v int) *codeBuf {
	mode := x86.Mode(64)
	if sr, err := s.t.SRegs(v); err == nil {
		mode = x86.DecodeMode(sr)
	}
	return &codeBuf{s: s, v: v, mode: mode, pages: map[uint64][]byte{}}
}

// read copies guest memory at addr into p, up to the first unreadable
// byte; it returns the count.
func (b *codeBuf) read(p []byte, addr uint64) int {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		base := a &^ (pageSize - 1)
		pg, ok := b.pages[base]
		if !ok {
			buf := make([]byte, pageSize)
			m, _ := b.s.t.ReadMemory(b.v, buf, base)
			if m < pageSize && m <= int(a-base) {
				// The page starts unreadable or ends before a: read from a
				// itself (a fault may lie just before it).
				k, _ := b.s.t.ReadMemory(b.v, p[n:], a)
				return n + k
			}
			pg = buf[:m]
			if len(b.pages) > 1024 {
				clear(b.pages)
			}
			b.pages[base] = pg
		}
		off := int(a - base)
		if off >= len(pg) {
			return n
		}
		n += copy(p[n:], pg[off:])
	}
	return n
}

func (s *Session) decodeWith(rd *codeBuf, pc uint64) Insn {
	var code [disasm.MaxLen]byte
	n := rd.read(code[:], pc)
	if n == 0 {
		return Insn{Addr: pc, Invalid: true, Text: "<unreadable memory>"}
	}
	in, err := disasm.Decode(code[:n], rd.mode, pc)
	ins := Insn{Addr: pc}
	if err != nil {
		ins.Bytes, ins.Text, ins.Invalid = append([]byte(nil), code[0]), fmt.Sprintf("(bad) .byte %#02x", code[0]), true
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
// Synchronisation points are function starts before addr, nearest first:
// each one's code is decoded up to the previous one's start and joined
// on when it lands there exactly, so the cost grows with the distance
// covered, not with its square. Without symbols a byte-wise heuristic
// finds a start that lands on addr.
func (s *Session) decodeBackward(ctx context.Context, rd *codeBuf, addr uint64, n int) ([]Insn, error) {
	var starts []uint64
	if s.sym != nil {
		// Function starts below addr within 1 MiB, nearest first (the
		// table is sorted by Low).
		fs := s.sym.Funcs()
		i := sort.Search(len(fs), func(i int) bool { return fs[i].Low >= addr })
		for j := i - 1; j >= 0 && addr-fs[j].Low < 1<<20; j-- {
			if len(starts) == 0 || starts[len(starts)-1] != fs[j].Low {
				starts = append(starts, fs[j].Low)
			}
		}
	}
	budget := maxBackBytes
	// decode decodes [from, to); ok when it lands on to exactly.
	decode := func(from, to uint64) ([]Insn, bool, error) {
		var list []Insn
		pc := from
		for pc < to {
			if len(list)%256 == 255 && ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			in := s.decodeWith(rd, pc)
			list = append(list, in)
			pc += uint64(max(len(in.Bytes), 1))
		}
		budget -= int(pc - from)
		return list, pc == to, nil
	}
	var list []Insn // ends exactly at addr and starts at from
	from := addr
	for _, st := range starts {
		if st >= from {
			continue
		}
		seg, ok, err := decode(st, from)
		if err != nil {
			return nil, err
		}
		if ok {
			list, from = append(seg, list...), st
		} else if full, ok, err := decode(st, addr); err != nil {
			return nil, err
		} else if ok && len(full) > len(list) {
			list, from = full, st
		}
		if len(list) >= n || budget <= 0 {
			break
		}
	}
	if len(list) < n && budget > 0 {
		// Heuristic: start far enough back and keep the first start that
		// lands exactly on from.
		span := uint64(min(n-len(list), 256) * disasm.MaxLen)
		for back := span; back > 0 && span-back <= 64; back-- {
			if back > from {
				continue
			}
			seg, ok, err := decode(from-back, from)
			if err != nil {
				return nil, err
			}
			if ok {
				list = append(seg, list...)
				break
			}
		}
	}
	if len(list) > n {
		list = list[len(list)-n:]
	}
	return list, nil
}

// maxBoundaryScan bounds the bytes decoded from a function's start to
// check an instruction boundary.
const maxBoundaryScan = 1 << 20

// insnBoundary checks that a breakpoint at addr starts an instruction:
// where a function known from the symbols covers addr, its code is
// decoded from the function's start. A breakpoint inside an instruction
// would corrupt it (software) or never fire (hardware). Decoding starts in
// vCPU v's mode; where addr is not a boundary in it, the other widths are
// tried too (code of another mode, as a boot stub's), and addr is refused
// only when none lands on it. Without a covering function, or where the
// code cannot be read or decoded, the address is taken as given (the
// user's responsibility, as gdb's break *addr).
func (s *Session) insnBoundary(v int, addr uint64) error {
	if s.sym == nil {
		return nil
	}
	f := s.sym.FuncAt(addr)
	if f == nil || f.Inline || !f.Contains(addr) || addr == f.Low || addr-f.Low > maxBoundaryScan {
		return nil
	}
	rd := s.codeReader(v)
	modes := []x86.Mode{rd.mode}
	for _, m := range []x86.Mode{64, 32, 16} {
		if m != rd.mode {
			modes = append(modes, m)
		}
	}
	var cover *disasm.Inst
	var coverMode x86.Mode
	for _, m := range modes {
		var last disasm.Inst
		pc, clean := f.Low, true
		for pc < addr {
			var code [disasm.MaxLen]byte
			n := rd.read(code[:], pc)
			in, err := disasm.Decode(code[:n], m, pc)
			if err != nil {
				clean = false
				break
			}
			last = in
			pc += uint64(in.Len)
		}
		switch {
		case !clean:
			continue
		case pc == addr:
			return nil
		case cover == nil:
			cover, coverMode = &last, m
		}
	}
	if cover == nil {
		return nil
	}
	var sym disasm.Symbolizer
	if s.sym != nil {
		sym = s.sym.Symbol
	}
	where := fmt.Sprintf("%s+%#x", f.Name, cover.PC-f.Low)
	text := cover.Text(sym)
	if coverMode != rd.mode {
		text += fmt.Sprintf(", decoded as %d-bit code", coverMode)
	}
	return fmt.Errorf("%#x is inside the instruction at %#x (%s: %s); a breakpoint must be at an instruction's first byte", addr, cover.PC, where, text)
}
