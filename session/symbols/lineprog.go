package symbols

import (
	"path"
	"slices"
	"strings"
)

// The line-number program (DWARF 5 §6.2; versions 2–4 differ only in
// their header), decoded here rather than by debug/dwarf so that the
// index can read every unit's file table cheaply and a unit's rows can
// be decoded on first use into a compact form.

// lineHeader is a line program's header.
type lineHeader struct {
	version       int
	offSize       int
	addrSize      int
	minInstLen    uint8
	maxOps        uint8
	defaultIsStmt bool
	lineBase      int8
	lineRange     uint8
	opcodeBase    uint8
	stdLens       []uint8
	progStart     int
	progEnd       int
	dirs          []string
	files         []string // file number → path (DWARF 5 numbers from 0, earlier from 1: entry 0 is "")
}

// fileNamer turns a line table's directory and file entries into paths;
// the index passes one that interns them.
type fileNamer interface {
	// begin starts a header whose directory 0 is dir0 when given.
	begin(dir0 string, given bool)
	dir(compDir string, raw []byte, strOff uint64, isStrp bool) string
	file(dir string, dirIdx int, raw []byte, strOff uint64, isStrp bool) string
}

// plainNamer builds paths without interning.
type plainNamer struct{}

func (plainNamer) begin(string, bool) {}

func (plainNamer) dir(compDir string, raw []byte, _ uint64, _ bool) string {
	return joinDir(compDir, string(raw))
}

func (plainNamer) file(dir string, _ int, raw []byte, _ uint64, _ bool) string {
	return joinFile(dir, string(raw))
}

// joinDir makes a directory entry absolute: relative ones are relative
// to the compilation directory (DWARF 5 §6.2.4 item 20; also how GCC's
// DWARF 5 tables name "../common").
func joinDir(compDir, d string) string {
	if d == "" {
		return compDir
	}
	if isAbs(d) || compDir == "" {
		return path.Clean(d)
	}
	return path.Join(compDir, d)
}

func joinFile(dir, f string) string {
	if isAbs(f) || dir == "" {
		return path.Clean(f)
	}
	return path.Join(dir, f)
}

