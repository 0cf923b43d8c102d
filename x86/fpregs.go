package x86

import (
	"encoding/binary"
	"strings"
)

// FPRegs is a vCPU's x87 and SSE state as FXSAVE lays it out (SDM Vol. 1
// §10.5.1, Table 10-2), which is what KVM_GET_FPU returns and what GDB's
// 64bit-core.xml (its x87 part) and 64bit-sse.xml describe.
type FPRegs struct {
	// ST holds st0-st7 in stack order (st0 is the top of the stack), each
	// an 80-bit extended-precision value, little-endian.
	ST [8][10]byte
	// FCW, FSW are the control and status words; FTW the full 16-bit tag
	// word (two bits a physical register: 0 valid, 1 zero, 2 special,
	// 3 empty), as gdb's ftag shows it, not FXSAVE's abridged byte.
	FCW, FSW, FTW uint16
	FOP           uint16 // last x87 opcode (11 bits)
	FIP, FDP      uint64 // last x87 instruction and operand pointers
	FCS, FDS      uint16 // their selectors (0 where the state has none)
	// XMM holds xmm0-xmm15 (xmm0-xmm7 in 32-bit code), little-endian.
	XMM   [16][16]byte
	MXCSR uint32
}

// FPRegNames are the names FPRegs' registers go by, in gdb's order and
// spelling (64bit-core.xml's x87 part, then 64bit-sse.xml).
var FPRegNames = []string{
	"st0", "st1", "st2", "st3", "st4", "st5", "st6", "st7",
	"fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop",
	"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
	"mxcsr",
}

// Bytes returns the little-endian bytes of the register named name (an
// st or xmm register whole; the control words widened as gdb's 32-bit
// registers are), or false for a name FPRegs does not hold.
func (f *FPRegs) Bytes(name string) ([]byte, bool) {
	if n, ok := indexed(name, "st", 8); ok {
		return append([]byte(nil), f.ST[n][:]...), true
	}
	if n, ok := indexed(name, "xmm", 16); ok {
		return append([]byte(nil), f.XMM[n][:]...), true
	}
	v, ok := f.Get(name)
	if !ok {
		return nil, false
	}
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, uint32(v))
	return b, true
}

// Get returns a control register of the x87 or SSE state (fctrl … fop,
// mxcsr), as gdb names them.
func (f *FPRegs) Get(name string) (uint64, bool) {
	switch name {
	case "fctrl":
		return uint64(f.FCW), true
	case "fstat":
		return uint64(f.FSW), true
	case "ftag":
		return uint64(f.FTW), true
	case "fiseg":
		return uint64(f.FCS), true
	case "fioff":
		return f.FIP & 0xffffffff, true
	case "foseg":
		return uint64(f.FDS), true
	case "fooff":
		return f.FDP & 0xffffffff, true
	case "fop":
		return uint64(f.FOP), true
	case "mxcsr":
		return uint64(f.MXCSR), true
	}
	return 0, false
}

// Set stores a register by gdb's name from its little-endian bytes (what
// a 'g' packet holds); false for a name FPRegs does not hold.
func (f *FPRegs) Set(name string, b []byte) bool {
	if n, ok := indexed(name, "st", 8); ok {
		copy(f.ST[n][:], b)
		return true
	}
	if n, ok := indexed(name, "xmm", 16); ok {
		copy(f.XMM[n][:], b)
		return true
	}
	var buf [8]byte
	copy(buf[:], b)
	v := binary.LittleEndian.Uint64(buf[:])
	switch name {
	case "fctrl":
		f.FCW = uint16(v)
	case "fstat":
		f.FSW = uint16(v)
	case "ftag":
		f.FTW = uint16(v)
	case "fiseg":
		f.FCS = uint16(v)
	case "fioff":
		f.FIP = v & 0xffffffff
	case "foseg":
		f.FDS = uint16(v)
	case "fooff":
		f.FDP = v & 0xffffffff
	case "fop":
		f.FOP = uint16(v)
	case "mxcsr":
		f.MXCSR = uint32(v)
	default:
		return false
	}
	return true
}

