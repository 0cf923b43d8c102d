package disasm

import (
	"bytes"
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"vmdap/x86"
)

// System instructions x86asm does not know (or takes for others):
// control-flow enforcement (endbr64, at every function of a kernel built
// with IBT), SMAP's clac/stac, VMX and SVM (what a hypervisor runs:
// vmlaunch, vmresume, vmread, vmptrld, invept, vmrun …), FRED's
// erets/eretu, TDX's tdcall, and a few cache and serializing ones.
// They are decoded here from a table, before x86asm.

// sysInst is one table entry.
type sysInst struct {
	name string
	mand byte   // the mandatory prefix (0x66, 0xf2, 0xf3) or 0 for none
	op   []byte // opcode bytes, after the prefixes and any REX
	// reg is the ModRM.reg the entry needs (/digit), anyReg for /r, or
	// noModRM when the opcode bytes are the whole instruction.
	reg int8
	// mem: ModRM must name memory (1) or a register (2).
	mem  int8
	form string // operands: "m", "r", "rm,r" (destination r/m), "r,rm", "r,m"
	size string // the memory operand's size ("qword ptr ")
	kind Kind
	safe bool // cannot fault (endbr)
	r32  bool // its register operand is 32-bit in every mode
}

const (
	anyReg  = 8
	noModRM = -1
)

func exact(name string, mand byte, op ...byte) sysInst {
	return sysInst{name: name, mand: mand, op: op, reg: noModRM}
}

var sysTable = []sysInst{
	{name: "endbr64", mand: 0xf3, op: []byte{0x0f, 0x1e, 0xfa}, reg: noModRM, safe: true},
	{name: "endbr32", mand: 0xf3, op: []byte{0x0f, 0x1e, 0xfb}, reg: noModRM, safe: true},
	exact("vmcall", 0, 0x0f, 0x01, 0xc1), exact("vmlaunch", 0, 0x0f, 0x01, 0xc2),
	exact("vmresume", 0, 0x0f, 0x01, 0xc3), exact("vmxoff", 0, 0x0f, 0x01, 0xc4),
	exact("pconfig", 0, 0x0f, 0x01, 0xc5), exact("clac", 0, 0x0f, 0x01, 0xca),
	exact("stac", 0, 0x0f, 0x01, 0xcb), exact("encls", 0, 0x0f, 0x01, 0xcf),
	exact("vmfunc", 0, 0x0f, 0x01, 0xd4), exact("vmrun", 0, 0x0f, 0x01, 0xd8),
	exact("vmmcall", 0, 0x0f, 0x01, 0xd9), exact("vmload", 0, 0x0f, 0x01, 0xda),
	exact("vmsave", 0, 0x0f, 0x01, 0xdb), exact("stgi", 0, 0x0f, 0x01, 0xdc),
	exact("clgi", 0, 0x0f, 0x01, 0xdd), exact("skinit", 0, 0x0f, 0x01, 0xde),
	exact("invlpga", 0, 0x0f, 0x01, 0xdf), exact("serialize", 0, 0x0f, 0x01, 0xe8),
	exact("rdpkru", 0, 0x0f, 0x01, 0xee), exact("wrpkru", 0, 0x0f, 0x01, 0xef),
	exact("monitorx", 0, 0x0f, 0x01, 0xfa), exact("mwaitx", 0, 0x0f, 0x01, 0xfb),
	exact("clzero", 0, 0x0f, 0x01, 0xfc), exact("rdpru", 0, 0x0f, 0x01, 0xfd),
	exact("invlpgb", 0, 0x0f, 0x01, 0xfe), exact("tlbsync", 0, 0x0f, 0x01, 0xff),
	exact("getsec", 0, 0x0f, 0x37), exact("wbnoinvd", 0xf3, 0x0f, 0x09),
	exact("tdcall", 0x66, 0x0f, 0x01, 0xcc), exact("seamcall", 0x66, 0x0f, 0x01, 0xcf),
	{name: "erets", mand: 0xf2, op: []byte{0x0f, 0x01, 0xca}, reg: noModRM, kind: KindIret},
	{name: "eretu", mand: 0xf3, op: []byte{0x0f, 0x01, 0xca}, reg: noModRM, kind: KindIret},
	{name: "vmptrld", op: []byte{0x0f, 0xc7}, reg: 6, mem: 1, form: "m", size: "qword ptr "},
	{name: "vmptrst", op: []byte{0x0f, 0xc7}, reg: 7, mem: 1, form: "m", size: "qword ptr "},
	{name: "vmclear", mand: 0x66, op: []byte{0x0f, 0xc7}, reg: 6, mem: 1, form: "m", size: "qword ptr "},
	{name: "vmxon", mand: 0xf3, op: []byte{0x0f, 0xc7}, reg: 6, mem: 1, form: "m", size: "qword ptr "},
	{name: "rdpid", mand: 0xf3, op: []byte{0x0f, 0xc7}, reg: 7, mem: 2, form: "r"},
	{name: "vmread", op: []byte{0x0f, 0x78}, reg: anyReg, form: "rm,r"},
	{name: "vmwrite", op: []byte{0x0f, 0x79}, reg: anyReg, form: "r,rm"},
	{name: "invept", mand: 0x66, op: []byte{0x0f, 0x38, 0x80}, reg: anyReg, mem: 1, form: "r,m", size: "xmmword ptr "},
	{name: "invvpid", mand: 0x66, op: []byte{0x0f, 0x38, 0x81}, reg: anyReg, mem: 1, form: "r,m", size: "xmmword ptr "},
	{name: "clwb", mand: 0x66, op: []byte{0x0f, 0xae}, reg: 6, mem: 1, form: "m", size: "byte ptr "},
	{name: "clflushopt", mand: 0x66, op: []byte{0x0f, 0xae}, reg: 7, mem: 1, form: "m", size: "byte ptr "},
	{name: "tpause", mand: 0x66, op: []byte{0x0f, 0xae}, reg: 6, mem: 2, form: "r", r32: true},
}

