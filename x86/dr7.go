package x86

import "fmt"

// Access is the kind of access a debug-register slot watches (DR7 R/Wn,
// SDM Vol. 3A §17.2.4, Table 17-1 footnote: 00 exec, 01 write, 10 I/O,
// 11 read or write). x86 has no read-only data breakpoint.
type Access uint8

// DR7 R/W encodings.
const (
	AccessExec      Access = 0
	AccessWrite     Access = 1
	AccessIO        Access = 2
	AccessReadWrite Access = 3
)

func (a Access) String() string {
	switch a {
	case AccessExec:
		return "exec"
	case AccessWrite:
		return "write"
	case AccessIO:
		return "io"
	case AccessReadWrite:
		return "readWrite"
	}
	return fmt.Sprintf("Access(%d)", a)
}

// DR7 LEN encodings (SDM Vol. 3A §17.2.5): 00=1, 01=2, 11=4, 10=8 bytes.
func lenCode(n int) (uint64, bool) {
	switch n {
	case 1:
		return 0, true
	case 2:
		return 1, true
	case 4:
		return 3, true
	case 8:
		return 2, true
	}
	return 0, false
}

var codeLen = [4]int{1, 2, 8, 4}

// Slot is one DR0-DR3 breakpoint as DR7 describes it.
type Slot struct {
	Enabled bool
	Addr    uint64
	Access  Access
	Len     int // 1, 2, 4 or 8; 1 for exec
}

// ErrSlotAlign is returned for a watch length that is not 1, 2, 4 or 8, or
// an address that is not aligned to it.
type ErrSlotAlign struct {
	Addr uint64
	Len  int
}

func (e *ErrSlotAlign) Error() string {
	return fmt.Sprintf("debug register slot cannot watch %d bytes at %#x: length must be 1, 2, 4 or 8 and the address aligned to it", e.Len, e.Addr)
}

// EncodeDR7 builds DR7 from four slots: local-enable bits (Ln), R/Wn and
// LENn, plus LE/GE (bits 8-9) as recommended for exact data breakpoints.
func EncodeDR7(slots [4]Slot) (uint64, error) {
	var dr7 uint64
	for i, s := range slots {
		if !s.Enabled {
			continue
		}
		l := s.Len
		if s.Access == AccessExec {
			l = 1
		}
		code, ok := lenCode(l)
		if !ok || s.Addr%uint64(l) != 0 {
			return 0, &ErrSlotAlign{Addr: s.Addr, Len: s.Len}
		}
		dr7 |= 1 << (2 * uint(i))
		dr7 |= uint64(s.Access&3) << (16 + 4*uint(i))
		dr7 |= code << (18 + 4*uint(i))
	}
	if dr7 != 0 {
		dr7 |= 1 << 8 // LE
		dr7 |= 1 << 9 // GE
	}
	return dr7, nil
}

// DecodeDR7 splits DR7 and DR0-DR3 into slots; a slot is enabled when its
// local or global enable bit is set.
func DecodeDR7(dr7 uint64, addrs [4]uint64) [4]Slot {
	var out [4]Slot
	for i := range out {
		en := (dr7>>(2*uint(i)))&3 != 0
		rw := Access((dr7 >> (16 + 4*uint(i))) & 3)
		ln := codeLen[(dr7>>(18+4*uint(i)))&3]
		if rw == AccessExec {
			ln = 1
		}
		out[i] = Slot{Enabled: en, Addr: addrs[i], Access: rw, Len: ln}
	}
	return out
}

// HitSlots returns the slots DR6 reports as hit (B0-B3).
func HitSlots(dr6 uint64) []int {
	var s []int
	for i := 0; i < 4; i++ {
		if dr6&(1<<uint(i)) != 0 {
			s = append(s, i)
		}
	}
	return s
}

// SplitRange covers [addr, addr+n) with the fewest naturally aligned
// pieces of 1, 2, 4 or 8 bytes, the shapes a debug-register slot can
// watch. A 3-byte range at an aligned address becomes 2+1; an unaligned
// 8-byte range becomes up to four pieces.
func SplitRange(addr uint64, n int) []Slot {
	var out []Slot
	for n > 0 {
		size := 8
		for size > 1 && (addr%uint64(size) != 0 || size > n) {
			size /= 2
		}
		out = append(out, Slot{Enabled: true, Addr: addr, Len: size})
		addr += uint64(size)
		n -= size
	}
	return out
}
