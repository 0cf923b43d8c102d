//go:build linux && amd64

package kvm

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"vmdap/vmm"
	"vmdap/vmm/kvm/boot"
	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
	"vmdap/x86/disasm"
	"vmdap/x86/paging"
)

// kickSignal interrupts a vCPU thread inside KVM_RUN. SIGURG is the Go
// runtime's own preemption signal: always handled, never fatal, so no
// signal.Notify is needed and a stray one is harmless.
const kickSignal = unix.SIGURG

// vcpu is one virtual CPU. Its goroutine, locked to one OS thread, is the
// only one that issues KVM_RUN; the controller issues other ioctls while
// the vCPU is stopped.
type vcpu struct {
	m    *Machine
	idx  int
	fd   int
	run  kvmsys.RunPage
	tid  atomic.Int32
	cmds chan func()
	done chan struct{}

	paused atomic.Bool // a stop was requested
	busy   bool        // a run or step command is outstanding (under Machine.mu)

	// State below belongs to the vCPU thread while it runs and to the
	// controller while it is stopped (the hand-off orders the accesses).
	kregs  kvmsys.Regs
	ksregs kvmsys.SRegs
	kgs    uint64 // IA32_KERNEL_GS_BASE, when kgsOK: read once per stop, kept across a step of an instruction that writes no MSR
	kgsOK  bool
	gdbg   kvmsys.GuestDebug // last KVM_SET_GUEST_DEBUG
	gdbgOK bool              // gdbg reflects the kernel state
	rearm  bool              // single-step must be re-armed (see step_linux.go)
	inject uint32            // KVM_GUESTDBG_INJECT_* for the next entry
	halted bool              // parked: KVM_EXIT_HLT without an irqchip, or an AP never started

	runTarget *trap // a step running to a temporary breakpoint (haltstep_linux.go)

	traps   trapCache // step_linux.go
	trapBuf []trap
	insns   [64]disasm.Inst // decoded-instruction cache by PC

	stepCmd, runCmd func()

	// kvmRun is KVM_RUN (kvmsys.Run). Tests replace it to deliver exits no
	// host produces on demand (a failed VM entry, a system event).
	kvmRun func(fd int) error
}

func newVCPU(m *Machine, idx int, mmapSize int) (*vcpu, error) {
	fd, err := kvmsys.CreateVCPU(m.vm, idx)
	if err != nil {
		return nil, fmt.Errorf("vcpu %d: %w", idx, err)
	}
	run, err := unix.Mmap(fd, 0, mmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vcpu %d: mmap kvm_run: %w", idx, err)
	}
	v := &vcpu{m: m, idx: idx, fd: fd, run: kvmsys.RunPage(run), cmds: make(chan func(), 1), done: make(chan struct{}),
		kvmRun: kvmsys.Run}
	v.makeCmds()
	started := make(chan struct{})
	go v.thread(started)
	<-started
	return v, nil
}

// thread is the vCPU's goroutine. It never unlocks its OS thread, so the
// thread ends with it.
func (v *vcpu) thread(started chan<- struct{}) {
	runtime.LockOSThread()
	v.tid.Store(int32(unix.Gettid()))
	close(started)
	defer close(v.done)
	for {
		fn, ok := spinRecv(v.cmds)
		if !ok {
			return
		}
		fn()
	}
}

func (v *vcpu) close() {
	close(v.cmds)
	<-v.done
	if v.run != nil {
		unix.Munmap(v.run)
		v.run = nil
	}
	unix.Close(v.fd)
}

// do runs fn on the vCPU thread and waits for it.
func (v *vcpu) do(fn func()) {
	done := make(chan struct{}, 1)
	v.cmds <- func() { fn(); done <- struct{}{} }
	spinRecv(done)
}

// start launches a run (or one step) on the vCPU thread; its end is
// reported on m.events.
func (v *vcpu) start(step bool) {
	v.arm()
	v.busy = true
	if step {
		v.cmds <- v.stepCmd
	} else {
		v.cmds <- v.runCmd
	}
}

