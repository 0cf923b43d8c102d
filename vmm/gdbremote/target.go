package gdbremote

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"vmdap/vmm"
	"vmdap/vmm/gdbremote/rsp"
	"vmdap/x86"
)

// Config describes a stub to attach to.
type Config struct {
	Addr string // "host:port" or a Unix socket path
	Stub string // "auto", "qemu", "bhyve"
	Log  logrus.FieldLogger
	// Serial receives 'O' console output from the stub.
	Serial io.Writer
	// Host names the hypervisor for Capabilities (e.g. "QEMU (tcg)").
	Host string
	// NoSWBreakpoints disables Z0 (QEMU under KVM on hosts where int3
	// kills the guest).
	NoSWBreakpoints bool
	// NoStubWatchpoints ignores Z2-Z4 (QEMU under KVM on hosts where
	// debug-register watchpoints are accepted but never fire); write
	// watchpoints are then emulated by stepping.
	NoStubWatchpoints bool
	// HandshakeTimeout bounds Attach (DefaultHandshakeTimeout when 0).
	HandshakeTimeout time.Duration
	// InterruptTimeout bounds the wait for the stop a Pause asks for
	// (DefaultInterruptTimeout when 0). A stub that does not answer its
	// ^C in time is given up: the target ends (ReasonExited, with the
	// reason in Detail).
	InterruptTimeout time.Duration

	launched *launched // set by LaunchQEMU: the hypervisor vmdap started
}

// launched ties a target to the hypervisor vmdap started for it (qemu.go).
// It is in place before the target watches its connection, which may end
// at once.
type launched struct {
	exit    func() exitInfo // the hypervisor's end
	stop    func()          // stops it
	release func()          // lets it run on after a detach
}

// DefaultInterruptTimeout is how long a Pause waits for the stub's stop.
// QEMU answers a ^C in milliseconds; one that has not answered in this
// long is wedged (QEMU once stayed silent after a Linux panic).
const DefaultInterruptTimeout = 5 * time.Second

type runState uint8

const (
	stopped runState = iota
	running
	exited // the final stop is delivered, or waits in stops for Wait
	closed
)

// swbp is one software breakpoint: the session owns why it exists, the
// target only places it (Z0, or an int3 written with M) and lifts it.
// shadow: guest memory holds our int3 and orig the guest's byte (reads
// show orig); false for a Z0 the stub keeps out of memory (QEMU TCG), or
// one placed at an address not mapped yet.
type swbp struct {
	orig   byte
	viaZ0  bool
	shadow bool
}

// memLine is a 64-byte aligned line of guest memory as a vCPU sees it.
type memLine struct {
	vcpu int
	addr uint64
}

const lineSize = 64

// Target is a vmm.Target over a GDB stub.
type Target struct {
	c    *rsp.Conn
	log  logrus.FieldLogger
	cfg  Config
	feat rsp.Features
	desc *rsp.TargetDesc

	// Set while attaching, read-only afterwards: no lock.
	threads  []string
	vCont    bool
	pWrite   bool
	z        [5]bool
	pktSize  int
	noAck    bool
	stubName string
	pipeline bool // the stub reads packets in order: a change and a resume share a write
	// stPhysical: the stub sends x87's physical registers R0-R7 as
	// st0-st7, not the stack ST(0)-ST(7) GDB's 64bit-core.xml means
	// (QEMU's: gdb shows them rotated by TOP there); fpregs.go rotates.
	stPhysical bool
	// z0Unmapped: Z0 takes a virtual address no page maps yet (QEMU TCG
	// checks breakpoints by address at translation time); z0Patches: Z0
	// writes an int3 into guest memory (QEMU-KVM), which reads then show.
	z0Unmapped, z0Patches bool
	// phyMem: 'm' and 'M' can be switched to guest-physical addresses
	// (QEMU's Qqemu.PhyMemMode; physical.go).
	phyMem    bool
	opCtx     context.Context // bounds exchanges: the handshake while attaching, then none
	onExit    func() exitInfo // the launched hypervisor's end (nil when attached: Config.launched)
	onClose   func()          // stops a launched hypervisor
	onRelease func()          // a launched hypervisor let go by a detach
	ended     chan struct{}   // closed by lifeline once the connection has ended
	closing   chan struct{}   // closed by end: a Wait in progress returns

	// mu guards the run state and everything learnt at the current stop
	// (registers, memory lines, selected threads), the breakpoint and
	// watchpoint tables, what the stub turned out to refuse (gWrite,
	// noMonitor), and the order of packets on the connection: a
	// request/reply exchange and a resume never interleave. Wait releases
	// it while it waits for the stop; the goroutine that carries a run
	// takes it to deliver the stop.
	mu          sync.Mutex
	state       runState
	gWrite      bool // G works (turned off when the stub refuses it)
	noMonitor   bool // the stub has no monitor command (qRcmd): found at its first refusal
	curThread   map[byte]string
	cache       map[int]*regBlock  // 'g' blocks read at this stop, by vCPU
	mem         map[memLine][]byte // memory lines read at this stop
	sw          map[uint64]*swbp
	hw          map[uint64]bool
	stepsOver   [2]uint8 // overUnknown/overYes/overNo for Z0 and Z1 (see run.go)
	watches     []vmm.Watch
	soft        []*softWatch
	stops       chan vmm.Stop
	stepping    int  // vCPU being stepped, or -1
	softRunning bool // softRun steps the run (emulated watchpoints)
	interrupt   bool
	// staleStep: vCPUs whose step a pause cut short while the stop named
	// another vCPU (QEMU still single-steps them; see classify); trapped:
	// the stop classify just made is such a vCPU's bare trap.
	staleStep map[int]bool
	trapped   bool
	intTimer  *time.Timer   // gives up on an unanswered ^C
	delivered chan struct{} // closed when the run's stop is delivered
	lastVCPU  int
	exitCode  int
}

