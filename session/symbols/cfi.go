package symbols

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"slices"
	"sort"
	"strings"
)

// Call-frame information (DWARF 5 §6.4; .eh_frame as in the LSB): per
// address range, rules that recover the caller's registers from the
// callee's.

type cie struct {
	codeAlign uint64
	dataAlign int64
	raReg     uint64
	init      []byte
	ptrEnc    byte
	aug       bool
	signal    bool // 'S': a signal or interrupt frame; the caller's PC is exact
	addrSize  int
}

type fde struct {
	start, end uint64
	cie        *cie
	insns      []byte
}

type frameTable struct {
	fdes     []fde
	addrSize int
}

type ruleKind uint8

const (
	ruleUndefined ruleKind = iota
	ruleSame
	ruleOffset    // saved at CFA+off
	ruleValOffset // value is CFA+off
	ruleRegister  // in another register
)

type rule struct {
	kind ruleKind
	off  int64
	reg  int
}

// numRegs covers the DWARF registers unwinding tracks: rax..r15 and the
// return-address column 16.
const numRegs = 17

type rowState struct {
	cfaReg int
	cfaOff int64
	regs   [numRegs]rule
}

// frameTab returns the call-frame table, parsed on first use: the FDE
// headers of .debug_frame and of the program's .eh_frame, their
// instructions left in place until a PC needs them. Where both describe
// an address, .debug_frame's holds; code only .eh_frame describes (a
// crate or object built without debug information, linked with others
// built with it) is unwound by it, as gdb does.
func (t *Table) frameTab() *frameTable {
	t.frameOnce.Do(func() {
		ft := &frameTable{addrSize: t.AddrSize}
		if frame := t.sec.frame.bytes(); len(frame) > 0 {
			ft.parse(frame, 0, false)
		}
		byDebug := len(ft.fdes)
		if s := t.img.f.Section(".eh_frame"); s != nil && s.Type != elf.SHT_NOBITS {
			if b, _ := t.img.section(".eh_frame"); b != nil {
				ft.parse(b, s.Addr, true)
			}
		}
		if byDebug > 0 && len(ft.fdes) > byDebug {
			debug := &frameTable{fdes: ft.fdes[:byDebug:byDebug]}
			slices.SortFunc(debug.fdes, func(a, b fde) int { return cmp.Compare(a.start, b.start) })
			kept := ft.fdes[:byDebug]
			for _, f := range ft.fdes[byDebug:] {
				if debug.find(f.start) == nil && debug.find(f.end-1) == nil {
					kept = append(kept, f)
				}
			}
			ft.fdes = kept
		}
		slices.SortFunc(ft.fdes, func(a, b fde) int { return cmp.Compare(a.start, b.start) })
		t.frames = ft
	})
	return t.frames
}

func (ft *frameTable) parse(b []byte, secAddr uint64, eh bool) {
	cies := map[uint64]*cie{}
	off := uint64(0)
	for off+4 <= uint64(len(b)) {
		start := off
		length := uint64(binary.LittleEndian.Uint32(b[off:]))
		off += 4
		if length == 0 {
			if eh {
				break
			}
			continue
		}
		if length == 0xffffffff || off+length > uint64(len(b)) {
			return // 64-bit DWARF or truncated: give up on the rest
		}
		body := b[off : off+length]
		idPos := off
		off += length
		if len(body) < 4 {
			continue
		}
		id := uint64(binary.LittleEndian.Uint32(body))
		isCIE := (!eh && id == 0xffffffff) || (eh && id == 0)
		if isCIE {
			if c := parseCIE(body[4:]); c != nil {
				c.addrSize = ft.addrSize
				cies[start] = c
			}
			continue
		}
		cieOff := id
		if eh {
			cieOff = idPos - id
		}
		c := cies[cieOff]
		if c == nil {
			if c = ft.cieAt(b, cieOff, eh); c == nil {
				continue
			}
			c.addrSize = ft.addrSize
			cies[cieOff] = c
		}
		rest := body[4:]
		fieldAddr := secAddr + idPos + 4
		var pcStart, pcRange uint64
		var ok bool
		if eh {
			pcStart, rest, ok = readEncoded(rest, c.ptrEnc, fieldAddr)
			if !ok {
				continue
			}
			pcRange, rest, ok = readEncoded(rest, c.ptrEnc&0x0f, 0)
			if !ok {
				continue
			}
		} else {
			as := ft.addrSize
			if len(rest) < 2*as {
				continue
			}
			if as == 4 {
				pcStart = uint64(binary.LittleEndian.Uint32(rest))
				pcRange = uint64(binary.LittleEndian.Uint32(rest[4:]))
			} else {
				pcStart = binary.LittleEndian.Uint64(rest)
				pcRange = binary.LittleEndian.Uint64(rest[8:])
			}
			rest = rest[2*as:]
		}
		if c.aug {
			n, _ := uleb(&rest)
			if n > uint64(len(rest)) {
				continue
			}
			rest = rest[n:]
		}
		ft.fdes = append(ft.fdes, fde{start: pcStart, end: pcStart + pcRange, cie: c, insns: rest})
	}
}