// makeCmds builds the two commands start sends, once per vCPU.
func (v *vcpu) makeCmds() {
	report := func(s vmm.Stop) {
		s.VCPU = v.idx
		v.m.events <- event{vcpu: v.idx, stop: s}
	}
	v.stepCmd = func() { report(v.step(true)) }
	v.runCmd = func() { report(v.runUntilStop()) }
}

// arm clears a previous stop request before the vCPU runs again.
func (v *vcpu) arm() {
	v.paused.Store(false)
	v.run.SetImmediateExit(false)
}

// kick asks the vCPU to stop: flag, immediate_exit (for the next entry)
// and a signal (for the current one). KVM_RUN returns EINTR either way.
func (v *vcpu) kick() {
	v.paused.Store(true)
	v.run.SetImmediateExit(true)
	if tid := v.tid.Load(); tid != 0 {
		_ = unix.Tgkill(unix.Getpid(), int(tid), kickSignal)
	}
}

func (v *vcpu) setup(st boot.CPUState, cpuid []kvmsys.CPUIDEntry2) error {
	if err := kvmsys.SetCPUID2(v.fd, cpuid); err != nil {
		return err
	}
	if err := v.resetFPU(); err != nil {
		return err
	}
	var ks kvmsys.SRegs
	if err := kvmsys.GetSRegs(v.fd, &ks); err != nil {
		return err
	}
	v.ksregs = ks
	if err := v.setSRegs(st.SRegs); err != nil {
		return err
	}
	if err := v.setRegs(st.Regs); err != nil {
		return err
	}
	v.halted = st.Halted
	if v.m.irqchip {
		// With an in-kernel irqchip KVM leaves every vCPU but the first
		// waiting for INIT/SIPI. A vCPU the protocol starts enters at its
		// entry point; one it does not start goes on waiting, inside
		// KVM_RUN, until the guest's INIT and startup IPIs reach it.
		st := uint32(kvmsys.KVM_MP_STATE_RUNNABLE)
		if v.halted {
			st = kvmsys.KVM_MP_STATE_UNINITIALIZED
			v.halted = false
		}
		if err := kvmsys.SetMPState(v.fd, st); err != nil {
			return fmt.Errorf("vcpu %d: %w", v.idx, err)
		}
	}
	if v.m.host.SyncRegs {
		v.run.SetValidRegs(kvmsys.KVM_SYNC_X86_REGS | kvmsys.KVM_SYNC_X86_SREGS)
	}
	return nil
}

// refresh copies the registers KVM left in kvm_run (sync regs) after an
// exit, or reads them with ioctls when the host lacks sync regs.
func (v *vcpu) refresh() {
	v.kgsOK = false
	if v.m.host.SyncRegs {
		v.kregs = *v.run.SyncRegs()
		v.ksregs = *v.run.SyncSRegs()
		return
	}
	_ = kvmsys.GetRegs(v.fd, &v.kregs)
	_ = kvmsys.GetSRegs(v.fd, &v.ksregs)
}

// pc is the linear address of v's next instruction (x86.CodeAddr): RIP in
// 64-bit mode, CS.base + IP in real mode and in a based code segment.
// Breakpoints, debug registers and stops are at linear addresses.
func (v *vcpu) pc() uint64 { return x86.CodeAddr(v.kregs.RIP, v.sregs()) }

func (v *vcpu) regs() x86.Regs {
	k := &v.kregs
	return x86.Regs{RAX: k.RAX, RBX: k.RBX, RCX: k.RCX, RDX: k.RDX, RSI: k.RSI, RDI: k.RDI, RSP: k.RSP, RBP: k.RBP,
		R8: k.R8, R9: k.R9, R10: k.R10, R11: k.R11, R12: k.R12, R13: k.R13, R14: k.R14, R15: k.R15,
		RIP: k.RIP, RFLAGS: k.RFLAGS}
}

