package symbols

import (
	"cmp"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// lineRow is one line-table row in the form both sides can give: the
// file's base name (readelf prints names as the table has them), the line
// (0 for the end of a sequence), the address, is_stmt.
type lineRow struct {
	addr uint64
	end  bool
	file string
	line int
	stmt bool
}

func (r lineRow) String() string {
	if r.end {
		return fmt.Sprintf("%#x end", r.addr)
	}
	s := ""
	if r.stmt {
		s = " stmt"
	}
	return fmt.Sprintf("%#x %s:%d%s", r.addr, r.file, r.line, s)
}

func compareRows(a, b lineRow) int {
	if c := cmp.Compare(a.addr, b.addr); c != 0 {
		return c
	}
	if a.end != b.end {
		if a.end {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(a.file, b.file); c != 0 {
		return c
	}
	if c := cmp.Compare(a.line, b.line); c != 0 {
		return c
	}
	if a.stmt != b.stmt {
		if a.stmt {
			return 1
		}
		return -1
	}
	return 0
}

// readelfRows parses readelf --debug-dump=decodedline: rows are
// "NAME LINE ADDR [VIEW] [x]", with "-" as the line of a sequence's end.
func readelfRows(out string) []lineRow {
	var rows []lineRow
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || !strings.HasPrefix(f[2], "0x") && f[2] != "0" {
			continue
		}
		addr, err := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 64)
		if err != nil {
			continue
		}
		r := lineRow{addr: addr, file: path.Base(f[0])}
		if f[1] == "-" {
			rows = append(rows, lineRow{addr: addr, end: true})
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		r.line = n
		r.stmt = f[len(f)-1] == "x"
		rows = append(rows, r)
	}
	return rows
}

// withoutSequencesAtZero drops the sequences that start at address 0:
// code the linker dropped (--gc-sections), which vmdap ignores where the
// image has no code at 0, as gdb does.
func withoutSequencesAtZero(rows []lineRow) []lineRow {
	var out []lineRow
	start := 0
	for i, r := range rows {
		if !r.end {
			continue
		}
		if rows[start].addr != 0 {
			out = append(out, rows[start:i+1]...)
		}
		start = i + 1
	}
	return append(out, rows[start:]...)
}

// tableRows returns every row of every unit as vmdap decoded it.
func tableRows(tb *Table) []lineRow {
	var rows []lineRow
	for ci := range tb.units {
		for _, r := range tb.rowsOf(int32(ci)) {
			if r.flags&rowEnd != 0 {
				rows = append(rows, lineRow{addr: r.addr, end: true})
				continue
			}
			rows = append(rows, lineRow{addr: r.addr, file: path.Base(tb.fileName(r.file)), line: int(r.line), stmt: r.flags&rowStmt != 0})
		}
	}
	return rows
}

// diffRows reports the rows only one side has (as multisets).
func diffRows(want, got []lineRow) (missing, extra []lineRow) {
	slices.SortFunc(want, compareRows)
	slices.SortFunc(got, compareRows)
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j >= len(got) || i < len(want) && compareRows(want[i], got[j]) < 0:
			missing = append(missing, want[i])
			i++
		case i >= len(want) || compareRows(want[i], got[j]) > 0:
			extra = append(extra, got[j])
			j++
		default:
			i++
			j++
		}
	}
	return missing, extra
}

func firstN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// TestGoldenLineRows: every line-table row vmdap decodes, of every unit,
// is one readelf decodes (address, file, line, is_stmt, sequence ends),
// and none is missing.
func TestGoldenLineRows(t *testing.T) {
	needTool(t, "readelf")
	for _, img := range goldenImages(t) {
		t.Run(img.tag, func(t *testing.T) {
			tb := loadGolden(t, img)
			want := readelfRows(runTool(t, "readelf", "--debug-dump=decodedline", img.path))
			if len(want) == 0 {
				t.Fatal("readelf shows no rows")
			}
			if !tb.codeAtZero() {
				want = withoutSequencesAtZero(want)
			}
			got := tableRows(tb)
			missing, extra := diffRows(want, got)
			if len(missing)+len(extra) > 0 {
				t.Errorf("%d rows (readelf %d): %d missing, e.g. %v; %d extra, e.g. %v",
					len(got), len(want), len(missing), firstN(missing, 8), len(extra), firstN(extra, 8))
			}
		})
	}
}

// a2lEntry is what addr2line -f -i -a says about one address: the
// innermost location, and the function chain (innermost first).
type a2lEntry struct {
	file  string // base name; "" when unknown
	line  int
	funcs []string
}