func (ft *frameTable) cieAt(b []byte, off uint64, eh bool) *cie {
	if off+8 > uint64(len(b)) {
		return nil
	}
	length := uint64(binary.LittleEndian.Uint32(b[off:]))
	if off+4+length > uint64(len(b)) || length < 4 {
		return nil
	}
	return parseCIE(b[off+8 : off+4+length])
}

func parseCIE(b []byte) *cie {
	if len(b) < 2 {
		return nil
	}
	version := b[0]
	b = b[1:]
	i := 0
	for i < len(b) && b[i] != 0 {
		i++
	}
	if i >= len(b) {
		return nil
	}
	augStr := string(b[:i])
	b = b[i+1:]
	if version >= 4 {
		if len(b) < 2 {
			return nil
		}
		b = b[2:]
	}
	c := &cie{}
	c.codeAlign, _ = uleb(&b)
	c.dataAlign = sleb(&b)
	if version == 1 {
		if len(b) < 1 {
			return nil
		}
		c.raReg = uint64(b[0])
		b = b[1:]
	} else {
		c.raReg, _ = uleb(&b)
	}
	if strings.Contains(augStr, "S") {
		c.signal = true // also without 'z' (.debug_frame)
	}
	if len(augStr) > 0 && augStr[0] == 'z' {
		c.aug = true
		n, _ := uleb(&b)
		if n > uint64(len(b)) {
			return nil
		}
		data := b[:n]
		b = b[n:]
		for _, ch := range augStr[1:] {
			switch ch {
			case 'R':
				if len(data) > 0 {
					c.ptrEnc = data[0]
					data = data[1:]
				}
			case 'S':
				c.signal = true
			case 'L':
				if len(data) > 0 {
					data = data[1:]
				}
			case 'P':
				if len(data) > 0 {
					enc := data[0]
					_, data, _ = readEncoded(data[1:], enc, 0)
				}
			}
		}
	}
	c.init = b
	return c
}

func readEncoded(b []byte, enc byte, fieldAddr uint64) (uint64, []byte, bool) {
	var v uint64
	switch enc & 0x0f {
	case 0x00, 0x04, 0x0c:
		if len(b) < 8 {
			return 0, b, false
		}
		v, b = binary.LittleEndian.Uint64(b), b[8:]
	case 0x03:
		if len(b) < 4 {
			return 0, b, false
		}
		v, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
	case 0x0b:
		if len(b) < 4 {
			return 0, b, false
		}
		v, b = uint64(int64(int32(binary.LittleEndian.Uint32(b)))), b[4:]
	case 0x02:
		if len(b) < 2 {
			return 0, b, false
		}
		v, b = uint64(binary.LittleEndian.Uint16(b)), b[2:]
	case 0x0a:
		if len(b) < 2 {
			return 0, b, false
		}
		v, b = uint64(int64(int16(binary.LittleEndian.Uint16(b)))), b[2:]
	case 0x01:
		v, _ = uleb(&b)
	case 0x09:
		v = uint64(sleb(&b))
	default:
		return 0, b, false
	}
	if enc&0x70 == 0x10 {
		v += fieldAddr
	}
	return v, b, true
}

