package symbols

import (
	"cmp"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Func is one function: a DWARF subprogram with code, or an ELF function
// symbol DWARF does not describe (assembly).
type Func struct {
	Name string
	Low  uint64
	High uint64 // exclusive
	// Inline: the function exists only as inlined copies; Low and High
	// are zero and InlinedSites finds where.
	Inline   bool
	die      uint64 // absolute .debug_info offset of its DIE; 0 for ELF symbols
	cu       int32  // unit index; -1 for ELF symbols
	nextSame *Func  // the next function of the same name
}

// Contains reports whether pc is inside the function.
func (f *Func) Contains(pc uint64) bool { return pc >= f.Low && pc < f.High }

// funcRange is one address range of a function (a function split into
// hot and cold parts has several).
type funcRange struct {
	low, high uint64
	fn        *Func
}

type elfSym struct {
	name        string
	value, size uint64
	typ         elf.SymType
	idx         int32
	code        bool // defined in an executable section
}

// Table is the symbol information of one guest image. It opens the file
// through a read-only mapping (or any io.ReaderAt), builds an index at
// open, and decodes everything else per compile unit on first use, in a
// bounded cache. Its methods are safe for concurrent use.
type Table struct {
	Path     string
	Entry    uint64
	Machine  elf.Machine
	AddrSize int // 4 or 8

	img  *image // the program
	dimg *image // where the DWARF is (img, or a separate debug file)
	sec  secs

	units      []*unit
	tunits     []tunit          // type units (typeunits.go)
	bySig      map[uint64]int32 // type unit by signature
	crossRefs  bool             // a unit refers into another (DW_FORM_ref_addr)
	ranges     []funcRange      // sorted by low
	funcs      []*Func          // DWARF and ELF functions, sorted by Low
	nameOnce   sync.Once
	byName     map[string]*Func // see names
	inlineRefs []inlineRef
	// inlineScan: inlineRefs while the inline map is being built
	// behind a large image's open (namesReady: the name maps are built);
	// a lookup by name meanwhile scans rather than waits (scan.go).
	inlineScan atomic.Pointer[[]inlineRef]
	namesReady atomic.Bool
	inlineOnce sync.Once
	inlined    map[string][]nameRef // built from inlineRefs on first use
	globals    map[string]nameRef
	types      map[string]nameRef
	enums      map[string]nameRef // enumerator name → its unit (enums.go)
	cuRanges   []cuRange          // sorted by low

	files     []string           // file id → path; id 0 is ""
	fileUnits [][]int32          // file id → units whose line tables name it
	byBase    map[string][]int32 // base name → file ids

	syms      []elfSym // sorted by value
	symOnce   sync.Once
	symByName map[string]int32

	frameOnce sync.Once
	// prefixIdx: every name, sorted, for completions (prefix.go).
	prefixOnce sync.Once
	prefixIdx  []prefixName
	frames     *frameTable
	orcOnce    sync.Once
	orc        *orcTable // see orcTab

	mu    sync.Mutex // guards cache, wide and sigAbbrev (and files while MapSources rewrites them)
	cache unitCache
	// wide: the view of all of .debug_info; sigAbbrev: .debug_abbrev
	// for rewritten signatures (typeunits.go).
	wide      wideView
	sigAbbrev []byte

	progress   func(done, total int64)
	debugNames []byte // .debug_names, when the index pass uses it
	usedNames  bool
	ctx        context.Context // see WithContext; nil: none
	slide      uint64          // see SetSlide

	cacheDir string // see WithIndexCache
	// symsOfProgram: the symbols file has no ELF symbols, the program's
	// were read (not cached: the key is the symbols file's build ID).
	symsOfProgram bool
	fromCache     bool          // the index was read from the cache
	cacheDone     chan struct{} // closed when the cache writer is done (nil: none)
	// moving is held (read) by the cache writer while it reads the
	// functions, ranges and symbols, which SetSlide (write) moves.
	moving sync.RWMutex
}

type cuRange struct {
	low, high uint64
	cu        int32
}

// ErrNoDebugInfo is returned (wrapped) when an image has no DWARF.
var ErrNoDebugInfo = errors.New("no DWARF debug information")

// Load opens the symbols of an ELF file; debugFile, when not empty, is a
// separate file holding the DWARF (as objcopy --only-keep-debug makes).
// An image without DWARF still loads: ELF symbols give function names.
// The files are mapped, not read: only what the index needs is touched.
func Load(path, debugFile string, opts ...Option) (*Table, error) {
	img, err := openImage(path)
	if err != nil {
		return nil, err
	}
	dimg := img
	if debugFile != "" {
		if dimg, err = openImage(debugFile); err != nil {
			img.release()
			return nil, fmt.Errorf("symbols file: %w", err)
		}
	}
	return newTable(path, img, dimg, opts)
}

// Option configures Load and New.
type Option func(*Table)

// WithContext makes the open stop early, with ctx's error, when ctx is
// done (a launch the client cancelled, a client that went away).
func WithContext(ctx context.Context) Option {
	return func(t *Table) { t.ctx = ctx }
}

// WithProgress reports the index's progress while it is built: done and
// total bytes of debug information, from the indexing goroutines (calls
// are serialised, about one per percent).
func WithProgress(fn func(done, total int64)) Option {
	return func(t *Table) { t.progress = fn }
}

// New reads the symbols of an ELF image from r, as debug/elf's NewFile
// does (Load is to New what elf.Open is to elf.NewFile). Sections are
// read from r as they are needed.
func New(r io.ReaderAt, opts ...Option) (*Table, error) {
	img, err := newImage(r, "image")
	if err != nil {
		return nil, err
	}
	return newTable("", img, img, opts)
}

func newTable(path string, img, dimg *image, opts []Option) (*Table, error) {
	if dimg.size() > 64<<20 {
		// A large image's index allocates a few hundred thousand objects
		// that nearly all stay live: collecting while it is built only
		// costs time. Worse, the collector reads the large lists as soon
		// as they are allocated, which maps the kernel's zero page under
		// them, and each first write then faults again and flushes every
		// core's TLB. The collector is off meanwhile (a kernel's open: a
		// tenth less time, the same peak), unless the heap grows by more
		// than the image's size.
		defer holdGC(int64(dimg.size()))()
	}
	f := img.f
	t := &Table{Path: path, Entry: f.Entry, Machine: f.Machine, img: img, dimg: dimg, AddrSize: 8}
	if dimg != img {
		// A separate symbols file describes the code: a 64-bit kernel
		// repacked as elf32-i386 for QEMU's -kernel has its addresses,
		// CFI and symbols right only in the ELF64 it came from.
		f = dimg.f
		t.Machine = f.Machine
	}
	for _, o := range opts {
		o(t)
	}
	if f.Class == elf.ELFCLASS32 {
		t.AddrSize = 4
	}
	t.cache.init()
	t.findSections()
	cachePath := t.cachePath()
	if cachePath != "" && t.readIndexCache(cachePath) {
		cachePath = "" // (nothing to write)
	} else if err := t.buildAll(img, dimg); err != nil {
		img.release()
		dimg.release()
		return nil, err
	}
	var writeCache func()
	if cachePath != "" && !t.symsOfProgram { // (the cache is the symbols file's alone)
		snap := t.snapshot()
		t.cacheDone = make(chan struct{})
		writeCache = func() {
			defer close(t.cacheDone)
			t.writeIndexCache(cachePath, snap) // (on failure, the next open builds the index again)
		}
	}
	t.startNameMaps(writeCache)
	return t, nil
}

// buildAll builds the index, and reads the ELF symbols meanwhile.
func (t *Table) buildAll(img, dimg *image) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The symbols file's symbols first (full-width values), else the
		// program's.
		t.loadELFSymbols(dimg)
		if len(t.syms) == 0 && dimg != img {
			t.loadELFSymbols(img)
			t.symsOfProgram = len(t.syms) > 0
		}
	}()
	t.loadDWARF()
	if err := t.ctxErr(); err != nil {
		wg.Wait()
		return err
	}
	if len(t.units) > 0 {
		// The code's own address size: a 64-bit kernel repacked as
		// elf32-i386 (QEMU's -kernel form) still has 8-byte DWARF.
		t.AddrSize = t.units[0].format.addrSize
	}
	wg.Wait()
	t.addELFFuncs()
	return nil
}

