package symbols

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"vmdap/vmm/vmmtest"
)

// withBuildID returns a copy of the image with a GNU build ID note (the
// test guests are linked without one), made by objcopy.
func withBuildID(t *testing.T, path string, id byte) string {
	t.Helper()
	dir := t.TempDir()
	note := filepath.Join(dir, "note")
	// namesz 4, descsz 8, NT_GNU_BUILD_ID, "GNU\0", the ID.
	b := []byte{4, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 'G', 'N', 'U', 0, id, 2, 3, 4, 5, 6, 7, 8}
	if err := os.WriteFile(note, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(path))
	if msg, err := exec.Command("objcopy", "--add-section", ".note.gnu.build-id="+note, path, out).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, msg)
	}
	return out
}

// indexOf is everything the index holds that lookups answer from, the
// functions by value (their name chains are built behind a large open).
type indexOf struct {
	AddrSize  int
	UsedNames bool
	Units     []unit
	TUnits    []tunit
	CrossRefs bool
	Funcs     []Func
	Ranges    [][3]uint64 // low, high, the function's index
	Globals   map[string]nameRef
	Types     map[string]nameRef
	Inlined   map[string][]nameRef
	CURanges  []cuRange
	Files     []string
	FileUnits [][]int32
	ByBase    map[string][]int32
	Syms      []elfSym
}

// differ names the fields in which two indexes differ.
func differ(a, b indexOf) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, va.Type().Field(i).Name)
		}
	}
	return out
}

func indexState(t *testing.T, tb *Table) indexOf {
	t.Helper()
	for !tb.namesReady.Load() {
		time.Sleep(time.Millisecond)
	}
	tb.inlinedByName("")
	ix := indexOf{AddrSize: tb.AddrSize, UsedNames: tb.usedNames, TUnits: tb.tunits, CrossRefs: tb.crossRefs, Globals: tb.globals,
		Types: tb.types, Inlined: tb.inlined, CURanges: tb.cuRanges, Files: tb.files, FileUnits: tb.fileUnits, ByBase: tb.byBase, Syms: tb.syms}
	at := map[*Func]uint64{}
	for i, f := range tb.funcs {
		g := *f
		g.nextSame = nil
		ix.Funcs = append(ix.Funcs, g)
		at[f] = uint64(i)
	}
	for _, r := range tb.ranges {
		ix.Ranges = append(ix.Ranges, [3]uint64{r.low, r.high, at[r.fn]})
	}
	for _, u := range tb.units {
		ix.Units = append(ix.Units, *u)
	}
	return ix
}

