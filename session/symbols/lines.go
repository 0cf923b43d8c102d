package symbols

import (
	"path/filepath"
	"sort"
	"strings"
)

// Location is a source position.
type Location struct {
	File string
	Line int
}

// rowAt returns the index of the line row covering pc, or -1.
func (t *Table) rowAt(pc uint64) int {
	i := sort.Search(len(t.Rows), func(i int) bool { return t.Rows[i].Addr > pc })
	for j := i - 1; j >= 0; j-- {
		if t.Rows[j].End {
			return -1
		}
		return j
	}
	return -1
}

// PCToLine returns the source position of pc.
func (t *Table) PCToLine(pc uint64) (Location, bool) {
	i := t.rowAt(pc)
	if i < 0 || t.Rows[i].Line == 0 {
		return Location{}, false
	}
	return Location{File: t.Rows[i].File, Line: t.Rows[i].Line}, true
}

// LineRange returns the address range [start, end) of the line block that
// contains pc: consecutive rows with the same file and line.
func (t *Table) LineRange(pc uint64) (start, end uint64, ok bool) {
	i := t.rowAt(pc)
	if i < 0 {
		return 0, 0, false
	}
	r := t.Rows[i]
	s := i
	for s > 0 && !t.Rows[s-1].End && t.Rows[s-1].File == r.File && t.Rows[s-1].Line == r.Line {
		s--
	}
	e := i + 1
	for e < len(t.Rows) && !t.Rows[e].End && t.Rows[e].File == r.File && t.Rows[e].Line == r.Line {
		e++
	}
	if e >= len(t.Rows) {
		return t.Rows[s].Addr, ^uint64(0), true
	}
	return t.Rows[s].Addr, t.Rows[e].Addr, true
}

// IsStmtStart reports whether pc begins a line-table statement row whose
// line differs from the row before it (a place a line step may stop).
func (t *Table) IsStmtStart(pc uint64) bool {
	i := sort.Search(len(t.Rows), func(i int) bool { return t.Rows[i].Addr >= pc })
	for ; i < len(t.Rows) && t.Rows[i].Addr == pc; i++ {
		if !t.Rows[i].End && t.Rows[i].IsStmt && t.Rows[i].Line != 0 {
			return true
		}
	}
	return false
}

// MatchFile returns the line-table file name that path names: the same
// cleaned path, else the longest common path suffix, else the same base
// name (when unambiguous).
func (t *Table) MatchFile(path string) (string, bool) {
	path = filepath.Clean(path)
	for _, f := range t.Files {
		if f == path {
			return f, true
		}
	}
	best, bestScore, ties := "", 0, 0
	pp := strings.Split(filepath.ToSlash(path), "/")
	for _, f := range t.Files {
		fp := strings.Split(filepath.ToSlash(f), "/")
		n := 0
		for n < len(pp) && n < len(fp) && pp[len(pp)-1-n] == fp[len(fp)-1-n] {
			n++
		}
		switch {
		case n > bestScore:
			best, bestScore, ties = f, n, 1
		case n == bestScore && n > 0:
			ties++
		}
	}
	if bestScore == 0 || ties > 1 && bestScore == 1 {
		return "", false
	}
	return best, true
}

// LineAddrs resolves file:line to breakpoint addresses. A line without
// code moves to the next line that has code in the same file; the
// returned line says where. A function's opening line resolves to the end
// of its prologue, as gdb and Delve do.
func (t *Table) LineAddrs(file string, line int) (addrs []uint64, actual int, ok bool) {
	f, ok := t.MatchFile(file)
	if !ok {
		return nil, 0, false
	}
	best := 0
	for _, r := range t.Rows {
		if r.File == f && !r.End && r.IsStmt && r.Line >= line && (best == 0 || r.Line < best) {
			best = r.Line
		}
	}
	if best == 0 {
		return nil, 0, false
	}
	// Lowest address of that line in each function (or sequence).
	perFunc := map[uint64]uint64{}
	for i, r := range t.Rows {
		if r.File != f || r.End || r.Line != best || !r.IsStmt {
			continue
		}
		// Skip rows continuing the same line block.
		if i > 0 && !t.Rows[i-1].End && t.Rows[i-1].File == f && t.Rows[i-1].Line == best {
			continue
		}
		key := r.Addr
		if fn := t.FuncAt(r.Addr); fn != nil {
			key = fn.Low
			if r.Addr == fn.Low {
				if pe, ok := t.PrologueEnd(fn); ok {
					r.Addr = pe
				}
			}
		}
		if cur, ok := perFunc[key]; !ok || r.Addr < cur {
			perFunc[key] = r.Addr
		}
	}
	for _, a := range perFunc {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	return addrs, best, len(addrs) > 0
}

// PrologueEnd returns the address after fn's prologue: the first line-table
// row inside the function at a line other than the function's first row
// (the rule gdb uses when a compiler does not mark prologue_end).
func (t *Table) PrologueEnd(fn *Func) (uint64, bool) {
	i := t.firstRowAt(fn.Low)
	if i >= len(t.Rows) || t.Rows[i].Addr != fn.Low {
		return 0, false
	}
	first := t.Rows[i].Line
	for j := i + 1; j < len(t.Rows) && t.Rows[j].Addr < fn.High; j++ {
		r := t.Rows[j]
		if r.End {
			break
		}
		if r.Line != first && r.Line != 0 && r.Addr > fn.Low {
			return r.Addr, true
		}
	}
	return 0, false
}

// HasLines reports whether any line row falls inside fn.
func (t *Table) HasLines(fn *Func) bool {
	i := t.firstRowAt(fn.Low)
	return i < len(t.Rows) && t.Rows[i].Addr < fn.High && !t.Rows[i].End
}

// firstRowAt returns the index of the first row at or after addr that is
// not the end of a sequence at addr (one compile unit's sequence may end
// where the next one's begins).
func (t *Table) firstRowAt(addr uint64) int {
	i := sort.Search(len(t.Rows), func(i int) bool { return t.Rows[i].Addr >= addr })
	for i < len(t.Rows) && t.Rows[i].End && t.Rows[i].Addr == addr {
		i++
	}
	return i
}

// FileLines returns the lines of file that have code (for
// breakpointLocations).
func (t *Table) FileLines(file string, from, to int) []int {
	f, ok := t.MatchFile(file)
	if !ok {
		return nil
	}
	seen := map[int]bool{}
	var out []int
	for _, r := range t.Rows {
		if r.File == f && !r.End && r.IsStmt && r.Line >= from && (to == 0 || r.Line <= to) && !seen[r.Line] {
			seen[r.Line] = true
			out = append(out, r.Line)
		}
	}
	sort.Ints(out)
	return out
}
