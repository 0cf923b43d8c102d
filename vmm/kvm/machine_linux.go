//go:build linux && amd64

package kvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"vmdap/vmm"
	"vmdap/vmm/kvm/boot"
	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
)

type runState uint8

const (
	stateStopped runState = iota
	stateRunning
	stateFinal // exited, shut down or failed: nothing can run
	stateClosed
)

// event is what a vCPU thread reports when a run or step command ends.
type event struct {
	vcpu int
	stop vmm.Stop // ReasonNone: stopped on request, nothing to report
}

// Machine is a guest on the embedded KVM VMM. It implements vmm.Target.
type Machine struct {
	log     logrus.FieldLogger
	host    *HostInfo
	irqchip bool // KVM's in-kernel interrupt controllers: HLT waits in the kernel
	kvm     *os.File
	vm      int
	mem     *memory
	vcpus   []*vcpu
	ports   *ports
	cpuid   []kvmsys.CPUIDEntry2
	loaded  []loadedSegment // where the image's PT_LOAD segments went
	code    []physRange     // where the image's code went (read traps cannot cover it)

	events chan event // vCPU threads report ended commands here (buffered: they never block)

	// mu guards the run state below, each vCPU's busy flag, the debug
	// tables in dbg (changed only while the machine is stopped) and mem's
	// memslot layout (page protection). Every vmm.Target method takes it;
	// Wait releases it while it waits for a vCPU event. vCPU threads never
	// take it (they own their vcpu's state while they run); the nudger
	// (accessed_linux.go) takes it briefly.
	mu      sync.Mutex
	state   runState
	running int        // vCPUs with an outstanding run or step command
	first   *vmm.Stop  // the stop that triggered the current all-stop
	pending []vmm.Stop // further stops collected during an all-stop
	ready   *vmm.Stop  // a stop Wait must return next
	final   *vmm.Stop
	pauseRq bool
	closed  chan struct{}
	// nudgeStop ends the periodic nudges of a run (accessed_linux.go).
	nudgeStop chan struct{}

	dbg debugState // breakpoints and watchpoints (debug_linux.go)

	onceMu     sync.Mutex      // guards onceLogged
	onceLogged map[string]bool // messages logOnce has logged
}

var _ vmm.Target = (*Machine)(nil)

