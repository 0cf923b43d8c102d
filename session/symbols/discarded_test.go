package symbols

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestDiscardedGlobalsLeftOut: the Globals of a unit of Debian's kernel
// leave out the variables the linker discarded with their section
// (Linux's __ADDRESSABLE() markers in .discard.addressable), whose DWARF
// address was relocated to 0 where no ELF symbol of theirs is, and keep
// the variable that really is at 0 (the first per-CPU variable). Both
// are found with Go's debug/elf and debug/dwarf, not vmdap's reader, in
// the units of start_kernel (init/main.c) and cpu_init (where the first
// per-CPU variable is defined).
func TestDiscardedGlobalsLeftOut(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	tb, err := Load(k.Vmlinux, "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(k.Vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	atZero, funcs := map[string]bool{}, map[string]uint64{}
	for _, s := range syms {
		if s.Value == 0 && elf.ST_TYPE(s.Info) == elf.STT_OBJECT {
			atZero[s.Name] = true
		}
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			funcs[s.Name] = s.Value
		}
	}
	d, err := f.DWARF()
	if err != nil {
		t.Fatal(err)
	}
	dropped, kept := 0, 0
	for _, fn := range []string{"start_kernel", "cpu_init"} {
		pc, ok := funcs[fn]
		if !ok {
			t.Fatalf("no function %s in the kernel's symbols", fn)
		}
		r := d.Reader()
		if _, err := r.SeekPC(pc); err != nil {
			t.Fatalf("%s's unit: %v", fn, err)
		}
		var zero []string // the unit's variables at address 0
		for {
			e, err := r.Next()
			if err != nil || e == nil || e.Tag == 0 {
				break
			}
			loc, _ := e.Val(dwarf.AttrLocation).([]byte)
			name, _ := e.Val(dwarf.AttrName).(string)
			if spec, ok := e.Val(dwarf.AttrSpecification).(dwarf.Offset); ok && name == "" {
				sr := d.Reader()
				sr.Seek(spec)
				if de, err := sr.Next(); err == nil && de != nil {
					name, _ = de.Val(dwarf.AttrName).(string)
				}
			}
			if e.Tag == dwarf.TagVariable && name != "" && len(loc) == 9 && loc[0] == 0x03 && binary.LittleEndian.Uint64(loc[1:]) == 0 {
				zero = append(zero, name)
			}
			if e.Children {
				r.SkipChildren()
			}
		}
		shown := map[string]bool{}
		for _, v := range tb.Globals(pc) {
			shown[v.Name] = true
		}
		for _, n := range zero {
			switch {
			case atZero[n]:
				kept++
				if !shown[n] {
					t.Errorf("%s's Globals leave out %s, which is at 0", fn, n)
				}
			default:
				dropped++
				if shown[n] {
					t.Errorf("%s's Globals show %s, which the linker discarded (address 0, no symbol)", fn, n)
				}
			}
		}
	}
	if dropped == 0 || kept == 0 {
		t.Errorf("%d discarded variables and %d at 0 in the units: the test checks nothing", dropped, kept)
	}
	t.Logf("%d discarded variables left out, %d at 0 kept", dropped, kept)
}