// startNameMaps builds the name maps: at once for a small image, behind
// the open for a large one; then writeCache, when not nil, runs behind
// the open.
func (t *Table) startNameMaps(writeCache func()) {
	// The name maps (functions, inline functions, ELF symbols), three
	// independent builds, are made behind a large image's open: a lookup
	// by name before they are done scans instead (scan.go).
	build := func(procs int) {
		sideBySide(procs,
			func() { t.inlinedByName("") },
			func() { t.symIndex("") },
			func() { t.names() })
		t.namesReady.Store(true)
		t.inlineScan.Store(nil)
	}
	refs := t.inlineRefs
	t.inlineScan.Store(&refs)
	if len(t.sec.info) < namesAtOpenBelow {
		build(runtime.GOMAXPROCS(0)) // a small image: at once
		if writeCache != nil {
			go writeCache()
		}
	} else {
		hold := namesHold
		go func() {
			if hold != nil {
				<-hold
			}
			// Behind the open, one processor is left to the requests
			// that come meanwhile (the first breakpoints, at once after
			// the attach): on a machine of two, a request that waited
			// for the stub had to wait again for a processor, up to a
			// scheduler's time slice (10 ms) each time, and a function
			// breakpoint took 30–60 ms instead of 2.
			build(runtime.GOMAXPROCS(0) - 1)
			if writeCache != nil {
				writeCache()
			}
			// The call-frame table too: the first stop's stack trace
			// would otherwise parse and sort a kernel's 200,000 FDEs;
			// and the sorted names the debug console completes from.
			t.frameTab()
			t.prefixNames()
		}()
	}
}

