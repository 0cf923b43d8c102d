package symbols

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"vmdap/vmm/vmmtest"
)

// guestMemory reads a guest's code from its ELF file and its stack from
// a map (8-byte words): enough to unwind one frame.
type guestMemory struct {
	f     *elf.File
	stack map[uint64]uint64
}

func (m guestMemory) read(addr uint64) (uint64, error) {
	if v, ok := m.stack[addr]; ok {
		return v, nil
	}
	for _, s := range m.f.Sections {
		if s.Type == elf.SHT_PROGBITS && addr >= s.Addr && addr+8 <= s.Addr+s.Size {
			b := make([]byte, 8)
			if _, err := s.ReadAt(b, int64(addr-s.Addr)); err != nil {
				return 0, err
			}
			return binary.LittleEndian.Uint64(b), nil
		}
	}
	return 0, fmt.Errorf("no memory at %#x", addr)
}

// TestUnwindWithoutCFI: in assembly without CFI the innermost frame is
// unwound from what the routine's first instructions did by then: a
// routine that saves no frame pointer (asm_marker: nops) has its return
// address at the stack pointer wherever it stopped; one with push %rbp;
// mov %rsp,%rbp (asm_add) has it above the pushed %rbp once the push ran.
func TestUnwindWithoutCFI(t *testing.T) {
	g := vmmtest.BuildCorpus(t, "O0")
	tb, err := Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(g.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const sp, fp, ret, savedFP = 0x9f00, 0x9f80, 0x100400, 0x9fc0
	for _, c := range []struct {
		fn      string
		off     uint64
		stack   map[uint64]uint64
		wantRSP uint64
		wantRBP uint64
	}{
		{"asm_marker", 0, map[uint64]uint64{sp: ret}, sp + 8, fp},
		{"asm_marker", 1, map[uint64]uint64{sp: ret}, sp + 8, fp},
		{"asm_marker", 2, map[uint64]uint64{sp: ret}, sp + 8, fp},
		{"asm_add", 0, map[uint64]uint64{sp: ret}, sp + 8, fp},
		{"asm_add", 1, map[uint64]uint64{sp: savedFP, sp + 8: ret}, sp + 16, savedFP},
		{"asm_add", 4, map[uint64]uint64{fp: savedFP, fp + 8: ret}, fp + 16, savedFP},
	} {
		fn := tb.FuncByName(c.fn)
		if fn == nil {
			t.Fatalf("no %s", c.fn)
		}
		if tb.frameTab().find(fn.Low) != nil {
			t.Fatalf("%s has CFI; the test wants a routine without", c.fn)
		}
		var r Regs
		r.R[RegRIP], r.R[RegRSP], r.R[RegRBP] = fn.Low+c.off, sp, fp
		r.Valid[RegRIP], r.Valid[RegRSP], r.Valid[RegRBP] = true, true, true
		if c.off == 4 {
			r.R[RegRSP] = fp - 16 // after mov %rsp,%rbp and two more pushes
			r.R[RegRBP] = fp
		}
		caller, _, _, err := tb.Unwind(r, true, guestMemory{f, c.stack}.read)
		if err != nil {
			t.Errorf("%s+%d: %v", c.fn, c.off, err)
			continue
		}
		if caller.R[RegRIP] != ret || caller.R[RegRSP] != c.wantRSP || caller.R[RegRBP] != c.wantRBP {
			t.Errorf("%s+%d: caller rip %#x rsp %#x rbp %#x, want %#x %#x %#x", c.fn, c.off,
				caller.R[RegRIP], caller.R[RegRSP], caller.R[RegRBP], uint64(ret), c.wantRSP, c.wantRBP)
		}
	}
}

// TestELF32ProgramWithELF64Symbols: QEMU's Multiboot loader takes an
// ELF32 file, so a 64-bit kernel is launched as objcopy -O elf32-i386 of
// itself with the ELF64 file as its symbols. The image's code and DWARF
// are 64-bit: its address size, machine and call-frame rows must be the
// ELF64 file's.
func TestELF32ProgramWithELF64Symbols(t *testing.T) {
	g := vmmtest.BuildCorpus(t, "O0")
	g32 := vmmtest.BuildCorpus(t, "O0", vmmtest.ELF32)
	want, err := Load(g.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(g32.Path, g.Path)
	if err != nil {
		t.Fatal(err)
	}
	var diffs []string
	if got.AddrSize != want.AddrSize || got.Machine != want.Machine {
		diffs = append(diffs, fmt.Sprintf("address size %d and machine %s, want %d and %s", got.AddrSize, got.Machine, want.AddrSize, want.Machine))
	}
	n := 0
	for _, fd := range want.frameTab().fdes {
		for pc := fd.start; pc < fd.end; pc++ {
			w, _ := fd.rowFor(pc)
			var g rowState
			if f := got.frameTab().find(pc); f != nil {
				g, _ = f.rowFor(pc)
			}
			if g != w && n < 3 {
				diffs = append(diffs, fmt.Sprintf("CFI row at %#x: CFA r%d%+d, want r%d%+d", pc, g.cfaReg, g.cfaOff, w.cfaReg, w.cfaOff))
				n++
			}
		}
	}
	if len(diffs) > 0 {
		t.Errorf("the ELF32 container's 64-bit code read as 32-bit: %s", strings.Join(diffs, "; "))
	}
}

// TestFrameTableOddEntries: .debug_frame entries too short to hold a CIE
// id (a crafted image's; reading the id panicked), empty ones, one whose
// CIE pointer leads to garbage and one that runs past the section are
// passed over, and the well-formed FDE among them is still found.
func TestFrameTableOddEntries(t *testing.T) {
	var b []byte
	entry := func(body []byte) uint64 {
		off := uint64(len(b))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
		b = append(b, body...)
		return off
	}
	entry([]byte{0xaa, 0xbb})   // shorter than an id
	entry(nil)                  // empty (a terminator in .eh_frame only)
	entry([]byte{1, 2, 3})      // shorter than an id
	garbage := entry([]byte{1}) // no CIE can be read here
	// A CIE: id, version 1, no augmentation, code align 1, data align
	// -8, return address r16, then def_cfa r7+8 and offset r16 at cfa-8.
	cieOff := entry([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 1, 0x78, 16, 0x0c, 7, 8, 0x90, 1})
	fdeBody := func(cie, start, n uint64) []byte {
		p := binary.LittleEndian.AppendUint32(nil, uint32(cie))
		p = binary.LittleEndian.AppendUint64(p, start)
		return binary.LittleEndian.AppendUint64(p, n)
	}
	entry(fdeBody(garbage, 0x2000, 0x10)) // its CIE is garbage
	entry(fdeBody(cieOff, 0x1000, 0x20))
	entry(fdeBody(cieOff, 0x3000, 0x10)[:10]) // too short for its addresses
	// Last, an entry longer than what is left.
	b = binary.LittleEndian.AppendUint32(b, 0x100)
	b = append(b, 0xff, 0xff)

	ft := &frameTable{addrSize: 8}
	ft.parse(b, 0, false)
	if len(ft.fdes) != 1 || ft.fdes[0].start != 0x1000 || ft.fdes[0].end != 0x1020 {
		t.Fatalf("FDEs %+v, want the one at 0x1000-0x1020", ft.fdes)
	}
	if c := ft.fdes[0].cie; c == nil || c.dataAlign != -8 || c.raReg != 16 {
		t.Fatalf("its CIE %+v", c)
	}
}
