//go:build linux && amd64

package kvm

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

// syncBuffer is a goroutine-safe serial sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	t      *testing.T
	m      *Machine
	g      *vmmtest.Guest
	serial *syncBuffer
}

func testLogger() logrus.FieldLogger {
	l, _ := test.NewNullLogger()
	return l
}

// newMech boots the mech guest and runs it to its "ready" hlt.
func newMech(t *testing.T, vcpus int) *fixture {
	t.Helper()
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "mech")
	out := &syncBuffer{}
	m, err := New(Config{Image: g.Data, VCPUs: vcpus, Memory: 64 << 20, Serial: out, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	f := &fixture{t: t, m: m, g: g, serial: out}
	if err := m.Continue(); err != nil {
		t.Fatal(err)
	}
	s := f.wait()
	if s.Reason != vmm.ReasonHalted || s.PC != vmmtest.Sym(t, g, "ready")+1 {
		t.Fatalf("boot: got %v, want halted after ready (%#x)", s, vmmtest.Sym(t, g, "ready")+1)
	}
	return f
}

func (f *fixture) sym(name string) uint64 { return vmmtest.Sym(f.t, f.g, name) }

func (f *fixture) wait() vmm.Stop {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := f.m.Wait(ctx)
	if err != nil {
		f.t.Fatalf("Wait: %v", err)
	}
	return s
}

// at points vCPU i at a label.
func (f *fixture) at(i int, label string) {
	f.t.Helper()
	r, err := f.m.Regs(i)
	if err != nil {
		f.t.Fatal(err)
	}
	r.RIP = f.sym(label)
	if err := f.m.SetRegs(i, r); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) step(i int) vmm.Stop {
	f.t.Helper()
	if err := f.m.Step(i); err != nil {
		f.t.Fatal(err)
	}
	return f.wait()
}

func (f *fixture) cont() vmm.Stop {
	f.t.Helper()
	if err := f.m.Continue(); err != nil {
		f.t.Fatal(err)
	}
	return f.wait()
}

func (f *fixture) pc(i int) uint64 {
	f.t.Helper()
	r, err := f.m.Regs(i)
	if err != nil {
		f.t.Fatal(err)
	}
	return r.RIP
}

func (f *fixture) u64(addr uint64) uint64 {
	f.t.Helper()
	var b [8]byte
	if _, err := f.m.ReadMemory(0, b[:], addr); err != nil {
		f.t.Fatal(err)
	}
	return le64(b[:])
}

func (f *fixture) setU64(addr, v uint64) {
	f.t.Helper()
	var b [8]byte
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	if _, err := f.m.WriteMemory(0, b[:], addr); err != nil {
		f.t.Fatal(err)
	}
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func (f *fixture) wantStop(s vmm.Stop, reason vmm.Reason, pcLabel string, off uint64) {
	f.t.Helper()
	want := f.sym(pcLabel) + off
	if s.Reason != reason || s.PC != want {
		f.t.Fatalf("got stop %v, want %s at %s+%d (%#x)", s, reason, pcLabel, off, want)
	}
}

// runUntil lets the guest run in short bursts (continue, 20 ms, pause)
// until done holds while it is paused, for at most 10 s of bursts: a
// slow or loaded host gets more bursts, not a false failure.
func (f *fixture) runUntil(what string, done func() bool) {
	f.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := f.m.Continue(); err != nil {
			f.t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if err := f.m.Pause(); err != nil {
			f.t.Fatal(err)
		}
		if s := f.wait(); s.Reason != vmm.ReasonPause {
			f.t.Fatalf("%s: stopped by %v, not the pause", what, s)
		}
		if done() || time.Now().After(deadline) {
			return
		}
	}
}