// New creates a machine from cfg: it probes the host (once per process),
// creates the VM and its vCPUs, loads the image and leaves every vCPU
// stopped at its entry point.
func New(cfg Config) (*Machine, error) {
	cfg.defaults()
	img, err := boot.Parse(cfg.Image, cfg.Protocol)
	if err != nil {
		return nil, err
	}
	if img.Protocol == boot.ProtoELF64 && cfg.Cmdline != "" {
		// Refused as an initrd is (boot.Place): the entry gets the vCPU's
		// index and count, and a command line would be dropped unseen.
		return nil, fmt.Errorf("a kernel command line (args) needs a boot protocol that passes one (linux, pvh, multiboot or multiboot2); the 64-bit direct entry (elf64) has none")
	}
	if cfg.Memory < boot.MinRAM || cfg.Memory > boot.MaxRAM {
		return nil, fmt.Errorf("guest memory of %d MiB is out of range (%d MiB to %d GiB)", cfg.Memory>>20, boot.MinRAM>>20, boot.MaxRAM>>30)
	}
	cfg.Memory = (cfg.Memory + 2<<20 - 1) &^ (2<<20 - 1)
	host, err := Probe(cfg.Log)
	if err != nil {
		return nil, err
	}
	if cfg.VCPUs < 1 || cfg.VCPUs > host.MaxVCPUs {
		return nil, fmt.Errorf("vcpus must be between 1 and %d on this host, got %d", host.MaxVCPUs, cfg.VCPUs)
	}
	if !host.SoftwareBreakpoints(cfg.IRQChip) && host.SWBreakpoint != swbpNone {
		// With an in-kernel irqchip a HLT waits in the kernel for an
		// interrupt instead of exiting, so the hlt-patch breakpoint cannot
		// work: this machine uses debug-register breakpoints only.
		h := *host
		h.SWBreakpoint = swbpNone
		host = &h
		cfg.Log.Warn("software breakpoints are unavailable with an in-kernel irqchip on this host (int3 does not reach the VMM and HLT no longer exits); using debug-register breakpoints")
	}
	if img.IsLinux() {
		if c := linuxCmdline(cfg.Cmdline, host.LinuxClearCPUID()); c != cfg.Cmdline {
			cfg.Log.WithField("layer", "kvm").Infof("kernel command line: added clearcpuid=%s (features this host cannot run at ring 0 and its CPUID shows regardless)", strings.Join(host.LinuxClearCPUID(), ","))
			cfg.Cmdline = c
		}
	}
	kvmf, err := openKVM()
	if err != nil {
		return nil, err
	}
	m := &Machine{
		log:    cfg.Log.WithField("layer", "kvm"),
		host:   host,
		kvm:    kvmf,
		vm:     -1,
		events: make(chan event, 4*cfg.VCPUs),
		closed: make(chan struct{}),
	}
	m.dbg.init()
	m.ports = &ports{log: m.log, com1: newUART(cfg.Serial, cfg.Input), con: cfg.Serial, logged: map[uint16]bool{}}
	if err := m.create(img, cfg); err != nil {
		m.Close()
		return nil, err
	}
	for _, sg := range img.Segments {
		m.loaded = append(m.loaded, loadedSegment{virt: sg.Virt, phys: sg.Phys, size: sg.MemSize})
	}
	for _, c := range img.Code {
		m.code = append(m.code, physRange{c.Phys, c.Size})
	}
	f := logrus.Fields{"protocol": img.Protocol, "entry": fmt.Sprintf("%#x", img.Entry),
		"memory_mib": cfg.Memory >> 20, "vcpus": cfg.VCPUs}
	if img.Linux != nil {
		f["kernel"] = img.Linux.String()
	}
	if len(cfg.Initrd) > 0 {
		f["initrd_kib"] = len(cfg.Initrd) >> 10
	}
	m.log.WithFields(f).Info("guest loaded")
	if img.Protocol == boot.ProtoLinux && !cfg.IRQChip {
		m.log.Warn("a Linux kernel needs local APICs and an IOAPIC: launch it with \"irqchip\": true")
	}
	return m, nil
}

func (m *Machine) create(img *boot.Image, cfg Config) error {
	vm, err := kvmsys.CreateVM(int(m.kvm.Fd()))
	if err != nil {
		return err
	}
	m.vm = vm
	if err := kvmsys.SetTSSAddr(vm, 0xfffbd000); err != nil {
		return err
	}
	if cfg.IRQChip {
		if err := kvmsys.CreateIRQChip(vm); err != nil {
			return err
		}
		m.irqchip = true
		// Both PICs start masked, as firmware leaves them: a kernel that
		// never programs them (Linux on an IOAPIC) must not take COM1's
		// IRQ 4 through an unprogrammed PIC as vector 4; one that does
		// programs its own mask (ICW1 clears it).
		for chip := uint32(0); chip < 2; chip++ {
			c := kvmsys.IRQChip{ChipID: chip}
			if err := kvmsys.GetIRQChip(vm, &c); err != nil {
				return err
			}
			c.State[kvmsys.PICIMR] = 0xff
			if err := kvmsys.SetIRQChip(vm, &c); err != nil {
				return err
			}
		}
		m.ports.com1.irq = func(level bool) {
			if err := kvmsys.IRQLine(vm, 4, level); err != nil {
				m.log.WithError(err).Debug("COM1's interrupt")
			}
		}
	}
	if m.mem, err = newMemory(vm, cfg.Memory); err != nil {
		return err
	}
	states, err := boot.Place(img, m.mem.ram, boot.Config{VCPUs: cfg.VCPUs, Cmdline: cfg.Cmdline, Initrd: cfg.Initrd, Modules: cfg.Modules, APIC: cfg.IRQChip})
	if err != nil {
		return err
	}
	supported, err := kvmsys.SupportedCPUID(int(m.kvm.Fd()))
	if err != nil {
		return err
	}
	m.cpuid = m.host.guestCPUID(supported)
	mmapSize, err := kvmsys.VCPUMmapSize(int(m.kvm.Fd()))
	if err != nil {
		return err
	}
	for i, st := range states {
		v, err := newVCPU(m, i, mmapSize)
		if err != nil {
			return err
		}
		m.vcpus = append(m.vcpus, v)
		if err := v.setup(st, m.cpuidFor(i)); err != nil {
			return fmt.Errorf("vcpu %d: %w", i, err)
		}
	}
	return nil
}

