package symbols

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"sort"
	"strings"
)

// ORC: the Linux kernel's own unwind tables, which objtool writes for
// every instruction of an x86-64 kernel (.orc_unwind_ip: one 32-bit
// self-relative address per entry, sorted; .orc_unwind: one 6-byte
// struct orc_entry each). GCC's CFI covers C functions only: the entry
// code, the interrupt and exception stubs and the inline-assembly switch
// onto the IRQ stack have none, or CFI that is wrong there. ORC carries
// the unwinder through them: from an interrupt handler into the code it
// interrupted (a pt_regs frame), and from the IRQ stack back to the
// task's. The kernel, drgn and crash read it; gdb does not.
//
// The entry's bit layout comes from the kernel's own DWARF type (struct
// orc_entry). It changed twice: 6.3 put a signal bit before the end bit
// (type:2 signal:1 end:1), and 6.4 made type:3 with an end-of-stack type
// and the signal bit after it. Without that type, an .orc_header section
// (6.4 and later) says the newest; else linux_banner's version tells 6.3
// from the older ones.

// ORC register and frame kinds (arch/x86/include/asm/orc_types.h).
const (
	orcRegUndefined  = 0
	orcRegPrevSP     = 1
	orcRegDX         = 2
	orcRegDI         = 3
	orcRegBP         = 4
	orcRegSP         = 5
	orcRegR10        = 6
	orcRegR13        = 7
	orcRegBPIndirect = 8
	orcRegSPIndirect = 9
)

type orcKind uint8

const (
	orcUndefined orcKind = iota // no information: not ORC's to unwind
	orcEnd                      // the outermost frame
	orcCall                     // a return address below the caller's stack pointer
	orcRegs                     // a full struct pt_regs at the stack pointer
	orcPartial                  // an interrupt (iret) frame at the stack pointer
)

// pt_regs (x86-64): where each register is saved, by DWARF number, and
// the frame's size. The entry code's ABI, fixed since x86-64 Linux began.
var ptRegsSlots = [...]struct{ off, reg int }{
	{0, 15}, {8, 14}, {16, 13}, {24, 12}, {32, RegRBP}, {40, 3}, {48, 11}, {56, 10},
	{64, 9}, {72, 8}, {80, 0}, {88, 2}, {96, 1}, {104, 4}, {112, 5}, {128, RegRIP}, {152, RegRSP},
}

const (
	ptRegsSize = 168
	ptRegsIP   = 128 // the iret frame: ip, cs, flags, sp, ss
	iretSize   = 40
)

// orcLayout says where each field of an entry's 48 bits is.
type orcLayout struct {
	spReg, bpReg, typ, signal, end bitField
	hasEnd                         bool // the pre-6.4 format: type 0 call, 1 regs, 2 partial, and an end bit
}

type bitField struct{ pos, size uint }

func (f bitField) of(v uint64) uint64 {
	if f.size == 0 {
		return 0
	}
	return v >> f.pos & (1<<f.size - 1)
}

var (
	orcLayoutNew = orcLayout{spReg: bitField{32, 4}, bpReg: bitField{36, 4}, typ: bitField{40, 3}, signal: bitField{43, 1}}
	orcLayout63  = orcLayout{spReg: bitField{32, 4}, bpReg: bitField{36, 4}, typ: bitField{40, 2}, signal: bitField{42, 1}, end: bitField{43, 1}, hasEnd: true}
	orcLayoutOld = orcLayout{spReg: bitField{32, 4}, bpReg: bitField{36, 4}, typ: bitField{40, 2}, end: bitField{42, 1}, hasEnd: true}
)

type orcEntry struct {
	spOff, bpOff int16
	spReg, bpReg uint8
	kind         orcKind
	signal       bool
}

type orcTable struct {
	ipSec  []byte // .orc_unwind_ip as the image holds it
	ipAddr uint64 // its link address
	ents   []byte // .orc_unwind
	order  []uint32
	layout orcLayout
	text   [][2]uint64 // the executable sections' link ranges
}

// orcTab returns the image's ORC tables, read on first use (nil: none).
func (t *Table) orcTab() *orcTable {
	t.orcOnce.Do(func() { t.orc = t.loadORC() })
	return t.orc
}

func (t *Table) loadORC() *orcTable {
	if t.AddrSize != 8 || t.Machine != elf.EM_X86_64 {
		return nil
	}
	for _, im := range []*image{t.img, t.dimg} {
		if im.f.Type == elf.ET_REL {
			continue // a module's entries are relocations still
		}
		ipSec, unw := im.f.Section(".orc_unwind_ip"), im.f.Section(".orc_unwind")
		if ipSec == nil || unw == nil {
			continue
		}
		ips, _ := im.sectionBytes(ipSec)
		ents, _ := im.sectionBytes(unw)
		n := len(ips) / 4
		if n == 0 || len(ents)/6 < n {
			continue
		}
		o := &orcTable{ipSec: ips[:4*n], ipAddr: ipSec.Addr, ents: ents[:6*n]}
		var ok bool
		if o.layout, ok = t.orcLayoutFromDWARF(); !ok {
			o.layout = t.orcLayoutByVersion(im)
		}
		for _, s := range im.f.Sections {
			if s.Flags&elf.SHF_EXECINSTR != 0 && s.Flags&elf.SHF_ALLOC != 0 {
				o.text = append(o.text, [2]uint64{s.Addr, s.Addr + s.Size})
			}
		}
		o.sortIPs()
		return o
	}
	return nil
}

