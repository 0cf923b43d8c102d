package core

import (
	"encoding/binary"
	"errors"
)

// unlzo decodes an LZO1X block (what makedumpfile -l and QEMU's
// dump-guest-memory -l store per page) into dst, which must be exactly
// its decoded length. It follows the format as the Linux kernel's
// Documentation/staging/lzo.rst describes it (version 0, no run-length
// extension), and checks every length and distance against src and dst.
func unlzo(dst, src []byte) error {
	var errShort = errors.New("truncated LZO block")
	s, d := 0, 0
	byteAt := func() (int, error) {
		if s >= len(src) {
			return 0, errShort
		}
		s++
		return int(src[s-1]), nil
	}
	// ext reads a length's extension: 255 for each zero byte, then the
	// first byte that is not zero.
	ext := func() (int, error) {
		n := 0
		for {
			b, err := byteAt()
			if err != nil {
				return 0, err
			}
			if b != 0 {
				return n + b, nil
			}
			if n += 255; n > len(dst) {
				return 0, errors.New("LZO length beyond the page")
			}
		}
	}
	literals := func(n int) error {
		if n > len(src)-s || n > len(dst)-d {
			return errShort
		}
		copy(dst[d:], src[s:s+n])
		s, d = s+n, d+n
		return nil
	}
	if len(src) == 0 {
		return errShort
	}
	state := 0
	switch first := int(src[0]); {
	case first == 17:
		return errors.New("a versioned (run-length) LZO stream, which vmdap does not read")
	case first > 17:
		s = 1
		n := first - 17
		if err := literals(n); err != nil {
			return err
		}
		state = min(n, 4)
	}
	for {
		t, err := byteAt()
		if err != nil {
			return errors.New("LZO block without its end marker")
		}
		var length, dist, next int
		switch {
		case t < 16 && state == 0: // a run of 4 or more literals
			length = t
			if length == 0 {
				e, err := ext()
				if err != nil {
					return err
				}
				length = 15 + e
			}
			if err := literals(length + 3); err != nil {
				return err
			}
			state = 4
			continue
		case t < 16: // 2 bytes within 1 KiB, or 3 bytes 2..3 KiB back
			h, err := byteAt()
			if err != nil {
				return err
			}
			length, dist = 2, h<<2+t>>2&3+1
			if state == 4 {
				length, dist = 3, dist+2048
			}
			next = t & 3
		case t < 64: // 0001HLLL (16..48 KiB back) or 001LLLLL (within 16 KiB)
			bits, base := 7, 2
			if t >= 32 {
				bits = 31
			}
			length = t & bits
			if length == 0 {
				e, err := ext()
				if err != nil {
					return err
				}
				length = bits + e
			}
			length += base
			if s+2 > len(src) {
				return errShort
			}
			le := int(binary.LittleEndian.Uint16(src[s:]))
			s += 2
			next = le & 3
			if t >= 32 {
				dist = le>>2 + 1
			} else {
				dist = 16384 + (t&8)<<11 + le>>2
				if dist == 16384 { // the end
					if d != len(dst) {
						return errors.New("LZO block shorter than its page")
					}
					return nil
				}
			}
		default: // 01LDDDSS: 3-4 bytes, 1LLDDDSS: 5-8 bytes, within 2 KiB
			h, err := byteAt()
			if err != nil {
				return err
			}
			if t < 128 {
				length = 3 + t>>5&1
			} else {
				length = 5 + t>>5&3
			}
			dist, next = h<<3+t>>2&7+1, t&3
		}
		if dist > d || length > len(dst)-d {
			return errors.New("LZO copy out of range")
		}
		for i := 0; i < length; i++ { // may overlap itself
			dst[d+i] = dst[d-dist+i]
		}
		d += length
		if err := literals(next); err != nil {
			return err
		}
		state = next
	}
}
