package vmm

import (
	"context"

	"vmdap/x86"
)

// Target is one debuggable machine.
//
// Concurrency: callers make one call at a time, from any goroutine, with
// these exceptions, which every backend must allow:
//   - Pause may be called at any moment, also while another goroutine is
//     in Continue, Step or Wait; that Wait then returns the pause's stop
//     (or a real stop that came first).
//   - Close, and a Detacher's Detach and Terminate, may be called while
//     another goroutine waits in Wait: the Wait returns (ErrClosed, or the
//     final stop).
//   - A Wait's ctx may end from another goroutine: the Wait returns
//     ctx.Err() and the guest runs on; a later Wait picks up its stop.
//   - An Ender's Ended channel may be watched at any time.
//
// The session drives each run from one goroutine (Continue or a Step, then
// Wait until the stop) and makes every other call while the target is
// stopped, under its own lock. Calls that need the guest stopped
// (registers, memory, breakpoints, watchpoints) fail with ErrNotStopped
// while it runs; they never block until it stops. Both backends serialise
// their methods with a lock of their own, never held across a Wait's
// blocking receive.
type Target interface {
	// Capabilities names how this target realises its mechanisms, and its
	// host notes (for logs and `vmdap check`). Whether a mechanism exists
	// is the optional accessors' answer below.
	Capabilities() Capabilities
	// VCPUs returns the number of vCPUs; they are numbered from 0.
	VCPUs() int

	// Regs returns the general registers of a stopped vCPU.
	Regs(vcpu int) (x86.Regs, error)
	// SRegs returns segment, descriptor-table and control registers.
	SRegs(vcpu int) (x86.SRegs, error)

	// ReadMemory reads guest-virtual memory as vcpu sees it. It returns the
	// number of bytes read; when n < len(p) the error is a *FaultError
	// naming the first unreadable address.
	ReadMemory(vcpu int, p []byte, addr uint64) (n int, err error)
	// WriteMemory writes guest-virtual memory, with the same partial-count
	// rule. Writes over the target's own breakpoints update the saved
	// original bytes; the breakpoints stay in place.
	WriteMemory(vcpu int, p []byte, addr uint64) (n int, err error)

	// Continue resumes all vCPUs. It returns once they run (or a pending
	// stop is ready); the stop arrives through Wait.
	Continue() error
	// Wait blocks until the target is stopped and returns why. It returns
	// ctx.Err() if the context ends first, and ErrExited once the guest is
	// gone.
	Wait(ctx context.Context) (Stop, error)
	// Pause asks all running vCPUs to stop; Wait then returns a stop with
	// ReasonPause (or whatever real stop happened first). Pausing a stopped
	// target does nothing.
	Pause() error
	// Close tears the target down, releasing every thread and descriptor.
	Close() error

	// Optional capabilities.
	Stepper() (Stepper, bool)
	SWBreakpoints() (Breakpoints, bool)
	HWBreakpoints() (HWBreakpoints, bool)
	Watchpoints() (Watchpoints, bool)
	RegisterWriter() (RegisterWriter, bool)
	DebugRegisters() (DebugRegisters, bool)
	FPRegisters() (FPRegisters, bool)
	PhysicalMemory() (PhysicalMemory, bool)
}

// Stepper single-steps one vCPU while the others stay stopped.
type Stepper interface {
	// Step executes one instruction on vcpu; Wait returns the stop
	// (ReasonStep, or whatever the instruction caused: a watchpoint, an
	// exit, a shutdown).
	Step(vcpu int) error
	// StepsHalt reports whether a Step of a hlt ends once the vCPU goes on
	// after it (vmdap's VMM: with an in-kernel irqchip it waits for the
	// interrupt and runs its handler). false: the step holds interrupts
	// off (a GDB stub's: QEMU's NOIRQ|NOTIMER, bhyve's MASK_HWINTR), so a
	// stepped hlt never wakes; callers step a hlt by running to the
	// instruction after it.
	StepsHalt() bool
}

// Breakpoints are software breakpoints (an int3 or equivalent in guest
// memory). Addresses are guest-virtual.
//
// A backend only writes a breakpoint at an address and erases it. Why a
// breakpoint exists, and how many reasons share an address (a user
// breakpoint, a step's temporary one, an exception handler), is the
// session's bookkeeping, not the backend's: each address is inserted once
// and removed once, and inserting an address that already holds one fails
// with ErrBreakpointExists.
//
// An address that cannot be written (not mapped now) fails with a
// *FaultError, unless the backend can place the breakpoint all the same:
// vmdap's VMM by the guest-physical address the image's PT_LOAD segments
// give it, a GDB stub whose Z0 takes unmapped virtual addresses. A
// breakpoint placed so is hit once the guest maps the address there.
type Breakpoints interface {
	InsertBreakpoint(addr uint64) error
	RemoveBreakpoint(addr uint64) error
}

// HWBreakpoints are execute breakpoints in the debug registers, by linear
// address (no translation: they can be set before the guest maps the
// address). Slots() reports how many exist in all; the slots are shared
// with debug-register watchpoints, and inserting into a full set fails
// with ErrNoSlots. As for Breakpoints, each address is inserted once.
type HWBreakpoints interface {
	Slots() int
	InsertHWBreakpoint(addr uint64) error
	RemoveHWBreakpoint(addr uint64) error
}

// WatchKind selects how a watchpoint is implemented.
type WatchKind uint8