// sortIPs orders a table the build did not sort (the kernel's build
// sorts it; a lookup must not depend on that).
func (o *orcTable) sortIPs() {
	n := len(o.ipSec) / 4
	sorted := true
	for i := 1; i < n && sorted; i++ {
		sorted = o.ip(i-1) <= o.ip(i)
	}
	if sorted {
		return
	}
	o.order = make([]uint32, n)
	for i := range o.order {
		o.order[i] = uint32(i)
	}
	sort.SliceStable(o.order, func(i, j int) bool { return o.ip(int(o.order[i])) < o.ip(int(o.order[j])) })
}

// orcLayoutFromDWARF reads the entry's layout from the kernel's own
// struct orc_entry, when its DWARF has it.
func (t *Table) orcLayoutFromDWARF() (orcLayout, bool) {
	typ, ok := t.TypeByName("orc_entry")
	st, _ := typ.(*dwarf.StructType)
	if !ok || st == nil || st.ByteSize != 6 {
		return orcLayout{}, false
	}
	var l orcLayout
	for _, f := range st.Field {
		if f.BitSize <= 0 {
			continue
		}
		pos := f.DataBitOffset
		if pos == 0 && f.ByteSize > 0 { // DWARF 2/3 counts from the storage unit's top (DW_AT_bit_offset 0 too)
			pos = 8*f.ByteOffset + f.ByteSize*8 - f.BitOffset - f.BitSize
		}
		bf := bitField{uint(pos), uint(f.BitSize)}
		switch f.Name {
		case "sp_reg":
			l.spReg = bf
		case "bp_reg":
			l.bpReg = bf
		case "type":
			l.typ = bf
		case "signal":
			l.signal = bf
		case "end":
			l.end, l.hasEnd = bf, true
		}
	}
	if l.spReg.size != 4 || l.bpReg.size != 4 || l.typ.size == 0 || l.typ.pos+l.typ.size > 48 {
		return orcLayout{}, false
	}
	return l, true
}

// orcLayoutByVersion is the entry's layout for a kernel whose DWARF does
// not describe it: the newest with an .orc_header, else by the version.
func (t *Table) orcLayoutByVersion(im *image) orcLayout {
	if im.f.Section(".orc_header") != nil {
		return orcLayoutNew
	}
	if v, ok := t.kernelVersion(); ok && v[0]*1000+v[1] >= 6003 {
		return orcLayout63
	}
	return orcLayoutOld
}

// kernelVersion reads the major and minor version from the image's
// linux_banner ("Linux version 6.3.0-1-amd64 ...").
func (t *Table) kernelVersion() ([2]int, bool) {
	a, ok := t.LinkSymbol("linux_banner")
	if !ok {
		return [2]int{}, false
	}
	b, ok := t.ImageBytes(a, 32)
	if !ok {
		return [2]int{}, false
	}
	return parseKernelVersion(string(b))
}

func parseKernelVersion(banner string) ([2]int, bool) {
	rest, ok := strings.CutPrefix(banner, "Linux version ")
	if !ok {
		return [2]int{}, false
	}
	var v [2]int
	for i := range v {
		n, digits := 0, 0
		for ; digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' && digits < 6; digits++ {
			n = 10*n + int(rest[digits]-'0')
		}
		if digits == 0 {
			return [2]int{}, false
		}
		v[i], rest = n, rest[digits:]
		if i == 0 {
			if rest, ok = strings.CutPrefix(rest, "."); !ok {
				return [2]int{}, false
			}
		}
	}
	return v, true
}

// ip is entry i's link address (i in file order).
func (o *orcTable) ip(i int) uint64 {
	return o.ipAddr + uint64(4*i) + uint64(int64(int32(binary.LittleEndian.Uint32(o.ipSec[4*i:]))))
}

// find returns the entry that covers link address pc.
func (o *orcTable) find(pc uint64) (orcEntry, bool) {
	in := false
	for _, r := range o.text {
		if pc >= r[0] && pc < r[1] {
			in = true
			break
		}
	}
	n := len(o.ipSec) / 4
	at := func(k int) int {
		if o.order != nil {
			return int(o.order[k])
		}
		return k
	}
	k := sort.Search(n, func(k int) bool { return o.ip(at(k)) > pc }) - 1
	if !in || k < 0 {
		return orcEntry{}, false
	}
	return o.entry(at(k)), true
}

