package symbols

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
)

// The index cache: what the open's index pass finds in a large image (its
// units, functions, ranges, names, files and ELF symbols) is written to a
// file named by the image's build ID, and a later open of the same image
// reads it there instead of scanning .debug_info again, as gdb's
// index-cache does. A file that is missing, of another format, damaged or
// for another image is passed over and the index built as without one.

// WithIndexCache keeps the index of large images in dir (created when
// needed); "" keeps none.
func WithIndexCache(dir string) Option {
	return func(t *Table) { t.cacheDir = dir }
}

// IndexCached reports whether the index was read from the index cache.
func (t *Table) IndexCached() bool { return t.fromCache }

// cacheAbove is the size of .debug_info above which the index is cached:
// a smaller image's is built in a few milliseconds. Tests lower it.
var cacheAbove = 16 << 20

// cacheVersion is the layout of the file and the meaning of what it
// holds: bump it with any change to either, or to what the index pass
// finds (a file also records the vmdap build that wrote it, when the
// build knows its revision, and is read only by the same).
const (
	cacheMagic   = "vmdap-index\n"
	cacheVersion = 7
)

// buildRevision is the version control revision vmdap was built from
// ("" when the build does not say).
var buildRevision = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev := ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev += s.Value
		case "vcs.modified":
			if s.Value == "true" {
				rev += "+modified"
			}
		}
	}
	return rev
})

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// cachePath returns the file the index of the table's image is kept in,
// or "" when it is not cached (no folder, a small image, no build ID).
func (t *Table) cachePath() string {
	if t.cacheDir == "" || len(t.sec.info) <= cacheAbove {
		return ""
	}
	id := buildID(t.dimg.f)
	if id == nil {
		return ""
	}
	return filepath.Join(t.cacheDir, fmt.Sprintf("%x-%x.idx", id, len(t.sec.info)))
}

// BuildID returns the image's GNU build ID, or nil when it has none.
func (t *Table) BuildID() []byte { return buildID(t.dimg.f) }

// buildID returns the image's GNU build ID, or nil: the NT_GNU_BUILD_ID
// note of any note section (.note.gnu.build-id, or a kernel's .notes).
func buildID(f *elf.File) []byte {
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE || s.Size > 1<<20 {
			continue
		}
		b, err := s.Data()
		if err != nil {
			continue
		}
		bo := f.ByteOrder
		for len(b) >= 12 {
			nameSize, descSize, typ := uint64(bo.Uint32(b)), uint64(bo.Uint32(b[4:])), bo.Uint32(b[8:])
			nameEnd := 12 + (nameSize+3)&^3
			end := nameEnd + (descSize+3)&^3
			if end > uint64(len(b)) {
				break
			}
			if typ == 3 && nameSize == 4 && string(b[12:16]) == "GNU\x00" && descSize > 0 && descSize <= 64 {
				return b[nameEnd : nameEnd+descSize]
			}
			b = b[end:]
		}
	}
	return nil
}

// indexSnapshot is what the cache writer reads, taken when the open ends:
// copies of what a later SetSlide or MapSources changes in place.
type indexSnapshot struct {
	units      []unit
	files      []string
	inlineRefs []inlineRef
}

func (t *Table) snapshot() *indexSnapshot {
	s := &indexSnapshot{units: make([]unit, len(t.units)), files: append([]string(nil), t.files...), inlineRefs: t.inlineRefs}
	for i, u := range t.units {
		s.units[i] = *u
	}
	return s
}

// pendingWrites are the cache writers that opens left to run behind them
// (after the name maps), by the Once that runs each: a short session (a
// core opened, a look, gone) ends before they start, and FlushIndexCaches
// runs them then.
var pendingWrites struct {
	sync.Mutex
	m map[*sync.Once]func()
}

// pendingCacheWrite registers write as pending and returns what runs it:
// once, whoever calls it first (the open's background, or
// FlushIndexCaches), the others waiting for it to finish.
func pendingCacheWrite(write func()) func() {
	once := new(sync.Once)
	run := func() {
		once.Do(write)
		pendingWrites.Lock()
		delete(pendingWrites.m, once)
		pendingWrites.Unlock()
	}
	pendingWrites.Lock()
	if pendingWrites.m == nil {
		pendingWrites.m = map[*sync.Once]func(){}
	}
	pendingWrites.m[once] = run
	pendingWrites.Unlock()
	return run
}

