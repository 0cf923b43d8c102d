package symbols

import (
	"encoding/binary"
	"errors"
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
	if byVersion := tb.orcLayoutByVersion(tb.img); l != byVersion {
		v, _ := tb.kernelVersion()
		t.Fatalf("struct orc_entry's layout %+v, the .orc_header and version %v say %+v", l, v, byVersion)
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
		{orcLayout63, orcRegSP | orcRegPrevSP<<4, orcEntry{spOff: 16, bpOff: -16, spReg: orcRegSP, bpReg: orcRegPrevSP, kind: orcCall}},
		{orcLayout63, orcRegSP | 1<<8 | 1<<10, orcEntry{spOff: 16, bpOff: -16, spReg: orcRegSP, kind: orcRegs, signal: true}},
		{orcLayout63, 1 << 11, orcEntry{spOff: 16, bpOff: -16, kind: orcEnd}},
		{orcLayout63, 0, orcEntry{spOff: 16, bpOff: -16, kind: orcUndefined}},
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

// TestUnwindORCKinds unwinds one frame of each kind ORC describes over a
// made-up stack: a call (return address below the caller's stack
// pointer, frame pointer saved beside it), a full pt_regs, an interrupt
// (iret) frame, a stack switch (the previous stack pointer saved at the
// top of the new stack), the end of the stack, and no information.
func TestUnwindORCKinds(t *testing.T) {
	const text, sp0, bp0 = 0xffffffff81000000, 0xffffc90000010000, 0xffffc90000010100
	mem := map[uint64]uint64{}
	read := func(a uint64) (uint64, error) {
		if v, ok := mem[a]; ok {
			return v, nil
		}
		return 0, errors.New("unmapped")
	}
	put := func(entries ...[6]byte) *orcTable {
		o := &orcTable{ipAddr: 0x1000, layout: orcLayoutNew, text: [][2]uint64{{text, text + 0x1000}}}
		for i, e := range entries {
			var ip [4]byte
			binary.LittleEndian.PutUint32(ip[:], uint32(int32(int64(text+uint64(16*i))-int64(0x1000+4*i))))
			o.ipSec = append(o.ipSec, ip[:]...)
			o.ents = append(o.ents, e[:]...)
		}
		return o
	}
	ent := func(spReg, bpReg uint8, spOff, bpOff int16, kind orcKind, signal bool) [6]byte {
		var b [6]byte
		binary.LittleEndian.PutUint16(b[:], uint16(spOff))
		binary.LittleEndian.PutUint16(b[2:], uint16(bpOff))
		b[4] = spReg | bpReg<<4
		b[5] = byte(kind)
		if signal {
			b[5] |= 8
		}
		return b
	}
	o := put(
		ent(orcRegSP, orcRegPrevSP, 24, -16, orcCall, false), // text+0
		ent(orcRegSP, orcRegUndefined, 0, 0, orcRegs, true),  // text+16
		ent(orcRegSP, orcRegUndefined, 0, 0, orcPartial, true),
		ent(orcRegSPIndirect, orcRegUndefined, 8, 0, orcCall, false),
		ent(0, 0, 0, 0, orcEnd, false),
		ent(orcRegSP, 0, 8, 0, orcUndefined, false),
	)
	var tb Table
	regs := func(pc uint64) Regs {
		var r Regs
		for i := range r.Valid {
			r.Valid[i] = true
		}
		r.R[RegRIP], r.R[RegRSP], r.R[RegRBP], r.R[3] = pc, sp0, bp0, 0x33
		return r
	}
	// A call: caller's SP = sp0+24, return address at sp0+16, its frame
	// pointer at sp0+8; what a call clobbers is not known.
	mem[sp0+16], mem[sp0+8] = text+0x800, 0xbbbb
	c, cfa, found, err := tb.unwindORC(o, regs(text+4), text+4, read)
	if !found || err != nil || cfa != sp0+24 || c.R[RegRSP] != sp0+24 || c.R[RegRIP] != text+0x800 || c.R[RegRBP] != 0xbbbb ||
		!c.Valid[3] || c.Valid[5] || c.Exact || c.Switched {
		t.Errorf("call: %+v cfa %#x %v %v", c, cfa, found, err)
	}
	// pt_regs at sp0: every register, the PC exact, another stack.
	for _, s := range ptRegsSlots {
		mem[sp0+uint64(s.off)] = 0x1000 + uint64(s.reg)
	}
	c, cfa, found, err = tb.unwindORC(o, regs(text+16), text+16, read)
	if !found || err != nil || cfa != sp0+ptRegsSize || c.R[RegRIP] != 0x1000+RegRIP || c.R[RegRSP] != 0x1000+RegRSP ||
		c.R[RegRBP] != 0x1000+RegRBP || c.R[15] != 0x1000+15 || !c.Exact || !c.Switched {
		t.Errorf("pt_regs: %+v cfa %#x %v %v", c, cfa, found, err)
	}
	// An iret frame at sp0: ip, cs, flags, sp, ss; the rest unchanged.
	mem[sp0], mem[sp0+24] = 0x4444, 0x5555
	c, cfa, found, err = tb.unwindORC(o, regs(text+32), text+32, read)
	if !found || err != nil || cfa != sp0+iretSize || c.R[RegRIP] != 0x4444 || c.R[RegRSP] != 0x5555 || c.R[RegRBP] != bp0 || !c.Exact {
		t.Errorf("iret frame: %+v cfa %#x %v %v", c, cfa, found, err)
	}
	// A stack switch: the old stack pointer is at [sp0]; +8 past the
	// return address there.
	old := uint64(0xffffc90000020000)
	mem[sp0], mem[old] = old, text+0x900
	c, _, found, err = tb.unwindORC(o, regs(text+48), text+48, read)
	if !found || err != nil || c.R[RegRSP] != old+8 || c.R[RegRIP] != text+0x900 || !c.Switched {
		t.Errorf("stack switch: %+v %v %v", c, found, err)
	}
	// The end: a caller without a PC.
	if c, _, found, err = tb.unwindORC(o, regs(text+64), text+64, read); !found || err != nil || c.Valid[RegRIP] {
		t.Errorf("end of stack: %+v %v %v", c, found, err)
	}
	// No information: said so; outside the text: not ORC's to unwind.
	if _, _, found, err := tb.unwindORC(o, regs(text+80), text+80, read); !found || err != errORCUndefined {
		t.Errorf("undefined entry: %v %v", found, err)
	}
	if _, _, found, _ := tb.unwindORC(o, regs(text+0x1000), text+0x1000, read); found {
		t.Errorf("outside the text: found an entry")
	}
	// Unreadable stack: an error, not a made-up caller.
	delete(mem, sp0+16)
	if _, _, found, err := tb.unwindORC(o, regs(text+4), text+4, read); !found || err == nil {
		t.Errorf("unreadable return address: %v %v", found, err)
	}
}

// TestParseKernelVersion: the major and minor version from linux_banner.
func TestParseKernelVersion(t *testing.T) {
	for _, c := range []struct {
		banner string
		want   [2]int
		ok     bool
	}{
		{"Linux version 6.1.0-40-cloud-amd64 (debian-kernel@lists.debian.org)", [2]int{6, 1}, true},
		{"Linux version 6.3.0 (x@y)", [2]int{6, 3}, true},
		{"Linux version 6.10-rc1", [2]int{6, 10}, true},
		{"Linux version 4.19", [2]int{4, 19}, true},
		{"Linux version 6", [2]int{}, false},
		{"Linux version .3", [2]int{}, false},
		{"linux version 6.3", [2]int{}, false},
		{"Linux version 6.\x00", [2]int{}, false},
	} {
		if v, ok := parseKernelVersion(c.banner); v != c.want || ok != c.ok {
			t.Errorf("%q: %v %v, want %v %v", c.banner, v, ok, c.want, c.ok)
		}
	}
}