var _ vmm.Target = (*Target)(nil)

func hexLE(v uint64, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b)
}

func (t *Target) regNamed(name string) (rsp.Reg, bool) {
	for _, r := range t.layout() {
		if r.Name == name {
			return r, true
		}
	}
	return rsp.Reg{}, false
}

// linearPC turns a stop's instruction pointer into the linear address of
// the next instruction, as vmm.Stop wants it: QEMU reports IP, and in real
// mode the instruction is at CS.base + IP (its breakpoints are by linear
// address). Elsewhere it is ip (flat code segments).
func (t *Target) linearPC(vcpu int, ip uint64) uint64 {
	b, err := t.readBlock(vcpu)
	if err != nil {
		return ip
	}
	if _, s := t.decode(b); s.CR0&x86.CR0PE != 0 {
		return ip
	}
	s, err := t.sregsLocked(vcpu)
	if err != nil {
		return ip
	}
	return x86.CodeAddr(ip, s)
}

// pcOf returns the linear address of vcpu's next instruction (read from
// its registers), as breakpoints and stops know it.
func (t *Target) pcOf(vcpu int) uint64 { return t.linearPC(vcpu, t.ipOf(vcpu)) }

// ipOf returns vcpu's instruction pointer register as the stub has it.
func (t *Target) ipOf(vcpu int) uint64 {
	b, err := t.readBlock(vcpu)
	if err != nil {
		return 0
	}
	if reg, ok := t.regNamed("rip"); ok {
		if v, ok := b.get(reg); ok {
			return v
		}
	}
	r, _ := t.decode(b)
	return r.RIP
}

// Capabilities implements vmm.Target: the packets behind each mechanism,
// and what the stub lacks.
func (t *Target) Capabilities() vmm.Capabilities {
	_, regs := t.RegisterWriter()
	host := t.cfg.Host
	if host == "" {
		host = t.stubName + " GDB stub at " + t.cfg.Addr
	}
	c := vmm.Capabilities{
		Backend: "gdbremote", Host: host,
		SWBreakpointMethod: "int3 written with M", HWResumeMethod: "z, step, Z", StepMethod: "s",
	}
	if t.z[0] {
		c.SWBreakpointMethod = "Z0"
		if t.z0Unmapped {
			c.SWBreakpointMethod = "Z0, also at addresses not mapped yet"
		}
	}
	if t.cfg.NoSWBreakpoints {
		c.SWBreakpointMethod = "none (int3 is fatal under this hypervisor)"
	}
	if t.vCont {
		c.StepMethod = "vCont;s"
	}
	if kinds := t.WatchKinds(); kinds[0].Kind == vmm.WatchSoftware {
		c.Notes = append(c.Notes, "the stub has no watchpoints: vmdap emulates write watchpoints by single-stepping and comparing (slow; only the vCPU that last stopped runs meanwhile, the others are held)")
	}
	if !regs {
		c.Notes = append(c.Notes, "the stub cannot write registers (no G or P packet)")
	}
	return c
}

// VCPUs implements vmm.Target.
func (t *Target) VCPUs() int { return len(t.threads) }

