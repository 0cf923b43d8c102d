package core

import (
	"encoding/binary"
	"errors"
)

// unsnappy decodes a snappy block (the raw format, no framing: what
// makedumpfile -p stores per page) into dst, which must be exactly the
// decoded length the block announces.
func unsnappy(dst, src []byte) error {
	n, k := binary.Uvarint(src)
	if k <= 0 || n != uint64(len(dst)) {
		return errors.New("bad length header")
	}
	src = src[k:]
	d := 0
	for len(src) > 0 {
		tag := src[0]
		var length, offset int
		switch tag & 3 {
		case 0: // literal
			l := int(tag >> 2)
			src = src[1:]
			if l >= 60 {
				nb := l - 59
				if len(src) < nb {
					return errors.New("truncated literal length")
				}
				l = 0
				for i := 0; i < nb; i++ {
					l |= int(src[i]) << (8 * i)
				}
				src = src[nb:]
			}
			l++
			if l > len(src) || l > len(dst)-d {
				return errors.New("literal runs past its block")
			}
			copy(dst[d:], src[:l])
			d += l
			src = src[l:]
			continue
		case 1:
			if len(src) < 2 {
				return errors.New("truncated copy")
			}
			length = 4 + int(tag>>2&7)
			offset = int(tag>>5)<<8 | int(src[1])
			src = src[2:]
		case 2:
			if len(src) < 3 {
				return errors.New("truncated copy")
			}
			length = 1 + int(tag>>2)
			offset = int(binary.LittleEndian.Uint16(src[1:]))
			src = src[3:]
		case 3:
			if len(src) < 5 {
				return errors.New("truncated copy")
			}
			length = 1 + int(tag>>2)
			offset = int(binary.LittleEndian.Uint32(src[1:]))
			src = src[5:]
		}
		if offset <= 0 || offset > d || length > len(dst)-d {
			return errors.New("copy out of range")
		}
		for i := 0; i < length; i++ { // may overlap itself
			dst[d+i] = dst[d-offset+i]
		}
		d += length
	}
	if d != len(dst) {
		return errors.New("short block")
	}
	return nil
}