func (ft *frameTable) find(pc uint64) *fde {
	if ft == nil {
		return nil
	}
	i := sort.Search(len(ft.fdes), func(i int) bool { return ft.fdes[i].start > pc })
	if i > 0 && pc < ft.fdes[i-1].end {
		return &ft.fdes[i-1]
	}
	return nil
}

// rowFor runs the CFA program up to pc.
func (f *fde) rowFor(pc uint64) (rowState, error) {
	var st rowState
	var initial rowState
	run := func(insns []byte, loc uint64, limit bool) error {
		var stack []rowState
		b := insns
		for len(b) > 0 {
			op := b[0]
			b = b[1:]
			hi, lo := op&0xc0, op&0x3f
			switch hi {
			case 0x40: // advance_loc
				loc += uint64(lo) * f.cie.codeAlign
				if limit && loc > pc {
					return nil
				}
				continue
			case 0x80: // offset
				n, _ := uleb(&b)
				if int(lo) < numRegs {
					st.regs[lo] = rule{kind: ruleOffset, off: int64(n) * f.cie.dataAlign}
				}
				continue
			case 0xc0: // restore
				if int(lo) < numRegs {
					st.regs[lo] = initial.regs[lo]
				}
				continue
			}
			switch op {
			case 0x00: // nop
			case 0x01: // set_loc
				as := f.cie.addrSize
				if as != 4 {
					as = 8
				}
				if len(b) < as {
					return errTrunc
				}
				if as == 4 {
					loc = uint64(binary.LittleEndian.Uint32(b))
				} else {
					loc = binary.LittleEndian.Uint64(b)
				}
				b = b[as:]
				if limit && loc > pc {
					return nil
				}
			case 0x02, 0x03, 0x04: // advance_loc1/2/4
				var d uint64
				switch op {
				case 0x02:
					if len(b) < 1 {
						return errTrunc
					}
					d, b = uint64(b[0]), b[1:]
				case 0x03:
					if len(b) < 2 {
						return errTrunc
					}
					d, b = uint64(binary.LittleEndian.Uint16(b)), b[2:]
				default:
					if len(b) < 4 {
						return errTrunc
					}
					d, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
				}
				loc += d * f.cie.codeAlign
				if limit && loc > pc {
					return nil
				}
			case 0x05: // offset_extended
				r, _ := uleb(&b)
				n, _ := uleb(&b)
				if r < numRegs {
					st.regs[r] = rule{kind: ruleOffset, off: int64(n) * f.cie.dataAlign}
				}
			case 0x06: // restore_extended
				r, _ := uleb(&b)
				if r < numRegs {
					st.regs[r] = initial.regs[r]
				}
			case 0x07: // undefined
				r, _ := uleb(&b)
				if r < numRegs {
					st.regs[r] = rule{kind: ruleUndefined}
				}
			case 0x08: // same_value
				r, _ := uleb(&b)
				if r < numRegs {
					st.regs[r] = rule{kind: ruleSame}
				}
			case 0x09: // register
				r, _ := uleb(&b)
				r2, _ := uleb(&b)
				if r < numRegs {
					st.regs[r] = rule{kind: ruleRegister, reg: int(r2)}
				}
			case 0x0a: // remember_state
				stack = append(stack, st)
			case 0x0b: // restore_state
				if n := len(stack); n > 0 {
					st = stack[n-1]
					stack = stack[:n-1]
				}
			case 0x0c: // def_cfa
				r, _ := uleb(&b)
				n, _ := uleb(&b)
				st.cfaReg, st.cfaOff = int(r), int64(n)
			case 0x0d: // def_cfa_register
				r, _ := uleb(&b)
				st.cfaReg = int(r)
			case 0x0e: // def_cfa_offset
				n, _ := uleb(&b)
				st.cfaOff = int64(n)
			case 0x11: // offset_extended_sf
				r, _ := uleb(&b)
				n := sleb(&b)
				if r < numRegs {
					st.regs[r] = rule{kind: ruleOffset, off: n * f.cie.dataAlign}
				}
			case 0x12: // def_cfa_sf
				r, _ := uleb(&b)
				n := sleb(&b)
				st.cfaReg, st.cfaOff = int(r), n*f.cie.dataAlign
			case 0x13: // def_cfa_offset_sf
				st.cfaOff = sleb(&b) * f.cie.dataAlign
			case 0x14: // val_offset
				r, _ := uleb(&b)
				n, _ := uleb(&b)
				if r < numRegs {
					st.regs[r] = rule{kind: ruleValOffset, off: int64(n) * f.cie.dataAlign}
				}
			case 0x2e: // GNU_args_size
				uleb(&b)
			case 0x0f, 0x10, 0x16: // expressions: not supported
				return errors.New("CFA expressions are not supported")
			default:
				return errors.New("unknown CFA instruction")
			}
		}
		return nil
	}
	if err := run(f.cie.init, f.start, false); err != nil {
		return st, err
	}
	initial = st
	err := run(f.insns, f.start, true)
	return st, err
}