// stoppedLocked says whether the guest's state can be read or changed.
func (t *Target) stoppedLocked() error {
	switch t.state {
	case running:
		return vmm.ErrNotStopped
	case closed:
		return vmm.ErrClosed
	case exited:
		if err := t.c.Err(); err != nil {
			return fmt.Errorf("%w: %w", vmm.ErrExited, err)
		}
	}
	return nil
}

// Regs implements vmm.Target.
func (t *Target) Regs(vcpu int) (x86.Regs, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return x86.Regs{}, err
	}
	b, err := t.readBlock(vcpu)
	if err != nil {
		return x86.Regs{}, err
	}
	r, _ := t.decode(b)
	return r, nil
}

// SRegs implements vmm.Target.
func (t *Target) SRegs(vcpu int) (x86.SRegs, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return x86.SRegs{}, err
	}
	return t.sregsLocked(vcpu)
}

// sregsLocked reads vCPU vcpu's special registers (t.mu held, stopped).
func (t *Target) sregsLocked(vcpu int) (x86.SRegs, error) {
	b, err := t.readBlock(vcpu)
	if err != nil {
		return x86.SRegs{}, err
	}
	_, s := t.decode(b)
	if s.CR0&x86.CR0PE == 0 && t.desc != nil {
		// Real mode: the caches the monitor reports (a reset's CS base is
		// not the selector's), once per stop.
		if b.segs == nil {
			m := s
			if !t.monitorSegments(vcpu, &m) {
				m = s
			}
			b.segs = &m
		}
		m := b.segs
		s.CS, s.DS, s.ES, s.FS, s.GS, s.SS = m.CS, m.DS, m.ES, m.FS, m.GS, m.SS
		s.TR, s.LDT, s.GDT, s.IDT = m.TR, m.LDT, m.GDT, m.IDT
	}
	return s, nil
}

// SetRegs implements vmm.RegisterWriter.
func (t *Target) SetRegs(vcpu int, r x86.Regs) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.writeRegs(vcpu, &r, nil)
}

// SetSRegs implements vmm.RegisterWriter.
func (t *Target) SetSRegs(vcpu int, s x86.SRegs) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.writeRegs(vcpu, nil, &s)
}

func (t *Target) writeRegs(vcpu int, r *x86.Regs, s *x86.SRegs) error {
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	b, err := t.readBlock(vcpu)
	if err != nil {
		return err
	}
	cr, cs := t.decode(b)
	if r == nil {
		r = &cr
	}
	if s == nil {
		s = &cs
	}
	nb := &regBlock{raw: append([]byte(nil), b.raw...)}
	t.encode(nb, r, s)
	if err := t.selectThread('g', vcpu); err != nil {
		return err
	}
	switch {
	case t.pWrite:
		for _, reg := range t.layout() {
			ov, _ := b.get(reg)
			nv, ok := nb.get(reg)
			if !ok || ov == nv {
				continue
			}
			if _, err := t.x("writing a register", fmt.Sprintf("P%x=%s", reg.Num, hexLE(nv, reg.Bits/8))); err != nil {
				return err
			}
		}
	case t.gWrite:
		if _, err := t.x("writing registers", "G"+hex.EncodeToString(nb.raw)); err != nil {
			if rsp.Unsupported(err) {
				t.gWrite = false
				return fmt.Errorf("the %s stub cannot write registers (it has neither G nor P): %w", t.stubName, vmm.ErrUnsupported)
			}
			return err
		}
	default:
		return fmt.Errorf("the %s stub cannot write registers (it has neither G nor P): %w", t.stubName, vmm.ErrUnsupported)
	}
	t.cache[vcpu] = nb
	return nil
}

// Optional capabilities.

func (t *Target) Stepper() (vmm.Stepper, bool)             { return t, true }
func (t *Target) SWBreakpoints() (vmm.Breakpoints, bool)   { return t, !t.cfg.NoSWBreakpoints }
func (t *Target) HWBreakpoints() (vmm.HWBreakpoints, bool) { return t, t.z[1] }
func (t *Target) Watchpoints() (vmm.Watchpoints, bool)     { return t, true }
func (t *Target) RegisterWriter() (vmm.RegisterWriter, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t, t.gWrite || t.pWrite
}
func (t *Target) DebugRegisters() (vmm.DebugRegisters, bool) { return nil, false }

// Slots implements vmm.HWBreakpoints.
func (t *Target) Slots() int { return 4 }
