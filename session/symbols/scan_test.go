package symbols

import (
	"math"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"vmdap/vmm/vmmtest"
)

// The scans that answer lookups by name while a large image's maps are
// built must answer as the maps do: every function, symbol and inlined
// function the -O2, DWARF 2 and 32-bit corpus builds name, looked up
// with the maps held back, then again once they are built.
func TestLookupsByNameBeforeTheMaps(t *testing.T) {
	defer func(below int, hold chan struct{}) { namesAtOpenBelow, namesHold = below, hold }(namesAtOpenBelow, namesHold)
	for _, tag := range []string{"O2", "dwarf2", "m32"} {
		t.Run(tag, func(t *testing.T) {
			path := vmmtest.BuildCorpus(t, tag).Path
			namesAtOpenBelow, namesHold = 0, make(chan struct{})
			tb, err := Load(path, "")
			if err != nil {
				t.Fatal(err)
			}
			if tb.namesReady.Load() || tb.inlineScan.Load() == nil {
				t.Fatal("the name maps were built though held back")
			}
			names := map[string]bool{"no_such_name": true}
			for _, f := range tb.funcs {
				names[f.Name] = true
			}
			for _, s := range tb.syms {
				names[s.name] = true
			}
			for _, ir := range *tb.inlineScan.Load() {
				if ir.name != nil {
					names[string(ir.name)] = true
				} else {
					names[string(cstrAt(tb.strsOf(ir.form), ir.strOff))] = true
				}
			}
			type answer struct {
				funcs []*Func
				addr  uint64
				ok    bool
				sites []uint64
			}
			lookup := func(n string) answer {
				a := answer{funcs: tb.FuncsByName(n), sites: tb.InlinedSites(n)}
				a.addr, a.ok = tb.SymbolAddr(n)
				return a
			}
			scanned := map[string]answer{}
			inlined := 0
			for n := range names {
				scanned[n] = lookup(n)
				if len(scanned[n].sites) > 0 {
					inlined++
				}
			}
			if tag != "m32" && inlined == 0 {
				t.Fatal("no inlined function found by the scan: its test would prove nothing")
			}
			close(namesHold)
			for !tb.namesReady.Load() || tb.inlineScan.Load() != nil {
				time.Sleep(time.Millisecond)
			}
			for n := range names {
				got, want := scanned[n], lookup(n)
				if !slices.Equal(got.funcs, want.funcs) || got.addr != want.addr || got.ok != want.ok || !slices.Equal(got.sites, want.sites) {
					t.Errorf("%q: before the maps %+v, with them %+v", n, got, want)
				}
			}
			t.Logf("%d names, %d inlined, looked up both ways", len(names), inlined)
		})
	}
}

// TestSideBySideLeavesProcessors checks the bound on the background
// build's concurrency: a processor is left to requests.
func TestSideBySideLeavesProcessors(t *testing.T) {
	for _, procs := range []int{0, 1, 2, 3} {
		var running, most, ran atomic.Int32
		task := func() {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(5 * time.Millisecond) // let the others start, if they may
			running.Add(-1)
			ran.Add(1)
		}
		sideBySide(procs, task, task, task, task)
		if ran.Load() != 4 {
			t.Fatalf("procs %d: %d of 4 tasks ran", procs, ran.Load())
		}
		if want := max(procs, 1); most.Load() > int32(want) {
			t.Errorf("procs %d: %d tasks ran at once", procs, most.Load())
		}
	}
}

// TestHoldGCNests checks that opens side by side, ending in any order,
// leave the collector as it was before the first (an open that put back
// what it found would leave it off after another open's end), with a
// memory limit meanwhile that grows with each open and never passes one
// the user set.
func TestHoldGCNests(t *testing.T) {
	before := debug.SetGCPercent(137)
	defer debug.SetGCPercent(before)
	beforeLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(beforeLimit)
	a := holdGC(1 << 30)
	la := debug.SetMemoryLimit(-1)
	b := holdGC(1 << 30)
	lb := debug.SetMemoryLimit(-1)
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Errorf("during the opens: %d, want -1 (off)", p)
	}
	if la < 1<<30 || la > 1<<34 || lb != la+1<<30 {
		t.Errorf("memory limits during the opens: %d then %d, want the heap plus 1 GiB, then 1 GiB more", la, lb)
	}
	a()
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Errorf("after the first open's end: %d, want -1 (the other still runs)", p)
	}
	b()
	if p := debug.SetGCPercent(137); p != 137 {
		t.Errorf("after both: %d, want 137", p)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("memory limit after both: %d, want none again", l)
	}
	// A limit the user set (GOMEMLIMIT) stands.
	debug.SetMemoryLimit(200 << 20)
	c := holdGC(1 << 30)
	if l := debug.SetMemoryLimit(-1); l != 200<<20 {
		t.Errorf("memory limit during an open under the user's 200 MiB: %d", l)
	}
	c()
	if l := debug.SetMemoryLimit(-1); l != 200<<20 {
		t.Errorf("the user's limit after the open: %d", l)
	}
}
