package symbols

import (
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Func is one function.
type Func struct {
	Name     string
	Low      uint64
	High     uint64 // exclusive
	File     string
	Line     int
	entry    dwarf.Offset
	hasEntry bool
	cu       *dwarf.Entry
}

// Contains reports whether pc is inside the function.
func (f *Func) Contains(pc uint64) bool { return pc >= f.Low && pc < f.High }

// Row is one line-table row.
type Row struct {
	Addr   uint64
	File   string
	Line   int
	IsStmt bool
	End    bool // end of a sequence: no code at Addr
}

// Table is the symbol information of one guest image.
type Table struct {
	Path    string
	Entry   uint64
	Funcs   []*Func // sorted by Low
	Rows    []Row   // sorted by Addr
	Files   []string
	data    *dwarf.Data
	elfSyms []elf.Symbol // functions and objects, sorted by Value
	frames  *frameTable
	globals []*Var
	cus     []*dwarf.Entry
}

// ErrNoDebugInfo is returned (wrapped) when an image has no DWARF.
var ErrNoDebugInfo = errors.New("no DWARF debug information")

// Load reads the symbols of an ELF file; debugFile, when not empty, is a
// separate file holding the DWARF (as objcopy --only-keep-debug makes).
// An image without DWARF still loads: ELF symbols give function names.
func Load(path, debugFile string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: not an ELF file: %w", path, err)
	}
	t := &Table{Path: path, Entry: f.Entry}
	t.loadELFSymbols(f)
	dwf := f
	if debugFile != "" {
		dd, err := os.ReadFile(debugFile)
		if err != nil {
			return nil, fmt.Errorf("symbols file: %w", err)
		}
		if dwf, err = elf.NewFile(bytes.NewReader(dd)); err != nil {
			return nil, fmt.Errorf("symbols file %s: not an ELF file: %w", debugFile, err)
		}
		if len(t.elfSyms) == 0 {
			t.loadELFSymbols(dwf)
		}
	}
	if d, err := dwf.DWARF(); err == nil {
		t.data = d
		if err := t.loadDWARF(); err != nil {
			return nil, fmt.Errorf("%s: reading DWARF: %w", path, err)
		}
	}
	t.frames = loadFrames(dwf, f)
	t.addELFFuncs()
	return t, nil
}

// HasDWARF reports whether source-level information is available.
func (t *Table) HasDWARF() bool { return t.data != nil && len(t.Rows) > 0 }

func (t *Table) loadELFSymbols(f *elf.File) {
	syms, _ := f.Symbols()
	for _, s := range syms {
		typ := elf.ST_TYPE(s.Info)
		if s.Name == "" || s.Section == elf.SHN_UNDEF || (typ != elf.STT_FUNC && typ != elf.STT_OBJECT && typ != elf.STT_NOTYPE) {
			continue
		}
		if typ == elf.STT_NOTYPE && (strings.HasPrefix(s.Name, ".") || strings.HasPrefix(s.Name, "$")) {
			continue
		}
		t.elfSyms = append(t.elfSyms, s)
	}
	sort.SliceStable(t.elfSyms, func(i, j int) bool { return t.elfSyms[i].Value < t.elfSyms[j].Value })
}

func (t *Table) loadDWARF() error {
	r := t.data.Reader()
	files := map[string]bool{}
	for {
		cu, err := r.Next()
		if err != nil {
			return err
		}
		if cu == nil {
			break
		}
		if cu.Tag != dwarf.TagCompileUnit {
			r.SkipChildren()
			continue
		}
		t.cus = append(t.cus, cu)
		lr, err := t.data.LineReader(cu)
		if err == nil && lr != nil {
			var e dwarf.LineEntry
			for lr.Next(&e) == nil {
				name := ""
				if e.File != nil {
					name = filepath.Clean(e.File.Name)
				}
				t.Rows = append(t.Rows, Row{Addr: e.Address, File: name, Line: e.Line, IsStmt: e.IsStmt, End: e.EndSequence})
				if name != "" {
					files[name] = true
				}
			}
		}
		if err := t.loadCU(r, cu); err != nil {
			return err
		}
	}
	sort.SliceStable(t.Rows, func(i, j int) bool {
		if t.Rows[i].Addr != t.Rows[j].Addr {
			return t.Rows[i].Addr < t.Rows[j].Addr
		}
		return t.Rows[i].End && !t.Rows[j].End // an end row before a start at the same address
	})
	for f := range files {
		t.Files = append(t.Files, f)
	}
	sort.Strings(t.Files)
	sort.Slice(t.Funcs, func(i, j int) bool { return t.Funcs[i].Low < t.Funcs[j].Low })
	return nil
}

