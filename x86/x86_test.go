package x86

import (
	"reflect"
	"testing"
)

func TestDR7RoundTrip(t *testing.T) {
	in := [4]Slot{
		{Enabled: true, Addr: 0x1000, Access: AccessExec, Len: 1},
		{Enabled: true, Addr: 0x2000, Access: AccessWrite, Len: 8},
		{},
		{Enabled: true, Addr: 0x3002, Access: AccessReadWrite, Len: 2},
	}
	dr7, err := EncodeDR7(in)
	if err != nil {
		t.Fatal(err)
	}
	// L0, L1, L3, LE, GE; RW1=01 LEN1=10 (8 bytes); RW3=11 LEN3=01.
	want := uint64(1 | 1<<2 | 1<<6 | 1<<8 | 1<<9 | 1<<20 | 2<<22 | 3<<28 | 1<<30)
	if dr7 != want {
		t.Fatalf("DR7 = %#x, want %#x", dr7, want)
	}
	out := DecodeDR7(dr7, [4]uint64{0x1000, 0x2000, 0, 0x3002})
	in[2].Len = 1 // a disabled slot decodes with the exec encoding's length
	out[2] = in[2]
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("decode = %+v, want %+v", out, in)
	}
	if _, err := EncodeDR7([4]Slot{{Enabled: true, Addr: 0x2004, Access: AccessWrite, Len: 8}}); err == nil {
		t.Fatal("unaligned 8-byte slot accepted")
	}
	if _, err := EncodeDR7([4]Slot{{Enabled: true, Addr: 0x2000, Access: AccessWrite, Len: 3}}); err == nil {
		t.Fatal("3-byte slot accepted")
	}
	if got := HitSlots(0xffff4ff5); !reflect.DeepEqual(got, []int{0, 2}) {
		t.Fatalf("HitSlots = %v", got)
	}
}

func TestSplitRange(t *testing.T) {
	for _, tc := range []struct {
		addr uint64
		n    int
		want []int // lengths
	}{
		{0x1000, 8, []int{8}},
		{0x1000, 3, []int{2, 1}},
		{0x1001, 8, []int{1, 2, 4, 1}},
		{0x1000, 16, []int{8, 8}},
		{0x1004, 7, []int{4, 2, 1}},
	} {
		var got []int
		end := tc.addr
		for _, s := range SplitRange(tc.addr, tc.n) {
			if s.Addr != end || s.Addr%uint64(s.Len) != 0 {
				t.Fatalf("%#x+%d: piece %+v not contiguous or unaligned", tc.addr, tc.n, s)
			}
			end += uint64(s.Len)
			got = append(got, s.Len)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitRange(%#x, %d) = %v, want %v", tc.addr, tc.n, got, tc.want)
		}
	}
}

func TestRegisterNamesAndViews(t *testing.T) {
	var r Regs
	r.RAX = 0x1122334455667788
	for name, want := range map[string]uint64{"eax": 0x55667788, "ax": 0x7788, "al": 0x88, "ah": 0x77} {
		if v, ok := r.Get(name); !ok || v != want {
			t.Errorf("%s = %#x, want %#x", name, v, want)
		}
	}
	r.Set("eax", 1) // zero-extends, as in 64-bit mode
	if r.RAX != 1 {
		t.Fatalf("eax write: rax = %#x", r.RAX)
	}
	r.RAX = 0xffff
	r.Set("al", 0x12)
	if r.RAX != 0xff12 {
		t.Fatalf("al write: rax = %#x", r.RAX)
	}
	// DWARF numbering: 1 is rdx, 2 is rcx (psABI Figure 3.36).
	r.RDX, r.RCX = 11, 22
	if v, _ := DWARFReg(&r, 1); v != 11 {
		t.Fatal("DWARF 1 is not rdx")
	}
	if v, _ := DWARFReg(&r, 2); v != 22 {
		t.Fatal("DWARF 2 is not rcx")
	}
	for n := 0; n <= 16; n++ {
		name, ok := DWARFRegName(n)
		if !ok {
			t.Fatalf("no name for DWARF %d", n)
		}
		if back, _ := DWARFRegNum(name); back != n {
			t.Fatalf("DWARF %d → %s → %d", n, name, back)
		}
	}
}

func TestDecodeModeAndFlags(t *testing.T) {
	long := SRegs{CR0: CR0PE | CR0PG, EFER: EFERLMA | EFERLME, CS: Segment{L: true}}
	if DecodeMode(long) != 64 {
		t.Fatal("long mode")
	}
	if DecodeMode(SRegs{CR0: CR0PE, CS: Segment{DB: true}}) != 32 || DecodeMode(SRegs{}) != 16 {
		t.Fatal("32/16-bit modes")
	}
	if s := Decode(0x246, RFLAGSBits); s != "[ PF ZF IF ]" {
		t.Fatalf("rflags decode %q", s)
	}
	if s := Decode(0x3000, RFLAGSBits); s != "[ IOPL=3 ]" {
		t.Fatalf("iopl decode %q", s)
	}
}

// TestDescriptorFlags: a descriptor's high doubleword from the GDT
// entries of host-kvm.md's long-mode recipe decodes to the segment it
// describes, and packs back to its attribute bits.
func TestDescriptorFlags(t *testing.T) {
	for _, c := range []struct {
		desc uint64
		want Segment
	}{
		{0x00af9b000000ffff, Segment{Type: 11, S: true, Present: true, L: true, G: true}},  // 64-bit code
		{0x00cf93000000ffff, Segment{Type: 3, S: true, Present: true, DB: true, G: true}},  // data
		{0x00cf9b000000ffff, Segment{Type: 11, S: true, Present: true, DB: true, G: true}}, // 32-bit code
		{0x0000f3000000ffff, Segment{Type: 3, S: true, DPL: 3, Present: true}},             // user data, byte granular
		{0x0010890000000067, Segment{Type: 9, Present: true, AVL: true}},                   // TSS, AVL set
	} {
		hi := uint32(c.desc >> 32)
		var s Segment
		s.SetDescriptorFlags(hi)
		if s != c.want {
			t.Errorf("%#x: got %+v, want %+v", c.desc, s, c.want)
		}
		if got, want := s.DescriptorFlags(), hi&0x00f0ff00; got != want {
			t.Errorf("%#x: DescriptorFlags %#x, want %#x", c.desc, got, want)
		}
	}
}
