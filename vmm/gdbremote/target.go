package gdbremote

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

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
}

type runState uint8

const (
	stopped runState = iota
	running
	exited
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

// Target is a vmm.Target over a GDB stub.
type Target struct {
	c    *rsp.Conn
	log  logrus.FieldLogger
	cfg  Config
	feat rsp.Features
	desc *rsp.TargetDesc

	threads   []string
	curThread map[byte]string
	cache     map[int]*regBlock

	// probed quirks
	vCont     bool
	gWrite    bool
	pWrite    bool
	z         [5]bool
	pktSize   int
	noAck     bool
	stubName  string
	noMonitor bool // the stub has no monitor command (qRcmd)

	// z0Unmapped: Z0 takes a virtual address no page maps yet (QEMU TCG
	// checks breakpoints by address at translation time); z0Patches: Z0
	// writes an int3 into guest memory (QEMU-KVM), which reads then show.
	z0Unmapped, z0Patches bool

	mu        sync.Mutex
	state     runState
	sw        map[uint64]*swbp
	hw        map[uint64]bool
	watches   []vmm.Watch
	soft      []*softWatch
	stops     chan vmm.Stop
	closed    chan struct{} // closed by Close: ends a Wait whose stop will never come
	stepping  int           // vCPU being stepped, or -1
	interrupt bool
	// softStepping: softRun has a step in flight (a Pause interrupts it).
	softStepping bool
	lastVCPU     int
	exitCode     int
	onExit       func() (int, bool) // exit status of a launched hypervisor
	onClose      func()
}

var _ vmm.Target = (*Target)(nil)

// Attach connects to a stub, probes what it can do and leaves the guest
// stopped.
func Attach(ctx context.Context, cfg Config) (*Target, error) {
	c, err := rsp.Dial(ctx, cfg.Addr, cfg.Log)
	if err != nil {
		return nil, err
	}
	t, err := attachConn(c, cfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	return t, nil
}

func attachConn(c *rsp.Conn, cfg Config) (*Target, error) {
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	t := &Target{c: c, log: log.WithField("layer", "gdbremote"), cfg: cfg, curThread: map[byte]string{},
		cache: map[int]*regBlock{}, sw: map[uint64]*swbp{}, hw: map[uint64]bool{}, stops: make(chan vmm.Stop, 4), closed: make(chan struct{}), stepping: -1}
	if cfg.Serial != nil {
		c.Output = func(s string) { io.WriteString(cfg.Serial, s) }
	}
	r, err := c.Exchange("qSupported", "qSupported:swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386")
	if err != nil {
		return nil, fmt.Errorf("the GDB stub did not answer qSupported: %w", err)
	}
	t.feat = rsp.ParseFeatures(r)
	t.pktSize = t.feat.PacketSize()
	t.noAck = c.StartNoAck()
	if t.feat.Has("qXfer:features:read") {
		if d, err := t.readTargetDesc(); err == nil {
			t.desc = d
		} else {
			t.log.WithError(err).Warn("target description unusable; using the x86-64 core layout")
		}
	}
	if _, err := c.Exchange("initial stop", "?"); err != nil {
		return nil, err
	}
	if err := t.listThreads(); err != nil {
		return nil, err
	}
	t.probe()
	t.log.WithFields(logrus.Fields{"stub": t.stubName, "threads": len(t.threads), "vCont": t.vCont, "G": t.gWrite,
		"Z0": t.z[0], "Z0unmapped": t.z0Unmapped, "Z1": t.z[1], "Z2": t.z[2], "Z3": t.z[3], "Z4": t.z[4],
		"noack": t.noAck}).Info("attached to GDB stub")
	return t, nil
}

func (t *Target) readTargetDesc() (*rsp.TargetDesc, error) {
	fetch := func(name string) ([]byte, error) {
		var out []byte
		for off := 0; ; {
			r, err := t.c.Exchange("reading the target description", fmt.Sprintf("qXfer:features:read:%s:%x,%x", name, off, t.pktSize-16))
			if err != nil {
				return nil, err
			}
			if r == "" || (r[0] != 'm' && r[0] != 'l') {
				return nil, fmt.Errorf("bad qXfer reply %q", r)
			}
			out = append(out, r[1:]...)
			off += len(r) - 1
			if r[0] == 'l' {
				return out, nil
			}
		}
	}
	doc, err := fetch("target.xml")
	if err != nil {
		return nil, err
	}
	return rsp.ParseTargetDesc(doc, fetch)
}

func (t *Target) listThreads() error {
	t.threads = nil
	r, err := t.c.Exchange("listing threads", "qfThreadInfo")
	for err == nil {
		ids, more, perr := rsp.ParseThreadList(r)
		if perr != nil {
			return perr
		}
		t.threads = append(t.threads, ids...)
		if !more {
			break
		}
		r, err = t.c.Exchange("listing threads", "qsThreadInfo")
	}
	if err != nil && !rsp.Unsupported(err) {
		return err
	}
	if len(t.threads) == 0 {
		t.threads = []string{"1"}
	}
	return nil
}

// probe finds out which packets the stub really implements, with trial
// packets that leave the guest as it was.
func (t *Target) probe() {
	stub := t.cfg.Stub
	if stub == "" || stub == "auto" {
		stub = "gdb"
		if t.desc != nil && strings.Contains(t.desc.Arch, "i386") && t.feat.Has("vContSupported") {
			stub = "qemu"
		} else if !t.feat.Has("vContSupported") && t.feat.Has("swbreak") {
			stub = "bhyve"
		}
	}
	t.stubName = stub
	if r, err := t.c.Exchange("probing vCont", "vCont?"); err == nil && strings.Contains(r, ";s") && strings.Contains(r, ";c") {
		t.vCont = true
	}
	b, _ := t.readBlock(0)
	// Register writes: P for just the registers that change (writing a
	// whole G block makes QEMU reload segment registers from their
	// selectors, which corrupts hidden state, e.g. CS at the reset
	// vector). Probe P by writing RIP's own value back; G is then only a
	// fallback, found out on first use. bhyve has neither.
	if pcReg, ok := t.regNamed("rip"); ok {
		if _, err := t.c.Exchange("probing P", fmt.Sprintf("P%x=%s", pcReg.Num, hexLE(t.pcOf(0), pcReg.Bits/8))); err == nil {
			t.pWrite = true
		}
	}
	t.gWrite = !t.pWrite && stub != "bhyve"
	pc := t.pcOf(0)
	var sp uint64
	if b != nil {
		r, _ := t.decode(b)
		sp = r.RSP
	}
	for typ := 0; typ <= 4; typ++ {
		if (typ == 0 && t.cfg.NoSWBreakpoints) || (typ >= 2 && t.cfg.NoStubWatchpoints) {
			continue
		}
		addr, kind := pc, 1
		if typ >= 2 {
			addr, kind = sp&^7, 8
		}
		if _, err := t.c.Exchange("probing breakpoints", fmt.Sprintf("Z%d,%x,%d", typ, addr, kind)); err == nil {
			t.z[typ] = true
			if typ == 0 {
				t.z0Patches = t.probeZ0Patches(pc)
			}
			t.c.Exchange("probing breakpoints", fmt.Sprintf("z%d,%x,%d", typ, addr, kind))
		}
	}
	if t.z[0] {
		t.z0Unmapped = t.probeZ0Unmapped()
	}
}

// probeZ0Patches says, with the probe's Z0 at pc in place, whether guest
// memory now holds an int3 there. Unknown (pc unreadable, or an int3 there
// already) counts as yes: the guest's byte is then shadowed, as for an
// int3 written with M.
func (t *Target) probeZ0Patches(pc uint64) bool {
	var b [1]byte
	if n, err := t.readMem(b[:], pc); err != nil || n != 1 || b[0] == 0xcc {
		return true
	}
	return false
}

// unmappedProbes are canonical addresses no small guest maps and a Linux
// guest leaves unmapped (the top page; the bottom of the kernel half;
// high in the user half): Z0 is tried at the first one the stub cannot
// read.
var unmappedProbes = []uint64{0xfffffffffffff000, 0xffff800000000000, 0x00007ffffffff000}

// probeZ0Unmapped finds out whether the stub accepts Z0 at a virtual
// address it cannot read (not mapped now), as QEMU TCG does: a breakpoint
// on a kernel's high addresses can then be placed at reset, before the
// kernel maps itself. Stubs that write an int3 (QEMU-KVM) or translate at
// once (bhyve) refuse it.
func (t *Target) probeZ0Unmapped() bool {
	for _, a := range unmappedProbes {
		var b [1]byte
		if _, err := t.readMem(b[:], a); err == nil {
			continue // mapped here: not a probe
		}
		if _, err := t.c.Exchange("probing breakpoints", fmt.Sprintf("Z0,%x,1", a)); err != nil {
			return false
		}
		t.c.Exchange("probing breakpoints", fmt.Sprintf("z0,%x,1", a))
		return true
	}
	return false
}

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

func (t *Target) pcOf(vcpu int) uint64 {
	b, err := t.readBlock(vcpu)
	if err != nil {
		return 0
	}
	r, _ := t.decode(b)
	return r.RIP
}

// Capabilities implements vmm.Target.
func (t *Target) Capabilities() vmm.Capabilities {
	host := t.cfg.Host
	if host == "" {
		host = t.stubName + " GDB stub at " + t.cfg.Addr
	}
	c := vmm.Capabilities{
		Backend: "gdbremote", Host: host,
		SWBreakpoints: true, SWBreakpointMethod: "int3 written with M", HWResumeMethod: "z, step, Z",
		SingleStep: true, StepMethod: "s", RegisterWrite: t.gWrite || t.pWrite, Pause: true,
	}
	if t.z[0] {
		c.SWBreakpointMethod = "Z0"
		if t.z0Unmapped {
			c.SWBreakpointMethod = "Z0, also at addresses not mapped yet"
		}
	}
	if t.cfg.NoSWBreakpoints {
		c.SWBreakpoints = false
		c.SWBreakpointMethod = "none (int3 is fatal under this hypervisor)"
	}
	if t.z[1] {
		c.HWBreakpointSlots = 4
	}
	if t.vCont {
		c.StepMethod = "vCont;s"
	}
	c.StubWatchpoints = t.z[2] || t.z[4]
	c.ReadWatchpoints = t.z[3]
	if !c.StubWatchpoints {
		c.Notes = append(c.Notes, "the stub has no watchpoints: vmdap emulates write watchpoints by single-stepping and comparing (slow)")
	}
	if !c.RegisterWrite {
		c.Notes = append(c.Notes, "the stub cannot write registers (no G or P packet)")
	}
	return c
}

// VCPUs implements vmm.Target.
func (t *Target) VCPUs() int { return len(t.threads) }

func (t *Target) stoppedLocked() error {
	switch t.state {
	case running:
		return vmm.ErrNotStopped
	case closed:
		return vmm.ErrClosed
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
			if _, err := t.c.Exchange("writing a register", fmt.Sprintf("P%x=%s", reg.Num, hexLE(nv, reg.Bits/8))); err != nil {
				return err
			}
		}
	case t.gWrite:
		if _, err := t.c.Exchange("writing registers", "G"+hex.EncodeToString(nb.raw)); err != nil {
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

// ReadMemory implements vmm.Target.
func (t *Target) ReadMemory(vcpu int, p []byte, addr uint64) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return 0, err
	}
	if err := t.selectThread('g', vcpu); err != nil {
		return 0, err
	}
	n, err := t.readMem(p, addr)
	// Hide our own breakpoint bytes.
	for a, bp := range t.sw {
		if bp.shadow && a >= addr && a < addr+uint64(n) {
			p[a-addr] = bp.orig
		}
	}
	return n, err
}

func (t *Target) chunk() int {
	c := (t.pktSize - 32) / 2
	if c > 2048 {
		c = 2048
	}
	if c < 16 {
		c = 16
	}
	return c
}

func (t *Target) readMem(p []byte, addr uint64) (int, error) {
	n := 0
	for n < len(p) {
		c := min(len(p)-n, t.chunk())
		// do not cross a page in one request: a fault ends at a page
		if pg := 4096 - int((addr+uint64(n))&4095); c > pg {
			c = pg
		}
		a := addr + uint64(n)
		r, err := t.c.Exchange("reading memory", fmt.Sprintf("m%x,%x", a, c))
		if err != nil {
			var pe *rsp.ProtocolError
			if errors.As(err, &pe) {
				return n, &vmm.FaultError{Addr: a, Reason: "the stub cannot read it (" + pe.Error() + ")"}
			}
			return n, err
		}
		b, err := rsp.HexBytes(r)
		if err != nil {
			return n, err
		}
		copy(p[n:], b)
		n += len(b)
		if len(b) < c {
			return n, &vmm.FaultError{Addr: addr + uint64(n), Reason: "the stub returned fewer bytes"}
		}
	}
	return n, nil
}

// WriteMemory implements vmm.Target. Bytes over our own software
// breakpoints that are in guest memory update the saved originals, and
// the int3 stays.
func (t *Target) WriteMemory(vcpu int, p []byte, addr uint64) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return 0, err
	}
	if err := t.selectThread('g', vcpu); err != nil {
		return 0, err
	}
	data := append([]byte(nil), p...)
	for a, bp := range t.sw {
		if bp.shadow && a >= addr && a < addr+uint64(len(p)) {
			bp.orig = p[a-addr]
			data[a-addr] = 0xcc
		}
	}
	return t.writeMem(data, addr)
}

