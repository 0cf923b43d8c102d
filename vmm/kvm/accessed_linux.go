//go:build linux && amd64

package kvm

import (
	"encoding/binary"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"vmdap/x86"
)

// Segment loads from a write-protected page.
//
// Loading a code or data segment whose descriptor has the accessed bit
// clear makes the CPU set that bit in the descriptor table. KVM's
// instruction emulator (which runs all ring-0 code on an emulating host,
// and any instruction that faulted on a protected page elsewhere) writes
// it as a "system" access that cannot go to a read-only memslot: it gives
// up without an exit and re-executes the instruction, for ever, inside
// KVM_RUN. vmdap write-protects every page holding a software breakpoint
// or a write watchpoint, and tiny Multiboot stubs keep their GDT in their
// code page, so the stub's far jump into long mode spun at 100 % CPU as
// soon as any breakpoint sat in that page.
//
// vmdap does the CPU's write itself: before an instruction that loads a
// segment register runs, each descriptor it will load that lies on a
// write-protected page gets its accessed bit set in guest RAM (what the
// CPU would write a moment later). Before a step that is exact. A run
// cannot be inspected between instructions, so while any page is
// protected the running vCPUs are interrupted every nudgeInterval and the
// instruction they stand at is checked the same way: a vCPU caught in
// that retry loop is at most one interval late.

// nudgeInterval is how often running vCPUs are interrupted while some
// page is protected (~100 µs of vCPU time each on an emulating host).
const nudgeInterval = 25 * time.Millisecond

// markLoadedDescriptors sets the accessed bit of each descriptor the
// instruction at v's RIP will load, where that descriptor lies on a
// write-protected page. It runs on v's thread (or the controller's, with
// v stopped).
func (v *vcpu) markLoadedDescriptors() {
	m := v.m
	if len(m.mem.prot) == 0 {
		return
	}
	s := v.sregs()
	if s.CR0&x86.CR0PE == 0 {
		return // real mode: no descriptor tables
	}
	r := v.regs()
	inst, err := v.decode(x86.CodeAddr(r.RIP, s), x86.DecodeMode(s))
	if err != nil || !inst.LoadsSegment() {
		return
	}
	read := func(va uint64, p []byte) bool { return v.peekCode(p, va) == len(p) }
	sels, ok := inst.SelectorLoads(r, s, read)
	if !ok {
		m.log.WithField("vcpu", v.idx).Debugf("cannot read the selector operands of %s at %#x", inst.Text(nil), r.RIP)
		return
	}
	for _, sel := range sels {
		if err := v.markAccessed(s, sel); err != nil {
			m.log.WithField("vcpu", v.idx).WithError(err).Debugf("selector %#x at %#x", sel, r.RIP)
		}
	}
}

// markAccessed sets the accessed bit of selector sel's code or data
// descriptor if it lies on a write-protected page and the bit is clear.
func (v *vcpu) markAccessed(s x86.SRegs, sel uint16) error {
	m := v.m
	table, limit := s.GDT.Base, uint64(s.GDT.Limit)
	if sel&4 != 0 {
		if s.LDT.Unusable || !s.LDT.Present {
			return fmt.Errorf("selector %#x names the LDT, which is not loaded", sel)
		}
		table, limit = s.LDT.Base, uint64(s.LDT.Limit)
	}
	off := uint64(sel &^ 7)
	if off+7 > limit {
		return fmt.Errorf("selector %#x is beyond the table limit %#x", sel, limit)
	}
	pa, rem, err := m.translate(v, table+off)
	if err != nil || rem < 8 {
		return fmt.Errorf("descriptor of selector %#x is not mapped", sel)
	}
	if m.mem.kindOf(pa/pageSize) != slotReadOnly {
		return nil
	}
	var b [8]byte
	m.readPhys(b[:], pa)
	d := binary.LittleEndian.Uint64(b[:])
	const present, codeData, accessed = 1 << 47, 1 << 44, 1 << 40
	if d&present == 0 || d&codeData == 0 || d&accessed != 0 {
		return nil
	}
	b[5] |= 1
	m.writePhys(b[5:6], pa+5)
	m.log.WithField("vcpu", v.idx).Debugf("set the accessed bit of descriptor %#x at %#x (a write-protected page KVM's emulator cannot write)", sel, pa)
	return nil
}

// startNudger interrupts the running vCPUs every nudgeInterval while any
// page is protected, until the all-stop (stopNudger). Under m.mu.
func (m *Machine) startNudger() {
	if m.nudgeStop != nil || len(m.mem.prot) == 0 {
		return
	}
	stop := make(chan struct{})
	m.nudgeStop = stop
	go func() {
		t := time.NewTicker(nudgeInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			m.mu.Lock()
			if m.nudgeStop == stop {
				for _, v := range m.vcpus {
					if v.busy {
						v.nudge()
					}
				}
			}
			m.mu.Unlock()
		}
	}()
}

// stopNudger ends the nudges (under m.mu).
func (m *Machine) stopNudger() {
	if m.nudgeStop != nil {
		close(m.nudgeStop)
		m.nudgeStop = nil
	}
}

// nudge interrupts the vCPU's KVM_RUN without asking it to stop: the run
// re-enters after checking its instruction (markLoadedDescriptors).
func (v *vcpu) nudge() {
	if tid := v.tid.Load(); tid != 0 {
		_ = unix.Tgkill(unix.Getpid(), int(tid), kickSignal)
	}
}
