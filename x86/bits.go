package x86

import "strings"

// Flag is one named bit (or bit field) of a register.
type Flag struct {
	Name string
	Bit  uint
	Len  uint // 1 unless the field is wider (IOPL, DR7 RW/LEN)
}

// RFLAGS bits (Intel SDM Vol. 1 §3.4.3, Figure 3-8).
const (
	FlagCF   = 1 << 0
	FlagPF   = 1 << 2
	FlagAF   = 1 << 4
	FlagZF   = 1 << 6
	FlagSF   = 1 << 7
	FlagTF   = 1 << 8
	FlagIF   = 1 << 9
	FlagDF   = 1 << 10
	FlagOF   = 1 << 11
	FlagNT   = 1 << 14
	FlagRF   = 1 << 16
	FlagVM   = 1 << 17
	FlagAC   = 1 << 18
	FlagVIF  = 1 << 19
	FlagVIP  = 1 << 20
	FlagID   = 1 << 21
	FlagsFix = 1 << 1 // reserved bit 1, always set
)

// RFLAGSBits names RFLAGS' bits.
var RFLAGSBits = []Flag{
	{"CF", 0, 1}, {"PF", 2, 1}, {"AF", 4, 1}, {"ZF", 6, 1}, {"SF", 7, 1}, {"TF", 8, 1},
	{"IF", 9, 1}, {"DF", 10, 1}, {"OF", 11, 1}, {"IOPL", 12, 2}, {"NT", 14, 1}, {"RF", 16, 1},
	{"VM", 17, 1}, {"AC", 18, 1}, {"VIF", 19, 1}, {"VIP", 20, 1}, {"ID", 21, 1},
}

// CR0 bits (SDM Vol. 3A §2.5, Figure 2-7).
const (
	CR0PE = 1 << 0
	CR0MP = 1 << 1
	CR0EM = 1 << 2
	CR0TS = 1 << 3
	CR0ET = 1 << 4
	CR0NE = 1 << 5
	CR0WP = 1 << 16
	CR0AM = 1 << 18
	CR0NW = 1 << 29
	CR0CD = 1 << 30
	CR0PG = 1 << 31
)

// CR0Bits names CR0's bits.
var CR0Bits = []Flag{
	{"PE", 0, 1}, {"MP", 1, 1}, {"EM", 2, 1}, {"TS", 3, 1}, {"ET", 4, 1}, {"NE", 5, 1},
	{"WP", 16, 1}, {"AM", 18, 1}, {"NW", 29, 1}, {"CD", 30, 1}, {"PG", 31, 1},
}

// CR4 bits (SDM Vol. 3A §2.5, Figure 2-7).
const (
	CR4VME        = 1 << 0
	CR4PVI        = 1 << 1
	CR4TSD        = 1 << 2
	CR4DE         = 1 << 3
	CR4PSE        = 1 << 4
	CR4PAE        = 1 << 5
	CR4MCE        = 1 << 6
	CR4PGE        = 1 << 7
	CR4PCE        = 1 << 8
	CR4OSFXSR     = 1 << 9
	CR4OSXMMEXCPT = 1 << 10
	CR4UMIP       = 1 << 11
	CR4LA57       = 1 << 12
	CR4VMXE       = 1 << 13
	CR4SMXE       = 1 << 14
	CR4FSGSBASE   = 1 << 16
	CR4PCIDE      = 1 << 17
	CR4OSXSAVE    = 1 << 18
	CR4SMEP       = 1 << 20
	CR4SMAP       = 1 << 21
	CR4PKE        = 1 << 22
)

// CR4Bits names CR4's bits.
var CR4Bits = []Flag{
	{"VME", 0, 1}, {"PVI", 1, 1}, {"TSD", 2, 1}, {"DE", 3, 1}, {"PSE", 4, 1}, {"PAE", 5, 1},
	{"MCE", 6, 1}, {"PGE", 7, 1}, {"PCE", 8, 1}, {"OSFXSR", 9, 1}, {"OSXMMEXCPT", 10, 1},
	{"UMIP", 11, 1}, {"LA57", 12, 1}, {"VMXE", 13, 1}, {"SMXE", 14, 1}, {"FSGSBASE", 16, 1},
	{"PCIDE", 17, 1}, {"OSXSAVE", 18, 1}, {"SMEP", 20, 1}, {"SMAP", 21, 1}, {"PKE", 22, 1},
}

