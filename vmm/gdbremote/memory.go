package gdbremote

import (
	"encoding/hex"
	"errors"
	"fmt"

	"vmdap/vmm"
	"vmdap/vmm/gdbremote/rsp"
)

// Guest memory over 'm' and 'M'.
//
// Small reads (an instruction, a stack slot) are served from 64-byte
// lines read once per stop: a debugger reads the same bytes several times
// at a stop (the instruction at pc to decide how to step, then again to
// show it; neighbouring stack slots while unwinding), and each 'm' is a
// round trip. The lines are forgotten when the guest runs and when
// anything is written.

// ReadMemory implements vmm.Target.
func (t *Target) ReadMemory(vcpu int, p []byte, addr uint64) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return 0, err
	}
	if vcpu < 0 || vcpu >= len(t.threads) {
		return 0, fmt.Errorf("%w: %d", vmm.ErrNoVCPU, vcpu)
	}
	var n int
	var err error
	if len(p) <= lineSize && addr+uint64(len(p)) >= addr {
		n, err = t.readCached(vcpu, p, addr)
	} else {
		if err = t.selectThread('g', vcpu); err == nil {
			n, err = t.readMem(p, addr)
		}
	}
	// Hide our own breakpoint bytes.
	for a, bp := range t.sw {
		if bp.shadow && a >= addr && a < addr+uint64(n) {
			p[a-addr] = bp.orig
		}
	}
	return n, err
}

// readCached reads a small range through the stop's memory lines.
func (t *Target) readCached(vcpu int, p []byte, addr uint64) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		k := memLine{vcpu, a &^ (lineSize - 1)}
		line, ok := t.mem[k]
		if !ok {
			if err := t.selectThread('g', vcpu); err != nil {
				return n, err
			}
			buf := make([]byte, lineSize)
			m, err := t.readMem(buf, k.addr)
			line = buf[:m]
			if err == nil {
				t.mem[k] = line
			}
		}
		off := int(a - k.addr)
		if off >= len(line) {
			// The line ends before a (a fault inside it): read exactly
			// what was asked for, for the precise fault address.
			m, err := t.readMem(p[n:], a)
			return n + m, err
		}
		n += copy(p[n:], line[off:])
	}
	return n, nil
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
		r, err := t.x("reading memory", fmt.Sprintf("m%x,%x", a, c))
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
		if len(b) > c {
			b = b[:c]
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
	clear(t.mem)
	n := 0
	for n < len(p) {
		c := min(len(p)-n, t.chunk())
		a := addr + uint64(n)
		if _, err := t.x("writing memory", fmt.Sprintf("M%x,%x:%s", a, c, hex.EncodeToString(p[n:n+c]))); err != nil {
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