// Regs is a register set for unwinding, by DWARF number (0-15 the
// general registers, 16 the return address = RIP).
type Regs struct {
	R     [numRegs]uint64
	Valid [numRegs]bool
	// Exact: R[RegRIP] is where execution stopped (an interrupted
	// instruction), not a return address, even in an outer frame.
	Exact bool
	// Switched: the caller runs on another stack (the unwinder crossed
	// an interrupt frame or a stack switch), so its stack pointer need
	// not be above the callee's.
	Switched bool
}

// RegRSP and RegRIP are the DWARF numbers unwinding cares about.
const (
	RegRBP = 6
	RegRSP = 7
	RegRIP = 16
)

// Unwind computes the caller's registers from a frame's. inner is true
// for the innermost frame (its PC is exact; callers' PCs are return
// addresses, looked up at PC-1). It reports the frame's CFA. It uses CFI
// when the image has it for that PC (a Linux kernel's ORC first, see
// orc.go), else the frame-pointer chain.
func (t *Table) Unwind(r Regs, inner bool, read func(addr uint64) (uint64, error)) (caller Regs, cfa uint64, usedCFI bool, err error) {
	pc := r.R[RegRIP]
	look := pc
	if !inner && !r.Exact && look > 0 {
		look--
	}
	if t.AddrSize == 8 {
		if o := t.orcTab(); o != nil {
			oc, ocfa, found, oerr := t.unwindORC(o, r, look-t.slide, read)
			if found && oerr == errORCUndefined {
				// Objtool could not follow this code: CFI's, if any,
				// else nothing (a kernel with ORC keeps no frame
				// pointers to follow).
				if cc, ccfa, ok, cerr := t.unwindCFI(r, look, read); ok {
					return cc, ccfa, true, cerr
				}
				return Regs{}, 0, false, oerr
			}
			if found {
				// Where GCC's CFI agrees with ORC (a plain call, the
				// same caller's stack pointer), its rules also recover
				// the callee-saved registers. Where it does not (inline
				// assembly that switched stacks), ORC is right.
				if oerr == nil && !oc.Switched && oc.Valid[RegRIP] {
					if cc, ccfa, ok, cerr := t.unwindCFI(r, look, read); ok && cerr == nil && ccfa == ocfa && cc.R[RegRIP] == oc.R[RegRIP] {
						return cc, ccfa, true, nil
					}
				}
				return oc, ocfa, true, oerr
			}
		}
	}
	if caller, cfa, ok, err := t.unwindCFI(r, look, read); ok {
		return caller, cfa, true, err
	}
	readCode := read
	word := uint64(8)
	if t.AddrSize == 4 {
		word = 4
		inner32 := read
		read = func(addr uint64) (uint64, error) {
			v, err := inner32(addr & 0xffffffff)
			return v & 0xffffffff, err
		}
	}
	// Frame-pointer chain. In the innermost frame, what the routine's
	// first instructions did by now decides: before push %rbp (or in a
	// routine that never pushes it: frameless assembly) the return
	// address is at the stack pointer; between the push and mov
	// %rsp,%rbp it is above the pushed %rbp.
	caller = r
	sp, fp := r.R[RegRSP], r.R[RegRBP]
	fn := t.FuncAt(look)
	// Unreadable code: assume the standard prologue.
	pro := prologue{push: 0, body: 4, std: true} // unreadable code: assume the standard prologue
	if fn != nil {
		var b [16]byte
		c0, err0 := readCode(fn.Low)
		c1, err1 := readCode(fn.Low + 8)
		if err0 == nil {
			binary.LittleEndian.PutUint64(b[:], c0)
			n := 8
			if err1 == nil {
				binary.LittleEndian.PutUint64(b[8:], c1)
				n = 16
			}
			if p := stdPrologue(b[:n], word); inner || p.std {
				pro = p
			}
		}
	}
	push, body, std := pro.push, pro.body, pro.std
	off := int64(pc - fn.lowOr(pc))
	switch {
	case fn != nil && inner && (!std || off <= int64(push)):
		cfa = sp + word
	case fn != nil && inner && off < int64(body):
		cfa = sp + 2*word
		v, e := read(sp)
		if e != nil {
			return Regs{}, 0, false, e
		}
		caller.R[RegRBP] = v
	default:
		if !r.Valid[RegRBP] || fp == 0 {
			return Regs{}, 0, false, errors.New("no frame pointer")
		}
		cfa = fp + 2*word
		v, e := read(fp)
		if e != nil {
			return Regs{}, 0, false, e
		}
		caller.R[RegRBP] = v
		// The registers the prologue pushed after the frame pointer, once
		// pushed (a caller frame's have been).
		if fn != nil && std {
			for k, sv := range pro.saves {
				if inner && off < int64(sv.done) {
					break
				}
				if v, e := read(fp - word*uint64(k+1)); e == nil {
					caller.R[sv.slot], caller.Valid[sv.slot] = v, true
				}
			}
		}
	}
	ra, e := read(cfa - word)
	if e != nil {
		return Regs{}, 0, false, e
	}
	caller.R[RegRIP], caller.Valid[RegRIP] = ra, true
	caller.R[RegRSP], caller.Valid[RegRSP] = cfa, true
	caller.Exact, caller.Switched = false, false
	return caller, cfa, false, nil
}

