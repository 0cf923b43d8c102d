package session

import (
	"bytes"
	"fmt"
	"strings"
)

// maxChars bounds the characters a string shows (gdb's print elements
// is 200).
const maxChars = 256

// readUpTo reads up to n bytes at addr: fewer where readable memory
// ends, nil when none is.
func readUpTo(sc scope, addr uint64, n int) []byte {
	b := make([]byte, n)
	if sc.readMem(b, addr) == nil {
		return b
	}
	got := 0
	for got < n && sc.readMem(b[got:got+1], addr+uint64(got)) == nil {
		got++
	}
	if got == 0 {
		return nil
	}
	return b[:got]
}

// quoteC quotes bytes as gdb quotes C characters and strings: C's
// escapes, and octal for any other byte outside printable ASCII (\000,
// \310; a hex escape would take in a hex digit after it).
func quoteC(b []byte, quote byte) string {
	var sb strings.Builder
	sb.WriteByte(quote)
	for _, c := range b {
		switch {
		case c == quote || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c >= '\a' && c <= '\r':
			sb.WriteByte('\\')
			sb.WriteByte("abtnvfr"[c-'\a'])
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&sb, `\%03o`, c)
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte(quote)
	return sb.String()
}

// cString is the NUL-terminated string at addr (a char pointer's, whose
// length nothing says), its first maxChars characters at most.
func cString(sc scope, addr uint64) string {
	b := readUpTo(sc, addr, maxChars)
	if b == nil {
		return "<unreadable>"
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return quoteC(b, '"')
}

// charArrayText shows a char array as a string: up to its first NUL
// when only NULs follow it (a string in its buffer), else all its bytes
// but a last NUL, as gdb shows them ("a\000\310z": the NUL hid the rest);
// its first maxChars, then "...".
func charArrayText(v value, sc scope) string {
	n := int(min(v.typ.count, maxChars))
	var b []byte
	if v.inMem {
		if b = readUpTo(sc, v.addr, n); b == nil && n > 0 {
			return "<unreadable>"
		}
	} else {
		b = v.raw[:min(n, len(v.raw))]
	}
	if i := bytes.IndexByte(b, 0); i >= 0 && len(bytes.TrimLeft(b[i:], "\x00")) == 0 {
		return quoteC(b[:i], '"')
	}
	s := b
	if int64(len(b)) == v.typ.count && len(b) > 0 && b[len(b)-1] == 0 {
		s = b[:len(b)-1]
	}
	out := quoteC(s, '"')
	if int64(len(b)) < v.typ.count {
		out += "..."
	}
	return out
}

// formatString is a Rust &str's text (up to max bytes, and a NUL), in
// Rust's escapes.
func formatString(sc scope, addr uint64, max int) string {
	b := readUpTo(sc, addr, min(max, maxChars))
	if b == nil {
		return "<unreadable>"
	}
	var sb strings.Builder
	sb.WriteByte('"')
	for _, c := range b {
		if c == 0 {
			break
		}
		switch {
		case c == '"' || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c == '\n':
			sb.WriteString(`\n`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, c)
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}