func (t *Target) writeMem(p []byte, addr uint64) (int, error) {
	n := 0
	for n < len(p) {
		c := min(len(p)-n, t.chunk())
		a := addr + uint64(n)
		if _, err := t.c.Exchange("writing memory", fmt.Sprintf("M%x,%x:%s", a, c, hex.EncodeToString(p[n:n+c]))); err != nil {
			var pe *rsp.ProtocolError
			if errors.As(err, &pe) {
				return n, &vmm.FaultError{Addr: a, Write: true, Reason: pe.Error()}
			}
			return n, err
		}
		n += c
	}
	return n, nil
}

// Optional capabilities.

func (t *Target) Stepper() (vmm.Stepper, bool)             { return t, true }
func (t *Target) SWBreakpoints() (vmm.Breakpoints, bool)   { return t, !t.cfg.NoSWBreakpoints }
func (t *Target) HWBreakpoints() (vmm.HWBreakpoints, bool) { return t, t.z[1] }
func (t *Target) Watchpoints() (vmm.Watchpoints, bool)     { return t, true }
func (t *Target) RegisterWriter() (vmm.RegisterWriter, bool) {
	return t, t.gWrite || t.pWrite
}
func (t *Target) DebugRegisters() (vmm.DebugRegisters, bool) { return nil, false }
func (t *Target) PhysicalMemory() (vmm.PhysicalMemory, bool) { return nil, false }

// Slots implements vmm.HWBreakpoints.
func (t *Target) Slots() int { return 4 }
