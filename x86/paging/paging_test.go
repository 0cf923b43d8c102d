package paging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"vmdap/x86"
)

type mem []byte

func (m mem) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || int(off)+len(p) > len(m) {
		return 0, errors.New("out of range")
	}
	return copy(p, m[off:]), nil
}

func (m mem) put64(a, v uint64)        { binary.LittleEndian.PutUint64(m[a:], v) }
func (m mem) put32(a uint64, v uint32) { binary.LittleEndian.PutUint32(m[a:], v) }

func TestFourLevel(t *testing.T) {
	m := make(mem, 1<<20)
	// PML4 at 0x1000; va 0x0000_7f80_4020_3456 → 4 KiB page at 0x55000.
	va := uint64(0x7f8040203456)
	m.put64(0x1000+(va>>39&0x1ff)*8, 0x2000|3)
	m.put64(0x2000+(va>>30&0x1ff)*8, 0x3000|3)
	m.put64(0x3000+(va>>21&0x1ff)*8, 0x4000|3)
	m.put64(0x4000+(va>>12&0x1ff)*8, 0x55000|3)
	st := State{CR0: x86.CR0PG | x86.CR0PE, CR3: 0x1000, CR4: x86.CR4PAE, EFER: x86.EFERLMA}
	pa, rem, err := Translate(m, st, va)
	if err != nil || pa != 0x55456 || rem != 0x1000-0x456 {
		t.Fatalf("4K: %#x %#x %v", pa, rem, err)
	}
	// 2 MiB page: PDE with PS.
	va2 := uint64(0x40000000 + 0x123456)
	m.put64(0x1000, 0x2000|3)
	m.put64(0x2000+1*8, 0x5000|3)
	m.put64(0x5000, 0x600000|0x83)
	if pa, _, err := Translate(m, st, va2); err != nil || pa != 0x723456 {
		t.Fatalf("2M: %#x %v", pa, err)
	}
	// 1 GiB page: PDPTE with PS.
	m.put64(0x2000+2*8, 0x80000000|0x83)
	if pa, _, err := Translate(m, st, 0x80000000+0x1234567); err != nil || pa != 0x81234567 {
		t.Fatalf("1G: %#x %v", pa, err)
	}
	// Not present.
	var nm *NotMappedError
	if _, _, err := Translate(m, st, 0x300000000); !errors.As(err, &nm) {
		t.Fatalf("unmapped: %v", err)
	}
}

func TestThirtyTwoBitAndPAE(t *testing.T) {
	m := make(mem, 1<<20)
	// 32-bit paging: PD at 0x1000, 4 KiB page and a 4 MiB page (PSE).
	m.put32(0x1000+(0x00403123>>22)*4, 0x2000|3)
	m.put32(0x2000+((0x00403123>>12)&0x3ff)*4, 0x9000|3)
	st := State{CR0: x86.CR0PG | x86.CR0PE, CR3: 0x1000}
	if pa, _, err := Translate(m, st, 0x00403123); err != nil || pa != 0x9123 {
		t.Fatalf("32-bit 4K: %#x %v", pa, err)
	}
	m.put32(0x1000+(0x00c01234>>22)*4, 0x00c00000|0x83)
	st.CR4 = x86.CR4PSE
	if pa, _, err := Translate(m, st, 0x00c01234); err != nil || pa != 0x00c01234 {
		t.Fatalf("32-bit 4M: %#x %v", pa, err)
	}
	// PAE: PDPT at 0x3000 (32-byte aligned), 2 MiB page.
	m.put64(0x3000+1*8, 0x4000|1)
	m.put64(0x4000+2*8, 0x00400000|0x83)
	st = State{CR0: x86.CR0PG | x86.CR0PE, CR3: 0x3000, CR4: x86.CR4PAE}
	if pa, _, err := Translate(m, st, 0x40400000+0x1234); err != nil || pa != 0x401234 {
		t.Fatalf("PAE 2M: %#x %v", pa, err)
	}
	if st.Mode() != "PAE" || (State{}).Mode() != "none" {
		t.Fatal("modes")
	}
	if pa, _, _ := Translate(m, State{}, 0x1234); pa != 0x1234 {
		t.Fatal("no paging is identity")
	}
	_ = bytes.Equal
}
