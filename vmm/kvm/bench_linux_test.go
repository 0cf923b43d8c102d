//go:build linux && amd64

package kvm

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vmdap/vmm"
	"vmdap/vmm/kvm/boot"
	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/vmm/vmmtest"
)

// rawVM is the baseline: the minimal raw-ioctl VMM loop a benchmark
// compares vmdap against, running the same two-instruction guest loop
// (nop; jmp back) on its own locked thread.
type rawVM struct {
	vm, vcpu int
	ram      []byte
	run      kvmsys.RunPage
	host     *HostInfo
	tid      atomic.Int32
	cmds     chan func()
	done     chan struct{}
}

const rawLoop = 0x100000

func newRawVM(b *testing.B) *rawVM { return newRawVMT(b) }

func newRawVMT(b testing.TB) *rawVM {
	b.Helper()
	host, err := Probe(nil)
	if err != nil {
		b.Fatal(err)
	}
	r := &rawVM{host: host, cmds: make(chan func()), done: make(chan struct{})}
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		r.tid.Store(int32(unix.Gettid()))
		started <- r.init()
		for fn := range r.cmds {
			fn()
		}
		close(r.done)
	}()
	if err := <-started; err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.close)
	return r
}

func (r *rawVM) init() error {
	kvm, err := openKVM()
	if err != nil {
		return err
	}
	defer kvm.Close()
	if r.vm, err = kvmsys.CreateVM(int(kvm.Fd())); err != nil {
		return err
	}
	kvmsys.SetTSSAddr(r.vm, 0xfffbd000)
	size := uint64(boot.MinRAM)
	r.ram, _ = unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	reg := kvmsys.UserspaceMemoryRegion{MemorySize: size, UserspaceAddr: kvmsys.HostAddr(r.ram)}
	if err := kvmsys.SetUserMemoryRegion(r.vm, &reg); err != nil {
		return err
	}
	img := &boot.Image{Protocol: boot.ProtoELF64, Entry: rawLoop, Segments: []boot.Segment{{Phys: rawLoop, Virt: rawLoop, Data: []byte{0x90, 0xeb, 0xfd}, MemSize: 3}}}
	st, err := boot.Place(img, r.ram, boot.Config{VCPUs: 1})
	if err != nil {
		return err
	}
	if r.vcpu, err = kvmsys.CreateVCPU(r.vm, 0); err != nil {
		return err
	}
	msz, _ := kvmsys.VCPUMmapSize(int(kvm.Fd()))
	run, err := unix.Mmap(r.vcpu, 0, msz, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	r.run = kvmsys.RunPage(run)
	var ks kvmsys.SRegs
	kvmsys.GetSRegs(r.vcpu, &ks)
	tmp := &vcpu{ksregs: ks}
	k := tmp.sregsToKVM(st[0].SRegs)
	if err := kvmsys.SetSRegs(r.vcpu, &k); err != nil {
		return err
	}
	regs := kvmsys.Regs{RIP: rawLoop, RSP: st[0].Regs.RSP, RFLAGS: 2}
	return kvmsys.SetRegs(r.vcpu, &regs)
}

func (r *rawVM) close() {
	close(r.cmds)
	<-r.done
	unix.Munmap(r.run)
	unix.Close(r.vcpu)
	unix.Munmap(r.ram)
	unix.Close(r.vm)
}

func (r *rawVM) on(fn func()) {
	done := make(chan struct{})
	r.cmds <- func() { fn(); close(done) }
	<-done
}

// steps: KVM_RUN with SINGLESTEP armed once, nothing else.
func (r *rawVM) steps(n int) {
	r.on(func() {
		d := kvmsys.GuestDebug{Control: kvmsys.KVM_GUESTDBG_ENABLE | kvmsys.KVM_GUESTDBG_SINGLESTEP}
		kvmsys.SetGuestDebug(r.vcpu, &d)
		for i := 0; i < n; i++ {
			kvmsys.Run(r.vcpu)
		}
		d = kvmsys.GuestDebug{}
		kvmsys.SetGuestDebug(r.vcpu, &d)
	})
}

// hits: a software breakpoint on the nop, hit and resumed n times with the
// host's strategy done by hand: run to the hit, restore the byte, step,
// re-insert.
func (r *rawVM) hits(n int) {
	r.on(func() {
		plant := byte(0xcc)
		if r.host.SWBreakpoint == swbpHLT {
			plant = 0xf4
		}
		run := kvmsys.GuestDebug{}
		if r.host.SWBreakpoint == swbpInt3Exit {
			run.Control = kvmsys.KVM_GUESTDBG_ENABLE | kvmsys.KVM_GUESTDBG_USE_SW_BP
		}
		step := kvmsys.GuestDebug{Control: kvmsys.KVM_GUESTDBG_ENABLE | kvmsys.KVM_GUESTDBG_SINGLESTEP}
		for i := 0; i < n; i++ {
			r.ram[rawLoop] = plant
			kvmsys.SetGuestDebug(r.vcpu, &run)
			kvmsys.Run(r.vcpu)
			if r.host.SWBreakpoint == swbpHLT {
				regs := *r.run.SyncRegs()
				kvmsys.GetRegs(r.vcpu, &regs)
				regs.RIP = rawLoop
				kvmsys.SetRegs(r.vcpu, &regs)
			}
			r.ram[rawLoop] = 0x90
			kvmsys.SetGuestDebug(r.vcpu, &step)
			kvmsys.Run(r.vcpu)
		}
		run = kvmsys.GuestDebug{}
		kvmsys.SetGuestDebug(r.vcpu, &run)
	})
}

// pauseLatency: the vCPU spins freely; immediate_exit + a signal to its
// thread; time until KVM_RUN has returned there.
func (r *rawVM) pauseLatency() time.Duration {
	returned := make(chan time.Time, 1)
	go r.on(func() {
		for {
			err := kvmsys.Run(r.vcpu)
			if err != nil {
				r.run.SetImmediateExit(false)
				returned <- time.Now()
				return
			}
		}
	})
	time.Sleep(300 * time.Microsecond)
	t0 := time.Now()
	r.run.SetImmediateExit(true)
	unix.Tgkill(unix.Getpid(), int(r.tid.Load()), kickSignal)
	return (<-returned).Sub(t0)
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
	compare(b, "steps", 2000, raw.steps, func(n int) {
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
	compare(b, "hits", 1000, raw.hits, func(n int) {
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
		tRaw += raw.pauseLatency()
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
