package session

import (
	"bytes"
	"strings"
	"testing"
)

// memBytes is a scope whose memory is a byte slice at base (registers
// none): enough to format values.
type memBytes struct {
	staticScope
	base uint64
	mem  []byte
}

func (m *memBytes) readMem(p []byte, addr uint64) error {
	if addr < m.base || addr-m.base+uint64(len(p)) > uint64(len(m.mem)) {
		return errStatic
	}
	copy(p, m.mem[addr-m.base:])
	return nil
}

// TestFlexibleArrayValue: a flexible array member (no bound) shows as
// its address, with the string a char one holds, as gdb shows it (it
// showed as an empty list, or an empty string, and expanded to nothing).
func TestFlexibleArrayValue(t *testing.T) {
	sc := &memBytes{base: 0x1000, mem: []byte("pkt!\x00rest")}
	chars := value{typ: &ctype{kind: tArray, elem: typUChar, count: -1}, addr: 0x1000, inMem: true}
	if got := format(chars, sc, false); got != `0x1000 "pkt!"` {
		t.Errorf("u8 data[] = %s, want 0x1000 \"pkt!\"", got)
	}
	ints := value{typ: &ctype{kind: tArray, elem: typInt, count: -1}, addr: 0x1000, inMem: true}
	if got := format(ints, sc, false); got != "0x1000" {
		t.Errorf("int data[] = %s, want 0x1000", got)
	}
}

func (m *memBytes) writeMem(p []byte, addr uint64) error {
	if addr < m.base || addr-m.base+uint64(len(p)) > uint64(len(m.mem)) {
		return errStatic
	}
	copy(m.mem[addr-m.base:], p)
	return nil
}

var (
	typInt128  = &ctype{kind: tInt, name: "__int128", size: 16, signed: true}
	typUInt128 = &ctype{kind: tInt, name: "__int128 unsigned", size: 16}
)

