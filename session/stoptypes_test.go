package session

import (
	"os"
	"strings"
	"testing"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/kvm"
	"vmdap/vmm/vmmtest"
)

// TestStopSharesTypes: the evaluations of one stop share their type
// conversions (an editor evaluates the same expressions at each hover
// and watch refresh: each converted its type's whole graph again, 0.7 MB
// for struct task_struct, kept until the guest ran), and the cache goes
// when the guest runs again.
func TestStopSharesTypes(t *testing.T) {
	s, stops := valuesSession(t)
	startAtMain64(t, s, stops)
	a, err := s.Evaluate(1, 0, "points", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Evaluate(1, 0, "ppt", false)
	if err != nil {
		t.Fatal(err)
	}
	if a.typ.el() == nil || b.typ.el() == nil || a.typ.el() != b.typ.el() {
		t.Fatalf("points' element type %p and ppt's target %p: struct pt converted twice at one stop", a.typ.el(), b.typ.el())
	}
	if err := s.Continue(1); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	kept := s.types != nil
	s.mu.Unlock()
	if kept {
		t.Fatal("the stop's type cache is kept while the guest runs")
	}
}

// valuesSession is a session on vmdap's VMM with the values guest loaded,
// not started, and the channel of its stops.
// startAtMain64 starts the values guest's session and waits for its stop
// at main64.
func startAtMain64(t *testing.T, s *Session, stops chan Stopped) {
	t.Helper()
	if _, err := s.SetFunctionBreakpoints([]FunctionBP{{Name: "main64"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(false); err != nil {
		t.Fatal(err)
	}
	waitStop(t, stops, "main64")
}

func valuesSession(t *testing.T) (*Session, chan Stopped) {
	t.Helper()
	s, stops, _ := countedValuesSession(t)
	return s, stops
}

// readCounter is a target that counts its memory reads.
type readCounter struct {
	vmm.Target
	reads int
}

func (r *readCounter) ReadMemory(v int, p []byte, addr uint64) (int, error) {
	r.reads++
	return r.Target.ReadMemory(v, p, addr)
}

// countedValuesSession is valuesSession with its target's reads counted.
func countedValuesSession(t *testing.T) (*Session, chan Stopped, *readCounter) {
	t.Helper()
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "values")
	img, err := LoadImage(g.Path, "", ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	elf, err := os.ReadFile(g.Path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := kvm.New(kvm.Config{Image: elf, Memory: 64 << 20, VCPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	stops := make(chan Stopped, 8)
	rc := &readCounter{Target: m}
	s := New(Config{Target: rc, Image: img, Emit: func(e Event) {
		if st, ok := e.(Stopped); ok {
			stops <- st
		}
	}})
	t.Cleanup(func() { s.Close() })
	return s, stops, rc
}

// waitStop waits for the next stop.
func waitStop(t *testing.T, stops chan Stopped, where string) Stopped {
	t.Helper()
	select {
	case st := <-stops:
		return st
	case <-time.After(time.Minute):
		t.Fatalf("no stop at %s", where)
	}
	return Stopped{}
}

// TestElementsReadOnce: a page of an array's elements is read from the
// guest in one piece, not one read per element (each a round trip to
// QEMU's stub: 1000 of them took 150 ms), and where that memory cannot
// be read each element says so, without a read of its own.
func TestElementsReadOnce(t *testing.T) {
	s, stops, rc := countedValuesSession(t)
	startAtMain64(t, s, stops)
	page := func(expr string, start, count int) []Var {
		t.Helper()
		v, err := s.Evaluate(1, 0, expr, false)
		if err != nil || v.Elements == nil {
			t.Fatalf("%s: %+v %v", expr, v, err)
		}
		before := rc.reads
		els, err := v.Elements(start, count)
		if err != nil || len(els) != count {
			t.Fatalf("%s: %d elements from %d: %d, %v", expr, count, start, len(els), err)
		}
		if n := rc.reads - before; n > 1 {
			t.Errorf("%s: %d elements from %d took %d reads, want 1", expr, count, start, n)
		}
		return els
	}
	els := page("big_arr", 500, 1000)
	if els[499].Name != "[999]" || els[499].Value != "1000" || els[500].Value != "1001" || els[0].Value != "0" {
		t.Errorf("big_arr[999], [1000], [500]: %+v %+v %+v", els[499], els[500], els[0])
	}
	pts := page("points", 0, 3)
	if pts[2].Value != "{x: 3, y: -3}" {
		t.Errorf("points[2] = %s", pts[2].Value)
	}
	// *far_arr itself fails to evaluate (as gdb's print does); expanded
	// from the pointer, as the variables view does, it pages.
	if v, err := s.Evaluate(1, 0, "*far_arr", false); err == nil {
		t.Errorf("*far_arr (unmapped) evaluated: %+v", v)
	}
	fa, err := s.Evaluate(1, 0, "far_arr", false)
	if err != nil || fa.Children == nil {
		t.Fatalf("far_arr: %+v %v", fa, err)
	}
	kids, err := fa.Children()
	if err != nil || len(kids) != 1 || kids[0].Elements == nil {
		t.Fatalf("far_arr's children: %+v %v", kids, err)
	}
	before := rc.reads
	els, err = kids[0].Elements(0, 1000)
	if err != nil || len(els) != 1000 {
		t.Fatalf("*far_arr's elements: %d, %v", len(els), err)
	}
	if n := rc.reads - before; n > 1 {
		t.Errorf("*far_arr: 1000 elements took %d reads, want 1", n)
	}
	for _, e := range els {
		if !strings.Contains(e.Value, "cannot read guest memory at") {
			t.Fatalf("an element in unmapped memory: %+v", e)
		}
	}
}

// TestStopTypesFollowUnitCache: a stop's type cache goes once the unit
// cache has let go of a cache's worth of units since it was made. Its
// keys are the units' debug/dwarf types: counting only its own types, a
// long stop (a core dump's session) that evaluated thousands of globals
// of as many units kept 1.4 GB of types the unit cache had let go.
func TestStopTypesFollowUnitCache(t *testing.T) {
	s, stops := valuesSession(t)
	startAtMain64(t, s, stops)
	if _, err := s.Evaluate(1, 0, "points", false); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	first := s.types
	s.mu.Unlock()
	// The table lets go of every unit it decoded (moving its symbols
	// and back empties its cache): its evicted cost grows by the cost of
	// the units "points" decoded.
	k := s.sym.Kernel()
	before := k.EvictedCost()
	k.SetSlide(0x1000)
	k.SetSlide(0)
	evicted := k.EvictedCost() - before
	if evicted == 0 {
		t.Fatal("emptying the unit cache counted no cost let go")
	}
	defer func(old uint64) { stopTypesTurnover = old }(stopTypesTurnover)
	stopTypesTurnover = evicted
	if _, err := s.Evaluate(1, 0, "ppt", false); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	same := s.types == first
	s.mu.Unlock()
	if same {
		t.Fatalf("the stop's type cache outlived %d of the unit cache's cost let go (its bound %d): it keeps the units' types", evicted, stopTypesTurnover)
	}
}
