package session

import (
	"os"
	"testing"
	"time"

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
	if _, err := s.SetFunctionBreakpoints([]FunctionBP{{Name: "main64"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(false); err != nil {
		t.Fatal(err)
	}
	waitStop(t, stops, "main64")
	a, err := s.Evaluate(1, 0, "points", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Evaluate(1, 0, "ppt", false)
	if err != nil {
		t.Fatal(err)
	}
	if a.typ.elem == nil || b.typ.elem == nil || a.typ.elem != b.typ.elem {
		t.Fatalf("points' element type %p and ppt's target %p: struct pt converted twice at one stop", a.typ.elem, b.typ.elem)
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
func valuesSession(t *testing.T) (*Session, chan Stopped) {
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
	s := New(Config{Target: m, Image: img, Emit: func(e Event) {
		if st, ok := e.(Stopped); ok {
			stops <- st
		}
	}})
	t.Cleanup(func() { s.Close() })
	return s, stops
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