// TestIndexCache opens each image twice with an index cache: the second
// open reads the index the first wrote, and holds the same as the first
// built. A damaged cache file, or another image's, is passed over (the
// index is built again, the same, and the file written again).
func TestIndexCache(t *testing.T) {
	defer func(above int) { cacheAbove = above }(cacheAbove)
	cacheAbove = 0
	var paths []string
	tags := []string{"O2", "dwarf2", "m32", "types4", "types5", "lto"}
	if _, err := exec.LookPath("clang"); err == nil {
		tags = append(tags, "clang-O2") // names by DW_FORM_strx, addresses by DW_FORM_addrx
	}
	for i, tag := range tags {
		paths = append(paths, withBuildID(t, vmmtest.BuildCorpus(t, tag).Path, byte(i)))
	}
	k := filepath.Join(vmmtest.LinuxCacheDir(), "vmlinux")
	if _, err := os.Stat(k); err == nil {
		paths = append(paths, k) // (it has its own build ID)
	}
	dir := t.TempDir()
	open := func(p string, cached bool) *Table {
		t.Helper()
		tb, err := Load(p, "", WithIndexCache(dir))
		if err != nil {
			t.Fatal(err)
		}
		if tb.fromCache != cached || (tb.cacheDone == nil) != cached {
			t.Fatalf("%s: read from the cache %v (written: %v), want %v", p, tb.fromCache, tb.cacheDone != nil, cached)
		}
		if tb.cacheDone != nil {
			<-tb.cacheDone
		}
		return tb
	}
	for _, p := range paths {
		built := open(p, false)
		file := built.cachePath()
		want := indexState(t, built)
		if len(want.Funcs) == 0 || len(want.Files) < 2 || len(want.Units) == 0 {
			t.Fatalf("%s: an index with %d functions, %d files: the comparison would prove little", p, len(want.Funcs), len(want.Files))
		}
		cached := open(p, true)
		if got := indexState(t, cached); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: the index read from the cache differs from the one built in %v", p, differ(got, want))
		}
		// (The enumerators too; a kernel's, built by several workers,
		// name the enumeration of whichever unit a worker saw first.)
		if !reflect.DeepEqual(cached.enums, built.enums) && len(built.units) < 100 {
			t.Fatalf("%s: the enumerators read from the cache differ from those built", p)
		}
		// Damaged: a byte flipped in the middle.
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x40
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if got := indexState(t, open(p, false)); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: the index built past a damaged cache differs in %v", p, differ(got, want))
		}
		open(p, true) // written again
		t.Logf("%s: %d functions, %d files, %d units; cache file %d bytes", filepath.Base(p), len(want.Funcs), len(want.Files), len(want.Units), len(b))
	}
	// Another image's index under this one's name.
	a, b := open(paths[0], true), open(paths[1], true)
	other, err := os.ReadFile(b.cachePath())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.cachePath(), other, 0o644); err != nil {
		t.Fatal(err)
	}
	open(paths[0], false)
}

// TestIndexCacheDecodeChecks damages an index file in ways its checksum
// does not catch (the checksum made again): decodeIndex refuses it or
// reads it, without a panic; and some of those it reads are opened, and
// asked what a session asks, without a panic either.
func TestIndexCacheDecodeChecks(t *testing.T) {
	defer func(above int) { cacheAbove = above }(cacheAbove)
	cacheAbove = 0
	// (With type units and references across units: the views of
	// typeunits.go, made from what the index says.)
	for i, tag := range []string{"O2", "types4", "lto"} {
		t.Run(tag, func(t *testing.T) { decodeChecks(t, withBuildID(t, vmmtest.BuildCorpus(t, tag).Path, byte(9+i))) })
	}
}