const (
	// WatchDebugReg uses a debug-register slot: lengths 1, 2, 4, 8,
	// naturally aligned; access Write or ReadWrite.
	WatchDebugReg WatchKind = iota
	// WatchPage uses page protection: any length, any count, Read too.
	// Reads cannot be trapped on a page the CPU reads on its own (code,
	// page tables): the backend refuses such a page with an error that
	// wraps ErrUnsupported.
	WatchPage
	// WatchStub lets a remote stub choose (GDB Z2/Z3/Z4).
	WatchStub
	// WatchSoftware single-steps and compares the watched bytes (slow;
	// for stubs without watchpoints).
	WatchSoftware
)

func (k WatchKind) String() string {
	switch k {
	case WatchDebugReg:
		return "debug register"
	case WatchPage:
		return "page protection"
	case WatchStub:
		return "stub"
	case WatchSoftware:
		return "step-and-compare"
	}
	return "unknown"
}

// Access is what a watchpoint reacts to.
type Access uint8

const (
	AccessWrite Access = 1 << iota
	AccessRead
	AccessReadWrite = AccessWrite | AccessRead
)

func (a Access) String() string {
	switch a {
	case AccessWrite:
		return "write"
	case AccessRead:
		return "read"
	case AccessReadWrite:
		return "readWrite"
	}
	return "none"
}

// Watch is one watchpoint request. Addr is guest-virtual (translated with
// vCPU 0 when inserted).
type Watch struct {
	Addr   uint64
	Len    int
	Access Access
	Kind   WatchKind
}

// Watchpoints are data breakpoints.
type Watchpoints interface {
	// WatchKinds reports which kinds this target can place, in the order
	// it prefers them, with what each supports.
	WatchKinds() []WatchSupport
	InsertWatchpoint(w Watch) error
	RemoveWatchpoint(w Watch) error
}

// WatchSupport says what one watchpoint kind can do on this target.
type WatchSupport struct {
	Kind     WatchKind
	Accesses []Access
	MaxLen   int // 0 = any
	Count    int // 0 = any
	Aligned  bool
}

// RegisterWriter changes registers of a stopped vCPU.
type RegisterWriter interface {
	SetRegs(vcpu int, r x86.Regs) error
	SetSRegs(vcpu int, s x86.SRegs) error
}

// SWBreakpointModes is a target whose software breakpoints do not trap in
// every CPU mode (a KVM that emulates real mode and delivers an int3
// through the guest's own vector table): the session puts breakpoints in
// debug registers while a vCPU is in a mode where they would not trap.
type SWBreakpointModes interface {
	SWBreakpointTraps(mode x86.Mode) bool
}

// DebugRegisters exposes the guest's view of DR0-DR7.
type DebugRegisters interface {
	DebugRegs(vcpu int) (x86.DebugRegs, error)
	SetDebugRegs(vcpu int, d x86.DebugRegs) error
}

// FPRegisters reads the x87 and SSE registers of a stopped vCPU (gdb's
// float and vector register groups).
type FPRegisters interface {
	FPRegs(vcpu int) (x86.FPRegs, error)
}

// FPRegisterWriter writes one x87 or SSE register of a stopped vCPU, by
// its gdb name (x86.FPRegNames), with its bytes as FPRegs.Bytes gives
// them (st in stack order). A backend's FPRegisters offers it where it
// can write them (a type assertion finds out).
type FPRegisterWriter interface {
	SetFPReg(vcpu int, name string, b []byte) error
}

// PhysicalMemory reads and writes guest-physical memory.
type PhysicalMemory interface {
	ReadPhysical(p []byte, addr uint64) (int, error)
	WritePhysical(p []byte, addr uint64) (int, error)
}

// RAMLayout is a target that knows where its guest-physical RAM is
// (vmdap's own VMM: its memslots), so that the machine can be written to
// a core dump (the console's dump) through PhysicalMemory: every range
// reads, nothing outside them is RAM.
type RAMLayout interface {
	RAM() []PhysRange
}

// PhysRange is a range of guest-physical addresses.
type PhysRange struct {
	Addr, Size uint64
}

// Ender is a target that can end on its own while its guest is stopped (a
// remote stub, or its hypervisor, that dies). Ended is closed when that
// happens; Wait then returns the final stop at once.
type Ender interface {
	Ended() <-chan struct{}
}

// Monitor is a target whose hypervisor has a monitor the user can talk
// to (QEMU's human monitor, through its GDB stub's qRcmd), as gdb's
// monitor command does.
type Monitor interface {
	// MonitorCommand runs one command while the target is stopped and
	// returns what it printed. A command can change the guest (a
	// system_reset): the target forgets the state it read at this stop.
	MonitorCommand(cmd string) (string, error)
}

// Detacher is a target whose guest can outlive the debugging session, or
// be ended on request (a hypervisor's GDB stub). Both release the target
// as Close does; Close keeps the target's default ending.
type Detacher interface {
	// Detach lets the guest go: running, or left stopped (suspend).
	Detach(suspend bool) error
	// Terminate ends the guest and its hypervisor.
	Terminate() error
}

// PostMortem is a target that is a record of a machine, not a machine: a
// core dump. It is stopped for good: Continue and every write fail, and it
// offers no breakpoint, step or watchpoint mechanism.
type PostMortem interface {
	DumpInfo() DumpInfo
}

// DumpInfo describes a core dump.
type DumpInfo struct {
	Path   string
	Format string // "QEMU dump-guest-memory ELF core", "kdump ELF core", …
	// Kernel is what the dumped kernel recorded of itself (Linux's
	// VMCOREINFO: OSRELEASE, CRASHTIME, PAGESIZE, …); nil when nothing.
	Kernel map[string]string
	// KernelOffset is the KASLR slide the kernel recorded, when it did.
	KernelOffset *uint64
}
