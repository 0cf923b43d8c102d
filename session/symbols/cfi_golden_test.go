package symbols

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// Register names as readelf prints them in CFI tables, by DWARF number
// (System V psABI x86-64 Figure 3.36; i386 psABI Table 2.14).
var (
	cfiRegs64 = []string{"rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"}
	cfiRegs32 = []string{"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip"}
)

// cfiRow is one row of readelf's interpreted CFI: the CFA rule and a
// rule per column, as text ("rsp+8", "c-16", "u", …).
type cfiRow struct {
	loc  uint64
	cfa  string
	regs []string
}

// cfiFDE is an FDE's address range and its rows (the CIE's initial row
// when the FDE has no instructions of its own).
type cfiFDE struct {
	lo, hi uint64
	cols   []string // column names after CFA ("rbp", …, "ra")
	rows   []cfiRow
}

// readelfCFI parses readelf --debug-dump=frames-interp for one section.
func readelfCFI(out, section string) []cfiFDE {
	var fdes []cfiFDE
	type table struct {
		cols []string
		rows []cfiRow
	}
	cies := map[string]table{}
	in := false
	var cur *table
	var curFDE *cfiFDE
	var curCIE string
	flush := func() {
		if curFDE != nil {
			if cur != nil && len(cur.rows) > 0 {
				curFDE.cols, curFDE.rows = cur.cols, cur.rows
			} else if c, ok := cies[curCIE]; ok {
				curFDE.cols = c.cols
				curFDE.rows = []cfiRow{{loc: curFDE.lo, cfa: c.rows[0].cfa, regs: c.rows[0].regs}}
			}
			fdes = append(fdes, *curFDE)
			curFDE = nil
		}
		cur = nil
	}
	var cieID string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Contents of the ") {
			flush()
			in = strings.Contains(l, " "+section+" ")
			continue
		}
		if !in {
			continue
		}
		f := strings.Fields(l)
		switch {
		case len(f) >= 4 && f[3] == "CIE":
			flush()
			cieID = f[0]
			cies[cieID] = table{}
			cur = &table{}
		case len(f) >= 5 && f[3] == "FDE":
			flush()
			curCIE = strings.TrimPrefix(f[4], "cie=")
			cieID = ""
			r := strings.TrimPrefix(f[5], "pc=")
			i := strings.Index(r, "..")
			lo, _ := strconv.ParseUint(r[:i], 16, 64)
			hi, _ := strconv.ParseUint(r[i+2:], 16, 64)
			curFDE = &cfiFDE{lo: lo, hi: hi}
			cur = &table{}
		case len(f) >= 2 && f[0] == "LOC" && cur != nil:
			cur.cols = f[2:]
		case len(f) >= 2 && cur != nil && cur.cols != nil:
			loc, err := strconv.ParseUint(f[0], 16, 64)
			if err != nil {
				continue
			}
			cur.rows = append(cur.rows, cfiRow{loc: loc, cfa: f[1], regs: f[2:]})
			if cieID != "" {
				cies[cieID] = *cur
			}
		}
	}
	flush()
	return fdes
}

// vmdapCFIRow renders vmdap's row at pc in readelf's notation.
func vmdapCFIRow(tb *Table, pc uint64, cols []string) (string, error) {
	names := cfiRegs64
	if tb.Machine.String() == "EM_386" {
		names = cfiRegs32
	}
	f := tb.frameTab().find(pc)
	if f == nil {
		return "", fmt.Errorf("no FDE")
	}
	st, err := f.rowFor(pc)
	if err != nil {
		return "", err
	}
	name := func(r int) string {
		if r >= 0 && r < len(names) {
			return names[r]
		}
		return fmt.Sprintf("r%d", r)
	}
	parts := []string{fmt.Sprintf("%s%+d", name(st.cfaReg), st.cfaOff)}
	for _, c := range cols {
		reg := -1
		if c == "ra" {
			reg = int(f.cie.raReg)
		} else {
			for i, n := range names {
				if n == c {
					reg = i
				}
			}
		}
		if reg < 0 || reg >= numRegs {
			parts = append(parts, "?")
			continue
		}
		ru := st.regs[reg]
		switch ru.kind {
		case ruleUndefined:
			parts = append(parts, "u")
		case ruleSame:
			parts = append(parts, "s")
		case ruleOffset:
			parts = append(parts, fmt.Sprintf("c%+d", ru.off))
		case ruleValOffset:
			parts = append(parts, fmt.Sprintf("v%+d", ru.off))
		case ruleRegister:
			parts = append(parts, name(ru.reg))
		}
	}
	return strings.Join(parts, " "), nil
}

// TestGoldenCFI: at every address each FDE covers, vmdap's CFI row (the
// CFA rule and each register's rule) is readelf's: .debug_frame's, and
// .eh_frame's where .debug_frame describes nothing (as gdb unwinds, and
// as rustc's precompiled core library needs: its code has only
// .eh_frame, beside crates built with debug information).
func TestGoldenCFI(t *testing.T) {
	needTool(t, "readelf")
	for _, img := range goldenImages(t) {
		t.Run(img.tag, func(t *testing.T) {
			tb := loadGolden(t, img)
			out := runTool(t, "readelf", "--debug-dump=frames-interp", img.path)
			sec := ".debug_frame"
			fdes := readelfCFI(out, ".debug_frame")
			for _, e := range readelfCFI(out, ".eh_frame") {
				overlaps := false
				for _, d := range fdes[:len(fdes):len(fdes)] {
					if e.lo < d.hi && d.lo < e.hi {
						overlaps = true
					}
				}
				if !overlaps {
					fdes = append(fdes, e)
					sec = ".debug_frame and .eh_frame"
				}
			}
			lo, hi := textRange(tb)
			checked, bad := 0, 0
			for _, fd := range fdes {
				if fd.lo < lo || fd.hi > hi || len(fd.rows) == 0 {
					continue // code the linker dropped (address 0) has no bytes to unwind
				}
				for pc := fd.lo; pc < fd.hi; pc++ {
					var row cfiRow
					for _, r := range fd.rows {
						if r.loc <= pc {
							row = r
						}
					}
					want := strings.Join(append([]string{row.cfa}, row.regs...), " ")
					got, err := vmdapCFIRow(tb, pc, fd.cols)
					checked++
					if err != nil || got != want {
						bad++
						if bad <= 10 {
							t.Errorf("%#x (FDE %#x..%#x, columns CFA %v): vmdap %q %v, readelf %q", pc, fd.lo, fd.hi, fd.cols, got, err, want)
						}
					}
				}
			}
			// Code no FDE covers (assembly without CFI) has no row.
			syms, _ := tb.img.f.Symbols()
			for _, s := range syms {
				covered := false
				for _, fd := range fdes {
					if s.Value >= fd.lo && s.Value < fd.hi {
						covered = true
					}
				}
				if s.Size > 0 && s.Value >= lo && s.Value < hi && !covered && tb.frameTab().find(s.Value) != nil {
					t.Errorf("%s at %#x: vmdap has CFI, readelf shows none", s.Name, s.Value)
				}
			}
			t.Logf("%s: %d addresses in %d FDEs", sec, checked, len(fdes))
			if checked == 0 {
				t.Fatalf("no FDE rows checked (readelf found %d FDEs in %s)", len(fdes), sec)
			}
			if bad > 10 {
				t.Errorf("%d of %d addresses differ", bad, checked)
			}
		})
	}
}
