//go:build linux && amd64

package kvm

import (
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"vmdap/vmm/kvm/boot"
	"vmdap/vmm/kvm/internal/kvmsys"
)

// Baseline is the minimal raw-ioctl VMM loop benchmarks compare vmdap
// against (in the same run, since hosts are shared and noisy), running the same two-instruction guest loop
// (nop; jmp back) on its own locked thread.
type Baseline struct {
	vm, vcpu int
	ram      []byte
	run      kvmsys.RunPage
	host     *HostInfo
	tid      atomic.Int32
	cmds     chan func()
	done     chan struct{}
}

const rawLoop = 0x100000

// NewBaseline creates the baseline VM (a 4 MiB guest running a nop; jmp
// loop) on its own locked thread.
func NewBaseline() (*Baseline, error) {
	host, err := Probe(nil)
	if err != nil {
		return nil, err
	}
	r := &Baseline{host: host, cmds: make(chan func()), done: make(chan struct{})}
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
		return nil, err
	}
	return r, nil
}

func (r *Baseline) init() error {
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

// Close releases the baseline VM.
func (r *Baseline) Close() {
	close(r.cmds)
	<-r.done
	unix.Munmap(r.run)
	unix.Close(r.vcpu)
	unix.Munmap(r.ram)
	unix.Close(r.vm)
}

func (r *Baseline) on(fn func()) {
	done := make(chan struct{})
	r.cmds <- func() { fn(); close(done) }
	<-done
}

// Steps single-steps n instructions: KVM_RUN with SINGLESTEP armed once,
// nothing else.
func (r *Baseline) Steps(n int) {
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

// Hits: a software breakpoint on the nop, hit and resumed n times with the
// host's strategy done by hand: run to the hit, restore the byte, step,
// re-insert.
func (r *Baseline) Hits(n int) {
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

// PauseLatency: the vCPU spins freely; immediate_exit + a signal to its
// thread; time until KVM_RUN has returned there.
func (r *Baseline) PauseLatency() time.Duration {
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