// loadCU records the functions and globals of one compile unit.
func (t *Table) loadCU(r *dwarf.Reader, cu *dwarf.Entry) error {
	if !cu.Children {
		return nil
	}
	lr, _ := t.data.LineReader(cu)
	var files []*dwarf.LineFile
	if lr != nil {
		files = lr.Files()
	}
	for {
		e, err := r.Next()
		if err != nil {
			return err
		}
		if e == nil || e.Tag == 0 {
			return nil
		}
		switch e.Tag {
		case dwarf.TagSubprogram:
			if fn := t.funcFromEntry(e, cu, files); fn != nil {
				t.Funcs = append(t.Funcs, fn)
			}
		case dwarf.TagVariable:
			if v := t.varFromEntry(e, cu, KindGlobal); v != nil && v.Loc != nil {
				t.globals = append(t.globals, v)
			}
		}
		if e.Children {
			r.SkipChildren()
		}
	}
}

func (t *Table) funcFromEntry(e *dwarf.Entry, cu *dwarf.Entry, files []*dwarf.LineFile) *Func {
	name, _ := e.Val(dwarf.AttrName).(string)
	low, ok := e.Val(dwarf.AttrLowpc).(uint64)
	if !ok || name == "" {
		return nil
	}
	high := low
	switch h := e.Val(dwarf.AttrHighpc).(type) {
	case uint64:
		high = h
	case int64:
		high = low + uint64(h)
	}
	if e.AttrField(dwarf.AttrHighpc) != nil && e.AttrField(dwarf.AttrHighpc).Class == dwarf.ClassConstant {
		if h, ok := e.Val(dwarf.AttrHighpc).(int64); ok {
			high = low + uint64(h)
		}
	}
	fn := &Func{Name: name, Low: low, High: high, entry: e.Offset, hasEntry: true, cu: cu}
	if line, ok := e.Val(dwarf.AttrDeclLine).(int64); ok {
		fn.Line = int(line)
	}
	if fi, ok := e.Val(dwarf.AttrDeclFile).(int64); ok && int(fi) < len(files) && files[fi] != nil {
		fn.File = filepath.Clean(files[fi].Name)
	}
	return fn
}

// addELFFuncs adds ELF function symbols that DWARF does not describe
// (assembly routines).
func (t *Table) addELFFuncs() {
	var extra []*Func
	for i, s := range t.elfSyms {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC && elf.ST_TYPE(s.Info) != elf.STT_NOTYPE {
			continue
		}
		if t.FuncAt(s.Value) != nil {
			continue
		}
		size := s.Size
		if size == 0 {
			// Up to the next symbol.
			for j := i + 1; j < len(t.elfSyms); j++ {
				if t.elfSyms[j].Value > s.Value {
					size = t.elfSyms[j].Value - s.Value
					break
				}
			}
		}
		if size == 0 || elf.ST_TYPE(s.Info) == elf.STT_NOTYPE && size > 1<<16 {
			continue
		}
		extra = append(extra, &Func{Name: s.Name, Low: s.Value, High: s.Value + size})
	}
	t.Funcs = append(t.Funcs, extra...)
	sort.SliceStable(t.Funcs, func(i, j int) bool { return t.Funcs[i].Low < t.Funcs[j].Low })
}

// FuncAt returns the function containing pc (the innermost, smallest one).
func (t *Table) FuncAt(pc uint64) *Func {
	i := sort.Search(len(t.Funcs), func(i int) bool { return t.Funcs[i].Low > pc })
	var best *Func
	for j := i - 1; j >= 0 && j >= i-8; j-- {
		f := t.Funcs[j]
		if f.Contains(pc) && (best == nil || f.High-f.Low < best.High-best.Low) {
			best = f
		}
	}
	return best
}

// FuncByName finds a function by name.
func (t *Table) FuncByName(name string) *Func {
	for _, f := range t.Funcs {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Symbol names the symbol (function or object) containing addr, for
// disassembly labels: name and start.
func (t *Table) Symbol(addr uint64) (string, uint64, bool) {
	if f := t.FuncAt(addr); f != nil {
		return f.Name, f.Low, true
	}
	i := sort.Search(len(t.elfSyms), func(i int) bool { return t.elfSyms[i].Value > addr })
	for j := i - 1; j >= 0 && j >= i-4; j-- {
		s := t.elfSyms[j]
		if addr >= s.Value && (addr < s.Value+s.Size || (s.Size == 0 && addr == s.Value)) {
			return s.Name, s.Value, true
		}
	}
	return "", 0, false
}

// SymbolAddr returns the address of a named ELF symbol.
func (t *Table) SymbolAddr(name string) (uint64, bool) {
	for _, s := range t.elfSyms {
		if s.Name == name {
			return s.Value, true
		}
	}
	return 0, false
}

// SymbolNames lists function and object symbol names (for completion).
func (t *Table) SymbolNames() []string {
	var n []string
	for _, s := range t.elfSyms {
		n = append(n, s.Name)
	}
	return n
}