// gcHeld is the garbage collector's setting while opens run: the first
// of opens that run at once (sessions side by side, modules) turns it
// off, each raises the memory limit that bounds the heap meanwhile, and
// the last puts back what they found.
var gcHeld struct {
	sync.Mutex
	opens     int
	prev      int   // the percent before the first open
	prevLimit int64 // the memory limit before it
}

// holdGC turns the collector off for an open that allocates up to about
// grow bytes that stay live, unless the heap grows by more than that (the
// memory limit then has it collect), and returns what ends the hold.
func holdGC(grow int64) (release func()) {
	gcHeld.Lock()
	defer gcHeld.Unlock()
	limit := debug.SetMemoryLimit(-1) // (reads it)
	if gcHeld.opens == 0 {
		gcHeld.prev, gcHeld.prevLimit = debug.SetGCPercent(-1), limit
		s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
		metrics.Read(s)
		limit = int64(s[0].Value.Uint64())
	}
	if limit <= math.MaxInt64-grow {
		limit += grow
	}
	debug.SetMemoryLimit(min(limit, gcHeld.prevLimit)) // (a limit the user set stands)
	gcHeld.opens++
	return func() {
		gcHeld.Lock()
		defer gcHeld.Unlock()
		if gcHeld.opens--; gcHeld.opens == 0 {
			debug.SetGCPercent(gcHeld.prev)
			debug.SetMemoryLimit(gcHeld.prevLimit)
		}
	}
}

// sideBySide runs the tasks with at most procs of them at a time (at least
// one), and returns when all are done.
func sideBySide(procs int, tasks ...func()) {
	sem := make(chan struct{}, max(procs, 1))
	var wg sync.WaitGroup
	for _, task := range tasks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			task()
		}()
	}
	wg.Wait()
}

// Images whose .debug_info is smaller than namesAtOpenBelow build their
// name maps during the open, larger ones behind it; namesHold, when not
// nil, holds the build behind the open until closed. Tests set both.
var (
	namesAtOpenBelow = 1 << 22
	namesHold        chan struct{}
)

// ctxErr reports the open's context's error (nil without one).
func (t *Table) ctxErr() error {
	if t.ctx == nil {
		return nil
	}
	return t.ctx.Err()
}

// findSections finds the debug sections.
func (t *Table) findSections() {
	d := t.dimg
	t.sec = secs{infoOff: -1}
	s := &t.sec
	for _, x := range []struct {
		name string
		dst  *[]byte
	}{
		{".debug_abbrev", &s.abbrev}, {".debug_str", &s.str}, {".debug_line_str", &s.lineStr},
		{".debug_line", &s.line}, {".debug_addr", &s.addr}, {".debug_str_offsets", &s.strOffsets},
		{".debug_ranges", &s.ranges}, {".debug_rnglists", &s.rnglists}, {".debug_loc", &s.loc},
		{".debug_loclists", &s.loclists}, {".debug_aranges", &s.aranges}, {".debug_frame", &s.frame},
		{".debug_types", &s.types},
	} {
		*x.dst, _ = d.section(x.name)
	}
	s.strS = string(s.str)
	var infoOff int
	s.info, infoOff = d.section(".debug_info")
	if d.m != nil && infoOff >= 0 {
		s.infoOff = infoOff
	}
	t.debugNames, _ = d.section(".debug_names")
}

// loadDWARF builds the index of the debug information.
func (t *Table) loadDWARF() {
	s := &t.sec
	if len(s.info) == 0 || len(s.abbrev) == 0 {
		return
	}
	t.units, t.tunits, _ = walkUnits(s.info)
	t.tunits = append(t.tunits, walkTypes(s.types)...)
	t.buildIndex()
	t.buildUnitRanges()
	t.noteRefs()
	t.indexTypeUnitNames()
}

