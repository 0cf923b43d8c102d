package gdbremote

import (
	"errors"
	"fmt"

	"vmdap/vmm"
	"vmdap/vmm/gdbremote/rsp"
)

// softWatch is a write watchpoint emulated by stepping and comparing.
type softWatch struct {
	w    vmm.Watch
	last []byte
}

// InsertBreakpoint implements vmm.Breakpoints: Z0 where the stub has it,
// else an int3 written with M (the original byte kept for reads). An
// address the stub cannot read takes a Z0 where the stub accepts one
// there (QEMU TCG: probed at attach), and is a *vmm.FaultError otherwise.
func (t *Target) InsertBreakpoint(addr uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	if t.sw[addr] != nil {
		return fmt.Errorf("%w at %#x", vmm.ErrBreakpointExists, addr)
	}
	var orig [1]byte
	_, rerr := t.readMem(orig[:], addr)
	if rerr != nil && !(t.z[0] && t.z0Unmapped) {
		return rerr
	}
	bp := &swbp{orig: orig[0], shadow: rerr == nil, viaZ0: t.z[0]}
	if bp.viaZ0 {
		bp.shadow = bp.shadow && t.z0Patches
	}
	if err := t.plantSW(addr, bp); err != nil {
		if rerr != nil {
			return rerr
		}
		return err
	}
	t.sw[addr] = bp
	return nil
}

// RemoveBreakpoint implements vmm.Breakpoints.
func (t *Target) RemoveBreakpoint(addr uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	bp := t.sw[addr]
	if bp == nil {
		return fmt.Errorf("no software breakpoint at %#x", addr)
	}
	delete(t.sw, addr)
	_, err := t.x("removing a breakpoint", liftPacket(addr, bp))
	clear(t.mem)
	return err
}

// liftPacket takes a software breakpoint out: z0, or its original byte
// written back.
func liftPacket(addr uint64, bp *swbp) string {
	if bp.viaZ0 {
		return fmt.Sprintf("z0,%x,1", addr)
	}
	return fmt.Sprintf("M%x,1:%02x", addr, bp.orig)
}

// plantPacket puts a software breakpoint in: Z0, or an int3 written.
func plantPacket(addr uint64, bp *swbp) string {
	if bp.viaZ0 {
		return fmt.Sprintf("Z0,%x,1", addr)
	}
	return fmt.Sprintf("M%x,1:cc", addr)
}

func (t *Target) plantSW(addr uint64, bp *swbp) error {
	_, err := t.x("inserting a breakpoint", plantPacket(addr, bp))
	clear(t.mem)
	return err
}

// InsertHWBreakpoint implements vmm.HWBreakpoints (Z1).
func (t *Target) InsertHWBreakpoint(addr uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	if !t.z[1] {
		return fmt.Errorf("hardware breakpoints: %w by the %s stub", vmm.ErrUnsupported, t.stubName)
	}
	if t.hw[addr] {
		return fmt.Errorf("%w at %#x", vmm.ErrBreakpointExists, addr)
	}
	if _, err := t.x("inserting a hardware breakpoint", fmt.Sprintf("Z1,%x,1", addr)); err != nil {
		var pe *rsp.ProtocolError
		if errors.As(err, &pe) && pe.Code != "" {
			return vmm.ErrNoSlots // QEMU-KVM answers ENOSPC/ENOBUFS when DR0-DR3 are full
		}
		return err
	}
	t.hw[addr] = true
	return nil
}

// RemoveHWBreakpoint implements vmm.HWBreakpoints.
func (t *Target) RemoveHWBreakpoint(addr uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	delete(t.hw, addr)
	_, err := t.x("removing a hardware breakpoint", fmt.Sprintf("z1,%x,1", addr))
	return err
}

// WatchKinds implements vmm.Watchpoints.
func (t *Target) WatchKinds() []vmm.WatchSupport {
	var acc []vmm.Access
	if t.z[2] {
		acc = append(acc, vmm.AccessWrite)
	}
	if t.z[3] {
		acc = append(acc, vmm.AccessRead)
	}
	if t.z[4] {
		acc = append(acc, vmm.AccessReadWrite)
	}
	if len(acc) > 0 {
		return []vmm.WatchSupport{{Kind: vmm.WatchStub, Accesses: acc}}
	}
	return []vmm.WatchSupport{{Kind: vmm.WatchSoftware, Accesses: []vmm.Access{vmm.AccessWrite}, MaxLen: 4096}}
}

func zType(a vmm.Access) int {
	switch a {
	case vmm.AccessWrite:
		return 2
	case vmm.AccessRead:
		return 3
	}
	return 4
}

// InsertWatchpoint implements vmm.Watchpoints.
func (t *Target) InsertWatchpoint(w vmm.Watch) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	switch w.Kind {
	case vmm.WatchStub:
		z := zType(w.Access)
		if !t.z[z] {
			return fmt.Errorf("%s watchpoints: %w by the %s stub", w.Access, vmm.ErrUnsupported, t.stubName)
		}
		if _, err := t.x("inserting a watchpoint", fmt.Sprintf("Z%d,%x,%x", z, w.Addr, w.Len)); err != nil {
			var pe *rsp.ProtocolError
			if errors.As(err, &pe) && pe.Code != "" {
				return fmt.Errorf("%w (the stub answered E%s)", vmm.ErrNoSlots, pe.Code)
			}
			return err
		}
		t.watches = append(t.watches, w)
	case vmm.WatchSoftware:
		if w.Access != vmm.AccessWrite {
			return fmt.Errorf("emulated watchpoints can only watch writes: %w", vmm.ErrUnsupported)
		}
		b := make([]byte, w.Len)
		if _, err := t.readMem(b, w.Addr); err != nil {
			return err
		}
		t.soft = append(t.soft, &softWatch{w: w, last: b})
	default:
		return fmt.Errorf("%s watchpoints: %w over a GDB stub", w.Kind, vmm.ErrUnsupported)
	}
	return nil
}

// RemoveWatchpoint implements vmm.Watchpoints.
func (t *Target) RemoveWatchpoint(w vmm.Watch) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	for i, x := range t.watches {
		if x == w {
			t.watches = append(t.watches[:i], t.watches[i+1:]...)
			_, err := t.x("removing a watchpoint", fmt.Sprintf("z%d,%x,%x", zType(w.Access), w.Addr, w.Len))
			return err
		}
	}
	for i, x := range t.soft {
		if x.w == w {
			t.soft = append(t.soft[:i], t.soft[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("no such watchpoint")
}

// liftAll takes every breakpoint and watchpoint out of the guest (before
// a detach or a close: the guest runs on without them).
func (t *Target) liftAll() {
	for a, bp := range t.sw {
		t.x("removing a breakpoint", liftPacket(a, bp))
	}
	for a := range t.hw {
		t.x("removing a hardware breakpoint", fmt.Sprintf("z1,%x,1", a))
	}
	for _, w := range t.watches {
		t.x("removing a watchpoint", fmt.Sprintf("z%d,%x,%x", zType(w.Access), w.Addr, w.Len))
	}
	clear(t.mem)
}