// FlushIndexCaches writes the index caches that are still to be written,
// starting those that wait for their image's name maps, and waits up to
// d for them; it reports whether they all finished. The process calls it
// before it exits, so that the index of an image opened for a short
// session is kept too.
func FlushIndexCaches(d time.Duration) bool {
	pendingWrites.Lock()
	runs := make([]func(), 0, len(pendingWrites.m))
	for _, run := range pendingWrites.m {
		runs = append(runs, run)
	}
	pendingWrites.Unlock()
	if len(runs) == 0 {
		return true
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for _, run := range runs {
			wg.Add(1)
			go func() { defer wg.Done(); run() }()
		}
		wg.Wait()
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// writeIndexCache writes the index to path (through a temporary file
// renamed into place: a reader never sees half of one).
func (t *Table) writeIndexCache(path string, snap *indexSnapshot) error {
	t.moving.RLock()
	body := t.encodeIndex(snap)
	t.moving.RUnlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".index-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	trimCache(filepath.Dir(path))
	return err
}

// cacheKeep is how many indexes the cache folder keeps, the most recently
// used (a read touches its file).
const cacheKeep = 8

// trimCache removes all but the cacheKeep most recently used indexes, and
// what writers that were stopped half-way left (older than a minute).
func trimCache(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type idx struct {
		path string
		used time.Time
	}
	var idxs []idx
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), ".index-") && time.Since(fi.ModTime()) > time.Minute:
			os.Remove(p)
		case strings.HasSuffix(e.Name(), ".idx"):
			idxs = append(idxs, idx{p, fi.ModTime()})
		}
	}
	slices.SortFunc(idxs, func(a, b idx) int { return b.used.Compare(a.used) })
	for _, x := range idxs[min(len(idxs), cacheKeep):] {
		os.Remove(x.path)
	}
}

// readIndexCache fills the table's index from path; it reports false,
// having changed nothing, when the file is not a good index of this image.
func (t *Table) readIndexCache(path string) (ok bool) {
	b, err := readCacheFile(path, int64(len(t.sec.info))/2+1<<20)
	if err != nil {
		return false
	}
	defer func() {
		if recover() != nil { // (decodeIndex checks what it reads: a last guard)
			ok = false
		}
	}()
	ix, err := t.decodeIndex(b)
	if err != nil {
		return false
	}
	ix.install(t)
	now := time.Now()
	os.Chtimes(path, now, now) // (used: trimCache keeps it)
	return true
}

// readCacheFile reads a regular file of at most limit bytes (a FIFO or a
// device put there would block the open or fill the memory).
func readCacheFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, errBadCache
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}

// encoder writes unsigned varints, and strings as an offset and a length
// in one blob of them all, each distinct string once.
type encoder struct {
	b    []byte
	blob []byte
	strs map[string]uint64
}

func (e *encoder) u(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) i(v int64)  { e.b = binary.AppendVarint(e.b, v) }

func (e *encoder) flag(v bool) {
	if v {
		e.u(1)
	} else {
		e.u(0)
	}
}

func (e *encoder) s(v string) {
	off, ok := e.strs[v]
	if !ok {
		off = uint64(len(e.blob))
		e.blob = append(e.blob, v...)
		e.strs[v] = off
	}
	e.u(off)
	e.u(uint64(len(v)))
}

func (e *encoder) cv(v cval) {
	e.u(v.u)
	e.u(uint64(v.form))
	e.flag(v.ok)
}

func (e *encoder) ref(r nameRef) {
	e.u(r.die)
	e.i(int64(r.cu))
}