func (v *vcpu) setRegs(r x86.Regs) error {
	k := kvmsys.Regs{RAX: r.RAX, RBX: r.RBX, RCX: r.RCX, RDX: r.RDX, RSI: r.RSI, RDI: r.RDI, RSP: r.RSP, RBP: r.RBP,
		R8: r.R8, R9: r.R9, R10: r.R10, R11: r.R11, R12: r.R12, R13: r.R13, R14: r.R14, R15: r.R15,
		RIP: r.RIP, RFLAGS: r.RFLAGS | x86.FlagsFix}
	if err := kvmsys.SetRegs(v.fd, &k); err != nil {
		return fmt.Errorf("vcpu %d: %w", v.idx, err)
	}
	if r.RIP != v.kregs.RIP {
		v.halted = false
		if v.m.irqchip {
			// A vCPU moved elsewhere by the debugger runs from there
			// rather than going on waiting in its HLT.
			if err := kvmsys.SetMPState(v.fd, kvmsys.KVM_MP_STATE_RUNNABLE); err != nil {
				return fmt.Errorf("vcpu %d: %w", v.idx, err)
			}
		}
	}
	v.kregs = k
	// Any RFLAGS write-back drops KVM's single-step TF on VT-x/AMD-V.
	v.rearm = true
	return nil
}

func segFromKVM(s kvmsys.Segment) x86.Segment {
	return x86.Segment{Base: s.Base, Limit: s.Limit, Selector: s.Selector, Type: s.Type, Present: s.Present != 0,
		DPL: s.DPL, DB: s.DB != 0, S: s.S != 0, L: s.L != 0, G: s.G != 0, AVL: s.AVL != 0, Unusable: s.Unusable != 0}
}

func segToKVM(s x86.Segment) kvmsys.Segment {
	b := func(x bool) uint8 {
		if x {
			return 1
		}
		return 0
	}
	return kvmsys.Segment{Base: s.Base, Limit: s.Limit, Selector: s.Selector, Type: s.Type, Present: b(s.Present),
		DPL: s.DPL, DB: b(s.DB), S: b(s.S), L: b(s.L), G: b(s.G), AVL: b(s.AVL), Unusable: b(s.Unusable)}
}

// pagingState is the part of the sregs a page walk needs.
func (v *vcpu) pagingState() paging.State {
	k := &v.ksregs
	return paging.State{CR0: k.CR0, CR3: k.CR3, CR4: k.CR4, EFER: k.EFER}
}

func (v *vcpu) sregs() x86.SRegs {
	k := &v.ksregs
	return x86.SRegs{
		CS: segFromKVM(k.CS), DS: segFromKVM(k.DS), ES: segFromKVM(k.ES), FS: segFromKVM(k.FS),
		GS: segFromKVM(k.GS), SS: segFromKVM(k.SS), TR: segFromKVM(k.TR), LDT: segFromKVM(k.LDT),
		GDT: x86.Table{Base: k.GDT.Base, Limit: k.GDT.Limit}, IDT: x86.Table{Base: k.IDT.Base, Limit: k.IDT.Limit},
		CR0: k.CR0, CR2: k.CR2, CR3: k.CR3, CR4: k.CR4, CR8: k.CR8, EFER: k.EFER, APICBase: k.APICBase,
	}
}

func (v *vcpu) setSRegs(s x86.SRegs) error {
	k := v.sregsToKVM(s)
	if err := kvmsys.SetSRegs(v.fd, &k); err != nil {
		return fmt.Errorf("vcpu %d: %w", v.idx, err)
	}
	v.ksregs = k
	v.rearm = true
	return nil
}