// prologue is what a function's first instructions do to the stack:
// whether it begins with the standard frame setup, push %rbp (0x55) then
// mov %rsp,%rbp (48 89 e5 or 48 8b ec; 89 e5 or 8b ec in 32-bit code),
// after an optional endbr (f3 0f 1e fa/fb); the offset of the push and
// the offset from which %rbp is the frame pointer; then the callee-saved
// registers it pushes (push %rbx, %rsi, %rdi, %r12–%r15), which are saved
// at the frame pointer minus one word, two words… A function that begins
// otherwise saves no frame pointer (std false).
type prologue struct {
	push, body int
	std        bool
	saves      []savedReg
}

type savedReg struct {
	slot int // Regs slot
	done int // offset from which the push has executed
}

func stdPrologue(b []byte, word uint64) prologue {
	i := 0
	if len(b) >= 4 && b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && (b[3] == 0xfa || b[3] == 0xfb) {
		i = 4
	}
	if i >= len(b) || b[i] != 0x55 {
		return prologue{}
	}
	p := prologue{push: i, body: i + 2, std: true}
	j := i + 1
	if word == 8 && j < len(b) && b[j] == 0x48 {
		j++
	}
	if j+2 <= len(b) && (b[j] == 0x89 && b[j+1] == 0xe5 || b[j] == 0x8b && b[j+1] == 0xec) {
		p.body = j + 2
	} else {
		// push %rbp without the mov: only right after the push is it
		// known where the return address is.
		return p
	}
	// The callee-saved registers pushed next.
	for k := p.body; k < len(b); {
		switch {
		case b[k] == 0x53:
			p.saves = append(p.saves, savedReg{3, k + 1})
			k++
		case b[k] == 0x56:
			p.saves = append(p.saves, savedReg{4, k + 1})
			k++
		case b[k] == 0x57:
			p.saves = append(p.saves, savedReg{5, k + 1})
			k++
		case word == 8 && k+1 < len(b) && b[k] == 0x41 && b[k+1] >= 0x54 && b[k+1] <= 0x57:
			p.saves = append(p.saves, savedReg{12 + int(b[k+1]-0x54), k + 2})
			k += 2
		default:
			return p
		}
	}
	return p
}