// sysDecoded is what Text needs of a table instruction.
type sysDecoded struct {
	e      *sysInst
	regOp  string      // the ModRM.reg (or r/m register) operand's name
	rmReg  string      // the r/m operand when it names a register
	memIns x86asm.Inst // a mov with the same memory operand, to format it
	memPC  uint64      // the pc that makes memIns's RIP-relative target right
	opsz   int         // the operand size, 32 or 64
}

// decodeSystem decodes a table instruction at code, or reports false.
func decodeSystem(code []byte, mode x86.Mode, pc uint64) (Inst, bool) {
	i, mand := 0, byte(0)
	var segs []byte // segment and address-size prefixes, kept for the operand
	for i < len(code) && i < MaxLen {
		switch b := code[i]; b {
		case 0x66, 0xf2, 0xf3:
			mand = b
		case 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x67:
			segs = append(segs, b)
		case 0xf0:
		default:
			goto prefixesDone
		}
		i++
	}
prefixesDone:
	rex := byte(0)
	if mode == 64 && i < len(code) && code[i]&0xf0 == 0x40 {
		rex = code[i]
		i++
	}
	for k := range sysTable {
		e := &sysTable[k]
		if e.mand != mand || !bytes.HasPrefix(code[i:], e.op) {
			continue
		}
		n := i + len(e.op)
		if e.reg == noModRM {
			if rex != 0 {
				continue
			}
			return sysInstAt(e, code[:n], mode, pc, nil), true
		}
		if n >= len(code) {
			return Inst{}, false
		}
		m := code[n]
		mod, reg := m>>6, int8(m>>3&7)
		if e.reg != anyReg && reg != e.reg || e.mem == 1 && mod == 3 || e.mem == 2 && mod != 3 {
			continue
		}
		ml, ok := modrmLen(code[n:], mode)
		if !ok || n+ml > MaxLen {
			return Inst{}, false
		}
		sd := &sysDecoded{e: e}
		opsz := 32
		if mode == 64 && !e.r32 {
			opsz = 64
		}
		sd.opsz = opsz
		sd.regOp = regName(int(reg)+int(rex>>2&1)*8, opsz)
		if mod == 3 {
			sd.rmReg = regName(int(m&7)+int(rex&1)*8, opsz)
		} else {
			// The same operand on a mov (8b /r), which x86asm formats
			// (with a symbol for a RIP-relative address).
			syn := append([]byte(nil), segs...)
			if mode == 64 {
				syn = append(syn, 0x48|rex&0x03) // REX.W, and the real X and B
			}
			syn = append(syn, 0x8b, m&^0x38)
			syn = append(syn, code[n+1:n+ml]...)
			in, err := x86asm.Decode(syn, int(mode))
			if err != nil {
				return Inst{}, false
			}
			sd.memIns = in
			sd.memPC = pc + uint64(n+ml) - uint64(in.Len)
		}
		return sysInstAt(e, code[:n+ml], mode, pc, sd), true
	}
	return Inst{}, false
}

// sysInstAt fills an Inst for table entry e decoded as b.
func sysInstAt(e *sysInst, b []byte, mode x86.Mode, pc uint64, sd *sysDecoded) Inst {
	if sd == nil {
		sd = &sysDecoded{e: e}
	}
	return Inst{PC: pc, Len: len(b), Bytes: append([]byte(nil), b...), mode: mode, Kind: e.kind,
		LoadsFlags: e.kind == KindIret, MayFault: !e.safe, sys: sd}
}

// text formats a table instruction.
func (sd *sysDecoded) text(lookup x86asm.SymLookup) string {
	e := sd.e
	mem := func() string {
		if sd.rmReg != "" {
			return sd.rmReg
		}
		t := x86asm.IntelSyntax(sd.memIns, sd.memPC, lookup)
		if j := strings.Index(t, ", "); j >= 0 {
			t = t[j+2:]
		}
		if j := strings.Index(t, "ptr "); j >= 0 {
			t = t[j+4:]
		}
		t = strings.Replace(t, "[]", "[0x0]", 1) // x86asm's spelling of an absolute 0
		size := e.size
		if size == "" {
			size = "dword ptr "
			if sd.opsz == 64 {
				size = "qword ptr "
			}
		}
		return size + t
	}
	switch e.form {
	case "m":
		return e.name + " " + mem()
	case "r":
		return e.name + " " + sd.rmReg
	case "rm,r":
		return e.name + " " + mem() + ", " + sd.regOp
	case "r,rm", "r,m":
		return e.name + " " + sd.regOp + ", " + mem()
	}
	return e.name
}

var regNames64 = [16]string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}

// regName names general register n at a size of 32 or 64 bits.
func regName(n, size int) string {
	r := regNames64[n&15]
	if size == 64 {
		return r
	}
	if n >= 8 {
		return r + "d"
	}
	return "e" + r[1:]
}
