package disasm

import (
	"encoding/binary"
	"reflect"
	"testing"

	"vmdap/x86"
)

func TestSelectorLoads(t *testing.T) {
	mem := map[uint64]uint16{}
	read := func(va uint64, p []byte) bool {
		v, ok := mem[va]
		if !ok {
			return false
		}
		binary.LittleEndian.PutUint16(p, v)
		return true
	}
	flat := x86.SRegs{CR0: x86.CR0PE, SS: x86.Segment{DB: true}, DS: x86.Segment{Base: 0x100}}
	r := x86.Regs{RAX: 0x1234_0018, RBX: 0x2000, RSP: 0x8000}
	mem[0x2000+0x100+4] = 0x28 // ljmp *(%ebx): m16:32 through DS (base 0x100)
	mem[0x8000+4] = 0x08       // lret (32-bit): CS above EIP
	mem[0x8000] = 0x10         // pop %ds
	mem[0x8000+8] = 0x33       // iretq: CS
	mem[0x8000+32] = 0x2b      // iretq: SS
	for _, tc := range []struct {
		code []byte
		mode x86.Mode
		want []uint16
	}{
		{[]byte{0xea, 0x85, 0, 0x10, 0, 0x08, 0}, 32, []uint16{8}}, // ljmp $8,$0x100085
		{[]byte{0xff, 0x2b}, 32, []uint16{0x28}},                   // ljmp *(%ebx)
		{[]byte{0xcb}, 32, []uint16{8}},                            // lret
		{[]byte{0x8e, 0xd8}, 32, []uint16{0x18}},                   // mov %eax,%ds
		{[]byte{0x1f}, 32, []uint16{0x10}},                         // pop %ds
		{[]byte{0x48, 0xcf}, 64, []uint16{0x33, 0x2b}},             // iretq
		{[]byte{0x8e, 0xd0}, 64, []uint16{0x18}},                   // mov %eax,%ss
		{[]byte{0x89, 0xd8}, 32, nil},                              // mov %ebx,%eax: no segment
	} {
		d, err := Decode(tc.code, tc.mode, 0x1000)
		if err != nil {
			t.Fatal(err)
		}
		s := flat
		if tc.mode == 64 {
			s.EFER, s.CS.L = x86.EFERLMA, true
		}
		got, ok := d.SelectorLoads(r, s, read)
		if !ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("% x: %v %v, want %v", tc.code, got, ok, tc.want)
		}
	}
	// An unreadable operand is reported, not guessed.
	d, _ := Decode([]byte{0x1f}, 32, 0)
	if _, ok := d.SelectorLoads(x86.Regs{RSP: 0x9000}, flat, read); ok {
		t.Error("pop ds with an unreadable stack: ok")
	}
}