// sregsToKVM converts s, keeping the fields vmdap does not model (the
// pending-interrupt bitmap) from the current copy.
func (v *vcpu) sregsToKVM(s x86.SRegs) kvmsys.SRegs {
	k := v.ksregs
	k.CS, k.DS, k.ES, k.FS = segToKVM(s.CS), segToKVM(s.DS), segToKVM(s.ES), segToKVM(s.FS)
	k.GS, k.SS, k.TR, k.LDT = segToKVM(s.GS), segToKVM(s.SS), segToKVM(s.TR), segToKVM(s.LDT)
	k.GDT = kvmsys.DTable{Base: s.GDT.Base, Limit: s.GDT.Limit}
	k.IDT = kvmsys.DTable{Base: s.IDT.Base, Limit: s.IDT.Limit}
	k.CR0, k.CR2, k.CR3, k.CR4, k.CR8, k.EFER = s.CR0, s.CR2, s.CR3, s.CR4, s.CR8, s.EFER
	if s.APICBase != 0 {
		k.APICBase = s.APICBase
	}
	return k
}

// setGuestDebug issues KVM_SET_GUEST_DEBUG when the wanted state differs
// from what the kernel has, when force is set, or when it injects an
// exception: KVM_GUESTDBG_INJECT_* acts once, at the ioctl, so two guest
// int3s in a row with no other change between them need two ioctls.
func (v *vcpu) setGuestDebug(d kvmsys.GuestDebug, force bool) error {
	inject := d.Control&(kvmsys.KVM_GUESTDBG_INJECT_BP|kvmsys.KVM_GUESTDBG_INJECT_DB) != 0
	if !force && !inject && v.gdbgOK && d == v.gdbg {
		return nil
	}
	if err := kvmsys.SetGuestDebug(v.fd, &d); err != nil {
		v.gdbgOK = false
		return fmt.Errorf("vcpu %d: %w", v.idx, err)
	}
	v.gdbg, v.gdbgOK = d, true
	v.inject = 0
	return nil
}

// enter issues one KVM_RUN and refreshes the register copies. It returns
// the exit reason, or errInterrupted when the run ended with EINTR, or
// with EAGAIN: a vCPU waiting for INIT/SIPI (with the in-kernel irqchip)
// returns EAGAIN when an event woke it and it is to be entered again
// (arch/x86/kvm/x86.c, the KVM_MP_STATE_UNINITIALIZED case of KVM_RUN;
// QEMU loops on it too).
func (v *vcpu) enter() (uint32, error) {
	err := v.kvmRun(v.fd)
	v.refresh()
	if err != nil {
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			return kvmsys.KVM_EXIT_INTR, errInterrupted
		}
		return 0, fmt.Errorf("KVM_RUN vcpu %d: %w", v.idx, err)
	}
	return v.run.ExitReason(), nil
}

var errInterrupted = errors.New("KVM_RUN interrupted")

// complete finishes a pending I/O or MMIO exit without running further:
// with immediate_exit set, KVM_RUN completes the access (RIP advanced,
// a read's register loaded) and returns at once. The kernel answers EINTR,
// or KVM_EXIT_DEBUG on VT-x/AMD-V when single-step traps after the
// completed instruction; further MMIO exits (a rep string instruction's
// next element) are served and completed in turn.
func (v *vcpu) complete() (uint32, error) {
	for i := 0; i < 1<<16; i++ {
		v.run.SetImmediateExit(true)
		reason, err := v.enter()
		v.run.SetImmediateExit(v.paused.Load())
		if err != nil {
			if err == errInterrupted {
				return kvmsys.KVM_EXIT_INTR, nil
			}
			return 0, err
		}
		switch reason {
		case kvmsys.KVM_EXIT_MMIO:
			if hit := v.m.mmio(v); hit != nil {
				// A further element hit a watchpoint: finish it and let the
				// caller report; the first hit is already being reported.
				continue
			}
		case kvmsys.KVM_EXIT_IO:
			if req := v.io(); req != nil {
				return reason, nil
			}
		default:
			return reason, nil
		}
	}
	return 0, fmt.Errorf("vcpu %d: I/O completion did not finish", v.idx)
}

