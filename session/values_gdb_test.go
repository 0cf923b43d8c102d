package session

import (
	"debug/elf"
	"errors"
	"regexp"
	"strings"
	"testing"

	"vmdap/session/symbols"
	"vmdap/vmm/vmmtest"
)

// imageScope is the scope of a guest image before it runs: memory is
// its loadable segments as a loader places them (zeros past their file
// bytes), names its globals, symbols its own. The values guest's globals
// are all initialised data, so this is what the guest holds at entry.
type imageScope struct {
	sym   *symbols.Set
	segs  []*elf.Prog
	types *typeCache
}

var errImage = errors.New("not in the image")

func newImageScope(t *testing.T, path string) *imageScope {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tb, err := symbols.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	sc := &imageScope{sym: symbols.NewSet(tb)}
	sc.types = newTypeCache(sc.sym)
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			sc.segs = append(sc.segs, p)
		}
	}
	return sc
}

func (sc *imageScope) readMem(p []byte, addr uint64) error {
	for _, s := range sc.segs {
		if addr < s.Vaddr || addr-s.Vaddr+uint64(len(p)) > s.Memsz {
			continue
		}
		clear(p)
		off := addr - s.Vaddr
		if off < s.Filesz {
			n := min(uint64(len(p)), s.Filesz-off)
			if _, err := s.ReadAt(p[:n], int64(off)); err != nil {
				return err
			}
		}
		return nil
	}
	return errImage
}

func (sc *imageScope) writeMem(p []byte, addr uint64) error { return errImage }
func (sc *imageScope) regGet(name string) (uint64, bool)    { return 0, false }
func (sc *imageScope) regSet(name string, v uint64) error   { return errImage }

func (sc *imageScope) lookupVar(name string) (value, bool, error) {
	g := sc.sym.GlobalByName(name)
	a, ok := sc.sym.SymbolAddr(name)
	if g == nil || !ok {
		return value{}, false, nil
	}
	return value{typ: fromDWARF(g.Type, sc.types), inMem: true, addr: a, name: name}, true, nil
}

func (sc *imageScope) lookupType(name string) (*ctype, bool) {
	return typeNamed(sc.sym, name, sc.types)
}

func (sc *imageScope) symbolName(addr uint64) (string, bool) { return symbolAt(sc.sym, addr) }

// repeatedNULs is gdb's run of NULs after a string in a char array.
var repeatedNULs = regexp.MustCompile(`, '\\000' <repeats \d+ times>$`)

// enumSuffix is vmdap's value after an enumeration's name or flags.
var enumSuffix = regexp.MustCompile(` \(-?\d+\)$`)

// comparable is gdb's or vmdap's text without where they differ by
// design: vmdap's value after an enumerator's name, and a char array's
// NULs after a string (gdb shows all but the last: "d\000\000").
func comparable(s string, t *ctype) string {
	switch {
	case t.kind == tEnum:
		return enumSuffix.ReplaceAllString(s, "")
	case t.kind == tStruct:
		return strings.ReplaceAll(s, " = ", ": ") // vmdap writes members as name: value
	case t.kind == tArray && t.el().kind == tChar && repeatedNULs.MatchString(s):
		// gdb's "Linux", '\000' <repeats 59 times>: vmdap's string ends
		// at its NUL.
		return repeatedNULs.ReplaceAllString(s, "")
	case t.kind == tArray && t.el().kind == tChar && strings.HasSuffix(s, `"`):
		str := strings.TrimSuffix(s, `"`)
		for strings.HasSuffix(str, `\000`) {
			str = strings.TrimSuffix(str, `\000`)
		}
		if !strings.Contains(str, `\000`) {
			return str + `"`
		}
	}
	return s
}

// TestValuesMatchGDB: the values guest's globals have the types and
// values gdb 13 shows for the same ELF file, in the same spelling; an
// integer in hex too (a char keeps its character in hex). vmdap's own forms are kept where they add to
// gdb's (an enumerator's value after its name: P_W (2)) or leave out
// nothing but noise (a string in a buffer stops at its NUL).
func TestValuesMatchGDB(t *testing.T) {
	path := vmmtest.BuildGuest(t, "values").Path
	exprs := []string{
		"atomic_ctr", "atomic_pt.x", "atomic_pt.y",
		"i128", "u128", "i128_small",
		"fl_g", "fl_arr", "fl_nan", "db_g", "db_tenth", "db_inf", "db_ninf", "db_nan",
		"ld_g", "ld_big", "ld_nan", "ld_ninf", "f128",
		"perms", "perms_odd", "perms_none", "perms_one", "sgn", "sgn_odd",
		"name_buf", "ubytes", "sbytes", "holes", "escapes", "cube",
		"escapes[0]", "escapes[1]", "escapes[2]", "escapes[3]", "ubytes[1]", "ubytes[2]", "sbytes[0]",
		"ppt", "ppt_bytes", "in_name", "vgrid", "nowhere", "past_points", "&handlers", "&points[2].y",
		"&sinkhole", "vp_const", "greeting", "cvpp", "handlers", "cfp",
		"grid", "grid[1]", "&grid[1]", "cv_int", "anon_h", "anon_h.b", "anon_h.hi",
		"late_bits", "late_bits.d", "late_bits.e", "late_bits.f",
	}
	matchGDB(t, path, exprs, gdbCheck{sameType: sameTypeName, hex: true})
}
