// Package disasm wraps golang.org/x/arch/x86/x86asm for vmdap: it decodes
// one instruction at an address in a given mode, classifies it (call, ret,
// jumps, string instructions with a rep prefix, pushf, hlt, int3 …),
// computes branch targets, and formats it in Intel syntax with symbol
// names. What x86asm does not decode, it does itself: VEX instructions
// (their length) and the system instructions of kernels and hypervisors
// (endbr64, clac, VMX, SVM, FRED: system.go).
package disasm

import (
	"fmt"
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"vmdap/x86"
)

// Kind classifies an instruction for run control.
type Kind uint8

const (
	KindOther Kind = iota
	KindCall
	KindRet
	KindJump     // unconditional jump
	KindCondJump // conditional jump, loop, jrcxz
	KindInt      // int n, int3, into, int1
	KindIret
	KindSyscall // syscall, sysenter, sysret, sysexit
	KindHalt
	KindLIDT // lidt: the interrupt handlers move (exception breakpoints follow them)
	KindNop  // nop, of any length (a patch site: ftrace's, a kernel's alternatives)
)

// Inst is one decoded instruction.
type Inst struct {
	PC     uint64
	Len    int
	Bytes  []byte
	op     x86asm.Op
	Kind   Kind
	inst   x86asm.Inst
	mode   x86.Mode
	vex    string      // the text of a VEX instruction (x86asm decodes none)
	sys    *sysDecoded // a system instruction x86asm does not know (system.go)
	Target uint64      // direct branch target, when HasTarget
	// HasTarget is true for direct (relative) calls and jumps.
	HasTarget bool
	// Rep is true for a string instruction with a rep/repe/repne prefix.
	Rep bool
	// Pushf is true for pushf/pushfd/pushfq; PushSize is the bytes pushed.
	Pushf    bool
	PushSize int
	// LoadsFlags is true for instructions that replace RFLAGS (popf, iret,
	// sysret, sysexit).
	LoadsFlags bool
	// WritesMSR is true for wrmsr and swapgs (which exchanges GS's base
	// with IA32_KERNEL_GS_BASE): the instructions that change an MSR.
	WritesMSR bool
	// MayFault is false only for instructions that cannot raise an
	// exception: integer ALU operations and moves on registers and
	// immediates, and relative jumps to canonical targets. Everything else
	// (memory operands, the stack, division, privileged and x87/SSE
	// instructions) may fault.
	MayFault bool
}

// Decode decodes the instruction at pc from code (which starts at pc).
func Decode(code []byte, mode x86.Mode, pc uint64) (Inst, error) {
	if d, ok := decodeVEX(code, mode, pc); ok {
		return d, nil
	}
	if d, ok := decodeSystem(code, mode, pc); ok {
		return d, nil
	}
	in, err := x86asm.Decode(code, int(mode))
	if err != nil {
		return Inst{PC: pc}, fmt.Errorf("decoding at %#x: %w", pc, err)
	}
	d := Inst{PC: pc, Len: in.Len, Bytes: append([]byte(nil), code[:in.Len]...), op: in.Op, inst: in, mode: mode}
	switch in.Op {
	case x86asm.CALL, x86asm.LCALL:
		d.Kind = KindCall
	case x86asm.RET, x86asm.LRET:
		d.Kind = KindRet
	case x86asm.JMP, x86asm.LJMP:
		d.Kind = KindJump
	case x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JCXZ, x86asm.JE, x86asm.JECXZ, x86asm.JG,
		x86asm.JGE, x86asm.JL, x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO,
		x86asm.JP, x86asm.JRCXZ, x86asm.JS, x86asm.LOOP, x86asm.LOOPE, x86asm.LOOPNE:
		d.Kind = KindCondJump
	case x86asm.INT, x86asm.INTO, x86asm.ICEBP:
		d.Kind = KindInt
	case x86asm.IRET, x86asm.IRETD, x86asm.IRETQ:
		d.Kind = KindIret
		d.LoadsFlags = true
	case x86asm.POPF, x86asm.POPFD, x86asm.POPFQ:
		d.LoadsFlags = true
	case x86asm.SYSCALL, x86asm.SYSENTER, x86asm.SYSRET, x86asm.SYSEXIT:
		d.Kind = KindSyscall
		d.LoadsFlags = in.Op == x86asm.SYSRET || in.Op == x86asm.SYSEXIT
	case x86asm.WRMSR, x86asm.SWAPGS:
		d.WritesMSR = true
	case x86asm.HLT:
		d.Kind = KindHalt
	case x86asm.LIDT:
		d.Kind = KindLIDT
	case x86asm.NOP:
		d.Kind = KindNop
	case x86asm.PUSHF, x86asm.PUSHFD, x86asm.PUSHFQ:
		d.Pushf = true
		d.PushSize = in.DataSize / 8
		if mode == 64 && in.DataSize != 16 {
			d.PushSize = 8
		}
	}
	if d.Kind == KindCall || d.Kind == KindJump || d.Kind == KindCondJump {
		if rel, ok := in.Args[0].(x86asm.Rel); ok {
			d.HasTarget = true
			d.Target = pc + uint64(in.Len) + uint64(int64(rel))
			switch mode {
			case 32:
				d.Target &= 0xffffffff
			case 16:
				// pc is linear (CS.base + IP), and so is the target:
				// IP + len + rel wraps at 64 KiB within the segment.
				// The decoder does not know the base; it takes the 64
				// KiB window pc is in (exact for f000:xxxx, 0000:xxxx,
				// and for any jump that does not wrap).
				win := pc &^ 0xffff
				d.Target = (win + (d.Target-win)&0xffff) & 0xffffffff
			}
		}
	}
	d.MayFault = mayFault(in, d)
	if isString(in.Op) {
		for _, p := range in.Prefix {
			if p == 0 {
				break
			}
			switch p &^ (x86asm.PrefixImplicit | x86asm.PrefixIgnored | x86asm.PrefixInvalid) {
			case x86asm.PrefixREP, x86asm.PrefixREPN:
				d.Rep = true
			}
		}
	}
	return d, nil
}