// HasDWARF reports whether source-level information is available.
func (t *Table) HasDWARF() bool { return len(t.units) > 0 && len(t.files) > 1 }

// mergeIndex joins what the workers found.
func (t *Table) mergeIndex(parts []*indexPart, unitFiles [][]string) {
	// Three independent merges, side by side: the name maps, the files,
	// and the functions (this goroutine).
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		t.mergeNames(parts)
	}()
	go func() {
		defer wg.Done()
		t.mergeFiles(unitFiles)
	}()
	// Each part's functions and ranges sort on their own, side by side,
	// and are merged in address order after (a sort of them all, the
	// workers' runs interleaved, was a serial tail of the open).
	var sorts sync.WaitGroup
	for _, p := range parts {
		sorts.Add(1)
		go func() {
			defer sorts.Done()
			slices.SortFunc(p.funcs, byLow)
			sortRanges(p.ranges)
		}()
	}
	sorts.Wait()
	n := 0
	funcs, ranges := make([][]*Func, len(parts)), make([][]funcRange, len(parts))
	for i, p := range parts {
		n += len(p.inlined)
		if t.crossRefs {
			n += len(p.abstract)
		}
		funcs[i], ranges[i] = p.funcs, p.ranges
	}
	t.funcs = mergeRuns(funcs, byLow)
	t.ranges = mergeRuns(ranges, byRangeLow)
	t.inlineRefs = make([]inlineRef, 0, n)
	for _, p := range parts {
		t.inlineRefs = append(t.inlineRefs, p.inlined...)
		if t.crossRefs {
			// Units that refer into others (GCC's -flto unit) inline
			// functions that the units they refer to describe without
			// DW_AT_inline (early debug information).
			t.inlineRefs = append(t.inlineRefs, p.abstract...)
		}
	}
	wg.Wait()
}

// mergeRuns merges sorted runs two by two (in log₂ of their number of
// rounds, where merging each into the whole would copy the whole once
// per run), earlier runs' elements first among equals.
func mergeRuns[E any](runs [][]E, cmp func(x, y E) int) []E {
	if len(runs) == 0 {
		return nil
	}
	for len(runs) > 1 {
		next := runs[:0:0]
		for i := 0; i+1 < len(runs); i += 2 {
			next = append(next, mergeSorted(runs[i], runs[i+1], cmp))
		}
		if len(runs)%2 == 1 {
			next = append(next, runs[len(runs)-1])
		}
		runs = next
	}
	return runs[0]
}

// mergeNames joins the workers' globals, types and enumerators, the first unit's
// definition of a name winning.
func (t *Table) mergeNames(parts []*indexPart) {
	ng := 0
	for _, p := range parts {
		ng += len(p.globals)
	}
	t.globals = make(map[string]nameRef, ng)
	t.types = map[string]nameRef{}
	t.enums = map[string]nameRef{}
	for _, p := range parts {
		for _, g := range p.globals {
			if old, ok := t.globals[g.name]; !ok || g.ref.cu < old.cu {
				t.globals[g.name] = g.ref
			}
		}
		for k, v := range p.types {
			if old, ok := t.types[k]; !ok || v.cu < old.cu {
				t.types[k] = v
			}
		}
		for _, tr := range p.typeRefs {
			b := cstrAt(t.sec.str, tr.strOff)
			// (a lookup by a converted []byte does not allocate)
			if old, ok := t.types[string(b)]; !ok || tr.ref.cu < old.cu {
				t.types[t.sec.strpString(tr.strOff, len(b))] = tr.ref
			}
		}
		for k, v := range p.enumNames {
			if old, ok := t.enums[k]; !ok || v.cu < old.cu {
				t.enums[k] = v
			}
		}
		for _, er := range p.enumRefs {
			b := cstrAt(t.sec.str, er.strOff)
			if old, ok := t.enums[string(b)]; !ok || er.ref.cu < old.cu {
				t.enums[t.sec.strpString(er.strOff, len(b))] = er.ref
			}
		}
	}
	if !t.crossRefs {
		return
	}
	// Where units refer into others (GCC's -flto unit: its definitions
	// of the globals the optimizer kept refer to the early debug
	// information), a global that no unit places is gdb's: known, typed,
	// optimized out.
	unplaced := map[string]nameRef{}
	for _, p := range parts {
		for _, g := range p.unplaced {
			if _, placed := t.globals[g.name]; placed {
				continue
			}
			if old, ok := unplaced[g.name]; !ok || g.ref.cu < old.cu {
				unplaced[g.name] = g.ref
			}
		}
	}
	for name, ref := range unplaced {
		t.globals[name] = ref
	}
}

