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

func TestTables(t *testing.T) {
	m := make(mem, 1<<20)
	long := State{CR0: x86.CR0PG | x86.CR0PE, CR3: 0x1000, CR4: x86.CR4PAE, EFER: x86.EFERLMA}
	// PML4 0x1000 → PDPT 0x2000: a 1 GiB leaf, and PD 0x3000 → a 2 MiB
	// leaf and PT 0x4000 (whose entries map leaves, never walked as tables).
	m.put64(0x1000, 0x2000|3)
	m.put64(0x1000+511*8, 0x1000|3) // self-reference: walked once per level, listed once
	m.put64(0x2000, 0x3000|3)
	m.put64(0x2000+8, 0x40000000|0x83)
	m.put64(0x3000, 0x4000|3)
	m.put64(0x3000+8, 0x200000|0x83)
	m.put64(0x3000+16, 0x9000|2) // not present
	m.put64(0x4000, 0x55000|3)
	got, complete := Tables(m, long, 100)
	if want := []uint64{0x1000, 0x2000, 0x3000, 0x4000}; !complete || !equalSet(got, want) {
		t.Fatalf("4-level: %#x (complete %v), want %#x", got, complete, want)
	}
	if got, complete := Tables(m, long, 2); complete || len(got) != 2 {
		t.Fatalf("limit 2: %#x (complete %v)", got, complete)
	}
	// 32-bit: PD 0x6000 → PT 0x7000, a 4 MiB leaf (PSE).
	m.put32(0x6000, 0x7000|3)
	m.put32(0x6004, 0x400000|0x83)
	m.put32(0x7000, 0x8000|3)
	p32 := State{CR0: x86.CR0PG | x86.CR0PE, CR3: 0x6000, CR4: x86.CR4PSE}
	if got, _ := Tables(m, p32, 100); !equalSet(got, []uint64{0x6000, 0x7000}) {
		t.Fatalf("32-bit: %#x", got)
	}
	// PAE: the PDPT inside page 0xa000 → PD 0xb000 → PT 0xc000.
	m.put64(0xa020, 0xb000|1)
	m.put64(0xb000, 0xc000|3)
	m.put64(0xb008, 0x200000|0x83)
	pae := State{CR0: x86.CR0PG | x86.CR0PE, CR3: 0xa020, CR4: x86.CR4PAE}
	if got, _ := Tables(m, pae, 100); !equalSet(got, []uint64{0xa000, 0xb000, 0xc000}) {
		t.Fatalf("PAE: %#x", got)
	}
	if got, complete := Tables(m, State{}, 100); got != nil || !complete {
		t.Fatalf("paging off: %#x", got)
	}
}

func equalSet(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[uint64]bool{}
	for _, x := range a {
		in[x] = true
	}
	for _, x := range b {
		if !in[x] {
			return false
		}
	}
	return true
}