func (o *orcTable) entry(i int) orcEntry {
	b := o.ents[6*i:]
	v := uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint16(b[4:]))<<32
	l := o.layout
	e := orcEntry{spOff: int16(v), bpOff: int16(v >> 16), spReg: uint8(l.spReg.of(v)), bpReg: uint8(l.bpReg.of(v)), signal: l.signal.of(v) != 0}
	typ := l.typ.of(v)
	switch {
	case l.hasEnd && l.end.of(v) != 0:
		e.kind = orcEnd
	case l.hasEnd && e.spReg == orcRegUndefined:
		e.kind = orcUndefined
	case l.hasEnd && typ <= 2:
		e.kind = orcCall + orcKind(typ)
	case !l.hasEnd && typ <= 4:
		e.kind = orcKind(typ)
	default:
		e.kind = orcUndefined
	}
	return e
}

// errORCUndefined: the kernel's text at the PC has an ORC entry that
// says nothing is known (code objtool could not follow).
var errORCUndefined = errors.New("no unwind information there (ORC: undefined)")

// unwindORC computes the caller's registers from a frame's by the ORC
// entry at link address look, as the kernel's unwinder does. found is
// false outside the kernel's text; where its entry says nothing is known
// the error is errORCUndefined. At the outermost frame it returns a
// caller without a valid PC.
func (t *Table) unwindORC(o *orcTable, r Regs, look uint64, read func(uint64) (uint64, error)) (caller Regs, cfa uint64, found bool, err error) {
	e, ok := o.find(look)
	if !ok {
		return Regs{}, 0, false, nil
	}
	if e.kind == orcUndefined {
		return Regs{}, 0, true, errORCUndefined
	}
	caller = r
	if e.kind == orcEnd {
		caller.Valid[RegRIP] = false
		return caller, r.R[RegRSP], true, nil
	}
	reg := func(n int) (uint64, error) {
		if !r.Valid[n] {
			return 0, errors.New("ORC: the frame's register is not known")
		}
		return r.R[n], nil
	}
	var sp uint64
	indirect := false
	switch e.spReg {
	case orcRegSP:
		sp, err = reg(RegRSP)
		sp += uint64(int64(e.spOff))
	case orcRegBP:
		sp, err = reg(RegRBP)
		sp += uint64(int64(e.spOff))
	case orcRegSPIndirect:
		sp, err = reg(RegRSP)
		indirect = true
	case orcRegBPIndirect:
		sp, err = reg(RegRBP)
		sp += uint64(int64(e.spOff))
		indirect = true
	case orcRegDI:
		sp, err = reg(5)
	case orcRegDX:
		sp, err = reg(1)
	case orcRegR10:
		sp, err = reg(10)
	case orcRegR13:
		sp, err = reg(13)
	default:
		return Regs{}, 0, true, errORCUndefined
	}
	if err != nil {
		return Regs{}, 0, true, err
	}
	if indirect {
		if sp, err = read(sp); err != nil {
			return Regs{}, 0, true, err
		}
		if e.spReg == orcRegSPIndirect {
			sp += uint64(int64(e.spOff))
		}
	}
	caller.Switched = indirect
	switch e.kind {
	case orcCall:
		ra, err := read(sp - 8)
		if err != nil {
			return Regs{}, 0, true, err
		}
		// What a call does not preserve is not known in the caller.
		for _, n := range []int{0, 1, 2, 4, 5, 8, 9, 10, 11} {
			caller.Valid[n] = false
		}
		caller.R[RegRIP], caller.R[RegRSP] = ra, sp
		cfa = sp
	case orcRegs:
		for _, s := range ptRegsSlots {
			v, err := read(sp + uint64(s.off))
			if err != nil {
				return Regs{}, 0, true, err
			}
			caller.R[s.reg], caller.Valid[s.reg] = v, true
		}
		cfa, caller.Switched = sp+ptRegsSize, true
	case orcPartial:
		ip, err := read(sp)
		if err != nil {
			return Regs{}, 0, true, err
		}
		csp, err := read(sp + 24)
		if err != nil {
			return Regs{}, 0, true, err
		}
		caller.R[RegRIP], caller.R[RegRSP] = ip, csp
		cfa, caller.Switched = sp+iretSize, true
	}
	caller.Valid[RegRIP], caller.Valid[RegRSP] = true, true
	caller.Exact = e.signal || e.kind == orcRegs || e.kind == orcPartial
	switch e.bpReg {
	case orcRegUndefined:
		// Unchanged, or restored from pt_regs above.
	case orcRegPrevSP:
		if caller.R[RegRBP], err = read(sp + uint64(int64(e.bpOff))); err != nil {
			return Regs{}, 0, true, err
		}
		caller.Valid[RegRBP] = true
	case orcRegBP:
		bp, err := reg(RegRBP)
		if err == nil {
			bp, err = read(bp + uint64(int64(e.bpOff)))
		}
		if err != nil {
			return Regs{}, 0, true, err
		}
		caller.R[RegRBP], caller.Valid[RegRBP] = bp, true
	default:
		return Regs{}, 0, true, errors.New("ORC: unknown frame-pointer rule")
	}
	return caller, cfa, true, nil
}
