package symbols

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestORCAgreesWithCFI reads Debian's kernel's ORC tables and checks
// them against the other unwind table the same kernel carries, GCC's
// .debug_frame: at each address where ORC's entry changes inside a C
// function, both must put the caller's stack pointer at the same offset
// from RSP. They come from different tools (objtool, GCC), so the ORC
// decoding, its layout read from the kernel's DWARF, and the CFI are
// each checked by the other. They may differ only where GCC's CFI is
// known to be wrong: inline assembly that switches stacks.
func TestORCAgreesWithCFI(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	tb, err := Load(filepath.Join(k.Dir, "vmlinux"), "")
	if err != nil {
		t.Fatal(err)
	}
	o := tb.orcTab()
	if o == nil {
		t.Fatal("no ORC tables read from the kernel")
	}
	l, ok := tb.orcLayoutFromDWARF()
	if !ok {
		t.Fatal("no struct orc_entry in the kernel's DWARF")
	}
	byHeader := orcLayoutOld
	if tb.img.f.Section(".orc_header") != nil {
		byHeader = orcLayoutNew
	}
	if l != byHeader {
		t.Fatalf("struct orc_entry's layout %+v, the .orc_header says %+v", l, byHeader)
	}
	n := len(o.ipSec) / 4
	same, differ := 0, 0
	ft := tb.frameTab()
	for i := 0; i < n; i++ {
		pc := o.ip(i)
		e := o.entry(i)
		f := ft.find(pc)
		if f == nil || e.kind != orcCall {
			continue
		}
		st, err := f.rowFor(pc)
		if err != nil || st.cfaReg != RegRSP {
			continue
		}
		if e.spReg == orcRegSP && int64(e.spOff) == st.cfaOff {
			same++
			continue
		}
		if differ++; differ <= 10 {
			fn := tb.FuncAt(pc)
			t.Logf("%#x (%s): ORC sp reg %d%+d, CFI rsp%+d", pc, fn.Name, e.spReg, e.spOff, st.cfaOff)
		}
	}
	t.Logf("%d ORC entries; at %d of them CFI agrees, at %d it does not", n, same, differ)
	if same < n/4 || differ*100 > same {
		t.Fatalf("ORC and CFI agree at %d addresses and differ at %d", same, differ)
	}
}

// TestORCEntryLayouts decodes an entry in both formats the kernel has
// used (before and since Linux 6.4).
func TestORCEntryLayouts(t *testing.T) {
	ent := func(sp, bp int16, hi uint16) []byte {
		b := make([]byte, 6)
		binary.LittleEndian.PutUint16(b, uint16(sp))
		binary.LittleEndian.PutUint16(b[2:], uint16(bp))
		binary.LittleEndian.PutUint16(b[4:], hi)
		return b
	}
	cases := []struct {
		layout orcLayout
		hi     uint16 // sp_reg | bp_reg<<4 | the type byte <<8
		want   orcEntry
	}{
		{orcLayoutNew, orcRegSP | orcRegPrevSP<<4 | 2<<8, orcEntry{spOff: 16, bpOff: -16, spReg: orcRegSP, bpReg: orcRegPrevSP, kind: orcCall}},
		{orcLayoutNew, orcRegSP | 3<<8 | 1<<11, orcEntry{spOff: 16, bpOff: -16, spReg: orcRegSP, kind: orcRegs, signal: true}},
		{orcLayoutNew, 1 << 8, orcEntry{spOff: 16, bpOff: -16, kind: orcEnd}},
		{orcLayoutNew, orcRegSP, orcEntry{spOff: 16, bpOff: -16, spReg: orcRegSP, kind: orcUndefined}},
		{orcLayoutOld, orcRegSP | orcRegPrevSP<<4, orcEntry{spOff: 16, bpOff: -16, spReg: orcRegSP, bpReg: orcRegPrevSP, kind: orcCall}},
		{orcLayoutOld, orcRegSPIndirect | 2<<8, orcEntry{spOff: 16, bpOff: -16, spReg: orcRegSPIndirect, kind: orcPartial}},
		{orcLayoutOld, 1 << 10, orcEntry{spOff: 16, bpOff: -16, kind: orcEnd}},
		{orcLayoutOld, 0, orcEntry{spOff: 16, bpOff: -16, kind: orcUndefined}},
	}
	for i, c := range cases {
		o := &orcTable{ents: ent(16, -16, c.hi), layout: c.layout}
		if got := o.entry(0); got != c.want {
			t.Errorf("case %d: %+v, want %+v", i, got, c.want)
		}
	}
}

// TestORCFindUnsorted: a table not sorted by the build is sorted at
// load, and a lookup finds the entry at or below the address, only
// inside the text.
func TestORCFindUnsorted(t *testing.T) {
	const base = 0x1000
	ips := []uint64{0x2040, 0x2000, 0x2080}
	o := &orcTable{ipAddr: base, layout: orcLayoutNew, text: [][2]uint64{{0x2000, 0x2100}}}
	o.ipSec = make([]byte, 4*len(ips))
	o.ents = make([]byte, 6*len(ips))
	for i, ip := range ips {
		binary.LittleEndian.PutUint32(o.ipSec[4*i:], uint32(int32(ip-(base+uint64(4*i)))))
		binary.LittleEndian.PutUint16(o.ents[6*i:], uint16(8*(i+1))) // sp_offset tells them apart
		o.ents[6*i+4] = orcRegSP
		o.ents[6*i+5] = 2 // call
	}
	o.sortIPs()
	for _, c := range []struct {
		pc    uint64
		spOff int16
		ok    bool
	}{{0x2000, 16, true}, {0x203f, 16, true}, {0x2040, 8, true}, {0x20ff, 24, true}, {0x1fff, 0, false}, {0x2100, 0, false}} {
		e, ok := o.find(c.pc)
		if ok != c.ok || ok && e.spOff != c.spOff {
			t.Errorf("find(%#x) = %+v %v, want sp_offset %d %v", c.pc, e, ok, c.spOff, c.ok)
		}
	}
}
