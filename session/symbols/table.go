package symbols

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
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
	// atEnd: a symbol without size at its section's end (Linux's
	// _etext, _einittext), which marks the end and names no code.
	atEnd bool
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
	// funcNamesReady: byName is built (the first of the name maps).
	funcNamesReady atomic.Bool
	inlineOnce     sync.Once
	inlined        map[string][]nameRef // built from inlineRefs on first use
	globals        map[string]nameRef
	types          map[string]nameRef
	enums          map[string]nameRef // enumerator name → its unit (enums.go)
	cuRanges       []cuRange          // sorted by low

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

	// tails: the tail-call chains found (TailCallsFrom), by caller and
	// callee; tailMu guards it.
	tailMu sync.Mutex
	tails  map[[2]*Func][]*Func

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

	notes     []string // see Notes
	debugDirs []string // see WithDebugDirs
	// skeletonsJoined: the skeleton units whose split units were joined
	// (split.go), by offset.
	skeletonsJoined map[uint64]bool
	// splitRefs: how far each joined split unit moved (by its offset),
	// which its expressions' DIE offsets move by (addrx.go).
	splitRefs map[uint64]uint64

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
		writeCache = pendingCacheWrite(func() {
			defer close(t.cacheDone)
			t.writeIndexCache(cachePath, snap) // (on failure, the next open builds the index again)
		})
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
		sideBySide(procs, // the functions' first: call sites and tail calls look up their callees by name
			func() { t.names() },
			func() { t.symIndex("") },
			func() { t.inlinedByName("") })
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
			// The call-frame table first: the first stop's stack trace
			// (a core's comes at once after the attach) would otherwise
			// parse and sort a kernel's 200,000 FDEs, 20 ms, before it
			// answers; a lookup by name scans meanwhile.
			t.frameTab()
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
			// And the sorted names the debug console completes from.
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
		{".debug_ranges", &s.ranges}, {".debug_rnglists", &s.rnglists}, {".debug_aranges", &s.aranges},
		{".debug_types", &s.types},
	} {
		*x.dst, _ = d.section(x.name)
	}
	d.lazySection(".debug_loc", &s.loc)
	d.lazySection(".debug_loclists", &s.loclists)
	d.lazySection(".debug_frame", &s.frame)
	s.strS = string(s.str)
	var infoOff int
	s.info, infoOff = d.section(".debug_info")
	if d.m != nil && infoOff >= 0 {
		s.infoOff = infoOff
	}
	t.debugNames, _ = d.section(".debug_names")
	if name, id, ok := altLink(d.f); ok && len(s.info) > 0 {
		t.readSup(name, id)
	}
	t.skeletonsJoined = t.readSplit()
}

// loadDWARF builds the index of the debug information.
func (t *Table) loadDWARF() {
	s := &t.sec
	if len(s.info) == 0 || len(s.abbrev) == 0 {
		return
	}
	t.units, t.tunits, _ = walkUnits(s.info)
	if len(t.skeletonsJoined) > 0 {
		// (their split units, joined, stand for them: split.go)
		t.units = slices.DeleteFunc(t.units, func(u *unit) bool { return t.skeletonsJoined[u.off] })
	}
	t.tunits = append(t.tunits, walkTypes(s.types)...)
	t.buildIndex()
	t.noteGNUSplit()
	t.buildUnitRanges()
	t.noteRefs()
	t.indexTypeUnitNames()
}

// HasDWARF reports whether source-level information is available.
func (t *Table) HasDWARF() bool { return len(t.units) > 0 && len(t.files) > 1 }