// addr2line runs addr2line on many addresses at once.
func addr2line(t *testing.T, elfPath string, addrs []uint64) map[uint64]a2lEntry {
	t.Helper()
	out := map[uint64]a2lEntry{}
	for len(addrs) > 0 {
		n := min(len(addrs), 2000)
		args := []string{"-e", elfPath, "-f", "-i", "-a", "-C"}
		for _, a := range addrs[:n] {
			args = append(args, fmt.Sprintf("%#x", a))
		}
		addrs = addrs[n:]
		lines := strings.Split(strings.TrimSpace(runTool(t, "addr2line", args...)), "\n")
		var cur uint64
		var e a2lEntry
		flush := func() {
			if cur != 0 || len(e.funcs) > 0 {
				out[cur] = e
			}
		}
		for i := 0; i < len(lines); i++ {
			l := lines[i]
			if strings.HasPrefix(l, "0x") && !strings.Contains(l, ":") {
				flush()
				cur, _ = strconv.ParseUint(l[2:], 16, 64)
				e = a2lEntry{}
				continue
			}
			if i+1 >= len(lines) {
				break
			}
			loc := lines[i+1]
			i++
			if j := strings.Index(loc, " (discriminator"); j >= 0 {
				loc = loc[:j]
			}
			fn := l
			if len(e.funcs) == 0 {
				if k := strings.LastIndexByte(loc, ':'); k >= 0 {
					if n, err := strconv.Atoi(loc[k+1:]); err == nil && n > 0 && loc[:k] != "??" {
						e.file, e.line = path.Base(loc[:k]), n
					}
				}
			}
			e.funcs = append(e.funcs, fn)
		}
		flush()
	}
	return out
}

// textRange returns the lowest and highest address of the image's code.
func textRange(tb *Table) (uint64, uint64) {
	lo, hi := ^uint64(0), uint64(0)
	for _, s := range tb.img.f.Sections {
		if s.Flags&0x4 != 0 && s.Size > 0 { // SHF_EXECINSTR
			lo, hi = min(lo, s.Addr), max(hi, s.Addr+s.Size)
		}
	}
	return lo, hi
}

// elfFuncCover reports whether an address is inside a sized ELF function
// symbol (not in the padding between functions, which a line table may
// cover but no function does).
func elfFuncCover(t *testing.T, tb *Table) func(uint64) bool {
	syms, err := tb.img.f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ lo, hi uint64 }
	var spans []span
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0 {
			spans = append(spans, span{s.Value, s.Value + s.Size})
		}
	}
	return func(a uint64) bool {
		for _, s := range spans {
			if a >= s.lo && a < s.hi {
				return true
			}
		}
		return false
	}
}

// TestGoldenPCToLine: at every line-table address in the code (and one
// byte further), vmdap's PC → line is gdb's, and (for C) its
// function is addr2line's outermost one: the concrete function an
// inlined copy sits in, or the ELF symbol of an assembly routine.
func TestGoldenPCToLine(t *testing.T) {
	needTool(t, "addr2line")
	for _, img := range goldenImages(t) {
		t.Run(img.tag, func(t *testing.T) {
			tb := loadGolden(t, img)
			lo, hi := textRange(tb)
			inSym := elfFuncCover(t, tb)
			seen := map[uint64]bool{}
			var addrs []uint64
			for _, r := range tableRows(tb) {
				for _, a := range []uint64{r.addr, r.addr + 1} {
					if !r.end && a >= lo && a < hi && inSym(a) && !seen[a] {
						seen[a] = true
						addrs = append(addrs, a)
					}
				}
			}
			slices.Sort(addrs)
			want := addr2line(t, img.path, addrs)
			wantLine := gdbLines(t, img.path, addrs)
			bad := 0
			for _, a := range addrs {
				w, ok := want[a]
				if !ok {
					t.Fatalf("addr2line said nothing about %#x", a)
				}
				loc, has := tb.PCToLine(a)
				got := ""
				if has {
					got = fmt.Sprintf("%s:%d", path.Base(loc.File), loc.Line)
				}
				if exp := wantLine[a]; got != exp {
					bad++
					if bad <= 10 {
						t.Errorf("PCToLine(%#x) = %q, gdb %q", a, got, exp)
					}
				}
				if img.tag == "rust" {
					continue // Rust names: compared with gdb's in the DAP tests
				}
				gf := ""
				if fn := tb.FuncAt(a); fn != nil {
					gf = fn.Name
				}
				if wf := w.funcs[len(w.funcs)-1]; gf != wf && wf != "??" {
					bad++
					if bad <= 10 {
						t.Errorf("FuncAt(%#x) = %q, addr2line %q (chain %q)", a, gf, wf, w.funcs)
					}
				}
			}
			if bad > 10 {
				t.Errorf("%d mismatches in %d addresses", bad, len(addrs))
			}
		})
	}
}

