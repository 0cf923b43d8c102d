package session

import "testing"

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