// encodeIndex lays the index out: the magic, the version, the sizes of
// the sections it indexes, the string blob, the body, and a checksum of
// all before it.
func (t *Table) encodeIndex(snap *indexSnapshot) []byte {
	e := &encoder{strs: map[string]uint64{}}
	e.u(uint64(t.AddrSize))
	e.flag(t.usedNames)
	e.u(uint64(len(snap.units)))
	for i := range snap.units {
		u := &snap.units[i]
		e.u(u.off)
		e.u(u.dieOff)
		e.u(u.end)
		e.u(uint64(u.format.version))
		e.u(uint64(u.format.addrSize))
		e.u(uint64(u.format.offSize))
		e.u(u.abbrevOff)
		e.s(u.name)
		e.s(u.compDir)
		e.u(u.lang)
		e.s(u.producer)
		e.u(u.stmtList)
		e.flag(u.hasStmtList)
		e.u(u.lowPC)
		e.u(u.strOffBase)
		e.u(u.addrBase)
		e.u(u.rngBase)
		e.u(u.locBase)
		e.cv(u.rangesAttr)
		e.cv(u.highPC)
		e.u(uint64(len(u.files)))
		for _, f := range u.files {
			e.u(uint64(f))
		}
		e.u(uint64(u.refs))
	}
	e.u(uint64(len(t.tunits)))
	for i := range t.tunits {
		tu := &t.tunits[i]
		e.flag(tu.types)
		e.u(tu.off)
		e.u(tu.dieOff)
		e.u(tu.end)
		e.u(tu.typeOff)
		e.u(tu.sig)
		e.u(uint64(tu.format.version))
		e.u(uint64(tu.format.addrSize))
		e.u(uint64(tu.format.offSize))
		e.u(tu.abbrevOff)
	}
	slide := t.slide // (read under t.moving: addresses are kept as linked)
	index := make(map[*Func]uint64, len(t.funcs))
	e.u(uint64(len(t.funcs)))
	for i, f := range t.funcs {
		index[f] = uint64(i)
		e.s(f.Name)
		e.u(f.Low - slide)
		e.u(f.High - f.Low)
		e.flag(f.Inline)
		e.u(f.die)
		e.i(int64(f.cu))
	}
	e.u(uint64(len(t.ranges)))
	for _, r := range t.ranges {
		e.u(r.low - slide)
		e.u(r.high - r.low)
		e.u(index[r.fn])
	}
	for _, m := range []map[string]nameRef{t.globals, t.types, t.enums} {
		e.u(uint64(len(m)))
		for name, r := range m {
			e.s(name)
			e.ref(r)
		}
	}
	e.u(uint64(len(snap.inlineRefs)))
	for _, ir := range snap.inlineRefs {
		e.u(uint64(ir.form))
		e.u(ir.strOff)
		e.flag(ir.name != nil)
		if ir.name != nil {
			e.s(string(ir.name))
		}
		e.ref(ir.ref)
	}
	e.u(uint64(len(t.cuRanges)))
	for _, r := range t.cuRanges {
		e.u(r.low - slide)
		e.u(r.high - r.low)
		e.u(uint64(r.cu))
	}
	e.u(uint64(len(snap.files)))
	for _, f := range snap.files {
		e.s(f)
	}
	e.u(uint64(len(t.fileUnits)))
	for _, us := range t.fileUnits {
		e.u(uint64(len(us)))
		for _, u := range us {
			e.u(uint64(u))
		}
	}
	e.u(uint64(len(t.syms)))
	for _, s := range t.syms {
		e.s(s.name)
		e.u(s.value - slide)
		e.u(s.size)
		e.u(uint64(s.typ))
		e.u(uint64(s.idx))
		e.flag(s.code)
		e.flag(s.atEnd)
	}
	out := []byte(cacheMagic)
	out = binary.AppendUvarint(out, cacheVersion)
	out = binary.AppendUvarint(out, uint64(len(buildRevision())))
	out = append(out, buildRevision()...)
	out = binary.AppendUvarint(out, uint64(len(t.sec.info)))
	out = binary.AppendUvarint(out, uint64(len(t.sec.abbrev)))
	out = binary.AppendUvarint(out, uint64(len(t.sec.str)))
	out = binary.AppendUvarint(out, uint64(len(t.sec.line)))
	out = binary.AppendUvarint(out, uint64(len(e.blob)))
	out = append(out, e.blob...)
	out = append(out, e.b...)
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, crcTable))
}

// decoder reads what encoder wrote; a value out of range marks it bad.
type decoder struct {
	b    []byte
	pos  int
	blob string
	bad  bool
}

func (d *decoder) u() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.pos:])
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.pos += n
	return v
}

// i reads a signed varint (zig-zag, as binary.AppendVarint writes it).
func (d *decoder) i() int64 {
	ux := d.u()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) flag() bool { return d.u() != 0 }

// count reads a number of elements of at least min bytes each.
func (d *decoder) count(min int) int {
	n := d.u()
	if n > uint64(len(d.b)-d.pos)/uint64(min) {
		d.bad = true
		return 0
	}
	return int(n)
}

// str reads n bytes.
func (d *decoder) str(n int) string {
	if d.bad {
		return ""
	}
	s := string(d.b[d.pos : d.pos+n])
	d.pos += n
	return s
}