func isAbs(p string) bool {
	return strings.HasPrefix(p, "/") || len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

// parseLineHeader reads the header of the line program at off.
func (s *secs) parseLineHeader(off uint64, u *unit, nm fileNamer) (*lineHeader, error) {
	if off >= uint64(len(s.line)) {
		return nil, formatError("line", off, "offset out of range")
	}
	r := rd{b: s.line, pos: int(off)}
	n, is64 := r.unitLength()
	end := uint64(r.pos) + n
	if r.bad || end > uint64(len(s.line)) || end < uint64(r.pos) {
		return nil, formatError("line", off, "length out of range")
	}
	r.b = s.line[:end]
	h := &lineHeader{offSize: 4, addrSize: u.format.addrSize, progEnd: int(end)}
	if is64 {
		h.offSize = 8
	}
	h.version = int(r.u16())
	if h.version < 2 || h.version > 5 {
		return nil, formatError("line", off, "unsupported version")
	}
	if h.version >= 5 {
		h.addrSize = int(r.u8())
		r.u8() // segment selector size
	}
	hlen := r.uN(h.offSize)
	h.progStart = r.pos + int(hlen)
	if hlen > uint64(len(r.b)) || h.progStart > int(end) {
		return nil, formatError("line", off, "header length out of range")
	}
	h.minInstLen = r.u8()
	h.maxOps = 1
	if h.version >= 4 {
		h.maxOps = r.u8()
	}
	h.defaultIsStmt = r.u8() != 0
	h.lineBase = int8(r.u8())
	h.lineRange = r.u8()
	h.opcodeBase = r.u8()
	if h.lineRange == 0 || h.opcodeBase == 0 {
		return nil, formatError("line", off, "zero line_range or opcode_base")
	}
	h.stdLens = r.bytes(uint64(h.opcodeBase - 1))
	if h.version < 5 {
		h.dirs = append(h.dirs, u.compDir)
		nm.begin(u.compDir, true)
		for !r.eof() {
			d := r.cstr()
			if len(d) == 0 {
				break
			}
			h.dirs = append(h.dirs, nm.dir(u.compDir, d, 0, false))
		}
		h.files = append(h.files, "")
		for !r.eof() {
			f := r.cstr()
			if len(f) == 0 {
				break
			}
			di := int(r.uleb())
			r.uleb() // mtime
			r.uleb() // length
			dir := ""
			if di < len(h.dirs) {
				dir = h.dirs[di]
			}
			h.files = append(h.files, nm.file(dir, di, f, 0, false))
		}
	} else {
		nm.begin("", false)
		if err := s.readEntries(&r, h, u, nm, true); err != nil {
			return nil, formatError("line", off, err.Error())
		}
		if err := s.readEntries(&r, h, u, nm, false); err != nil {
			return nil, formatError("line", off, err.Error())
		}
	}
	if r.bad {
		return nil, formatError("line", off, "truncated header")
	}
	return h, nil
}

const (
	lnctPath     = 1
	lnctDirIndex = 2
)

// readEntries reads a DWARF 5 directory (dirs) or file-name table.
func (s *secs) readEntries(r *rd, h *lineHeader, u *unit, nm fileNamer, dirs bool) error {
	nfmt := int(r.u8())
	type pair struct{ content, form uint32 }
	var fmts [8]pair
	if nfmt > len(fmts) {
		return errString("too many entry formats")
	}
	for i := 0; i < nfmt; i++ {
		fmts[i] = pair{uint32(r.uleb()), uint32(r.uleb())}
	}
	count := r.uleb()
	if count > uint64(len(r.b)) {
		return errString("entry count out of range")
	}
	if dirs {
		h.dirs = slices.Grow(h.dirs, int(min(count, 1<<12)))
	} else {
		h.files = slices.Grow(h.files, int(min(count, 1<<12)))
	}
	uf := unitFormat{version: 5, addrSize: h.addrSize, offSize: h.offSize}
	lu := &unit{format: uf}
	for i := uint64(0); i < count && !r.bad; i++ {
		var raw []byte
		var strOff uint64
		isStrp := false
		di := 0
		for _, p := range fmts[:nfmt] {
			switch p.content {
			case lnctPath:
				switch p.form {
				case formString:
					raw = r.cstr()
				case formLineStrp, formStrp:
					strOff = r.uN(h.offSize)
					isStrp = p.form == formLineStrp
					if isStrp {
						raw = cstrAt(s.lineStr, strOff)
					} else {
						raw = cstrAt(s.str, strOff)
						strOff |= 1 << 63 // a different string space
						isStrp = true
					}
				default:
					v := s.readAttr(r, attrSpec{form: p.form}, lu)
					raw = v.b
				}
			case lnctDirIndex:
				v := s.readAttr(r, attrSpec{form: p.form}, lu)
				di = int(v.u)
			default:
				if !r.skipForm(p.form, uf) {
					return errString("unknown entry form")
				}
			}
		}
		if dirs {
			if i == 0 {
				// Entry 0 is the compilation directory itself.
				h.dirs = append(h.dirs, nm.dir("", raw, strOff, isStrp))
				if u.compDir == "" {
					u.compDir = h.dirs[0]
				}
				continue
			}
			h.dirs = append(h.dirs, nm.dir(h.dirs[0], raw, strOff, isStrp))
			continue
		}
		dir := ""
		if di >= 0 && di < len(h.dirs) {
			dir = h.dirs[di]
		}
		h.files = append(h.files, nm.file(dir, di, raw, strOff, isStrp))
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// row is one decoded line-table row, compact: rows of a whole kernel
// unit are cached at 24 bytes each.
type row struct {
	addr  uint64
	line  int32
	file  int32 // global file id (0: none)
	flags uint8
}

const (
	rowStmt uint8 = 1 << iota
	rowEnd        // end of a sequence: no code at addr
	rowPrologueEnd
)

// maxRowsPerUnit bounds one unit's rows against crafted programs.
const maxRowsPerUnit = 1 << 24

// decodeRows runs a line program and returns its rows; fileIDs maps the
// program's file numbers to global ids.
func (s *secs) decodeRows(h *lineHeader, fileIDs []int32) []row {
	r := rd{b: s.line[:h.progEnd], pos: h.progStart}
	var out []row
	var (
		addr    uint64
		file    = 1
		line    = 1
		isStmt  = h.defaultIsStmt
		opIndex uint64
		pEnd    bool
	)
	reset := func() {
		addr, file, line, isStmt, opIndex, pEnd = 0, 1, 1, h.defaultIsStmt, 0, false
	}
	maxOps := uint64(h.maxOps)
	if maxOps == 0 {
		maxOps = 1
	}
	advance := func(opAdv uint64) {
		if maxOps == 1 {
			addr += uint64(h.minInstLen) * opAdv
			return
		}
		addr += uint64(h.minInstLen) * ((opIndex + opAdv) / maxOps)
		opIndex = (opIndex + opAdv) % maxOps
	}
	emit := func(end bool) {
		if len(out) >= maxRowsPerUnit {
			r.bad = true
			return
		}
		fid := int32(0)
		if file >= 0 && file < len(fileIDs) {
			fid = fileIDs[file]
		}
		var fl uint8
		if isStmt {
			fl |= rowStmt
		}
		if end {
			fl |= rowEnd
		}
		if pEnd {
			fl |= rowPrologueEnd
		}
		out = append(out, row{addr: addr, line: int32(line), file: fid, flags: fl})
	}
	for !r.eof() {
		op := r.u8()
		switch {
		case op >= h.opcodeBase:
			adj := uint64(op - h.opcodeBase)
			advance(adj / uint64(h.lineRange))
			line += int(h.lineBase) + int(adj%uint64(h.lineRange))
			emit(false)
			pEnd = false
		case op == 0: // extended
			n := r.uleb()
			if n == 0 || n > uint64(len(r.b)-r.pos) {
				r.bad = true
				break
			}
			next := r.pos + int(n)
			switch r.u8() {
			case 1: // end_sequence
				emit(true)
				reset()
			case 2: // set_address
				addr = r.uN(int(n - 1))
				opIndex = 0
			case 3: // define_file (DWARF ≤ 4): not supported, ignored
			case 4: // set_discriminator
			}
			r.pos = next
		case op == 1: // copy
			emit(false)
			pEnd = false
		case op == 2: // advance_pc
			advance(r.uleb())
		case op == 3: // advance_line
			line += int(r.sleb())
		case op == 4: // set_file
			file = int(r.uleb())
		case op == 5: // set_column
			r.uleb()
		case op == 6: // negate_stmt
			isStmt = !isStmt
		case op == 7: // set_basic_block
		case op == 8: // const_add_pc
			advance(uint64(255-h.opcodeBase) / uint64(h.lineRange))
		case op == 9: // fixed_advance_pc
			addr += uint64(r.u16())
			opIndex = 0
		case op == 10: // set_prologue_end
			pEnd = true
		case op == 11, op == 12: // set_epilogue_begin, set_isa
			if op == 12 {
				r.uleb()
			}
		default: // an unknown standard opcode: skip its operands
			if int(op-1) < len(h.stdLens) {
				for i := 0; i < int(h.stdLens[op-1]); i++ {
					r.uleb()
				}
			} else {
				r.bad = true
			}
		}
	}
	return out
}
