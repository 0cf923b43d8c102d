package session

import (
	"strings"
	"testing"
)

// TestPrintk: the conversions a kernel message uses, with flags, width
// and sizes, the arguments after the fifth from the stack.
func TestPrintk(t *testing.T) {
	s := &Session{}
	regs := []uint64{0xffffffff, 42, 0x1f, 0xabc, 7}
	stack := []uint64{0xffffffffffffffff, 'x', 0x10}
	got := s.printk(nil, "exitcode=%08x %d %u %#x %-5d| %lld %c %lx%%%Z", regs, func(i int) uint64 { return stack[i] })
	const want = "exitcode=ffffffff 42 31 0xabc 7    | -1 x 10%%Z"
	if got != want {
		t.Errorf("printk:\n got %q\nwant %q", got, want)
	}
	// * takes an argument; sizes mask; a corrupt width is bounded.
	got = s.printk(nil, "[%*d|%d] %hhx %hd %99999999999999999999d.", []uint64{5, 42, 7, 0x1ff, 0xffff, 3}, func(int) uint64 { return 0 })
	const want2 = "[   42|7] ff -1 "
	if !strings.HasPrefix(got, want2) || len(got) > len(want2)+maxPrintkLine+8 {
		t.Errorf("printk: %.80q (%d bytes), want %q and a bounded width", got, len(got), want2)
	}
}

// TestIsMonitorCommand: "monitor CMD" is a command when CMD is a word; a
// variable named monitor stays an expression.
func TestIsMonitorCommand(t *testing.T) {
	for l, want := range map[string]bool{"monitor info mem": true, "monitor\tsystem_reset": true,
		"monitor": false, "monitor + 1": false, "monitor == 2": false, "monitors x": false} {
		if got := isMonitorCommand(l); got != want {
			t.Errorf("isMonitorCommand(%q) = %v", l, got)
		}
	}
}