// TestInt128Value: an __int128 shows all its 128 bits, in decimal and
// in hex (it was cut to its low 64), as gdb prints the values guest's
// i128, u128 and i128_small; an assignment writes all 16 bytes, the
// sign's in the high ones.
func TestInt128Value(t *testing.T) {
	mem := make([]byte, 48)
	copy(mem, []byte{0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(mem[16:], []byte{0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01})
	sc := &memBytes{base: 0x1000, mem: mem}
	i128 := value{typ: typInt128, inMem: true, addr: 0x1000}
	u128 := value{typ: typUInt128, inMem: true, addr: 0x1010}
	for _, c := range []struct {
		v    value
		hex  bool
		want string
	}{
		{i128, false, "-1180591620717411303427"},
		{i128, true, "0xffffffffffffffbffffffffffffffffd"},
		{u128, false, "1512366075204170947332355369683137040"},
		{u128, true, "0x123456789abcdeffedcba9876543210"},
	} {
		if got := format(c.v, sc, c.hex); got != c.want {
			t.Errorf("format(%s, hex %v) = %s, want %s", c.v.typ, c.hex, got, c.want)
		}
	}
	small := value{typ: typInt128, inMem: true, addr: 0x1020}
	if err := assign(small, sc, rvalue(typInt, uint64(0xfffffffffffffffb))); err != nil {
		t.Fatal(err)
	}
	if got := format(small, sc, false); got != "-5" {
		t.Errorf("i128_small = -5 reads back %s", got)
	}
	if got := format(small, sc, true); got != "0xfffffffffffffffffffffffffffffffb" {
		t.Errorf("i128_small = -5 reads back %s in hex", got)
	}
}

func enumOf(size int64, vals ...enumVal) *ctype {
	return &ctype{kind: tEnum, name: "enum e", size: size, signed: true, enums: vals}
}

// TestFlagEnumValue: an enumeration whose enumerators are single bits
// shows a value that is none of them as the bits it holds, as gdb 13
// shows the same declarations (P_R|P_X was shown as 5); any other keeps
// its number; an enumerator's value is NAME (value) as always.
func TestFlagEnumValue(t *testing.T) {
	perm := enumOf(4, enumVal{"P_R", 1}, enumVal{"P_W", 2}, enumVal{"P_X", 4})
	withZero := enumOf(4, enumVal{"Z", 0}, enumVal{"A", 1}, enumVal{"B", 2})
	multiBit := enumOf(4, enumVal{"A", 1}, enumVal{"B", 6})
	overlap := enumOf(4, enumVal{"A", 1}, enumVal{"B", 3})
	dup := enumOf(4, enumVal{"A", 1}, enumVal{"A2", 1}, enumVal{"C", 2})
	negative := enumOf(4, enumVal{"M", -1}, enumVal{"B", 2})
	high := enumOf(4, enumVal{"TOP", 1 << 31})
	for _, c := range []struct {
		t    *ctype
		u    uint64
		want string
	}{
		{perm, 5, "(P_R | P_X) (5)"},
		{perm, 10, "(P_W | unknown: 0x8) (10)"},
		{perm, 13, "(P_R | P_X | unknown: 0x8) (13)"},
		{perm, 8, "(unknown: 0x8) (8)"},
		{perm, 0, "0"},
		{perm, 2, "P_W (2)"},
		{withZero, 3, "(A | B) (3)"},
		{withZero, 0, "Z (0)"},
		{multiBit, 7, "7"},
		{overlap, 2, "2"},
		{dup, 3, "(A | C) (3)"},
		{negative, 3, "3"},
		{negative, 0xffffffffffffffff, "M (-1)"},
		{high, 0xffffffff80000001, "(TOP | unknown: 0x1) (2147483649)"},
	} {
		if got := format(rvalue(c.t, c.u), nil, false); got != c.want {
			t.Errorf("%v = %#x: %s, want %s", c.t.enums, c.u, got, c.want)
		}
	}
}

// TestCharArrayText: a char array stops at its first NUL only when
// nothing but NULs follows (ubytes' {'a', 0, 200, 'z'} showed as "a");
// bytes are escaped as gdb 13 escapes them (octal, C's letters), a char
// too; a value held in registers (no address) shows its bytes alike.
func TestCharArrayText(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300)
	mem := append([]byte("hello\tw\"d\x00\x00\x00a\x00\xc8za\x00x\x00\x00\x07\x1b'\\\x7f\n\re"), long...)
	sc := &memBytes{base: 0x1000, mem: mem}
	arr := func(elem *ctype, n int64, addr uint64) value {
		return value{typ: &ctype{kind: tArray, elem: elem, count: n, size: n}, inMem: true, addr: addr}
	}
	for _, c := range []struct {
		v    value
		want string
	}{
		{arr(typChar, 12, 0x1000), `"hello\tw\"d"`},
		{arr(typUChar, 4, 0x100c), `"a\000\310z"`},
		{arr(typChar, 5, 0x1010), `"a\000x\000"`},
		{arr(typChar, 8, 0x1015), `"\a\033'\\\177\n\re"`},
		{arr(typChar, 0, 0x1000), `0x1000 "hello\tw\"d"`}, // no elements: its address and the string there, as gdb
		{arr(typChar, 300, 0x101d), `"` + strings.Repeat("x", 256) + `"...`},
		{value{typ: &ctype{kind: tArray, elem: typChar, count: 3, size: 3}, raw: []byte{0xff, 'Q', 0}}, `"\377Q"`},
		{rvalue(typChar, 0), `0 '\000'`},
		{rvalue(typChar, '\''), `39 '\''`},
		{rvalue(typChar, '\\'), `92 '\\'`},
		{rvalue(typChar, '"'), `34 '"'`},
		{rvalue(typUChar, 200), `200 '\310'`},
		{rvalue(typChar, 0xffffffffffffffc8), `-56 '\310'`},
	} {
		if got := format(c.v, sc, false); got != c.want {
			t.Errorf("%s: %s, want %s", c.v.typ, got, c.want)
		}
	}
}