// below reads a number that must be below limit.
func (d *decoder) below(limit uint64) uint64 {
	v := d.u()
	if v >= limit {
		d.bad = true
		return 0
	}
	return v
}

func (d *decoder) s() string {
	off, n := d.u(), d.u()
	if off > uint64(len(d.blob)) || n > uint64(len(d.blob))-off {
		d.bad = true
		return ""
	}
	return d.blob[off : off+n]
}

func (d *decoder) cv() cval {
	return cval{u: d.u(), form: uint32(d.u()), ok: d.flag()}
}

// ref reads a reference to a DIE of a unit, or of a type unit (tuRef).
func (d *decoder) ref(units, tunits int) nameRef {
	r := nameRef{die: d.u(), cu: int32(d.i())}
	if r.cu == -1 || r.cu >= 0 && int(r.cu) >= units || r.cu < -1 && tuIndex(r.cu) >= tunits {
		d.bad = true
	}
	return r
}

// decodedIndex is an index read from a cache file, installed into the
// table only once all of it has been read and checked.
type decodedIndex struct {
	addrSize              int
	usedNames             bool
	units                 []*unit
	tunits                []tunit
	funcs                 []*Func
	ranges                []funcRange
	globals, types, enums map[string]nameRef
	inlineRefs            []inlineRef
	cuRanges              []cuRange
	files                 []string
	fileUnits             [][]int32
	syms                  []elfSym
}

var errBadCache = errors.New("not an index of this image")

