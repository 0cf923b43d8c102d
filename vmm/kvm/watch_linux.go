//go:build linux && amd64

package kvm

import (
	"bytes"
	"fmt"

	"vmdap/vmm"
	"vmdap/x86"
)

// WatchKinds implements vmm.Watchpoints: debug registers first where they
// fire on this host, page protection always.
func (m *Machine) WatchKinds() []vmm.WatchSupport {
	var k []vmm.WatchSupport
	if m.host.DRWatch {
		k = append(k, vmm.WatchSupport{Kind: vmm.WatchDebugReg, Accesses: []vmm.Access{vmm.AccessWrite, vmm.AccessReadWrite},
			MaxLen: 32, Count: 4})
	}
	k = append(k, vmm.WatchSupport{Kind: vmm.WatchPage, Accesses: []vmm.Access{vmm.AccessWrite, vmm.AccessRead, vmm.AccessReadWrite}})
	return k
}

// InsertWatchpoint implements vmm.Watchpoints.
func (m *Machine) InsertWatchpoint(w vmm.Watch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.stoppedForDebug(); err != nil {
		return err
	}
	if w.Len <= 0 {
		return fmt.Errorf("watchpoint length must be positive, got %d", w.Len)
	}
	if w.Access&vmm.AccessReadWrite == 0 {
		return fmt.Errorf("watchpoint needs an access type (read, write or readWrite)")
	}
	wp := &watchpoint{w: w}
	switch w.Kind {
	case vmm.WatchDebugReg:
		if !m.host.DRWatch {
			return fmt.Errorf("debug-register watchpoints: %w: they never fire on this host (%s); use page protection", vmm.ErrUnsupported, m.host.Vendor)
		}
		var acc x86.Access
		switch w.Access {
		case vmm.AccessWrite:
			acc = x86.AccessWrite
		case vmm.AccessReadWrite:
			acc = x86.AccessReadWrite
		default:
			return fmt.Errorf("debug registers cannot watch reads only (x86 has no read-only data breakpoint): %w", vmm.ErrUnsupported)
		}
		pieces := x86.SplitRange(w.Addr, w.Len)
		free := m.dbg.freeSlots()
		if err := m.translateRanges(wp); err != nil {
			return err
		}
		if len(pieces) > len(free) {
			return fmt.Errorf("%d bytes at %#x need %d debug-register slots, %d are free: %w", w.Len, w.Addr, len(pieces), len(free), vmm.ErrNoSlots)
		}
		for i, p := range pieces {
			s := free[i]
			m.dbg.hw[s] = hwSlot{used: true, addr: p.Addr, access: acc, len: p.Len, watch: wp}
			wp.slots = append(wp.slots, s)
		}
		wp.last = m.peek(w.Addr, w.Len)
	case vmm.WatchPage:
		if w.Access&vmm.AccessRead != 0 {
			if err := m.translateRanges(wp); err != nil {
				return err
			}
			if err := m.readTrapHazard(wp); err != nil {
				return err
			}
		}
		if err := m.protectRange(wp, 1); err != nil {
			return err
		}
	default:
		return fmt.Errorf("watchpoint kind %s: %w", w.Kind, vmm.ErrUnsupported)
	}
	m.dbg.watches = append(m.dbg.watches, wp)
	return nil
}

// translateRanges records the guest-physical pieces of a watchpoint's
// range (with vCPU 0's page tables).
func (m *Machine) translateRanges(wp *watchpoint) error {
	w := wp.w
	wp.ranges = nil
	for off := uint64(0); off < uint64(w.Len); {
		va := w.Addr + off
		pa, rem, err := m.translate(m.vcpus[0], va)
		if err != nil {
			return &vmm.FaultError{Addr: va, Reason: err.Error()}
		}
		n := uint64(w.Len) - off
		if n > rem {
			n = rem
		}
		wp.ranges = append(wp.ranges, physRange{pa, n})
		off += n
	}
	return nil
}

// protectRange translates a page watchpoint's range (with vCPU 0) and
// adds (sign 1) or drops (sign -1) the page protections it needs.
func (m *Machine) protectRange(wp *watchpoint, sign int) error {
	w := wp.w
	if sign > 0 {
		if err := m.translateRanges(wp); err != nil {
			return err
		}
	}
	wr, rd := 0, 0
	if w.Access&vmm.AccessRead != 0 {
		rd = sign
	} else {
		wr = sign
	}
	for _, r := range wp.ranges {
		for g := r.gpa / pageSize; g <= (r.gpa+r.len-1)/pageSize; g++ {
			m.mem.protect(g, wr, rd)
		}
	}
	if err := m.mem.apply(); err != nil {
		if sign > 0 {
			for _, r := range wp.ranges {
				for g := r.gpa / pageSize; g <= (r.gpa+r.len-1)/pageSize; g++ {
					m.mem.protect(g, -wr, -rd)
				}
			}
			_ = m.mem.apply()
		}
		return err
	}
	return nil
}