func isString(op x86asm.Op) bool {
	switch op {
	case x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ,
		x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ,
		x86asm.LODSB, x86asm.LODSW, x86asm.LODSD, x86asm.LODSQ,
		x86asm.CMPSB, x86asm.CMPSW, x86asm.CMPSD, x86asm.CMPSQ,
		x86asm.SCASB, x86asm.SCASW, x86asm.SCASD, x86asm.SCASQ,
		x86asm.INSB, x86asm.INSW, x86asm.INSD, x86asm.OUTSB, x86asm.OUTSW, x86asm.OUTSD:
		return true
	}
	return false
}

// Mode returns the mode the instruction was decoded in.
func (d Inst) Mode() x86.Mode { return d.mode }

// Next returns the fall-through address.
func (d Inst) Next() uint64 { return d.PC + uint64(d.Len) }

// SelfLoop reports a jump to itself ("jmp ."), whose step leaves RIP
// unchanged.
func (d Inst) SelfLoop() bool { return d.HasTarget && d.Target == d.PC }

// Symbolizer names an address: it returns the symbol containing addr and
// its start, or ok=false.
type Symbolizer func(addr uint64) (name string, base uint64, ok bool)

// Text formats the instruction in Intel syntax; sym (may be nil) names
// branch targets and memory operands.
func (d Inst) Text(sym Symbolizer) string {
	if d.vex != "" {
		return d.vex
	}
	var lookup x86asm.SymLookup
	if sym != nil {
		lookup = func(a uint64) (string, uint64) {
			n, b, ok := sym(a)
			if !ok {
				return "", 0
			}
			return n, b
		}
	}
	if d.sys != nil {
		return d.sys.text(lookup)
	}
	pc := d.PC
	width := uint64(0xffffffff) // a 16-bit target is linear already
	if d.mode == 64 {
		width = ^uint64(0)
	}
	if d.HasTarget && d.mode != 64 && pc != 0 {
		// x86asm prints pc+len+rel in 64 bits: give it the pc that makes
		// that sum the target as the CPU computes it, wrapped to the mode.
		for _, a := range d.inst.Args {
			if rel, ok := a.(x86asm.Rel); ok {
				pc = (d.Target&width - uint64(d.inst.Len) - uint64(int64(rel)))
			}
		}
	}
	s := strings.TrimSpace(x86asm.IntelSyntax(d.inst, pc, lookup))
	if d.HasTarget && sym != nil {
		// x86asm names a target only at a symbol's start: inside one,
		// the function and the offset, as gdb shows them.
		if n, base, ok := sym(d.Target); ok && d.Target != base && strings.HasSuffix(s, fmt.Sprintf("%#x", d.Target)) {
			s += fmt.Sprintf(" <%s+%#x>", n, d.Target-base)
		}
	}
	// A memory operand that is a displacement alone: x86asm prints zero
	// as "[]", and a 64-bit code's disp32 unsigned where the CPU
	// sign-extends it (a kernel's globals at -2 GiB).
	s = strings.ReplaceAll(s, "[]", "[0x0]")
	if d.mode == 64 {
		for _, a := range d.inst.Args {
			if m, ok := a.(x86asm.Mem); ok && m.Base == 0 && m.Index == 0 && m.Segment == 0 {
				u := uint64(m.Disp) & 0xffffffff
				if u >= 0x80000000 {
					s = strings.ReplaceAll(s, fmt.Sprintf("[%#x]", u), fmt.Sprintf("[%#x]", u|0xffffffff00000000))
				}
			}
			// A sign-extended immediate that is a symbol's address (a
			// kernel's, at -2 GiB: mov $linux_banner, %rdi): that
			// address and the symbol, not a negative number.
			if imm, ok := a.(x86asm.Imm); ok && imm < 0 && sym != nil {
				if n, base, ok := sym(uint64(imm)); ok {
					to := fmt.Sprintf("%#x <%s", uint64(imm), n)
					if off := uint64(imm) - base; off != 0 {
						to += fmt.Sprintf("+%#x", off)
					}
					s = strings.Replace(s, fmt.Sprintf("%#x", int64(imm)), to+">", 1)
				}
			}
		}
	}
	return s
}

