//go:build linux && amd64

package kvm

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"vmdap/vmm/kvm/boot"
	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
)

var (
	probeOnce sync.Once
	probed    *HostInfo
	probeErr  error
)

// Probe finds out, once per process, what this host's KVM can do: it reads
// the capabilities and runs a tiny guest that tries each debug mechanism
// (int3, a debug-register execute breakpoint and its resume with RF, a
// debug-register write watchpoint, single-stepping over OUT and after a
// register write), and each instruction whose CPUID feature KVM offers and
// a kernel runs at ring 0 (cpuid_linux.go). The result picks every strategy
// the VMM uses and the guest's CPUID.
func Probe(log logrus.FieldLogger) (*HostInfo, error) {
	probeOnce.Do(func() {
		probed, probeErr = probe()
		if probeErr == nil && log != nil {
			log.WithField("layer", "kvm").WithFields(logrus.Fields{
				"vendor": probed.Vendor, "swbp": probed.SWBreakpoint.String(), "hw_resume": probed.HWResume.String(),
				"dr_watch": probed.DRWatch, "step": probed.StepWorks, "io_exit_at_insn": probed.IOExitAtInsn,
				"blockirq": probed.BlockIRQ, "cpuid_probed": probed.CPUIDProbed, "probe_us": probed.ProbeDurationUS,
			}).Info("KVM host probed")
			for _, f := range probed.CPUIDHidden {
				log.WithField("layer", "kvm").WithField("bit", f.Bit).Info("guest CPUID hides " + f.String())
			}
			for _, g := range probed.Ring0Gaps {
				log.WithField("layer", "kvm").Infof("this host cannot run %s at ring 0 (%s) and it has no CPUID bit: %s", g.Insn, g.Why, g.Note)
			}
		}
	})
	return probed, probeErr
}

// probe addresses (guest-physical = guest-virtual).
const (
	pCode    = 0x100000
	pIDT     = 0x180000
	pHandler = 0x181000
	pData    = 0x300000
	pPort    = 0x10 // "reached the end" port
	pVecPort = 0xe9 // a guest exception handler ran (al = vector)
)

type prober struct {
	vm, vcpu int
	msz      int // kvm_run mapping size
	ram      []byte
	run      kvmsys.RunPage
	regs0    kvmsys.Regs
	sregs0   kvmsys.SRegs
	extra    []probeVCPU // vCPUs made by addVCPU, closed with the prober
}

type probeVCPU struct {
	fd  int
	run kvmsys.RunPage
}

// addVCPU creates vCPU id with the given CPUID and entry sregs and makes it
// the one the probes run on.
func (p *prober) addVCPU(id int, cpuid []kvmsys.CPUIDEntry2, sregs x86.SRegs) error {
	fd, err := kvmsys.CreateVCPU(p.vm, id)
	if err != nil {
		return err
	}
	run, err := unix.Mmap(fd, 0, p.msz, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return err
	}
	p.extra = append(p.extra, probeVCPU{fd, kvmsys.RunPage(run)})
	p.vcpu, p.run = fd, kvmsys.RunPage(run)
	if err := kvmsys.SetCPUID2(fd, cpuid); err != nil {
		return err
	}
	var ks kvmsys.SRegs
	if err := kvmsys.GetSRegs(fd, &ks); err != nil {
		return err
	}
	tmp := &vcpu{ksregs: ks}
	p.sregs0 = tmp.sregsToKVM(sregs)
	return kvmsys.SetSRegs(fd, &p.sregs0)
}

func probe() (*HostInfo, error) {
	start := time.Now()
	f, err := openKVM()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := &HostInfo{}
	h.Vendor, h.Module = detectVendor()
	h.readCaps(int(f.Fd()))
	if h.APIVersion != 12 {
		return nil, fmt.Errorf("KVM API version %d, vmdap needs 12", h.APIVersion)
	}
	if !h.ImmediateExit {
		return nil, errors.New("KVM lacks KVM_CAP_IMMEDIATE_EXIT (Linux 4.11+ needed)")
	}
	done := make(chan error, 1)
	go func() {
		// KVM_RUN for the probe vCPU happens on this one thread.
		runtime.LockOSThread()
		done <- h.runProbe(int(f.Fd()))
	}()
	if err := <-done; err != nil {
		return nil, fmt.Errorf("probing KVM: %w", err)
	}
	h.ProbeDurationUS = time.Since(start).Microseconds()
	return h, nil
}