func (f *Func) lowOr(pc uint64) uint64 {
	if f == nil {
		return pc
	}
	return f.Low
}

// unwindCFI is Unwind by the image's CFI at look (ok false: none covers
// it).
func (t *Table) unwindCFI(r Regs, look uint64, read func(addr uint64) (uint64, error)) (caller Regs, cfa uint64, ok bool, err error) {
	// A 32-bit image's CFI numbers registers the i386 way and its words
	// are 4 bytes; Regs is always indexed the x86-64 way.
	slot := func(n int) int { return n }
	mask := ^uint64(0)
	if t.AddrSize == 4 {
		slot = i386Slot
		mask = 0xffffffff
		inner32 := read
		read = func(addr uint64) (uint64, error) {
			v, err := inner32(addr & mask)
			return v & mask, err
		}
	}
	if f := t.frameTab().find(look - t.slide); f != nil {
		if st, e := f.rowFor(look - t.slide); e == nil && slot(st.cfaReg) >= 0 && slot(st.cfaReg) < numRegs && r.Valid[slot(st.cfaReg)] {
			cfa = (r.R[slot(st.cfaReg)] + uint64(st.cfaOff)) & mask
			caller = r
			for i := 0; i < numRegs; i++ {
				ru := st.regs[i]
				k := slot(i)
				if k < 0 || k >= numRegs {
					continue
				}
				switch ru.kind {
				case ruleOffset:
					v, e := read((cfa + uint64(ru.off)) & mask)
					if e != nil {
						return Regs{}, cfa, true, e
					}
					caller.R[k], caller.Valid[k] = v, true
				case ruleValOffset:
					caller.R[k], caller.Valid[k] = (cfa+uint64(ru.off))&mask, true
				case ruleRegister:
					if rk := slot(ru.reg); rk >= 0 && rk < numRegs {
						caller.R[k], caller.Valid[k] = r.R[rk], r.Valid[rk]
					}
				case ruleUndefined:
					if i == int(f.cie.raReg) {
						caller.Valid[k] = false
					}
				}
			}
			if ra := slot(int(f.cie.raReg)); ra != RegRIP && ra >= 0 && ra < numRegs {
				caller.R[RegRIP], caller.Valid[RegRIP] = caller.R[ra], caller.Valid[ra]
			}
			sp := RegRSP
			if t.AddrSize == 4 {
				sp = 4 // esp's i386 number, for the rule table
			}
			if st.regs[sp].kind == ruleUndefined || st.regs[sp].kind == ruleSame {
				// By definition the CFA is the caller's stack pointer,
				// unless a rule says otherwise (an interrupt frame saves it).
				caller.R[RegRSP], caller.Valid[RegRSP] = cfa, true
			}
			caller.Exact, caller.Switched = f.cie.signal, false
			return caller, cfa, true, nil
		}
	}
	return Regs{}, 0, false, nil
}

// CFA computes the canonical frame address of a frame (used as the
// DW_OP_call_frame_cfa frame base), without unwinding further.
func (t *Table) CFA(r Regs, inner bool, read func(addr uint64) (uint64, error)) (uint64, bool) {
	_, cfa, _, err := t.Unwind(r, inner, read)
	return cfa, err == nil
}

// i386Slot maps an i386 DWARF register number to its Regs slot (the
// x86-64 number of the same register): eax ecx edx ebx esp ebp esi edi
// eip are 0-8 on i386, 0 2 1 3 7 6 4 5 16 on x86-64. -1: not tracked.
func i386Slot(n int) int {
	switch n {
	case 0:
		return 0
	case 1:
		return 2
	case 2:
		return 1
	case 3:
		return 3
	case 4:
		return RegRSP
	case 5:
		return RegRBP
	case 6:
		return 4
	case 7:
		return 5
	case 8:
		return RegRIP
	}
	return -1
}