// mergeFiles gives each distinct path of the units' line tables one id
// and lists the units naming each.
func (t *Table) mergeFiles(unitFiles [][]string) {
	ids := map[string]int32{}
	t.files = []string{""}
	t.byBase = map[string][]int32{}
	for ui, fs := range unitFiles {
		m := make([]int32, len(fs))
		for i, f := range fs {
			if f == "" {
				continue
			}
			id, ok := ids[f]
			if !ok {
				id = int32(len(t.files))
				ids[f] = id
				t.files = append(t.files, f)
				t.fileUnits = append(t.fileUnits, nil)
				b := f[strings.LastIndexByte(f, '/')+1:]
				t.byBase[b] = append(t.byBase[b], id)
			}
			m[i] = id
			if us := t.fileUnits[id-1]; len(us) == 0 || us[len(us)-1] != int32(ui) {
				t.fileUnits[id-1] = append(us, int32(ui))
			}
		}
		t.units[ui].files = m
	}
	t.fileUnits = append([][]int32{nil}, t.fileUnits...)
}

// buildUnitRanges maps addresses to units: .debug_aranges where present,
// else each unit's own ranges.
func (t *Table) buildUnitRanges() {
	covered := make([]bool, len(t.units))
	r := rd{b: t.sec.aranges}
	for !r.eof() {
		start := r.pos
		n, is64 := r.unitLength()
		end := r.pos + int(n)
		if r.bad || n == 0 || end > len(r.b) || end < r.pos {
			break
		}
		r.u16() // version
		off := r.uN(map64(is64))
		as := int(r.u8())
		r.u8() // segment selector size
		ci := t.unitAt(off)
		if as != 4 && as != 8 || ci < 0 {
			r.pos = end
			continue
		}
		// Tuples are aligned to twice the address size.
		if rem := (r.pos - start) % (2 * as); rem != 0 {
			r.skip(uint64(2*as - rem))
		}
		for r.pos+2*as <= end {
			a, l := r.uN(as), r.uN(as)
			if a == 0 && l == 0 {
				break
			}
			if l > 0 {
				t.cuRanges = append(t.cuRanges, cuRange{a, a + l, int32(ci)})
				covered[ci] = true
			}
		}
		r.pos = end
	}
	for i, u := range t.units {
		if covered[i] {
			continue
		}
		if u.rangesAttr.ok {
			for _, rg := range t.sec.rangesOf(u.rangesAttr, u) {
				t.cuRanges = append(t.cuRanges, cuRange{rg[0], rg[1], int32(i)})
			}
		} else if u.highPC.ok {
			if hi := highPC(u.highPC, u.lowPC); hi > u.lowPC {
				t.cuRanges = append(t.cuRanges, cuRange{u.lowPC, hi, int32(i)})
			}
		}
	}
	slices.SortFunc(t.cuRanges, func(a, b cuRange) int { return cmp.Compare(a.low, b.low) })
}

func map64(is64 bool) int {
	if is64 {
		return 8
	}
	return 4
}

// unitAt returns the index of the unit whose header is at off, or -1.
func (t *Table) unitAt(off uint64) int {
	i := sort.Search(len(t.units), func(i int) bool { return t.units[i].off >= off })
	if i < len(t.units) && t.units[i].off == off {
		return i
	}
	return -1
}

// unitOf returns the index of the unit holding the DIE at off, or -1.
func (t *Table) unitOf(off uint64) int {
	i := sort.Search(len(t.units), func(i int) bool { return t.units[i].end > off })
	if i < len(t.units) && off >= t.units[i].off {
		return i
	}
	return -1
}

// unitForPC returns the unit whose code holds pc, or -1.
func (t *Table) unitForPC(pc uint64) int32 {
	i := sort.Search(len(t.cuRanges), func(i int) bool { return t.cuRanges[i].low > pc })
	// Ranges of different units do not overlap; a few may nest (a unit
	// range around another's), so look back a little.
	for j := i - 1; j >= 0 && j >= i-4; j-- {
		if r := t.cuRanges[j]; pc >= r.low && pc < r.high {
			return r.cu
		}
	}
	return -1
}

func (t *Table) loadELFSymbols(im *image) {
	out := readSymtab(im)
	// By value, then symbol-table order (a stable sort): small keys are
	// sorted, then the symbols placed (a kernel's 180,000 symbols moved
	// about by the sort cost twice as much).
	keys := make([]symKey, len(out))
	for i := range out {
		out[i].idx = int32(i)
		keys[i] = symKey{out[i].value, int32(i)}
	}
	radixSort(keys)
	sorted := make([]elfSym, len(out))
	for i, k := range keys {
		sorted[i] = out[k.idx]
	}
	t.syms = sorted
}

