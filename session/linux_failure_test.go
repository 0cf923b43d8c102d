package session

import "testing"

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
}