// cpuidFor returns the supported CPUID with vCPU i's APIC ID filled in.
func (m *Machine) cpuidFor(i int) []kvmsys.CPUIDEntry2 {
	out := append([]kvmsys.CPUIDEntry2(nil), m.cpuid...)
	for j := range out {
		e := &out[j]
		switch e.Function {
		case 1:
			e.EBX = e.EBX&0x00ffffff | uint32(i)<<24
		case 0xb, 0x1f:
			e.EDX = uint32(i)
		}
	}
	return out
}

// Close implements vmm.Target: it stops every vCPU thread and releases
// every descriptor and mapping.
func (m *Machine) Close() error {
	m.mu.Lock()
	if m.state == stateClosed {
		m.mu.Unlock()
		return nil
	}
	m.state = stateClosed
	close(m.closed)
	m.stopNudger()
	for _, v := range m.vcpus {
		v.kick()
	}
	m.mu.Unlock()
	// Each vCPU thread finishes its (kicked) command, reports into the
	// buffered event channel and exits when its command channel closes.
	for _, v := range m.vcpus {
		v.close()
	}
	if m.mem != nil {
		m.mem.close()
	}
	if m.vm >= 0 {
		unix.Close(m.vm)
	}
	if m.kvm != nil {
		m.kvm.Close()
	}
	return nil
}

// SignalMSI delivers a message-signalled interrupt with vector vec to the
// local APIC of vCPU apicID (needs Config.IRQChip).
func (m *Machine) SignalMSI(apicID, vec uint8) error {
	msi := kvmsys.MSI{AddressLo: 0xfee00000 | uint32(apicID)<<12, Data: uint32(vec)}
	return kvmsys.SignalMSI(m.vm, &msi)
}

// Capabilities implements vmm.Target.
func (m *Machine) Capabilities() vmm.Capabilities { return m.host.Capabilities() }

// Host returns what the probe found about this host.
func (m *Machine) Host() HostInfo { return *m.host }

// VCPUs implements vmm.Target.
func (m *Machine) VCPUs() int { return len(m.vcpus) }

// stoppedVCPU returns vCPU i if the machine is stopped.
func (m *Machine) stoppedVCPU(i int) (*vcpu, error) {
	if i < 0 || i >= len(m.vcpus) {
		return nil, fmt.Errorf("%w: %d (have %d)", vmm.ErrNoVCPU, i, len(m.vcpus))
	}
	switch m.state {
	case stateRunning:
		return nil, vmm.ErrNotStopped
	case stateClosed:
		return nil, vmm.ErrClosed
	}
	return m.vcpus[i], nil
}

// Regs implements vmm.Target.
func (m *Machine) Regs(i int) (x86.Regs, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.stoppedVCPU(i)
	if err != nil {
		return x86.Regs{}, err
	}
	return v.regs(), nil
}

// SRegs implements vmm.Target.
func (m *Machine) SRegs(i int) (x86.SRegs, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.stoppedVCPU(i)
	if err != nil {
		return x86.SRegs{}, err
	}
	s := v.sregs()
	if s.KernelGSBase, err = v.kernelGSBase(); err != nil {
		m.log.WithError(err).Debug("IA32_KERNEL_GS_BASE unread (0)")
	}
	return s, nil
}

// SetRegs implements vmm.RegisterWriter.
func (m *Machine) SetRegs(i int, r x86.Regs) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.stoppedVCPU(i)
	if err != nil {
		return err
	}
	if m.state == stateFinal && m.final.Reason != vmm.ReasonShutdown {
		return vmm.ErrExited
	}
	return v.setRegs(r)
}

// SetSRegs implements vmm.RegisterWriter.
func (m *Machine) SetSRegs(i int, s x86.SRegs) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.stoppedVCPU(i)
	if err != nil {
		return err
	}
	if err := v.setSRegs(s); err != nil {
		return err
	}
	return v.setKernelGSBase(s.KernelGSBase)
}