// indexed parses prefix+N with N below n ("xmm12").
func indexed(name, prefix string, n int) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" || len(rest) > 2 || (len(rest) == 2 && rest[0] == '0') {
		return 0, false
	}
	v := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, v < n
}

// FullTag expands FXSAVE's abridged tag byte (bit i set: physical
// register i is not empty) into the x87 tag word, classifying each
// non-empty register from its contents as FSTENV would (SDM Vol. 1
// §10.5.1.1): st are the registers in stack order and top is FSW's TOP
// field, so physical register i is st((i - top) mod 8).
func FullTag(abridged uint8, fsw uint16, st *[8][10]byte) uint16 {
	top := int(fsw>>11) & 7
	var tag uint16
	for i := 0; i < 8; i++ {
		t := uint16(3) // empty
		if abridged&(1<<i) != 0 {
			r := st[(i-top+8)%8]
			exp := binary.LittleEndian.Uint16(r[8:]) & 0x7fff
			mant := binary.LittleEndian.Uint64(r[:8])
			switch {
			case exp == 0 && mant == 0:
				t = 1 // zero
			case exp == 0x7fff || exp == 0 || mant>>63 == 0:
				t = 2 // special: NaN, infinity, denormal, unsupported
			default:
				t = 0 // valid
			}
		}
		tag |= t << (2 * i)
	}
	return tag
}

// MXCSRBits names MXCSR's fields (SDM Vol. 1 §10.2.3, Figure 10-3), as
// gdb's i386_mxcsr flags type does.
var MXCSRBits = []Flag{
	{"IE", 0, 1}, {"DE", 1, 1}, {"ZE", 2, 1}, {"OE", 3, 1}, {"UE", 4, 1}, {"PE", 5, 1},
	{"DAZ", 6, 1}, {"IM", 7, 1}, {"DM", 8, 1}, {"ZM", 9, 1}, {"OM", 10, 1}, {"UM", 11, 1},
	{"PM", 12, 1}, {"RC", 13, 2}, {"FZ", 15, 1},
}

// FSWBits names the x87 status word's fields (SDM Vol. 1 §8.1.3).
var FSWBits = []Flag{
	{"IE", 0, 1}, {"DE", 1, 1}, {"ZE", 2, 1}, {"OE", 3, 1}, {"UE", 4, 1}, {"PE", 5, 1},
	{"SF", 6, 1}, {"ES", 7, 1}, {"C0", 8, 1}, {"C1", 9, 1}, {"C2", 10, 1}, {"TOP", 11, 3},
	{"C3", 14, 1}, {"B", 15, 1},
}

// FCWBits names the x87 control word's fields (SDM Vol. 1 §8.1.5).
var FCWBits = []Flag{
	{"IM", 0, 1}, {"DM", 1, 1}, {"ZM", 2, 1}, {"OM", 3, 1}, {"UM", 4, 1}, {"PM", 5, 1},
	{"PC", 8, 2}, {"RC", 10, 2}, {"X", 12, 1},
}

// FXSAVEOffset returns where a register is in the FXSAVE area in its
// 64-bit format (SDM Vol. 1 §10.5.1, Table 10-2) and how many bytes of
// it are kept there; ok is false for the selectors, which that format
// does not keep, and for ftag, kept there abridged (see AbridgedTag).
func FXSAVEOffset(name string) (off, n int, ok bool) {
	if i, ok := indexed(name, "st", 8); ok {
		return 32 + 16*i, 10, true
	}
	if i, ok := indexed(name, "xmm", 16); ok {
		return 160 + 16*i, 16, true
	}
	switch name {
	case "fctrl":
		return 0, 2, true
	case "fstat":
		return 2, 2, true
	case "fop":
		return 6, 2, true
	case "fioff":
		return 8, 4, true
	case "fooff":
		return 16, 4, true
	case "mxcsr":
		return 24, 4, true
	}
	return 0, 0, false
}

// AbridgedTag is FXSAVE's tag byte for a full tag word: a bit set for
// each physical register that is not empty (tag 3).
func AbridgedTag(ftw uint16) byte {
	var b byte
	for i := range 8 {
		if (ftw>>(2*i))&3 != 3 {
			b |= 1 << i
		}
	}
	return b
}