func (h *HostInfo) runProbe(kvm int) error {
	p := &prober{vm: -1, vcpu: -1}
	defer p.close()
	var err error
	if p.vm, err = kvmsys.CreateVM(kvm); err != nil {
		return err
	}
	if err := kvmsys.SetTSSAddr(p.vm, 0xfffbd000); err != nil {
		return err
	}
	size := uint64(boot.MinRAM)
	if p.ram, err = unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE); err != nil {
		return err
	}
	r := kvmsys.UserspaceMemoryRegion{MemorySize: size, UserspaceAddr: kvmsys.HostAddr(p.ram)}
	if err := kvmsys.SetUserMemoryRegion(p.vm, &r); err != nil {
		return err
	}
	img := &boot.Image{Protocol: boot.ProtoELF64, Entry: pCode, Segments: []boot.Segment{{Phys: pCode, Virt: pCode, MemSize: 0x1000}}}
	states, err := boot.Place(img, p.ram, boot.Config{VCPUs: 1})
	if err != nil {
		return err
	}
	// An IDT whose handlers report their vector on port 0xe9 and halt.
	for vec := 0; vec < 32; vec++ {
		hnd := uint64(pHandler + 16*vec)
		copy(p.ram[hnd:], []byte{0xb0, byte(vec), 0xe6, pVecPort, 0xf4, 0xeb, 0xfd})
		g := p.ram[pIDT+16*vec:]
		g[0], g[1] = byte(hnd), byte(hnd>>8)
		g[2], g[3] = boot.SelCode64, 0
		g[4], g[5] = 0, 0x8e
		g[6], g[7] = byte(hnd>>16), byte(hnd>>24)
	}
	if p.msz, err = kvmsys.VCPUMmapSize(kvm); err != nil {
		return err
	}
	cpuid, err := kvmsys.SupportedCPUID(kvm)
	if err != nil {
		return err
	}
	st := states[0]
	st.SRegs.IDT = x86.Table{Base: pIDT, Limit: 32*16 - 1}
	if err := p.addVCPU(0, cpuid, st.SRegs); err != nil {
		return err
	}
	p.regs0 = kvmsys.Regs{RSP: st.Regs.RSP, RFLAGS: 2}

	h.probeInt3(p)
	h.probeHW(p)
	h.probeWatch(p)
	h.probeStep(p)
	h.probeCPUID(p, cpuid, st.SRegs)
	h.probeSyscall(p)
	h.probeRealModeInt3(p)
	h.probeLegacyPaging(p) // last: leaves the vCPU in 32-bit mode
	return nil
}

func (p *prober) close() {
	for _, v := range p.extra {
		unix.Munmap(v.run)
		unix.Close(v.fd)
	}
	if p.ram != nil {
		unix.Munmap(p.ram)
	}
	if p.vm >= 0 {
		unix.Close(p.vm)
	}
}

// load puts code at addr and points RIP there.
func (p *prober) load(addr uint64, code []byte) {
	copy(p.ram[addr:], code)
	r := p.regs0
	r.RIP = addr
	_ = kvmsys.SetRegs(p.vcpu, &r)
}

func (p *prober) debug(ctl uint32, dr [8]uint64) {
	d := kvmsys.GuestDebug{Control: ctl, DebugReg: dr}
	_ = kvmsys.SetGuestDebug(p.vcpu, &d)
}

// enter runs once, bounded by a watchdog in case the guest spins.
func (p *prober) enter() (uint32, kvmsys.Regs) { return p.enterFor(2 * time.Second) }

// enterFor runs once for at most d.
func (p *prober) enterFor(d time.Duration) (uint32, kvmsys.Regs) {
	tid := unix.Gettid()
	run := p.run // the watchdog must not read p.run: a later addVCPU replaces it
	// The watchdog may fire as the run ends: once the run is over it
	// touches nothing (the run page is unmapped when the prober closes,
	// and a watchdog that outlived its run faulted on it).
	var mu sync.Mutex
	over := false
	t := time.AfterFunc(d, func() {
		mu.Lock()
		defer mu.Unlock()
		if !over {
			run.SetImmediateExit(true)
			_ = unix.Tgkill(unix.Getpid(), tid, kickSignal)
		}
	})
	err := kvmsys.Run(p.vcpu)
	mu.Lock()
	over = true
	mu.Unlock()
	t.Stop()
	p.run.SetImmediateExit(false)
	var r kvmsys.Regs
	_ = kvmsys.GetRegs(p.vcpu, &r)
	if err != nil {
		return kvmsys.KVM_EXIT_INTR, r
	}
	return p.run.ExitReason(), r
}

func (p *prober) ioPort() (uint16, byte) {
	io := p.run.IO()
	d := p.run.IOData()
	if len(d) == 0 {
		return io.Port, 0
	}
	return io.Port, d[0]
}