func (t *Table) decodeIndex(b []byte) (*decodedIndex, error) {
	if len(b) < len(cacheMagic)+4 || !bytes.HasPrefix(b, []byte(cacheMagic)) {
		return nil, errBadCache
	}
	sum := binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(b[:len(b)-4], crcTable) != sum {
		return nil, errBadCache
	}
	d := &decoder{b: b[:len(b)-4], pos: len(cacheMagic)}
	s := &t.sec
	if d.u() != cacheVersion || d.str(d.count(1)) != buildRevision() || d.u() != uint64(len(s.info)) || d.u() != uint64(len(s.abbrev)) ||
		d.u() != uint64(len(s.str)) || d.u() != uint64(len(s.line)) {
		return nil, errBadCache
	}
	d.blob = d.str(d.count(1))
	ix := &decodedIndex{addrSize: int(d.u()), usedNames: d.flag()}
	if ix.addrSize != 4 && ix.addrSize != 8 {
		return nil, errBadCache
	}
	info := uint64(len(s.info))
	// (Each count is checked against the bytes left at the least each
	// element takes: a damaged count allocates no more than the file's
	// size in elements.)
	ix.units = make([]*unit, d.count(25))
	for i := range ix.units {
		u := &unit{off: d.u(), dieOff: d.u(), end: d.u()}
		u.format = unitFormat{version: int(d.u()), addrSize: int(d.u()), offSize: int(d.u())}
		u.abbrevOff = d.below(uint64(len(s.abbrev)) + 1)
		u.name, u.compDir, u.lang, u.producer = d.s(), d.s(), d.u(), d.s()
		u.stmtList, u.hasStmtList = d.u(), d.flag()
		u.lowPC, u.strOffBase, u.addrBase, u.rngBase, u.locBase = d.u(), d.u(), d.u(), d.u(), d.u()
		u.rangesAttr, u.highPC = d.cv(), d.cv()
		f := u.format
		if d.bad || u.off > u.dieOff || u.dieOff > u.end || u.end > info ||
			f.version < 2 || f.version > 5 || f.addrSize != 4 && f.addrSize != 8 || f.offSize != 4 && f.offSize != 8 ||
			u.strOffBase > uint64(len(s.strOffsets)) || u.addrBase > uint64(len(s.addr)) ||
			u.rngBase > uint64(len(s.rnglists)) || u.locBase > s.loclists.size {
			return nil, errBadCache
		}
		u.files = make([]int32, d.count(1))
		for j := range u.files {
			u.files[j] = int32(d.below(1 << 31))
		}
		u.refs = unitRefs(d.below(4))
		ix.units[i] = u
	}
	if n := d.count(10); n > 0 {
		ix.tunits = make([]tunit, n)
	}
	for i := range ix.tunits {
		tu := &ix.tunits[i]
		tu.types = d.flag()
		tu.off, tu.dieOff, tu.end, tu.typeOff, tu.sig = d.u(), d.u(), d.u(), d.u(), d.u()
		tu.format = unitFormat{version: int(d.u()), addrSize: int(d.u()), offSize: int(d.u())}
		tu.abbrevOff = d.below(uint64(len(s.abbrev)) + 1)
		sec := info
		if tu.types {
			sec = uint64(len(s.types))
		}
		f := tu.format
		if d.bad || tu.off > tu.dieOff || tu.dieOff > tu.typeOff || tu.typeOff >= tu.end || tu.end > sec ||
			f.version < 4 || f.version > 5 || f.addrSize != 4 && f.addrSize != 8 || f.offSize != 4 && f.offSize != 8 {
			return nil, errBadCache
		}
	}
	units := len(ix.units)
	cu := func() int32 {
		c := d.i()
		if c < -1 || c >= int64(units) {
			d.bad = true
		}
		return int32(c)
	}
	nf := d.count(7)
	slab := make([]Func, nf)
	ix.funcs = make([]*Func, nf)
	for i := range ix.funcs {
		f := &slab[i]
		f.Name = d.s()
		f.Low = d.u()
		f.High = f.Low + d.u()
		f.Inline = d.flag()
		f.die = d.u()
		f.cu = cu()
		ix.funcs[i] = f
	}
	ix.ranges = make([]funcRange, d.count(3))
	for i := range ix.ranges {
		r := &ix.ranges[i]
		r.low = d.u()
		r.high = r.low + d.u()
		if fi := d.below(uint64(nf)); !d.bad {
			r.fn = ix.funcs[fi]
		}
	}
	for _, m := range []*map[string]nameRef{&ix.globals, &ix.types, &ix.enums} {
		n := d.count(4)
		*m = make(map[string]nameRef, n)
		for range n {
			(*m)[d.s()] = d.ref(units, len(ix.tunits))
		}
	}
	ix.inlineRefs = make([]inlineRef, d.count(5))
	for i := range ix.inlineRefs {
		ir := &ix.inlineRefs[i]
		ir.form = uint32(d.u())
		ir.strOff = d.u()
		if d.flag() {
			ir.name = []byte(d.s())
		}
		ir.ref = d.ref(units, 0)
	}
	ix.cuRanges = make([]cuRange, d.count(3))
	for i := range ix.cuRanges {
		r := &ix.cuRanges[i]
		r.low = d.u()
		r.high = r.low + d.u()
		r.cu = int32(d.below(uint64(units)))
	}
	ix.files = make([]string, d.count(2))
	for i := range ix.files {
		ix.files[i] = d.s()
	}
	ix.fileUnits = make([][]int32, d.count(1))
	if len(ix.fileUnits) != len(ix.files) {
		return nil, errBadCache
	}
	for i := range ix.fileUnits {
		if n := d.count(1); n > 0 {
			us := make([]int32, n)
			for j := range us {
				us[j] = int32(d.below(uint64(units)))
			}
			ix.fileUnits[i] = us
		}
	}
	for _, u := range ix.units {
		for _, f := range u.files {
			if int(f) >= len(ix.files) {
				return nil, errBadCache
			}
		}
	}
	ix.syms = make([]elfSym, d.count(7))
	for i := range ix.syms {
		s := &ix.syms[i]
		s.name, s.value, s.size = d.s(), d.u(), d.u()
		s.typ = elf.SymType(d.below(16))
		s.idx = int32(d.below(1 << 31))
		s.code = d.flag()
		s.atEnd = d.flag()
	}
	if d.bad || d.pos != len(d.b) {
		return nil, errBadCache
	}
	return ix, nil
}

// install makes the decoded index the table's.
func (ix *decodedIndex) install(t *Table) {
	t.AddrSize, t.usedNames = ix.addrSize, ix.usedNames
	t.units, t.tunits, t.funcs, t.ranges = ix.units, ix.tunits, ix.funcs, ix.ranges
	t.globals, t.types, t.enums, t.inlineRefs = ix.globals, ix.types, ix.enums, ix.inlineRefs
	t.cuRanges, t.files, t.fileUnits, t.syms = ix.cuRanges, ix.files, ix.fileUnits, ix.syms
	t.byBase = map[string][]int32{}
	for id, f := range t.files {
		if id > 0 {
			b := f[strings.LastIndexByte(f, '/')+1:]
			t.byBase[b] = append(t.byBase[b], int32(id))
		}
	}
	t.noteRefs()
	t.fromCache = true
}