// DebugRegs implements vmm.DebugRegisters: the guest's own view of DR0-DR7
// (vmdap's breakpoints live in KVM's guest-debug state, not here).
func (m *Machine) DebugRegs(i int) (x86.DebugRegs, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.stoppedVCPU(i)
	if err != nil {
		return x86.DebugRegs{}, err
	}
	var d kvmsys.DebugRegs
	if err := kvmsys.GetDebugRegs(v.fd, &d); err != nil {
		return x86.DebugRegs{}, fmt.Errorf("vcpu %d: %w", i, err)
	}
	return x86.DebugRegs{DR: d.DB, DR6: d.DR6, DR7: d.DR7}, nil
}

// SetDebugRegs implements vmm.DebugRegisters.
func (m *Machine) SetDebugRegs(i int, dr x86.DebugRegs) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.stoppedVCPU(i)
	if err != nil {
		return err
	}
	d := kvmsys.DebugRegs{DB: dr.DR, DR6: dr.DR6, DR7: dr.DR7}
	if err := kvmsys.SetDebugRegs(v.fd, &d); err != nil {
		return fmt.Errorf("vcpu %d: %w", i, err)
	}
	return nil
}

// Optional capability accessors.

func (m *Machine) Stepper() (vmm.Stepper, bool) { return m, m.host.StepWorks }
func (m *Machine) SWBreakpoints() (vmm.Breakpoints, bool) {
	return m, m.host.SWBreakpoint != swbpNone
}
func (m *Machine) HWBreakpoints() (vmm.HWBreakpoints, bool)   { return m, m.host.HWBreakpoints }
func (m *Machine) Watchpoints() (vmm.Watchpoints, bool)       { return m, true }
func (m *Machine) RegisterWriter() (vmm.RegisterWriter, bool) { return m, true }
func (m *Machine) DebugRegisters() (vmm.DebugRegisters, bool) { return m, true }
func (m *Machine) PhysicalMemory() (vmm.PhysicalMemory, bool) { return m, true }

// Continue implements vmm.Target.
func (m *Machine) Continue() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.canRun(); err != nil {
		return err
	}
	// A stop collected during the last all-stop is reported first.
	for len(m.pending) > 0 {
		s := m.pending[0]
		m.pending = m.pending[1:]
		if m.stillValid(s) {
			m.ready = &s
			return nil
		}
	}
	// vCPUs sitting on one of our breakpoints execute that instruction
	// first, one at a time, while the others are stopped.
	for _, v := range m.vcpus {
		if v.halted {
			continue
		}
		if s, done := m.resumeFromBreakpoint(v); done {
			m.deliver(s)
			return nil
		}
	}
	m.state = stateRunning
	for _, v := range m.vcpus {
		if v.halted {
			continue
		}
		m.running++
		v.start(false)
	}
	m.startNudger()
	if m.running == 0 {
		m.state = stateStopped
		m.deliver(vmm.Stop{Reason: vmm.ReasonHalted, PC: m.vcpus[0].pc(), Detail: "every vCPU is halted and nothing can wake it"})
	}
	return nil
}

// Step implements vmm.Stepper.
func (m *Machine) Step(i int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.canRun(); err != nil {
		return err
	}
	if i < 0 || i >= len(m.vcpus) {
		return fmt.Errorf("%w: %d", vmm.ErrNoVCPU, i)
	}
	// The guest's end, collected behind another vCPU's stop in the last
	// all-stop (collect), comes before any step: a vCPU is not run past
	// the exit the guest asked for. Another vCPU's pending breakpoint
	// waits for the next Continue (this step runs vCPU i alone).
	for _, p := range m.pending {
		if p.Reason.Final() {
			m.pending = nil
			m.deliver(p)
			return nil
		}
	}
	v := m.vcpus[i]
	v.halted = false
	m.state = stateRunning
	m.running++
	v.start(true)
	m.startNudger()
	return nil
}

func (m *Machine) canRun() error {
	switch m.state {
	case stateRunning:
		return vmm.ErrRunning
	case stateFinal:
		return vmm.ErrExited
	case stateClosed:
		return vmm.ErrClosed
	}
	if m.ready != nil {
		return fmt.Errorf("a stop is waiting to be collected with Wait")
	}
	return nil
}