// sourcesOf returns the source files of a golden image that have code.
func sourcesOf(t *testing.T, img goldenImage) []string {
	t.Helper()
	ents, err := os.ReadDir(img.src)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		switch path.Ext(e.Name()) {
		case ".c", ".S":
			out = append(out, filepath.Join(img.src, e.Name()))
		case ".rs":
			if e.Name() == "kernel.rs" { // the crates built with DWARF
				out = append(out, filepath.Join(img.src, e.Name()))
			}
		}
	}
	return out
}

const gdbBreakScript = `
import gdb, json
for spec in json.loads(%q):
    try:
        b = gdb.Breakpoint(spec, internal=True)
    except gdb.error as e:
        print("@@" + json.dumps({"spec": spec, "err": str(e)}))
        continue
    locs = [{"addr": l.address, "line": l.source[1] if l.source else 0, "func": l.function or ""} for l in b.locations]
    print("@@" + json.dumps({"spec": spec, "locs": locs}))
    b.delete()
`

type gdbBreak struct {
	Spec string `json:"spec"`
	Err  string `json:"err"`
	Locs []struct {
		Addr uint64 `json:"addr"`
		Line int    `json:"line"`
		Func string `json:"func"`
	} `json:"locs"`
}

// gdbBreaks asks gdb where breakpoints on specs would go.
func gdbBreaks(t *testing.T, elfPath string, specs []string) map[string]gdbBreak {
	t.Helper()
	js, _ := json.Marshal(specs)
	out := map[string]gdbBreak{}
	for _, l := range gdbPython(t, elfPath, fmt.Sprintf(gdbBreakScript, string(js))) {
		var b gdbBreak
		if err := json.Unmarshal([]byte(l), &b); err != nil {
			t.Fatalf("gdb said %q: %v", l, err)
		}
		out[b.Spec] = b
	}
	return out
}

// TestGoldenLineToPCs: a line breakpoint on every line of every source
// file lands where gdb's would: the same addresses (one per function or
// inlined copy, after the prologue on a function's opening line) and the
// same line when the line has no code and the breakpoint moves on.
func TestGoldenLineToPCs(t *testing.T) {
	for _, img := range goldenImages(t) {
		t.Run(img.tag, func(t *testing.T) {
			tb := loadGolden(t, img)
			var specs []string
			for _, src := range sourcesOf(t, img) {
				b, err := os.ReadFile(src)
				if err != nil {
					t.Fatal(err)
				}
				n := strings.Count(string(b), "\n")
				for l := 1; l <= n; l++ {
					specs = append(specs, fmt.Sprintf("%s:%d", src, l))
				}
			}
			want := gdbBreaks(t, img.path, specs)
			// Runs of requested lines with the same difference are
			// reported once.
			type diff struct{ file, got, want string }
			var last diff
			from, to, groups, bad, gdbWrong := 0, 0, 0, 0, 0
			report := func() {
				if from != 0 {
					groups++
					if groups <= 25 {
						t.Errorf("%s:%d-%d: vmdap %s; gdb %s", last.file, from, to, last.got, last.want)
					}
				}
			}
			for _, spec := range specs {
				i := strings.LastIndexByte(spec, ':')
				line, _ := strconv.Atoi(spec[i+1:])
				addrs, actual, ok := tb.LineAddrs(spec[:i], line)
				w := want[spec]
				var wa []uint64
				wl := 0
				for _, l := range w.Locs {
					wa = append(wa, l.Addr)
					wl = l.Line
				}
				slices.Sort(wa)
				wa = slices.Compact(wa)
				if !ok {
					addrs, actual = nil, 0
				}
				if slices.Equal(addrs, wa) && (len(wa) == 0 || actual == wl) {
					continue
				}
				if pastInlinedEntry(tb, addrs, wa) {
					if gdbWrong++; gdbWrong == 1 {
						t.Logf("gdb is wrong here: %s: vmdap line %d at %#x, gdb line %d at %#x (%s)", spec, actual, addrs, wl, wa, notePastInlinedEntry)
					}
					continue
				}
				bad++
				d := diff{path.Base(spec[:i]), fmt.Sprintf("line %d at %#x", actual, addrs), fmt.Sprintf("line %d at %#x", wl, wa)}
				if d == last && line == to+1 {
					to = line
					continue
				}
				report()
				last, from, to = d, line, line
			}
			report()
			if groups > 25 {
				t.Errorf("%d of %d lines differ (%d groups)", bad, len(specs), groups)
			}
		})
	}
}

