package disasm

import (
	"encoding/binary"

	"golang.org/x/arch/x86/x86asm"

	"vmdap/x86"
)

// ReadFunc reads len(p) bytes of guest-virtual (linear) memory at va; it
// reports whether all of them could be read.
type ReadFunc func(va uint64, p []byte) bool

// LoadsSegment reports whether the instruction loads a segment register
// from a descriptor table (far jmp/call/ret, iret, mov/pop to a segment
// register, lds/les/lfs/lgs/lss).
func (d Inst) LoadsSegment() bool {
	switch d.op {
	case x86asm.LJMP, x86asm.LCALL, x86asm.LRET, x86asm.IRET, x86asm.IRETD, x86asm.IRETQ,
		x86asm.LDS, x86asm.LES, x86asm.LFS, x86asm.LGS, x86asm.LSS:
		return true
	case x86asm.MOV, x86asm.POP:
		r, ok := d.inst.Args[0].(x86asm.Reg)
		return ok && r >= x86asm.ES && r <= x86asm.GS
	}
	return false
}

// SelectorLoads returns the selectors the instruction will load into
// segment registers when it executes with registers r and s, reading its
// memory and stack operands through read. It covers the instructions
// LoadsSegment names (for iret and a far ret: CS, plus SS for an iret in
// 64-bit mode, which always pops it). Null selectors are left out. ok is
// false when an operand could not be read.
func (d Inst) SelectorLoads(r x86.Regs, s x86.SRegs, read ReadFunc) (sels []uint16, ok bool) {
	if !d.LoadsSegment() {
		return nil, true
	}
	in := d.inst
	word := func(va uint64) (uint16, bool) {
		var b [2]byte
		if !read(va, b[:]) {
			return 0, false
		}
		return binary.LittleEndian.Uint16(b[:]), true
	}
	add := func(sel uint16) {
		if sel&^3 != 0 {
			sels = append(sels, sel)
		}
	}
	opBytes := uint64(in.DataSize / 8)
	sp := d.stackTop(r, s)
	switch d.op {
	case x86asm.LJMP, x86asm.LCALL:
		if imm, isImm := in.Args[0].(x86asm.Imm); isImm {
			add(uint16(imm))
			return sels, true
		}
		mem, isMem := in.Args[0].(x86asm.Mem)
		if !isMem {
			return nil, false
		}
		sel, ok := word(d.effAddr(mem, r, s) + opBytes)
		if !ok {
			return nil, false
		}
		add(sel)
	case x86asm.LDS, x86asm.LES, x86asm.LFS, x86asm.LGS, x86asm.LSS:
		mem, isMem := in.Args[1].(x86asm.Mem)
		if !isMem {
			return nil, false
		}
		sel, ok := word(d.effAddr(mem, r, s) + opBytes)
		if !ok {
			return nil, false
		}
		add(sel)
	case x86asm.LRET:
		sel, ok := word(sp + opBytes)
		if !ok {
			return nil, false
		}
		add(sel)
	case x86asm.IRET, x86asm.IRETD, x86asm.IRETQ:
		cs, ok := word(sp + opBytes)
		if !ok {
			return nil, false
		}
		add(cs)
		if d.mode == 64 {
			ss, ok := word(sp + 4*opBytes)
			if !ok {
				return nil, false
			}
			add(ss)
		}
	case x86asm.POP:
		sel, ok := word(sp)
		if !ok {
			return nil, false
		}
		add(sel)
	case x86asm.MOV:
		switch a := in.Args[1].(type) {
		case x86asm.Reg:
			v, ok := regValue(a, r)
			if !ok {
				return nil, false
			}
			add(uint16(v))
		case x86asm.Mem:
			sel, ok := word(d.effAddr(a, r, s))
			if !ok {
				return nil, false
			}
			add(sel)
		default:
			return nil, false
		}
	}
	return sels, true
}

// stackTop is the linear address of the top of the stack.
func (d Inst) stackTop(r x86.Regs, s x86.SRegs) uint64 {
	switch d.mode {
	case 64:
		return r.RSP
	case 32:
		if s.SS.DB {
			return s.SS.Base + r.RSP&0xffffffff
		}
	}
	return s.SS.Base + r.RSP&0xffff
}

// effAddr computes a memory operand's linear address.
func (d Inst) effAddr(m x86asm.Mem, r x86.Regs, s x86.SRegs) uint64 {
	var ea uint64
	if m.Base == x86asm.RIP || m.Base == x86asm.EIP || m.Base == x86asm.IP {
		ea = d.Next()
	} else if m.Base != 0 {
		v, _ := regValue(m.Base, r)
		ea = v
	}
	if m.Index != 0 {
		v, _ := regValue(m.Index, r)
		ea += v * uint64(m.Scale)
	}
	ea += uint64(m.Disp)
	switch d.inst.AddrSize {
	case 32:
		ea &= 0xffffffff
	case 16:
		ea &= 0xffff
	}
	seg := m.Segment
	if d.mode == 64 {
		switch seg {
		case x86asm.FS:
			return ea + s.FS.Base
		case x86asm.GS:
			return ea + s.GS.Base
		}
		return ea
	}
	if seg == 0 {
		seg = x86asm.DS
		switch m.Base {
		case x86asm.ESP, x86asm.EBP, x86asm.SP, x86asm.BP:
			seg = x86asm.SS
		}
	}
	var base uint64
	switch seg {
	case x86asm.ES:
		base = s.ES.Base
	case x86asm.CS:
		base = s.CS.Base
	case x86asm.SS:
		base = s.SS.Base
	case x86asm.DS:
		base = s.DS.Base
	case x86asm.FS:
		base = s.FS.Base
	case x86asm.GS:
		base = s.GS.Base
	}
	return (base + ea) & 0xffffffff
}

// regValue reads a general-purpose register of any width from r.
func regValue(reg x86asm.Reg, r x86.Regs) (uint64, bool) {
	gpr := [16]uint64{r.RAX, r.RCX, r.RDX, r.RBX, r.RSP, r.RBP, r.RSI, r.RDI,
		r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15}
	switch {
	case reg >= x86asm.RAX && reg <= x86asm.R15:
		return gpr[reg-x86asm.RAX], true
	case reg >= x86asm.EAX && reg <= x86asm.R15L:
		return gpr[reg-x86asm.EAX] & 0xffffffff, true
	case reg >= x86asm.AX && reg <= x86asm.R15W:
		return gpr[reg-x86asm.AX] & 0xffff, true
	case reg >= x86asm.AL && reg <= x86asm.BL:
		return gpr[reg-x86asm.AL] & 0xff, true
	case reg >= x86asm.AH && reg <= x86asm.BH:
		return gpr[reg-x86asm.AH] >> 8 & 0xff, true
	case reg >= x86asm.SPB && reg <= x86asm.R15B:
		return gpr[reg-x86asm.SPB+4] & 0xff, true
	}
	return 0, false
}

// ControlWrite decodes a move to a control register ("mov %eax,%cr0"): it
// returns the register's number and the value written with registers r.
func (d Inst) ControlWrite(r x86.Regs) (cr int, value uint64, ok bool) {
	if d.op != x86asm.MOV {
		return 0, 0, false
	}
	dst, ok1 := d.inst.Args[0].(x86asm.Reg)
	src, ok2 := d.inst.Args[1].(x86asm.Reg)
	if !ok1 || !ok2 || dst < x86asm.CR0 || dst > x86asm.CR15 {
		return 0, 0, false
	}
	v, ok := regValue(src, r)
	return int(dst - x86asm.CR0), v, ok
}