// deliver makes s the stop Wait returns next (machine stopped).
func (m *Machine) deliver(s vmm.Stop) {
	m.ready = &s
	if s.Reason.Final() {
		m.state = stateFinal
		m.final = &s
	}
}

// stillValid drops a pending breakpoint stop whose breakpoint was removed
// (the vCPU has not executed the instruction; it will simply run it).
func (m *Machine) stillValid(s vmm.Stop) bool {
	switch s.Reason {
	case vmm.ReasonBreakpoint:
		return m.dbg.hasSW(m, s.Addr)
	case vmm.ReasonHWBreakpoint:
		return m.dbg.hasHW(s.Addr)
	}
	return true
}

// Pause implements vmm.Target.
func (m *Machine) Pause() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case stateClosed:
		return vmm.ErrClosed
	case stateRunning:
		m.pauseRq = true
		m.kickBusy()
	}
	return nil
}

// Wait implements vmm.Target.
func (m *Machine) Wait(ctx context.Context) (vmm.Stop, error) {
	for {
		m.mu.Lock()
		if m.ready != nil {
			s := *m.ready
			m.ready = nil
			m.mu.Unlock()
			return s, nil
		}
		switch m.state {
		case stateClosed:
			m.mu.Unlock()
			return vmm.Stop{}, vmm.ErrClosed
		case stateFinal:
			m.mu.Unlock()
			return vmm.Stop{}, vmm.ErrExited
		case stateStopped:
			m.mu.Unlock()
			return vmm.Stop{}, errors.New("target is stopped: nothing to wait for")
		}
		m.mu.Unlock()
		ev, err := m.nextEvent(ctx)
		if err != nil {
			return vmm.Stop{}, err
		}
		m.mu.Lock()
		m.collect(ev)
		m.mu.Unlock()
	}
}

// nextEvent receives the next vCPU event, spinning briefly first; it
// gives up when ctx ends or the machine is closed.
func (m *Machine) nextEvent(ctx context.Context) (event, error) {
	for i := 0; i < spinIters; i++ {
		select {
		case ev := <-m.events:
			return ev, nil
		default:
		}
		if i%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return event{}, err
			}
			runtime.Gosched()
		}
	}
	select {
	case ev := <-m.events:
		return ev, nil
	case <-ctx.Done():
		return event{}, ctx.Err()
	case <-m.closed:
		return event{}, vmm.ErrClosed
	}
}

// kickBusy asks every vCPU with an outstanding command to stop.
func (m *Machine) kickBusy() {
	for _, v := range m.vcpus {
		if v.busy {
			v.kick()
		}
	}
}

// collect folds one vCPU event into the all-stop in progress.
func (m *Machine) collect(ev event) {
	if m.state == stateClosed {
		return
	}
	m.running--
	v := m.vcpus[ev.vcpu]
	v.busy = false
	switch ev.stop.Reason {
	case vmm.ReasonNone:
	case vmm.ReasonHalted:
		v.halted = true
	default:
		if m.first == nil {
			s := ev.stop
			m.first = &s
			m.kickBusy()
		} else {
			m.pending = append(m.pending, ev.stop)
		}
	}
	if m.running > 0 {
		return
	}
	m.stopNudger()
	m.state = stateStopped
	var s vmm.Stop
	switch {
	case m.first != nil:
		s = *m.first
		if s.Reason.Final() {
			// Another vCPU stopped for a reason of its own in the same
			// all-stop (a watchpoint whose write let this vCPU exit, say):
			// report that first, the guest's end on the next Continue.
			for i, p := range m.pending {
				if !p.Reason.Final() {
					rest := append(append([]vmm.Stop{}, m.pending[:i]...), m.pending[i+1:]...)
					m.pending = append([]vmm.Stop{s}, rest...)
					s = p
					break
				}
			}
		}
	case m.pauseRq:
		s = vmm.Stop{Reason: vmm.ReasonPause, VCPU: 0, PC: m.vcpus[0].pc()}
	default:
		s = vmm.Stop{Reason: vmm.ReasonHalted, PC: v.pc(), VCPU: v.idx, Detail: "every vCPU is halted and nothing can wake it"}
	}
	m.first = nil
	m.pauseRq = false
	if s.Reason.Final() {
		m.pending = nil
	}
	m.deliver(s)
}
