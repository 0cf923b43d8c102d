package gdbremote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"vmdap/vmm"
	"vmdap/vmm/gdbremote/rsp"
)

// What a stub may send during the handshake. Beyond these it is not a
// stub vmdap can debug with, and attaching fails with the reason rather
// than growing without end (a qXfer answered "m…" for ever, an endless
// qfThreadInfo).
const (
	// DefaultHandshakeTimeout bounds Attach from connect to a probed target.
	DefaultHandshakeTimeout = 20 * time.Second
	// maxDescBytes bounds a target description with all its includes
	// (QEMU's x86-64 one is 8 KiB).
	maxDescBytes = 1 << 20
	// maxDescDocs bounds the documents of a target description.
	maxDescDocs = 32
	// maxThreads bounds the vCPUs of a stub (QEMU's x86 maximum is 1024).
	maxThreads = 4096
	// maxPacketSize bounds the PacketSize vmdap asks replies to fit.
	maxPacketSize = 16 << 10
)

// errHandshake is the cause of an attach that ran out of time.
var errHandshake = errors.New("the GDB stub did not complete the attach handshake in time")

// Attach connects to a stub, probes what it can do and leaves the guest
// stopped. The whole handshake is bounded by cfg.HandshakeTimeout.
func Attach(ctx context.Context, cfg Config) (*Target, error) {
	d := cfg.HandshakeTimeout
	if d <= 0 {
		d = DefaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d, fmt.Errorf("%w (%s)", errHandshake, d))
	defer cancel()
	c, err := rsp.Dial(ctx, cfg.Addr, cfg.Log)
	if err != nil {
		return nil, err
	}
	t, err := attachConn(ctx, c, cfg)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("attaching to the GDB stub at %s: %w", cfg.Addr, err)
	}
	return t, nil
}