// RemoveWatchpoint implements vmm.Watchpoints.
func (m *Machine) RemoveWatchpoint(w vmm.Watch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.stoppedForDebug(); err != nil {
		return err
	}
	for i, wp := range m.dbg.watches {
		if wp.w != w {
			continue
		}
		m.dbg.watches = append(m.dbg.watches[:i], m.dbg.watches[i+1:]...)
		for _, s := range wp.slots {
			m.dbg.hw[s] = hwSlot{}
		}
		if w.Kind == vmm.WatchPage {
			return m.protectRange(wp, -1)
		}
		return nil
	}
	return fmt.Errorf("no watchpoint %s %d bytes at %#x", w.Access, w.Len, w.Addr)
}

// peek reads guest-virtual memory through vCPU 0 for watch values (best
// effort: unreadable bytes stay zero).
func (m *Machine) peek(addr uint64, n int) []byte {
	b := make([]byte, n)
	for off := 0; off < n; {
		pa, rem, err := m.translate(m.vcpus[0], addr+uint64(off))
		if err != nil {
			break
		}
		c := uint64(n - off)
		if c > rem {
			c = rem
		}
		m.readPhys(b[off:off+int(c)], pa)
		off += int(c)
	}
	return b
}

// readRanges reads a page watchpoint's bytes through its physical ranges.
func (m *Machine) readRanges(wp *watchpoint) []byte {
	b := make([]byte, 0, wp.w.Len)
	for _, r := range wp.ranges {
		c := make([]byte, r.len)
		m.readPhys(c, r.gpa)
		b = append(b, c...)
	}
	return b
}

// mmioHit is a page-watchpoint hit found while emulating an access.
type mmioHit struct {
	wp       *watchpoint
	access   vmm.Access
	addr     uint64 // guest-physical address accessed
	old, new []byte
}

// mmio emulates one KVM_EXIT_MMIO: an access to a protected page (applied
// to guest RAM exactly, preserving breakpoint shadows) or to no device at
// all. It returns the first page watchpoint the access hit.
func (m *Machine) mmio(v *vcpu) *mmioHit {
	e := v.run.MMIO()
	gpa, n := e.PhysAddr, uint64(e.Len)
	if n > 8 {
		n = 8
	}
	if gpa+n > m.mem.size || gpa+n < gpa {
		if e.IsWrite == 0 {
			for i := range e.Data {
				e.Data[i] = 0xff
			}
		}
		m.ports.unknownMMIO(gpa, e.IsWrite != 0)
		return nil
	}
	write := e.IsWrite != 0
	acc := vmm.AccessRead
	if write {
		acc = vmm.AccessWrite
	}
	// Every watchpoint is checked against an access vmdap emulates,
	// debug-register ones included: KVM's instruction emulator does not
	// apply DR data breakpoints, so a DR-watched variable on a page that is
	// protected for another watchpoint would otherwise be missed.
	var hit *mmioHit
	for _, wp := range m.dbg.watches {
		if wp.w.Access&acc == 0 {
			continue
		}
		for _, r := range wp.ranges {
			if gpa < r.gpa+r.len && r.gpa < gpa+n {
				hit = &mmioHit{wp: wp, access: acc, addr: gpa}
				break
			}
		}
		if hit != nil {
			break
		}
	}
	if hit != nil {
		hit.old = m.readRanges(hit.wp)
	}
	if write {
		m.writePhys(e.Data[:n], gpa)
	} else {
		copy(e.Data[:n], m.mem.ram[gpa:gpa+n])
	}
	if hit != nil {
		hit.new = m.readRanges(hit.wp)
		if hit.wp.w.Kind == vmm.WatchDebugReg {
			hit.wp.last = hit.new
		}
	}
	return hit
}

// watchStop reports a page-watchpoint hit; the access has been completed,
// so PC is after the instruction (as a debug-register trap reports it).
func (m *Machine) watchStop(v *vcpu, h *mmioHit) vmm.Stop {
	va := h.wp.w.Addr
	off := uint64(0)
	for _, r := range h.wp.ranges {
		if h.addr >= r.gpa && h.addr < r.gpa+r.len {
			va = h.wp.w.Addr + off + (h.addr - r.gpa)
			break
		}
		off += r.len
	}
	return vmm.Stop{Reason: vmm.ReasonWatchpoint, PC: v.pc(), Addr: va,
		Watch: &vmm.WatchHit{Watch: h.wp.w, Access: h.access, Addr: va, Old: h.old, New: h.new}}
}

// drWatchStop reports a debug-register watchpoint hit (a trap after the
// access). Old is the value at the previous stop.
func (m *Machine) drWatchStop(v *vcpu, wp *watchpoint) vmm.Stop {
	cur := m.peek(wp.w.Addr, wp.w.Len)
	old := wp.last
	wp.last = cur
	acc := vmm.AccessWrite
	if wp.w.Access == vmm.AccessReadWrite && bytes.Equal(old, cur) {
		acc = vmm.AccessReadWrite // a read, or a write of the same value
	}
	return vmm.Stop{Reason: vmm.ReasonWatchpoint, PC: v.pc(), Addr: wp.w.Addr,
		Watch: &vmm.WatchHit{Watch: wp.w, Access: acc, Addr: wp.w.Addr, Old: old, New: cur}}
}

// refreshWatchValues re-reads debug-register watch values at a stop, so
// the next hit reports the change since the stop the user saw.
func (m *Machine) refreshWatchValues() {
	for _, wp := range m.dbg.watches {
		if wp.w.Kind == vmm.WatchDebugReg {
			wp.last = m.peek(wp.w.Addr, wp.w.Len)
		}
	}
}