// EFER bits (SDM Vol. 3A §2.2.1, Figure 2-4).
const (
	EFERSCE = 1 << 0
	EFERLME = 1 << 8
	EFERLMA = 1 << 10
	EFERNXE = 1 << 11
)

// EFERBits names EFER's bits.
var EFERBits = []Flag{{"SCE", 0, 1}, {"LME", 8, 1}, {"LMA", 10, 1}, {"NXE", 11, 1}}

// DR6 bits (SDM Vol. 3A §17.2.3).
const (
	DR6B0 = 1 << 0
	DR6BD = 1 << 13
	DR6BS = 1 << 14
	DR6BT = 1 << 15
)

// DR6Bits names DR6's bits.
var DR6Bits = []Flag{{"B0", 0, 1}, {"B1", 1, 1}, {"B2", 2, 1}, {"B3", 3, 1}, {"BD", 13, 1}, {"BS", 14, 1}, {"BT", 15, 1}}

// DR7Bits names DR7's bits and fields.
var DR7Bits = []Flag{
	{"L0", 0, 1}, {"G0", 1, 1}, {"L1", 2, 1}, {"G1", 3, 1}, {"L2", 4, 1}, {"G2", 5, 1},
	{"L3", 6, 1}, {"G3", 7, 1}, {"LE", 8, 1}, {"GE", 9, 1}, {"GD", 13, 1},
	{"RW0", 16, 2}, {"LEN0", 18, 2}, {"RW1", 20, 2}, {"LEN1", 22, 2},
	{"RW2", 24, 2}, {"LEN2", 26, 2}, {"RW3", 28, 2}, {"LEN3", 30, 2},
}

// Decode formats the set flags of v as "[ ZF IF ]"-style text, fields
// wider than one bit as NAME=value.
func Decode(v uint64, bits []Flag) string {
	var parts []string
	for _, f := range bits {
		field := (v >> f.Bit) & (1<<f.Len - 1)
		if f.Len == 1 {
			if field != 0 {
				parts = append(parts, f.Name)
			}
			continue
		}
		if field != 0 {
			parts = append(parts, f.Name+"="+itoa(field))
		}
	}
	return "[ " + strings.Join(parts, " ") + " ]"
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

// Mode is the decoding width of the CPU: 16, 32 or 64 bits.
type Mode int

// DecodeMode returns the code width of a CPU state, the argument x86asm
// wants: 64 in long mode with CS.L set, else 32 or 16 from CS.D/B when
// protected mode is on, else 16 (real mode). SDM Vol. 3A §5.2.1.
func DecodeMode(s SRegs) Mode {
	if s.CR0&CR0PE == 0 {
		return 16
	}
	if s.EFER&EFERLMA != 0 && s.CS.L {
		return 64
	}
	if s.CS.DB {
		return 32
	}
	return 16
}

// CodeAddr is the linear address of the next instruction: RIP in 64-bit
// mode, where CS has no base; elsewhere CS.base + IP (real mode's
// selector<<4, the reset vector's 0xffff0000 + 0xfff0, a based code
// segment in protected mode). Breakpoints, debug registers and memory
// reads are at linear addresses.
func CodeAddr(rip uint64, s SRegs) uint64 {
	switch DecodeMode(s) {
	case 64:
		return rip
	case 16:
		return (s.CS.Base + rip&0xffff) & 0xffffffff
	}
	return (s.CS.Base + rip&0xffffffff) & 0xffffffff
}

// CPL returns the current privilege level (CS.DPL in protected mode, the
// low bits of the SS selector being equal; SDM Vol. 3A §5.5).
func CPL(s SRegs) int {
	if s.CR0&CR0PE == 0 {
		return 0
	}
	return int(s.CS.Selector & 3)
}
