package session

import (
	"fmt"
	"strconv"
	"strings"
)

// printLetter splits gdb's print format letters other than x (p/d, p/u,
// p/o, p/t, p/c, p/a, p/z, which the console reads as "/d EXPR") off
// an expression.
func printLetter(expr string) (letter byte, rest string) {
	e := strings.TrimSpace(expr)
	if len(e) > 3 && e[0] == '/' && strings.IndexByte("duotcaz", e[1]) >= 0 && (e[2] == ' ' || e[2] == '\t') {
		return e[1], strings.TrimSpace(e[2:])
	}
	return 0, expr
}

// formatLetter renders a scalar as gdb's print with a format letter
// shows it: /d signed and /u unsigned decimal, /o octal, /t binary, /c
// a character, /a an address with its symbol, /z zero-padded hex, each
// at the value's size.
func formatLetter(v value, sc scope, letter byte) (string, error) {
	switch v.typ.kind {
	case tInt, tChar, tBool, tEnum, tPtr, tFloat:
	default:
		return "", fmt.Errorf("/%c formats an integer, character, pointer or floating value, not %s (/x formats any value)", letter, v.typ)
	}
	size := v.typ.size
	if size <= 0 || size > 8 {
		size = 8
	}
	var u uint64
	if v.typ.kind == tFloat {
		// Its bits, as gdb 13 reads a floating value for these (p/d 2.7
		// is 4613262278296967578).
		b, err := v.bytes(sc)
		if err != nil {
			return "", err
		}
		if len(b) > 8 {
			b = b[:8]
		}
		u, size = intFrom(b, false), int64(len(b))
	} else {
		var err error
		if u, err = v.u64(sc); err != nil {
			return "", err
		}
	}
	u &= mask(size)
	switch letter {
	case 'd':
		s := int64(u)
		if size < 8 && u&(1<<(8*size-1)) != 0 {
			s = int64(u | ^mask(size))
		}
		return strconv.FormatInt(s, 10), nil
	case 'u':
		return strconv.FormatUint(u, 10), nil
	case 'o':
		if u == 0 {
			return "0", nil
		}
		return "0" + strconv.FormatUint(u, 8), nil
	case 't':
		return strconv.FormatUint(u, 2), nil
	case 'z':
		return fmt.Sprintf("0x%0*x", 2*size, u), nil
	case 'c':
		return format(rvalue(typChar, u&0xff), sc, false), nil
	case 'a':
		if name, ok := sc.symbolName(u); ok {
			return fmt.Sprintf("%#x <%s>", u, name), nil
		}
		return fmt.Sprintf("%#x", u), nil
	}
	return "", fmt.Errorf("unknown format letter /%c", letter)
}
