package symbols

import (
	"bytes"
	"encoding/binary"
)

// rd is a cursor over a byte slice that never panics: reading past the
// end sets bad and yields zeros, so a truncated or crafted section stops
// a decoder instead of crashing it.
type rd struct {
	b   []byte
	pos int
	bad bool
}

func (r *rd) eof() bool { return r.pos >= len(r.b) || r.bad }

func (r *rd) need(n int) bool {
	if n < 0 || r.pos < 0 || r.pos+n > len(r.b) || r.pos+n < r.pos {
		r.bad = true
		r.pos = len(r.b)
		return false
	}
	return true
}

func (r *rd) u8() uint8 {
	if !r.need(1) {
		return 0
	}
	v := r.b[r.pos]
	r.pos++
	return v
}

func (r *rd) u16() uint16 {
	if !r.need(2) {
		return 0
	}
	v := binary.LittleEndian.Uint16(r.b[r.pos:])
	r.pos += 2
	return v
}

func (r *rd) u24() uint32 {
	if !r.need(3) {
		return 0
	}
	v := uint32(r.b[r.pos]) | uint32(r.b[r.pos+1])<<8 | uint32(r.b[r.pos+2])<<16
	r.pos += 3
	return v
}

func (r *rd) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b[r.pos:])
	r.pos += 4
	return v
}

func (r *rd) u64() uint64 {
	if !r.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b[r.pos:])
	r.pos += 8
	return v
}

// uN reads an n-byte little-endian unsigned value (n is 1, 2, 4 or 8).
func (r *rd) uN(n int) uint64 {
	switch n {
	case 1:
		return uint64(r.u8())
	case 2:
		return uint64(r.u16())
	case 4:
		return uint64(r.u32())
	case 8:
		return r.u64()
	}
	r.bad = true
	return 0
}

func (r *rd) uleb() uint64 {
	var v uint64
	var shift uint
	for r.pos < len(r.b) {
		c := r.b[r.pos]
		r.pos++
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			return v
		}
	}
	r.bad = true
	return v
}

func (r *rd) sleb() int64 {
	var v int64
	var shift uint
	for r.pos < len(r.b) {
		c := r.b[r.pos]
		r.pos++
		if shift < 64 {
			v |= int64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
	r.bad = true
	return v
}

func (r *rd) skip(n uint64) {
	if n > uint64(len(r.b)-r.pos) {
		r.bad = true
		r.pos = len(r.b)
		return
	}
	r.pos += int(n)
}

// cstr returns the NUL-terminated bytes at the cursor (without the NUL).
func (r *rd) cstr() []byte {
	for i := r.pos; i < len(r.b); i++ {
		if r.b[i] == 0 {
			s := r.b[r.pos:i]
			r.pos = i + 1
			return s
		}
	}
	r.bad = true
	r.pos = len(r.b)
	return nil
}

// cstrAt returns the NUL-terminated string at off in a string section.
func cstrAt(sec []byte, off uint64) []byte {
	if off >= uint64(len(sec)) {
		return nil
	}
	s := sec[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return nil
}

// unitLength reads an initial length: the length and whether the unit is
// 64-bit DWARF (offsets of 8 bytes).
func (r *rd) unitLength() (uint64, bool) {
	n := uint64(r.u32())
	if n == 0xffffffff {
		return r.u64(), true
	}
	if n >= 0xfffffff0 {
		r.bad = true
	}
	return n, false
}