// notePastInlinedEntry: where vmdap is right and gdb is not.
const notePastInlinedEntry = "a line at a function's entry where a call inlined there runs first (the -flto unit's kmain " +
	"begins with serial_putc's code, and its rows for kernel.c's lines 164-169 are all at the entry): gdb's prologue " +
	"analysis moves the breakpoint past the inlined call, to the next statement, and the call has run when it stops; " +
	"vmdap stops at the entry"

// pastInlinedEntry reports that gdb put a line's breakpoint (want) after
// the entry of a function that vmdap put it at (got), past a call inlined
// between the two.
func pastInlinedEntry(tb *Table, got, want []uint64) bool {
	if len(got) != 1 || len(want) != 1 {
		return false
	}
	fn := tb.FuncAt(got[0])
	if fn == nil || fn.Low != got[0] || want[0] <= got[0] || want[0] >= fn.High || want[0]-got[0] > 256 {
		return false
	}
	for pc := got[0]; pc < want[0]; pc++ {
		if len(tb.InlinedAt(pc)) > 0 {
			return true
		}
	}
	return false
}

// gdbLines asks gdb (info line *ADDR) which line each address is in: the
// user-facing oracle for a PC's line. It differs from addr2line where
// several rows share an address (location views): gdb takes the last
// statement row there, addr2line the last row.
func gdbLines(t *testing.T, elfPath string, addrs []uint64) map[uint64]string {
	t.Helper()
	needTool(t, "gdb")
	out := map[uint64]string{}
	re := regexp.MustCompile(`^Line (\d+) of "([^"]+)"\s+(?:starts at|is at) address (0x[0-9a-f]+)`)
	reNo := regexp.MustCompile(`^No line number information available for address (0x[0-9a-f]+)`)
	for len(addrs) > 0 {
		n := min(len(addrs), 500)
		args := []string{"-batch", "-nx", "-ex", "file " + elfPath}
		for _, a := range addrs[:n] {
			args = append(args, "-ex", fmt.Sprintf("echo @%#x\\n", a), "-ex", fmt.Sprintf("info line *%#x", a))
		}
		addrs = addrs[n:]
		var cur uint64
		for _, l := range strings.Split(runTool(t, "gdb", args...), "\n") {
			if strings.HasPrefix(l, "@0x") {
				cur, _ = strconv.ParseUint(l[3:], 16, 64)
				out[cur] = ""
				continue
			}
			if m := re.FindStringSubmatch(l); m != nil {
				out[cur] = path.Base(m[2]) + ":" + m[1]
			} else if reNo.MatchString(l) {
				out[cur] = ""
			}
		}
	}
	return out
}

// TestGoldenFuncBreakpoints (C images): a function breakpoint on every
// function of the corpus, out-of-line and inlined, lands where gdb's
// would: after the prologue of each out-of-line copy (where the line
// table marks prologue_end, at the entry when there is no prologue) and
// at the entry of each inlined copy, as the session places it.
func TestGoldenFuncBreakpoints(t *testing.T) {
	for _, img := range goldenImages(t) {
		if img.tag == "rust" {
			continue // Rust functions are named by their paths
		}
		t.Run(img.tag, func(t *testing.T) {
			tb := loadGolden(t, img)
			seen := map[string]bool{}
			var names []string
			add := func(n string) {
				if n != "" && !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
			for _, fn := range tb.Funcs() {
				if fn.die != 0 {
					add(fn.Name)
				}
			}
			for _, n := range []string{"square", "account", "pair_sum", "inner_inl", "outer_inl"} { // inlined only, at -O2
				add(n)
			}
			want := gdbBreaks(t, img.path, names)
			bad := 0
			for _, name := range names {
				var got []uint64
				for _, fn := range tb.FuncsByName(name) {
					if pe, ok := tb.PrologueEnd(fn); ok {
						got = append(got, pe)
					} else {
						got = append(got, fn.Low)
					}
				}
				got = append(got, tb.InlinedSites(name)...)
				slices.Sort(got)
				got = slices.Compact(got)
				var wa []uint64
				for _, l := range want[name].Locs {
					wa = append(wa, l.Addr)
				}
				slices.Sort(wa)
				wa = slices.Compact(wa)
				if len(wa) == 0 && len(got) == 0 {
					continue
				}
				if !slices.Equal(got, wa) {
					if bad++; bad <= 20 {
						t.Errorf("break %s: vmdap %#x, gdb %#x %s", name, got, wa, want[name].Err)
					}
				}
			}
			t.Logf("%d functions checked", len(names))
			if bad > 20 {
				t.Errorf("%d of %d functions differ", bad, len(names))
			}
		})
	}
}
