package symbols

import (
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Location is a source position.
type Location struct {
	File string
	Line int
}

// unitRowsAt returns the rows of the unit whose code holds pc.
func (t *Table) unitRowsAt(pc uint64) []row {
	ci := t.unitForPC(pc)
	if ci < 0 {
		if fn := t.FuncAt(pc); fn != nil && fn.cu >= 0 {
			ci = fn.cu
		} else {
			return nil
		}
	}
	return t.rowsOf(ci)
}

// rowIndex returns the index of the row covering pc in rows, or -1.
// Several rows may share an address (location views): the last
// statement row among them describes it, as gdb reads it.
// A row of line 0 that is not a statement (compilers emit them for code
// of no particular line) does not begin a line: the line before it goes
// on, as gdb reads the table.
func rowIndex(rows []row, pc uint64) int {
	i := sort.Search(len(rows), func(i int) bool { return rows[i].addr > pc })
	if i == 0 || rows[i-1].flags&rowEnd != 0 {
		return -1
	}
	j := i - 1
	for j > 0 && transparent(rows[j]) && rows[j-1].flags&rowEnd == 0 {
		j--
	}
	for k := j; k >= 0 && rows[k].addr == rows[j].addr && rows[k].flags&rowEnd == 0; k-- {
		if rows[k].flags&rowStmt != 0 && rows[k].line != 0 {
			return k
		}
	}
	return j
}

// transparent reports a row that does not begin a line (see rowIndex).
func transparent(r row) bool { return r.line == 0 && r.flags&(rowStmt|rowEnd) == 0 }

// PCToLine returns the source position of pc.
func (t *Table) PCToLine(pc uint64) (Location, bool) {
	rows := t.unitRowsAt(pc)
	i := rowIndex(rows, pc)
	if i < 0 || rows[i].line == 0 {
		return Location{}, false
	}
	return Location{File: t.fileName(rows[i].file), Line: int(rows[i].line)}, true
}

func (t *Table) fileName(id int32) string {
	if id <= 0 || int(id) >= len(t.files) {
		return ""
	}
	return t.files[id]
}

// LineRange returns the address range [start, end) of the line block that
// contains pc: consecutive rows with the same file and line.
func (t *Table) LineRange(pc uint64) (start, end uint64, ok bool) {
	rows := t.unitRowsAt(pc)
	i := rowIndex(rows, pc)
	if i < 0 {
		return 0, 0, false
	}
	r := rows[i]
	same := func(x row) bool {
		return x.flags&rowEnd == 0 && (transparent(x) || x.file == r.file && x.line == r.line)
	}
	s := i
	for s > 0 && same(rows[s-1]) {
		s--
	}
	e := i + 1
	for e < len(rows) && same(rows[e]) {
		e++
	}
	if e >= len(rows) {
		return rows[s].addr, ^uint64(0), true
	}
	return rows[s].addr, rows[e].addr, true
}

// BeginsRow reports whether a line-table row (a statement or not) begins
// at pc: a step that lands there is at the start of that row's line, not
// in the middle of it.
func (t *Table) BeginsRow(pc uint64) bool {
	rows := t.unitRowsAt(pc)
	i := sort.Search(len(rows), func(i int) bool { return rows[i].addr >= pc })
	for ; i < len(rows) && rows[i].addr == pc; i++ {
		if rows[i].flags&rowEnd == 0 && !transparent(rows[i]) {
			return true
		}
	}
	return false
}

// NextRow returns the address of the first row after pc (of any line, or
// a sequence's end): where the row holding pc ends, as gdb's
// find_pc_line ends a line.
func (t *Table) NextRow(pc uint64) (uint64, bool) {
	rows := t.unitRowsAt(pc)
	i := sort.Search(len(rows), func(i int) bool { return rows[i].addr > pc })
	if i >= len(rows) {
		return 0, false
	}
	return rows[i].addr, true
}

// IsStmtStart reports whether pc begins a line-table statement row (a
// place a line step may stop).
func (t *Table) IsStmtStart(pc uint64) bool {
	rows := t.unitRowsAt(pc)
	i := sort.Search(len(rows), func(i int) bool { return rows[i].addr >= pc })
	for ; i < len(rows) && rows[i].addr == pc; i++ {
		if rows[i].flags&(rowEnd|rowStmt) == rowStmt && rows[i].line != 0 {
			return true
		}
	}
	return false
}

// Files returns the source files the line tables name, sorted.
func (t *Table) Files() []string {
	out := make([]string, 0, len(t.files))
	for _, f := range t.files[min(1, len(t.files)):] {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// matchFiles returns the ids of the line-table files path names: the same
// cleaned path; else the files with the longest common path suffix (at
// least the base name), when that is unambiguous or longer than the base
// name alone.
func (t *Table) matchFiles(path string) []int32 {
	path = filepath.ToSlash(filepath.Clean(path))
	base := path[strings.LastIndexByte(path, '/')+1:]
	cands := t.byBase[base]
	for _, id := range cands {
		if t.files[id] == path {
			return []int32{id}
		}
	}
	pp := strings.Split(path, "/")
	var best []int32
	bestScore := 0
	for _, id := range cands {
		fp := strings.Split(t.files[id], "/")
		n := 0
		for n < len(pp) && n < len(fp) && pp[len(pp)-1-n] == fp[len(fp)-1-n] {
			n++
		}
		switch {
		case n > bestScore:
			best, bestScore = []int32{id}, n
		case n == bestScore && n > 0:
			best = append(best, id)
		}
	}
	if bestScore == 0 || len(best) > 1 && bestScore == 1 {
		return nil
	}
	return best
}

// MatchFile returns the line-table file name that path names.
func (t *Table) MatchFile(path string) (string, bool) {
	ids := t.matchFiles(path)
	if len(ids) == 0 {
		return "", false
	}
	return t.files[ids[0]], true
}

// eachRowOf calls fn with the rows of every unit naming one of ids.
func (t *Table) eachRowOf(ids []int32, fn func(rows []row)) {
	seen := map[int32]bool{}
	for _, id := range ids {
		for _, ci := range t.fileUnits[id] {
			if !seen[ci] {
				seen[ci] = true
				fn(t.rowsOf(ci))
			}
		}
	}
}

func hasID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// LineAddrs resolves file:line to breakpoint addresses. A line without
// code moves to the next line that has code in the same file; the
// returned line says where. A function's opening line resolves to the end
// of its prologue, as gdb and Delve do.
func (t *Table) LineAddrs(file string, line int) (addrs []uint64, actual int, ok bool) {
	ids := t.matchFiles(file)
	if len(ids) == 0 {
		return nil, 0, false
	}
	best := 0
	t.eachRowOf(ids, func(rows []row) {
		for _, r := range rows {
			if r.flags&(rowEnd|rowStmt) == rowStmt && int(r.line) >= line && (best == 0 || int(r.line) < best) && hasID(ids, r.file) {
				best = int(r.line)
			}
		}
	})
	if best == 0 {
		return nil, 0, false
	}
	// Lowest address of that line in each block (function, lexical block
	// or inlined copy), as gdb binds it.
	perBlock := map[uint64]uint64{}
	moved := false
	t.eachRowOf(ids, func(rows []row) {
		for i, r := range rows {
			if int(r.line) != best || r.flags&(rowEnd|rowStmt) != rowStmt || !hasID(ids, r.file) {
				continue
			}
			// Skip rows continuing the same line block.
			if i > 0 && rows[i-1].flags&rowEnd == 0 && rows[i-1].file == r.file && int(rows[i-1].line) == best {
				continue
			}
			addr := r.addr
			if fn := t.FuncAt(addr); fn != nil && addr == fn.Low {
				if pe, ok := t.PrologueEnd(fn); ok && pe != addr {
					addr, moved = pe, true
				}
			}
			key := t.blockAt(addr)
			if key == 0 {
				key = addr
			}
			if cur, ok := perBlock[key]; !ok || addr < cur {
				perBlock[key] = addr
			}
		}
	})
	for _, a := range perBlock {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	addrs = slices.Compact(addrs)
	if len(addrs) == 0 {
		return nil, 0, false
	}
	// After a prologue it stops on the body's first line, and says so,
	// as gdb does.
	if moved {
		if loc, ok := t.PCToLine(addrs[0]); ok && hasFileName(t, ids, loc.File) {
			best = loc.Line
		}
		// Where inlined calls begin, on the line of the call (the
		// breakpoint stops in the function, at the call).
		if c, ok := t.callLineAt(addrs[0]); ok && hasFileName(t, ids, c.CallFile) {
			best = c.CallLine
		}
	}
	return addrs, best, true
}

func hasFileName(t *Table, ids []int32, name string) bool {
	for _, id := range ids {
		if t.files[id] == name {
			return true
		}
	}
	return false
}

// PrologueEnd returns the address after fn's prologue: where the line
// table first marks prologue_end (LLVM's compilers mark it, at the entry
// when there is no prologue), else the end of the row the entry is in (the
// next row at a higher address, on any line: gdb skips GCC's push
// %rbp; mov %rsp,%rbp and then goes on to the end of that row).
// An assembly routine (a function without a DWARF description) has no
// prologue to skip: it stops at its first instruction, as gdb does.
//
// Optimised code (a unit GCC or clang compiled with -O1 and above) has no
// prologue to skip either: its variables' locations are valid from the
// entry on, and gdb's breakpoints stop there (a step in still skips a
// frame setup, as gdb's does: session's stepInTarget).
func (t *Table) PrologueEnd(fn *Func) (uint64, bool) {
	if fn.die == 0 || fn.cu < 0 || t.units[fn.cu].lang == langMipsAssembler {
		// Assembly (also gas's DW_TAG_subprogram for a .type @function
		// routine): no prologue to skip.
		return 0, false
	}
	if t.units[fn.cu].optimized() {
		return fn.Low, true
	}
	rows := t.unitRowsAt(fn.Low)
	i := firstRowAt(rows, fn.Low)
	if i >= len(rows) || rows[i].addr != fn.Low {
		return 0, false
	}
	for j := i; j < len(rows) && rows[j].addr < fn.High && rows[j].flags&rowEnd == 0; j++ {
		if rows[j].flags&rowPrologueEnd != 0 {
			// At the entry itself when the function has no prologue
			// (clang without a frame pointer): gdb 13 stops there too.
			return rows[j].addr, true
		}
	}
	for j := i + 1; j < len(rows) && rows[j].addr < fn.High; j++ {
		r := rows[j]
		if r.flags&rowEnd != 0 {
			break
		}
		if r.addr > fn.Low && r.line != 0 {
			// The end of the entry's row, on whatever line: a one-line
			// function's body row repeats the entry's line.
			return r.addr, true
		}
	}
	return 0, false
}

// langMipsAssembler is DW_LANG_Mips_Assembler, what gas writes.
const langMipsAssembler = 0x8001

// HasLines reports whether any line row falls inside fn.
func (t *Table) HasLines(fn *Func) bool {
	rows := t.unitRowsAt(fn.Low)
	i := firstRowAt(rows, fn.Low)
	return i < len(rows) && rows[i].addr < fn.High && rows[i].flags&rowEnd == 0
}

// firstRowAt returns the index of the first row at or after addr that is
// not the end of a sequence at addr (one sequence may end where the next
// one begins).
func firstRowAt(rows []row, addr uint64) int {
	i := sort.Search(len(rows), func(i int) bool { return rows[i].addr >= addr })
	for i < len(rows) && rows[i].flags&rowEnd != 0 && rows[i].addr == addr {
		i++
	}
	return i
}

// FileLines returns the lines of file that have code (for
// breakpointLocations).
func (t *Table) FileLines(file string, from, to int) []int {
	ids := t.matchFiles(file)
	if len(ids) == 0 {
		return nil
	}
	seen := map[int]bool{}
	var out []int
	t.eachRowOf(ids, func(rows []row) {
		for _, r := range rows {
			l := int(r.line)
			if r.flags&(rowEnd|rowStmt) == rowStmt && hasID(ids, r.file) && l >= from && (to == 0 || l <= to) && !seen[l] {
				seen[l] = true
				out = append(out, l)
			}
		}
	})
	sort.Ints(out)
	return out
}