// io serves a port I/O exit; it returns an exit request for the
// debug-exit port.
func (v *vcpu) io() *exitRequest {
	e := v.run.IO()
	data := v.run.IOData()
	size := int(e.Size)
	if size == 0 || len(data) == 0 {
		return nil
	}
	for i := 0; i < int(e.Count); i++ {
		chunk := data[i*size : (i+1)*size]
		if e.Direction == kvmsys.KVM_EXIT_IO_OUT {
			if req := v.m.ports.out(e.Port, chunk); req != nil {
				return req
			}
		} else {
			v.m.ports.in(e.Port, chunk)
		}
	}
	return nil
}

// internalError describes a KVM_EXIT_INTERNAL_ERROR.
func (v *vcpu) internalError() string {
	ie := v.run.Internal()
	s := fmt.Sprintf("KVM internal error, suberror %d", ie.Suberror)
	if ie.Suberror == kvmsys.KVM_INTERNAL_ERROR_EMULATION {
		s = "KVM could not emulate the instruction (internal error, suberror 1)"
	}
	n := int(ie.NData)
	if n > len(ie.Data) {
		n = len(ie.Data)
	}
	if n > 0 {
		s += fmt.Sprintf(", data %x", ie.Data[:n])
	}
	return s
}

// emulationFailureAt reports whether the last exit is an emulation
// failure at RIP (how int3 surfaces on hosts whose KVM emulates the guest).
func (v *vcpu) emulationFailureAt() bool {
	return v.run.ExitReason() == kvmsys.KVM_EXIT_INTERNAL_ERROR &&
		v.run.Internal().Suberror == kvmsys.KVM_INTERNAL_ERROR_EMULATION
}

// runUntilStop runs the vCPU until something worth reporting happens or a
// stop is requested (ReasonNone). Device I/O is served inline; exits are
// classified by classifyExit (exit_linux.go).
func (v *vcpu) runUntilStop() vmm.Stop {
	m := v.m
	needComplete := false
	v.markLoadedDescriptors()
	for {
		if v.paused.Load() {
			if needComplete {
				if _, err := v.complete(); err != nil {
					return v.failed(err)
				}
			}
			return vmm.Stop{Reason: vmm.ReasonNone, PC: v.pc()}
		}
		if err := v.setGuestDebug(m.dbg.guestDebug(v, false, -1), false); err != nil {
			return v.failed(err)
		}
		reason, err := v.enter()
		needComplete = false
		if err == errInterrupted {
			// A pause (checked above), a nudge or a stray signal.
			v.markLoadedDescriptors()
			continue
		}
		if err != nil {
			return v.failed(err)
		}
		s, out := v.classifyExit(reason, false)
		switch out {
		case outStop:
			return s
		case outServed:
			needComplete = true
		}
	}
}

func (v *vcpu) failed(err error) vmm.Stop {
	v.m.log.WithError(err).WithField("vcpu", v.idx).Error("vCPU failed")
	return vmm.Stop{Reason: vmm.ReasonInternalError, PC: v.pc(), Detail: err.Error()}
}

// kernelGSBase reads IA32_KERNEL_GS_BASE (KVM_GET_MSRS), once per stop.
func (v *vcpu) kernelGSBase() (uint64, error) {
	if !v.kgsOK {
		k, err := kvmsys.GetMSR(v.fd, kvmsys.MSR_KERNEL_GS_BASE)
		if err != nil {
			return 0, fmt.Errorf("vcpu %d: %w", v.idx, err)
		}
		v.kgs, v.kgsOK = k, true
	}
	return v.kgs, nil
}

// setKernelGSBase writes IA32_KERNEL_GS_BASE when it changes.
func (v *vcpu) setKernelGSBase(k uint64) error {
	if cur, err := v.kernelGSBase(); err != nil || cur == k {
		return err
	}
	if err := kvmsys.SetMSR(v.fd, kvmsys.MSR_KERNEL_GS_BASE, k); err != nil {
		v.kgsOK = false
		return fmt.Errorf("vcpu %d: %w", v.idx, err)
	}
	v.kgs = k
	return nil
}