// symKey is a symbol's value and its index in the symbol table.
type symKey struct {
	value uint64
	idx   int32
}

// radixSort sorts keys by value, stably: a least-significant-byte-first
// radix sort that skips the bytes in which all values agree (a kernel's
// upper ones). It is a fifth of a comparison sort's cost on a kernel's
// symbols.
func radixSort(keys []symKey) {
	if len(keys) < 2 {
		return
	}
	var differ uint64
	for _, k := range keys {
		differ |= k.value ^ keys[0].value
	}
	src, dst := keys, make([]symKey, len(keys))
	for shift := 0; shift < 64; shift += 8 {
		if differ>>shift&0xff == 0 {
			continue
		}
		var at [256]int
		for _, k := range src {
			at[k.value>>shift&0xff]++
		}
		sum := 0
		for d, n := range at {
			at[d] = sum
			sum += n
		}
		for _, k := range src {
			d := k.value >> shift & 0xff
			dst[at[d]] = k
			at[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}

// readSymtab returns the functions, objects and untyped symbols of an
// image's .symtab that a section defines, in table order, read where the
// table lies (mapped: no copy of it, and a string only for each symbol
// kept; debug/elf's Symbols builds all of them, names and versions).
func readSymtab(im *image) []elfSym {
	f := im.f
	st := f.Section(".symtab")
	if st == nil || st.Type != elf.SHT_SYMTAB || int(st.Link) >= len(f.Sections) {
		return nil
	}
	tab, _ := im.sectionBytes(st)
	strs, _ := im.sectionBytes(f.Sections[st.Link])
	size := 24
	if f.Class == elf.ELFCLASS32 {
		size = 16
	}
	bo := f.ByteOrder
	// The names are substrings of one copy of the string table, not a
	// string each (a kernel keeps 124,000 symbols).
	strS := string(strs)
	out := make([]elfSym, 0, len(tab)/size)
	for off := size; off+size <= len(tab); off += size { // entry 0 is the null symbol
		e := tab[off : off+size]
		var s elfSym
		var info byte
		var shndx elf.SectionIndex
		if size == 24 {
			info, shndx = e[4], elf.SectionIndex(bo.Uint16(e[6:]))
			s.value, s.size = bo.Uint64(e[8:]), bo.Uint64(e[16:])
		} else {
			info, shndx = e[12], elf.SectionIndex(bo.Uint16(e[14:]))
			s.value, s.size = uint64(bo.Uint32(e[4:])), uint64(bo.Uint32(e[8:]))
		}
		s.typ = elf.ST_TYPE(info)
		s.code = int(shndx) < len(f.Sections) && f.Sections[shndx].Flags&elf.SHF_EXECINSTR != 0
		if shndx == elf.SHN_UNDEF || s.typ != elf.STT_FUNC && s.typ != elf.STT_OBJECT && s.typ != elf.STT_NOTYPE {
			continue
		}
		noff := uint64(bo.Uint32(e[0:]))
		name := cstrAt(strs, noff)
		if len(name) == 0 || s.typ == elf.STT_NOTYPE && (name[0] == '.' || name[0] == '$') {
			continue
		}
		s.name = strS[noff : noff+uint64(len(name))]
		out = append(out, s)
	}
	runtime.KeepAlive(im) // the mapping the bytes are in
	return out
}

// symIndex returns the index of the named ELF symbol (the name map is
// built on first use).
func (t *Table) symIndex(name string) (int32, bool) {
	t.symOnce.Do(func() {
		t.symByName = make(map[string]int32, len(t.syms))
		for i := len(t.syms) - 1; i >= 0; i-- {
			t.symByName[t.syms[i].name] = int32(i)
		}
	})
	i, ok := t.symByName[name]
	return i, ok
}

// addELFFuncs adds ELF function symbols that DWARF does not describe
// (assembly routines), merged into the sorted functions and ranges.
func (t *Table) addELFFuncs() {
	// The DWARF functions and ranges are sorted (mergeIndex); the
	// symbols' functions come in address order (t.syms is sorted), found
	// in one walk along the ranges, and are merged in.
	var extra []funcRange
	var slab funcSlab
	// next[i]: the first symbol value above syms[i]'s (0: none), for
	// sizing symbols without a size (thousands share one address in a
	// kernel, so a forward scan from each would be quadratic).
	next := make([]uint64, len(t.syms))
	for i := len(t.syms) - 2; i >= 0; i-- {
		if t.syms[i+1].value > t.syms[i].value {
			next[i] = t.syms[i+1].value
		} else {
			next[i] = next[i+1]
		}
	}
	ri := 0 // the first range above the symbol
	for i, s := range t.syms {
		// Functions, and labels in code: a kernel's untyped symbols are
		// mostly data (__ksymtab_*, __kstrtab_*) or absolute values
		// (__crc_*, checksums), which no PC is in.
		if s.typ != elf.STT_FUNC && !(s.typ == elf.STT_NOTYPE && s.code) {
			continue
		}
		for ri < len(t.ranges) && t.ranges[ri].low <= s.value {
			ri++
		}
		if funcBelow(t.ranges, ri, s.value) != nil {
			continue
		}
		size := s.size
		if size == 0 && next[i] > s.value {
			size = next[i] - s.value // up to the next symbol
		}
		if size == 0 || s.typ == elf.STT_NOTYPE && size > 1<<16 {
			continue
		}
		fn := slab.next()
		*fn = Func{Name: Demangle(s.name), Low: s.value, High: s.value + size, cu: -1}
		extra = append(extra, funcRange{fn.Low, fn.High, fn})
	}
	if len(extra) == 0 {
		return
	}
	sortRanges(extra) // (in address order already, but cheaply sure)
	t.ranges = mergeSorted(t.ranges, extra, byRangeLow)
	fns := make([]funcRange, len(t.funcs))
	for i, f := range t.funcs {
		fns[i] = funcRange{f.Low, f.High, f}
	}
	merged := mergeSorted(fns, extra, byRangeLow)
	t.funcs = t.funcs[:0]
	for _, r := range merged {
		t.funcs = append(t.funcs, r.fn)
	}
}

// mergeSorted merges two slices sorted by cmp into a new one, a's
// elements first among equals.
func mergeSorted[E any](a, b []E, cmp func(x, y E) int) []E {
	out := make([]E, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if cmp(b[j], a[i]) < 0 {
			out = append(out, b[j])
			j++
		} else {
			out = append(out, a[i])
			i++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// names returns the function-name map, built on first use (a kernel's
// 150,000 names cost a tenth of its load; breakpoints by name and
// completions need them later, if at all).
func (t *Table) names() map[string]*Func {
	t.nameOnce.Do(func() {
		m := make(map[string]*Func, len(t.funcs))
		for i := len(t.funcs) - 1; i >= 0; i-- {
			f := t.funcs[i]
			if f.Name == "" {
				continue
			}
			f.nextSame = m[f.Name]
			m[f.Name] = f
		}
		t.byName = m
	})
	return t.byName
}

// byLow and byRangeLow order functions by address, then (for aliases)
// as the debug information does: the same order whichever workers read
// which units.
func byLow(a, b *Func) int {
	if c := cmp.Compare(a.Low, b.Low); c != 0 {
		return c
	}
	return byDIE(a, b)
}

func byRangeLow(a, b funcRange) int {
	if c := cmp.Compare(a.low, b.low); c != 0 {
		return c
	}
	return byDIE(a.fn, b.fn)
}

func byDIE(a, b *Func) int {
	if c := cmp.Compare(a.cu, b.cu); c != 0 {
		return c
	}
	return cmp.Compare(a.die, b.die)
}
func sortRanges(r []funcRange) { slices.SortFunc(r, byRangeLow) }

// dwarfFuncAt is FuncAt before ELF functions are added.
func (t *Table) dwarfFuncAt(pc uint64) *Func {
	i := sort.Search(len(t.ranges), func(i int) bool { return t.ranges[i].low > pc })
	return funcBelow(t.ranges, i, pc)
}

// funcBelow returns the smallest of the ranges just below ranges[i] (the
// first that begins above pc) that contains pc, or nil.
func funcBelow(ranges []funcRange, i int, pc uint64) *Func {
	var best *funcRange
	for j := i - 1; j >= 0 && j >= i-8; j-- {
		r := &ranges[j]
		if pc >= r.low && pc < r.high && (best == nil || r.high-r.low < best.high-best.low) {
			best = r
		}
	}
	if best == nil {
		return nil
	}
	return best.fn
}

// FuncAt returns the function containing pc (the innermost, smallest one).
func (t *Table) FuncAt(pc uint64) *Func { return t.dwarfFuncAt(pc) }

// Funcs returns every function, sorted by Low. The slice is shared: do
// not modify it.
func (t *Table) Funcs() []*Func { return t.funcs }

// FuncByName finds a function by name (the first of several of the same
// name: see FuncsByName).
func (t *Table) FuncByName(name string) *Func {
	if fs := t.FuncsByName(name); len(fs) > 0 {
		return fs[0]
	}
	return nil
}

// FuncsByName returns every function of that name: a static function
// defined in several units has one copy in each.
func (t *Table) FuncsByName(name string) []*Func {
	if !t.namesReady.Load() {
		return t.scanFuncs(name)
	}
	var out []*Func
	for f := t.names()[name]; f != nil; f = f.nextSame {
		out = append(out, f)
	}
	return out
}

// Symbol names the symbol (function or object) containing addr, for
// disassembly labels: name and start.
func (t *Table) Symbol(addr uint64) (string, uint64, bool) {
	if f := t.FuncAt(addr); f != nil {
		return f.Name, f.Low, true
	}
	i := sort.Search(len(t.syms), func(i int) bool { return t.syms[i].value > addr })
	for j := i - 1; j >= 0 && j >= i-4; j-- {
		s := t.syms[j]
		if addr >= s.value && (addr < s.value+s.size || (s.size == 0 && addr == s.value)) {
			return Demangle(s.name), s.value, true
		}
	}
	return "", 0, false
}

// SymbolAddr returns the address of a named ELF symbol.
func (t *Table) SymbolAddr(name string) (uint64, bool) {
	if !t.namesReady.Load() {
		return t.scanSymbol(name)
	}
	if i, ok := t.symIndex(name); ok {
		return t.syms[i].value, true
	}
	return 0, false
}

// Units returns the number of compile units.
func (t *Table) Units() int { return len(t.units) }

// image is an opened ELF file: its sections are slices of a read-only
// mapping of the file when it could be mapped, else read through the
// io.ReaderAt on demand.
type image struct {
	f       *elf.File
	m       []byte // the mapping, or nil
	cleanup runtime.Cleanup
}

// release unmaps a mapped image at once rather than when it is
// collected: an open that failed or was cancelled gives its pages back
// (a kernel's touched debug sections are a hundred megabytes and more).
// Nothing may read the image after.
func (img *image) release() {
	if img.m != nil {
		img.cleanup.Stop()
		unmapFile(img.m)
		img.m = nil
	}
}

// maxImage bounds what is read of an image that is not mapped.
const maxImage = 4 << 30

func openImage(path string) (*image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fileKind(st.Mode()))
	}
	if img, err := mapImage(f, path); err != errNotMapped {
		return img, err
	}
	// Not mappable: read sections through the file, which stays open
	// for as long as the image is used.
	g, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	img, err := newImage(g, path)
	if err != nil {
		g.Close()
		return nil, err
	}
	runtime.AddCleanup(img, func(g *os.File) { g.Close() }, g)
	return img, nil
}

var errNotMapped = errors.New("not mapped")

// mapImage maps the open file f as an image (the mapping outlives f), or
// fails with errNotMapped when it cannot be mapped.
func mapImage(f *os.File, name string) (*image, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m, ok := mapFile(f, st.Size())
	if !ok {
		return nil, errNotMapped
	}
	img, err := newImage(readerAt(m), name)
	if err != nil {
		unmapFile(m)
		return nil, err
	}
	img.m = m
	img.cleanup = runtime.AddCleanup(img, unmapFile, m)
	return img, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

// readerAt reads a mapping.
type readerAt []byte

func (b readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func newImage(r io.ReaderAt, name string) (*image, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		// Never echo the file's bytes (debug/elf's magic-number error
		// quotes them).
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("%s: not an ELF file", name)
		}
		return nil, fmt.Errorf("%s: not an ELF file: %w", name, err)
	}
	if f.Machine != elf.EM_X86_64 && f.Machine != elf.EM_386 {
		return nil, fmt.Errorf("%s: an ELF file for %s, not x86", name, f.Machine)
	}
	return &image{f: f}, nil
}

// size is the image file's size (0 when it is not mapped).
func (im *image) size() int { return len(im.m) }

// section returns a section's contents and its file offset (-1 when the
// bytes are a decompressed or read copy).
func (im *image) section(name string) ([]byte, int) { return im.sectionBytes(im.f.Section(name)) }

// sectionBytes is section for a section header (nil: none).
func (im *image) sectionBytes(s *elf.Section) ([]byte, int) {
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil, -1
	}
	if im.m != nil && s.Flags&elf.SHF_COMPRESSED == 0 {
		if s.Offset > uint64(len(im.m)) || s.Size > uint64(len(im.m))-s.Offset {
			return nil, -1
		}
		return im.m[s.Offset : s.Offset+s.Size : s.Offset+s.Size], int(s.Offset)
	}
	if s.Size > maxImage {
		return nil, -1
	}
	b, err := s.Data()
	if err != nil {
		return nil, -1
	}
	return b, -1
}