func attachConn(ctx context.Context, c *rsp.Conn, cfg Config) (*Target, error) {
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	t := &Target{c: c, log: log.WithField("layer", "gdbremote"), cfg: cfg, curThread: map[byte]string{},
		cache: map[int]*regBlock{}, mem: map[memLine][]byte{}, sw: map[uint64]*swbp{}, hw: map[uint64]bool{},
		stops: make(chan vmm.Stop, 4), stepping: -1, opCtx: ctx, ended: make(chan struct{}), closing: make(chan struct{})}
	if cfg.Serial != nil {
		c.SetOutput(func(s string) { io.WriteString(cfg.Serial, s) })
	}
	r, err := t.x("qSupported", "qSupported:swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386")
	// QEMU stops a running guest when a debugger connects and says so
	// unasked ("T02thread:01;", before any reply): that is not the answer.
	for n := 0; err == nil && isStopReply(r) && n < 4; n++ {
		rctx, cancel := context.WithTimeout(ctx, c.Timeout)
		r, err = c.Recv(rctx)
		cancel()
	}
	if errors.Is(err, rsp.ErrNoReply) {
		return nil, fmt.Errorf("the stub did not answer qSupported: %w (is another debugger attached to it? QEMU's stub serves one at a time)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("the stub did not answer qSupported: %w", err)
	}
	t.feat = rsp.ParseFeatures(r)
	t.pktSize = min(t.feat.PacketSize(), maxPacketSize)
	if t.noAck, err = c.StartNoAck(ctx); err != nil {
		return nil, err
	}
	if t.feat.Has("qXfer:features:read") {
		d, err := t.readTargetDesc()
		switch {
		case err == nil:
			t.desc = d
		case c.Err() != nil || ctx.Err() != nil:
			return nil, err
		default:
			t.log.WithError(err).Warn("target description unusable; using the x86-64 core layout")
		}
	}
	if _, err := t.x("initial stop", "?"); err != nil {
		return nil, err
	}
	if err := t.listThreads(); err != nil {
		return nil, err
	}
	if err := t.probe(); err != nil {
		return nil, err
	}
	t.opCtx = context.Background()
	if l := cfg.launched; l != nil {
		t.onExit, t.onClose, t.onRelease = l.exit, l.stop, l.release
	}
	t.log.WithFields(logrus.Fields{"stub": t.stubName, "threads": len(t.threads), "vCont": t.vCont, "G": t.gWrite,
		"Z0": t.z[0], "Z0unmapped": t.z0Unmapped, "physical": t.phyMem, "Z1": t.z[1], "Z2": t.z[2], "Z3": t.z[3], "Z4": t.z[4],
		"noack": t.noAck}).Info("attached to GDB stub")
	go t.lifeline()
	return t, nil
}

// isStopReply says whether a packet is a stop reply (no qSupported reply
// looks like one: feature names are not a letter and two hex digits).
func isStopReply(p string) bool {
	_, err := rsp.ParseStopReply(p)
	return err == nil && (p[0] == 'T' || p[0] == 'S') && (len(p) == 3 || p[0] == 'T')
}

// x exchanges one packet, bounded by the handshake while attaching.
func (t *Target) x(ctxName, pkt string) (string, error) {
	return t.c.ExchangeContext(t.opCtx, ctxName, pkt)
}

func (t *Target) readTargetDesc() (*rsp.TargetDesc, error) {
	total, docs := 0, 0
	fetch := func(name string) ([]byte, error) {
		if docs++; docs > maxDescDocs {
			return nil, fmt.Errorf("the target description has more than %d documents", maxDescDocs)
		}
		if name == "" || len(name) > 128 || strings.ContainsAny(name, ":,#$*}") {
			return nil, fmt.Errorf("the target description names a document %q that cannot be asked for", name)
		}
		var out []byte
		for off := 0; ; {
			r, err := t.x("reading the target description", fmt.Sprintf("qXfer:features:read:%s:%x,%x", name, off, t.pktSize-16))
			if err != nil {
				return nil, err
			}
			if r[0] != 'm' && r[0] != 'l' {
				return nil, fmt.Errorf("bad qXfer reply %q", trunc(r))
			}
			data := r[1:]
			if r[0] == 'm' && len(data) == 0 {
				return nil, fmt.Errorf("the stub answered qXfer for %s at offset %#x with more to come but no data", name, off)
			}
			if total += len(data); total > maxDescBytes {
				return nil, fmt.Errorf("the target description is larger than %d bytes", maxDescBytes)
			}
			out = append(out, data...)
			off += len(data)
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

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func (t *Target) listThreads() error {
	t.threads = nil
	seen := map[string]bool{}
	r, err := t.x("listing threads", "qfThreadInfo")
	for replies := 1; err == nil; replies++ {
		ids, more, perr := rsp.ParseThreadList(r)
		if perr != nil {
			return perr
		}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				t.threads = append(t.threads, id)
			}
		}
		if len(t.threads) > maxThreads || replies > maxThreads {
			return fmt.Errorf("the stub lists more than %d threads (vCPUs)", maxThreads)
		}
		if !more {
			break
		}
		r, err = t.x("listing threads", "qsThreadInfo")
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
func (t *Target) probe() error {
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
	alive := func(err error) error {
		if err != nil && (t.c.Err() != nil || t.opCtx.Err() != nil) {
			return err
		}
		return nil
	}
	// QEMU's stub (it alone answers qqemu.sstepbits) reads its input in
	// order and answers each packet before it looks at the next, so a
	// breakpoint change and the resume after it can share a write (one
	// round trip less per breakpoint hit); and in system mode it never
	// waits for an ack (its next request ends the wait), so vmdap sends
	// none (a write here and a wakeup of its main loop there, per packet).
	r, err := t.x("probing for QEMU", "qqemu.sstepbits")
	if err == nil && strings.HasPrefix(r, "ENABLE=") {
		t.pipeline = true
		t.c.SkipAcks()
		t.stPhysical = true
	}
	if err := alive(err); err != nil {
		return err
	}
	// Physical memory: QEMU's stub answers its current mode (0; since
	// QEMU 4.1). First, before anything reads memory: a client before
	// vmdap may have left the mode on, and vmdap's reads are virtual.
	if t.pipeline {
		r, err = t.x("probing physical memory", "qqemu.PhyMemMode")
		t.phyMem = err == nil && (r == "0" || r == "1")
		if t.phyMem && r == "1" {
			_, err = t.x("probing physical memory", "Qqemu.PhyMemMode:0")
			t.phyMem = err == nil
		}
		if err := alive(err); err != nil {
			return err
		}
	}
	r, err = t.x("probing vCont", "vCont?")
	if err == nil && strings.Contains(r, ";s") && strings.Contains(r, ";c") {
		t.vCont = true
	}
	if err := alive(err); err != nil {
		return err
	}
	b, err := t.readBlock(0)
	if err := alive(err); err != nil {
		return err
	}
	// Register writes: P for just the registers that change (writing a
	// whole G block makes QEMU reload segment registers from their
	// selectors, which corrupts hidden state, e.g. CS at the reset
	// vector). Probe P by writing RIP's own value back; G is then only a
	// fallback, found out on first use. bhyve has neither.
	if pcReg, ok := t.regNamed("rip"); ok && b != nil {
		_, err := t.x("probing P", fmt.Sprintf("P%x=%s", pcReg.Num, hexLE(t.ipOf(0), pcReg.Bits/8)))
		t.pWrite = err == nil
		if err := alive(err); err != nil {
			return err
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
		_, err := t.x("probing breakpoints", fmt.Sprintf("Z%d,%x,%d", typ, addr, kind))
		if err == nil {
			t.z[typ] = true
			if typ == 0 {
				t.z0Patches = t.probeZ0Patches(pc)
			}
			_, err = t.x("probing breakpoints", fmt.Sprintf("z%d,%x,%d", typ, addr, kind))
		}
		if err := alive(err); err != nil {
			return err
		}
	}
	if t.z[0] {
		t.z0Unmapped = t.probeZ0Unmapped()
	}
	return alive(t.c.Err())
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
		if _, err := t.x("probing breakpoints", fmt.Sprintf("Z0,%x,1", a)); err != nil {
			return false
		}
		t.x("probing breakpoints", fmt.Sprintf("z0,%x,1", a))
		return true
	}
	return false
}