// MaxLen is the longest x86 instruction.
const MaxLen = 15

// safeOps never fault when all their operands are registers or immediates
// (SDM Vol. 2 "Protected Mode Exceptions": only memory operands raise
// #GP/#SS/#PF for these).
var safeOps = map[x86asm.Op]bool{
	x86asm.MOV: true, x86asm.MOVZX: true, x86asm.MOVSX: true, x86asm.MOVSXD: true, x86asm.LEA: true,
	x86asm.ADD: true, x86asm.ADC: true, x86asm.SUB: true, x86asm.SBB: true, x86asm.AND: true, x86asm.OR: true,
	x86asm.XOR: true, x86asm.NOT: true, x86asm.NEG: true, x86asm.INC: true, x86asm.DEC: true, x86asm.CMP: true,
	x86asm.TEST: true, x86asm.SHL: true, x86asm.SHR: true, x86asm.SAR: true, x86asm.ROL: true, x86asm.ROR: true,
	x86asm.RCL: true, x86asm.RCR: true, x86asm.SHLD: true, x86asm.SHRD: true, x86asm.IMUL: true, x86asm.MUL: true,
	x86asm.XCHG: true, x86asm.BSWAP: true, x86asm.BT: true, x86asm.BTS: true, x86asm.BTR: true, x86asm.BTC: true,
	x86asm.BSF: true, x86asm.BSR: true, x86asm.NOP: true, x86asm.CLC: true, x86asm.STC: true, x86asm.CMC: true,
	x86asm.CLD: true, x86asm.STD: true, x86asm.CBW: true, x86asm.CWDE: true, x86asm.CDQE: true, x86asm.CWD: true,
	x86asm.CDQ: true, x86asm.CQO: true, x86asm.SAHF: true, x86asm.LAHF: true, x86asm.POPCNT: true,
	x86asm.CMOVA: true, x86asm.CMOVAE: true, x86asm.CMOVB: true, x86asm.CMOVBE: true, x86asm.CMOVE: true,
	x86asm.CMOVG: true, x86asm.CMOVGE: true, x86asm.CMOVL: true, x86asm.CMOVLE: true, x86asm.CMOVNE: true,
	x86asm.CMOVNO: true, x86asm.CMOVNP: true, x86asm.CMOVNS: true, x86asm.CMOVO: true, x86asm.CMOVP: true,
	x86asm.CMOVS: true, x86asm.SETA: true, x86asm.SETAE: true, x86asm.SETB: true, x86asm.SETBE: true,
	x86asm.SETE: true, x86asm.SETG: true, x86asm.SETGE: true, x86asm.SETL: true, x86asm.SETLE: true,
	x86asm.SETNE: true, x86asm.SETNO: true, x86asm.SETNP: true, x86asm.SETNS: true, x86asm.SETO: true,
	x86asm.SETP: true, x86asm.SETS: true,
}

func mayFault(in x86asm.Inst, d Inst) bool {
	if d.Kind == KindJump || d.Kind == KindCondJump {
		return !d.HasTarget || !canonical(d.Target, d.mode)
	}
	if !safeOps[in.Op] {
		return true
	}
	for _, a := range in.Args {
		switch a := a.(type) {
		case nil:
			return false
		case x86asm.Mem:
			return true
		case x86asm.Reg:
			if a >= x86asm.ES && a <= x86asm.GS || a >= x86asm.CR0 || a >= x86asm.X0 && a <= x86asm.X15 {
				return true // segment, control, debug, vector registers
			}
		}
	}
	return false
}

func canonical(va uint64, mode x86.Mode) bool {
	if mode != 64 {
		return true
	}
	top := va >> 47
	return top == 0 || top == 0x1ffff
}
