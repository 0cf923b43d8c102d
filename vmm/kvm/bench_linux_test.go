//go:build linux && amd64

package kvm

import (
	"testing"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

func newRawVM(b *testing.B) *Baseline {
	r, err := NewBaseline()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

func benchMech(b *testing.B) *fixture {
	vmmtest.RequireKVM(b)
	g := vmmtest.BuildGuest(b, "mech")
	m, err := New(Config{Image: g.Data, Memory: 64 << 20, Log: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	f := &fixture{t: &testing.T{}, m: m, g: g}
	if err := m.Continue(); err != nil {
		b.Fatal(err)
	}
	if s, err := m.Wait(b.Context()); err != nil || s.Reason != vmm.ReasonHalted {
		b.Fatalf("boot: %v %v", s, err)
	}
	r, _ := m.Regs(0)
	r.RIP = g.Symbols["case_bench"]
	m.SetRegs(0, r)
	return f
}

// compare times raw and vmdap in alternating chunks and reports both rates
// and their ratio (vmdap / raw; 1.0 = as fast as the bare ioctl loop).
func compare(b *testing.B, unit string, chunk int, raw, ours func(n int)) {
	var tRaw, tOurs time.Duration
	done := 0
	b.ResetTimer()
	for done < b.N {
		n := chunk
		if b.N-done < n {
			n = b.N - done
		}
		t0 := time.Now()
		raw(n)
		t1 := time.Now()
		ours(n)
		t2 := time.Now()
		tRaw += t1.Sub(t0)
		tOurs += t2.Sub(t1)
		done += n
	}
	rawRate := float64(b.N) / tRaw.Seconds()
	ourRate := float64(b.N) / tOurs.Seconds()
	b.ReportMetric(rawRate, "raw-"+unit+"/s")
	b.ReportMetric(ourRate, "vmdap-"+unit+"/s")
	b.ReportMetric(ourRate/rawRate, "ratio")
}

// BenchmarkSingleStep: vmm.Stepper Step+Wait vs KVM_RUN with SINGLESTEP.
func BenchmarkSingleStep(b *testing.B) {
	f := benchMech(b)
	raw := newRawVM(b)
	ctx := b.Context()
	compare(b, "steps", 2000, raw.Steps, func(n int) {
		for i := 0; i < n; i++ {
			if err := f.m.Step(0); err != nil {
				b.Fatal(err)
			}
			if _, err := f.m.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBreakpointHit: Continue+Wait on a software breakpoint in a loop
// vs the raw hit/restore/step/re-insert loop.
func BenchmarkBreakpointHit(b *testing.B) {
	f := benchMech(b)
	raw := newRawVM(b)
	if err := f.m.InsertBreakpoint(f.g.Symbols["case_bench"]); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	compare(b, "hits", 1000, raw.Hits, func(n int) {
		for i := 0; i < n; i++ {
			if err := f.m.Continue(); err != nil {
				b.Fatal(err)
			}
			if s, err := f.m.Wait(ctx); err != nil || s.Reason != vmm.ReasonBreakpoint {
				b.Fatalf("%v %v", s, err)
			}
		}
	})
}

// BenchmarkPauseLatency: Pause until Wait returns, vs immediate_exit +
// tgkill until the raw thread's KVM_RUN returns. Reports microseconds.
func BenchmarkPauseLatency(b *testing.B) {
	f := benchMech(b)
	raw := newRawVM(b)
	ctx := b.Context()
	var tRaw, tOurs time.Duration
	for i := 0; i < b.N; i++ {
		tRaw += raw.PauseLatency()
		if err := f.m.Continue(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(300 * time.Microsecond) // let it spin (not synchronisation)
		t0 := time.Now()
		f.m.Pause()
		if s, err := f.m.Wait(ctx); err != nil || s.Reason != vmm.ReasonPause {
			b.Fatalf("%v %v", s, err)
		}
		tOurs += time.Since(t0)
	}
	b.ReportMetric(float64(tRaw.Microseconds())/float64(b.N), "raw-µs")
	b.ReportMetric(float64(tOurs.Microseconds())/float64(b.N), "vmdap-µs")
	b.ReportMetric(tRaw.Seconds()/tOurs.Seconds(), "ratio")
}

// BenchmarkPageWatchSlowdown reports how much a page-protection
// watchpoint slows a hot guest loop: on the page the loop writes (every
// write becomes an emulated access) and on a page the loop never touches
// (goal ≤ 1.05), each against the same loop with no watchpoint, in one run.
func BenchmarkPageWatchSlowdown(b *testing.B) {
	f := benchMech(b)
	const iters = 20000
	f.m.WriteMemory(0, le64bytes(iters), f.g.Symbols["loop_count"])
	run := func() time.Duration {
		r, _ := f.m.Regs(0)
		r.RIP = f.g.Symbols["case_hot"]
		f.m.SetRegs(0, r)
		t0 := time.Now()
		if err := f.m.Continue(); err != nil {
			b.Fatal(err)
		}
		if s, err := f.m.Wait(b.Context()); err != nil || s.Reason != vmm.ReasonHalted {
			b.Fatalf("%v %v", s, err)
		}
		return time.Since(t0)
	}
	same := vmm.Watch{Addr: f.g.Symbols["watched_near"], Len: 8, Access: vmm.AccessWrite, Kind: vmm.WatchPage}
	other := vmm.Watch{Addr: f.g.Symbols["watched_stack"], Len: 8, Access: vmm.AccessWrite, Kind: vmm.WatchPage}
	var tNone, tSame, tOther time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tNone += run()
		f.m.InsertWatchpoint(other)
		tOther += run()
		f.m.RemoveWatchpoint(other)
		f.m.InsertWatchpoint(same)
		tSame += run()
		f.m.RemoveWatchpoint(same)
	}
	b.ReportMetric(tOther.Seconds()/tNone.Seconds(), "slowdown-other-page")
	b.ReportMetric(tSame.Seconds()/tNone.Seconds(), "slowdown-same-page")
	b.ReportMetric(float64(iters)*float64(b.N)/tNone.Seconds(), "iter/s-unwatched")
}

func le64bytes(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}