func decodeChecks(t *testing.T, p string) {
	tb, err := Load(p, "", WithIndexCache(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	<-tb.cacheDone
	good, err := os.ReadFile(tb.cachePath())
	if err != nil {
		t.Fatal(err)
	}
	resum := func(b []byte) []byte {
		b = b[:len(b)-4]
		return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	}
	if _, err := tb.decodeIndex(good); err != nil {
		t.Fatalf("the file written: %v", err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	refused, opened := 0, 0
	for i := 0; i < 20000; i++ {
		b := slices.Clone(good[:len(good)-4])
		switch i % 3 {
		case 0: // a byte changed
			b[len(cacheMagic)+rng.IntN(len(b)-len(cacheMagic))] = byte(rng.Uint32())
		case 1: // cut short
			b = b[:len(cacheMagic)+rng.IntN(len(b)-len(cacheMagic))]
		case 2: // a large varint where one was
			at := len(cacheMagic) + rng.IntN(len(b)-len(cacheMagic)-10)
			copy(b[at:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
		}
		damaged := resum(append(b, 0, 0, 0, 0))
		if _, err := tb.decodeIndex(damaged); err != nil {
			refused++
		} else if opened < 300 {
			opened++
			askAll(t, p, tb.cachePath(), damaged)
		}
	}
	if refused == 0 {
		t.Fatal("no damaged file refused: the checks check nothing")
	}
	t.Logf("%d of 20000 damaged files refused, the others read without a panic; %d opened and asked", refused, opened)
}

// askAll opens the image with a damaged index in its cache file and asks
// it what a session asks (a panic fails the test).
func askAll(t *testing.T, image, file string, damaged []byte) {
	t.Helper()
	if err := os.WriteFile(file, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	tb, err := Load(image, "", WithIndexCache(filepath.Dir(file)))
	if err != nil {
		t.Fatal(err)
	}
	if !tb.fromCache {
		t.Fatal("the damaged index decodeIndex read was not read by the open")
	}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("a query on a damaged index panicked: %v", r)
		}
	}()
	for _, f := range tb.Funcs() {
		tb.FuncAt(f.Low)
		tb.PCToLine(f.Low)
		tb.ScopeAt(f.Low)
		tb.PrologueEnd(f)
		tb.CallSites(f)
		tb.InlinedAt(f.Low)
		tb.InlinedSites(f.Name)
		tb.FuncsByName(f.Name)
		tb.Symbol(f.Low)
		tb.Globals(f.Low)
	}
	for _, file := range tb.Files() {
		for line := range 40 {
			tb.LineAddrs(file, line)
		}
	}
	tb.GlobalNames(func(name string) { tb.GlobalByName(name) })
	tb.NamesWithPrefix("", func(name string, kind NameKind) bool {
		tb.TypeByName(name)
		return true
	})
}

// TestIndexCacheKeepsTheRecent checks the cache folder's bound: the
// cacheKeep most recently used indexes stay, and a writer's leftover.
func TestIndexCacheKeepsTheRecent(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	var names []string
	for i := range cacheKeep + 3 {
		n := filepath.Join(dir, fmt.Sprintf("%02d.idx", i))
		if err := os.WriteFile(n, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		used := old.Add(time.Duration(i) * time.Minute)
		os.Chtimes(n, used, used)
		names = append(names, n)
	}
	left := filepath.Join(dir, ".index-123")
	os.WriteFile(left, nil, 0o644)
	os.Chtimes(left, old, old)
	trimCache(dir)
	for i, n := range names {
		_, err := os.Stat(n)
		if kept := err == nil; kept != (i >= 3) {
			t.Errorf("%s (used %d minutes after the first): kept %v", filepath.Base(n), i, kept)
		}
	}
	if _, err := os.Stat(left); err == nil {
		t.Error("a writer's leftover from an hour ago was kept")
	}
}

// TestFlushIndexCaches: an image whose name maps are built behind its
// open (held here, as a process that ends first never sees them done)
// has its index written by FlushIndexCaches, which a second open reads.
// Without it, a short session (a core opened and looked at) left no
// index behind, and every session of the kind built it again.
func TestFlushIndexCaches(t *testing.T) {
	defer func(above, below int, hold chan struct{}) {
		cacheAbove, namesAtOpenBelow, namesHold = above, below, hold
	}(cacheAbove, namesAtOpenBelow, namesHold)
	cacheAbove, namesAtOpenBelow, namesHold = 0, 0, make(chan struct{})
	defer close(namesHold)
	p := withBuildID(t, vmmtest.BuildCorpus(t, "O2").Path, 0x5a)
	dir := t.TempDir()
	tb, err := Load(p, "", WithIndexCache(dir))
	if err != nil {
		t.Fatal(err)
	}
	if tb.fromCache || tb.cacheDone == nil {
		t.Fatalf("first open: read from the cache %v, writes one %v", tb.fromCache, tb.cacheDone != nil)
	}
	if _, err := os.Stat(tb.cachePath()); err == nil {
		t.Fatal("the index was written before its name maps were built: the test holds nothing")
	}
	if !FlushIndexCaches(time.Minute) {
		t.Fatal("FlushIndexCaches timed out")
	}
	select {
	case <-tb.cacheDone:
	default:
		t.Fatal("FlushIndexCaches returned before the writer finished")
	}
	again, err := Load(p, "", WithIndexCache(dir))
	if err != nil {
		t.Fatal(err)
	}
	if !again.fromCache {
		t.Fatal("the second open did not read the index the flush wrote")
	}
	if !FlushIndexCaches(time.Second) {
		t.Fatal("nothing was pending, yet FlushIndexCaches timed out")
	}
}