func (h *HostInfo) probeInt3(p *prober) {
	const ctl = kvmsys.KVM_GUESTDBG_ENABLE | kvmsys.KVM_GUESTDBG_USE_SW_BP
	p.load(pCode, []byte{0xcc, 0xe6, pPort, 0xf4})
	p.debug(ctl, [8]uint64{})
	reason, r := p.enter()
	switch {
	case reason == kvmsys.KVM_EXIT_DEBUG && p.run.Debug().Exception == x86.VecBP && r.RIP == pCode:
		h.SWBreakpoint = swbpInt3Exit
	case reason == kvmsys.KVM_EXIT_INTERNAL_ERROR && p.run.Internal().Suberror == kvmsys.KVM_INTERNAL_ERROR_EMULATION && r.RIP == pCode:
		h.SWBreakpoint = swbpEmulation
	default:
		// int3 did not reach the VMM: try a hlt patch.
		p.debug(0, [8]uint64{})
		p.load(pCode, []byte{0xf4, 0xe6, pPort, 0xf4})
		if reason, r := p.enter(); reason == kvmsys.KVM_EXIT_HLT && r.RIP == pCode+1 {
			h.SWBreakpoint = swbpHLT
		}
	}
	p.debug(0, [8]uint64{})
}

func (h *HostInfo) probeHW(p *prober) {
	const at = pCode + 0x100
	p.load(at, []byte{0x90, 0x90, 0xe6, pPort, 0xf4})
	dr7, _ := x86.EncodeDR7([4]x86.Slot{{Enabled: true, Addr: at + 1, Access: x86.AccessExec, Len: 1}})
	ctl := uint32(kvmsys.KVM_GUESTDBG_ENABLE | kvmsys.KVM_GUESTDBG_USE_HW_BP)
	p.debug(ctl, [8]uint64{at + 1, 0, 0, 0, 0, 0, 0, dr7})
	reason, r := p.enter()
	if reason != kvmsys.KVM_EXIT_DEBUG || r.RIP != at+1 || p.run.Debug().DR6&1 == 0 {
		p.debug(0, [8]uint64{})
		return
	}
	h.HWBreakpoints = true
	r.RFLAGS |= x86.FlagRF
	_ = kvmsys.SetRegs(p.vcpu, &r)
	p.debug(ctl, [8]uint64{at + 1, 0, 0, 0, 0, 0, 0, dr7})
	reason, _ = p.enter()
	if reason == kvmsys.KVM_EXIT_IO {
		if port, _ := p.ioPort(); port == pPort {
			h.HWResume = hwResumeRF
		}
	}
	p.debug(0, [8]uint64{})
}

func (h *HostInfo) probeWatch(p *prober) {
	const at = pCode + 0x200
	// movq $1, pData (0x300000); out %al, $pPort; hlt
	p.load(at, []byte{0x48, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00, 1, 0, 0, 0, 0xe6, pPort, 0xf4})
	dr7, _ := x86.EncodeDR7([4]x86.Slot{{}, {Enabled: true, Addr: pData, Access: x86.AccessWrite, Len: 8}})
	p.debug(kvmsys.KVM_GUESTDBG_ENABLE|kvmsys.KVM_GUESTDBG_USE_HW_BP, [8]uint64{0, pData, 0, 0, 0, 0, 0, dr7})
	reason, _ := p.enter()
	h.DRWatch = reason == kvmsys.KVM_EXIT_DEBUG && p.run.Debug().DR6&2 != 0
	p.debug(0, [8]uint64{})
}

func (h *HostInfo) probeStep(p *prober) {
	const at = pCode + 0x300
	step := uint32(kvmsys.KVM_GUESTDBG_ENABLE | kvmsys.KVM_GUESTDBG_SINGLESTEP)
	// nop; nop; nop; out %al,$pPort; nop; hlt
	p.load(at, []byte{0x90, 0x90, 0x90, 0xe6, pPort, 0x90, 0xf4})
	p.debug(step, [8]uint64{})
	reason, r := p.enter()
	h.StepWorks = reason == kvmsys.KVM_EXIT_DEBUG && r.RIP == at+1 && p.run.Debug().DR6&x86.DR6BS != 0
	if !h.StepWorks {
		p.debug(0, [8]uint64{})
		return
	}
	// A register write between steps: does the step survive it?
	_ = kvmsys.SetRegs(p.vcpu, &r)
	reason, r = p.enter()
	h.StepKeptOnWrite = reason == kvmsys.KVM_EXIT_DEBUG && r.RIP == at+2
	// Step onto and over the OUT: where does the exit put RIP?
	r.RIP = at + 3
	_ = kvmsys.SetRegs(p.vcpu, &r)
	p.debug(step, [8]uint64{})
	if reason, r = p.enter(); reason == kvmsys.KVM_EXIT_IO {
		h.IOExitAtInsn = r.RIP == at+3
		p.run.SetImmediateExit(true)
		_ = kvmsys.Run(p.vcpu)
		p.run.SetImmediateExit(false)
	}
	p.debug(0, [8]uint64{})
}
