package rsp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Checksum is the modulo-256 sum of a packet's (escaped) data.
func Checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// Escape applies the binary escape: '#', '$', '}' and '*' become '}'
// followed by the byte XOR 0x20.
func Escape(data []byte) []byte {
	var out []byte
	for _, c := range data {
		switch c {
		case '#', '$', '}', '*':
			out = append(out, '}', c^0x20)
		default:
			out = append(out, c)
		}
	}
	return out
}

// Frame builds "$<escaped data>#<checksum>".
func Frame(data []byte) []byte {
	e := Escape(data)
	out := make([]byte, 0, len(e)+4)
	out = append(out, '$')
	out = append(out, e...)
	out = append(out, '#')
	out = append(out, fmt.Sprintf("%02x", Checksum(e))...)
	return out
}

// Errors from Decode.
var (
	ErrChecksum  = errors.New("rsp: checksum mismatch")
	ErrMalformed = errors.New("rsp: malformed packet")
)

// Decode takes the raw data between '$' and '#' and its two checksum
// digits, verifies the checksum, and returns the data with escapes and
// run-length encoding undone.
func Decode(raw []byte, cs []byte) ([]byte, error) {
	if len(cs) != 2 {
		return nil, ErrMalformed
	}
	want, err := strconv.ParseUint(string(cs), 16, 8)
	if err != nil {
		return nil, fmt.Errorf("%w: checksum %q", ErrMalformed, cs)
	}
	if Checksum(raw) != byte(want) {
		return nil, fmt.Errorf("%w: got %02x, packet says %02x", ErrChecksum, Checksum(raw), want)
	}
	return Expand(raw)
}

// Expand undoes escapes and run-length encoding ("X*n" repeats X n-29 more
// times, n being a printable character).
func Expand(raw []byte) ([]byte, error) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '}':
			if i+1 >= len(raw) {
				return nil, fmt.Errorf("%w: escape at the end", ErrMalformed)
			}
			i++
			out = append(out, raw[i]^0x20)
		case '*':
			if len(out) == 0 || i+1 >= len(raw) {
				return nil, fmt.Errorf("%w: run length without a byte", ErrMalformed)
			}
			i++
			n := int(raw[i]) - 29
			if n < 0 || n > 126-29 {
				return nil, fmt.Errorf("%w: run length %d", ErrMalformed, n)
			}
			last := out[len(out)-1]
			for k := 0; k < n; k++ {
				out = append(out, last)
			}
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

// Hex helpers.

// HexBytes decodes a hex string; "xx" bytes (QEMU's unavailable register)
// decode as zero.
func HexBytes(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("%w: odd hex length %d", ErrMalformed, len(s))
	}
	s2 := []byte(s)
	for i := 0; i < len(s2); i++ {
		if s2[i] == 'x' || s2[i] == 'X' {
			s2[i] = '0'
		}
	}
	b := make([]byte, len(s2)/2)
	if _, err := hex.Decode(b, s2); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, nil
}

// ParseHex parses a hex number (no prefix).
func ParseHex(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: hex number %q", ErrMalformed, s)
	}
	return v, nil
}

// splitOnce splits at the first sep.
func splitOnce(s string, sep byte) (string, string, bool) {
	i := bytes.IndexByte([]byte(s), sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// ReadPacket reads the next packet from r, acking it on ack (for servers,
// proxies and test stubs): it skips acks and noise, returns "\x03" for a
// break byte, and the decoded data of a packet.
func ReadPacket(r *bufio.Reader, ack io.Writer) (string, error) {
	for {
		b, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		if b == 0x03 {
			return "\x03", nil
		}
		if b != '$' {
			continue
		}
		raw, cs, err := readFrame(r, DefaultMaxPacket)
		if err != nil {
			return "", err
		}
		d, err := Decode(raw, cs)
		if err != nil {
			ack.Write([]byte{'-'})
			continue
		}
		ack.Write([]byte{'+'})
		return string(d), nil
	}
}
