//go:build linux && amd64

package kvm

import (
	"fmt"
	"slices"
	"sync"

	"vmdap/vmm"
	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
)

// swbp is one software breakpoint, keyed by guest-physical address. The
// session owns the bookkeeping of why a breakpoint exists; the backend
// only writes the byte and erases it. Two virtual addresses that alias one
// physical byte share it: gvas lists the addresses it was inserted at, and
// the byte goes when the last of them is removed.
type swbp struct {
	gpa  uint64
	gvas []uint64
	orig byte // the guest's byte under our breakpoint
}

// hwSlot is one of DR0-DR3 as vmdap uses it (not the guest's own DRs).
type hwSlot struct {
	used   bool
	addr   uint64
	access x86.Access
	len    int
	watch  *watchpoint // nil for an execute breakpoint
}

// watchpoint is one inserted vmm.Watch.
type watchpoint struct {
	w      vmm.Watch
	ranges []physRange // page kind: the guest-physical pieces
	slots  []int       // debug-register kind: the slots it occupies
	last   []byte      // debug-register kind: value at the last stop
}

type physRange struct{ gpa, len uint64 }

// debugState is every debug mechanism vmdap has inserted into a machine.
// The tables sw, hw and watches change only while the machine is stopped,
// under Machine.mu; vCPU threads read them while running.
type debugState struct {
	// mu guards the bytes vmdap plants in guest RAM (at sw's and traps'
	// addresses) with the originals saved for them, and the traps map:
	// vCPU threads plant and lift temporary traps while they step, and
	// guest writes to protected pages, emulated on the vCPU threads,
	// update the saved originals while the machine runs.
	mu      sync.Mutex
	sw      map[uint64]*swbp
	hw      [4]hwSlot
	watches []*watchpoint
	traps   map[uint64]byte // temporary plants during one step: gpa → byte (under mu)
}

func (d *debugState) init() {
	d.sw = map[uint64]*swbp{}
	d.traps = map[uint64]byte{}
}

// plantByte is the instruction byte a software breakpoint writes.
func (m *Machine) plantByte() byte {
	if m.host.SWBreakpoint == swbpHLT {
		return 0xf4
	}
	return 0xcc
}

// ---- software breakpoints ----

func (m *Machine) stoppedForDebug() error {
	switch m.state {
	case stateRunning:
		return vmm.ErrNotStopped
	case stateClosed:
		return vmm.ErrClosed
	}
	return nil
}

// loadedSegment is one PT_LOAD segment of the image as the loader placed
// it: linked at virt, copied to guest-physical phys.
type loadedSegment struct{ virt, phys, size uint64 }

// imagePhys maps a virtual address of the image through its PT_LOAD
// segments, to where the loader put it. That is how the guest maps its own
// image once it enables paging: a kernel linked high and loaded low (as
// Linux's vmlinux) runs at addresses no page table maps at its entry.
func (m *Machine) imagePhys(va uint64) (uint64, bool) {
	for _, s := range m.loaded {
		if va >= s.virt && va-s.virt < s.size {
			pa := s.phys + (va - s.virt)
			return pa, pa < m.mem.size
		}
	}
	return 0, false
}

// breakpointGPA is where a software breakpoint at addr goes: the
// guest-physical address vCPU 0's page tables give it, else, for an
// address of the image not mapped yet, the one its PT_LOAD segment gives.
func (m *Machine) breakpointGPA(addr uint64) (uint64, error) {
	gpa, _, err := m.translate(m.vcpus[0], addr)
	if err == nil {
		return gpa, nil
	}
	if pa, ok := m.imagePhys(addr); ok {
		m.log.WithField("addr", fmt.Sprintf("%#x", addr)).Debugf("breakpoint placed at %#x from the image's PT_LOAD mapping (%v)", pa, err)
		return pa, nil
	}
	return 0, &vmm.FaultError{Addr: addr, Write: true, Reason: err.Error()}
}

// InsertBreakpoint implements vmm.Breakpoints. The address is translated
// with vCPU 0's page tables, or, where they do not map it yet, through the
// image's PT_LOAD segments (breakpointGPA); the page is write-protected so
// that guest writes over the breakpoint keep it consistent.
func (m *Machine) InsertBreakpoint(addr uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.stoppedForDebug(); err != nil {
		return err
	}
	if m.host.SWBreakpoint == swbpNone {
		return fmt.Errorf("software breakpoints: %w on this host", vmm.ErrUnsupported)
	}
	gpa, err := m.breakpointGPA(addr)
	if err != nil {
		return err
	}
	d := &m.dbg
	if bp := d.sw[gpa]; bp != nil {
		if slices.Contains(bp.gvas, addr) {
			return fmt.Errorf("%w at %#x", vmm.ErrBreakpointExists, addr)
		}
		bp.gvas = append(bp.gvas, addr) // an alias of a placed byte
		return nil
	}
	m.mem.protect(gpa/pageSize, 1, 0)
	if err := m.mem.apply(); err != nil {
		m.mem.protect(gpa/pageSize, -1, 0)
		return err
	}
	d.mu.Lock()
	d.sw[gpa] = &swbp{gpa: gpa, gvas: []uint64{addr}, orig: m.mem.ram[gpa]}
	m.mem.ram[gpa] = m.plantByte()
	d.mu.Unlock()
	return nil
}

// RemoveBreakpoint implements vmm.Breakpoints: it erases the breakpoint
// inserted at addr.
func (m *Machine) RemoveBreakpoint(addr uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.stoppedForDebug(); err != nil {
		return err
	}
	d := &m.dbg
	var bp *swbp
	i := -1
	for _, b := range d.sw {
		if i = slices.Index(b.gvas, addr); i >= 0 {
			bp = b
			break
		}
	}
	if bp == nil {
		return fmt.Errorf("no software breakpoint at %#x", addr)
	}
	if bp.gvas = slices.Delete(bp.gvas, i, i+1); len(bp.gvas) > 0 {
		return nil // an alias still wants the byte
	}
	d.mu.Lock()
	m.mem.ram[bp.gpa] = bp.orig
	delete(d.sw, bp.gpa)
	d.mu.Unlock()
	m.mem.protect(bp.gpa/pageSize, -1, 0)
	return m.mem.apply()
}

// hasSW reports a breakpoint inserted at addr, or at an address that
// aliases it now (a stop reports the address the vCPU ran at).
func (d *debugState) hasSW(m *Machine, addr uint64) bool {
	for _, bp := range d.sw {
		if slices.Contains(bp.gvas, addr) {
			return true
		}
	}
	gpa, _, err := m.translate(m.vcpus[0], addr)
	return err == nil && d.sw[gpa] != nil
}

// swAt returns our breakpoint at vCPU v's address va, if any.
func (m *Machine) swAt(v *vcpu, va uint64) *swbp {
	if len(m.dbg.sw) == 0 {
		return nil
	}
	gpa, _, err := m.translate(v, va)
	if err != nil {
		return nil
	}
	return m.dbg.sw[gpa]
}

// ---- hardware breakpoints and debug-register watchpoints ----

// Slots implements vmm.HWBreakpoints.
func (m *Machine) Slots() int { return 4 }

func (d *debugState) freeSlots() []int {
	var s []int
	for i := range d.hw {
		if !d.hw[i].used {
			s = append(s, i)
		}
	}
	return s
}

// InsertHWBreakpoint implements vmm.HWBreakpoints.
func (m *Machine) InsertHWBreakpoint(addr uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.stoppedForDebug(); err != nil {
		return err
	}
	if !m.host.HWBreakpoints {
		return fmt.Errorf("hardware breakpoints: %w on this host", vmm.ErrUnsupported)
	}
	if m.dbg.execSlot(addr) >= 0 {
		return fmt.Errorf("%w at %#x", vmm.ErrBreakpointExists, addr)
	}
	free := m.dbg.freeSlots()
	if len(free) == 0 {
		return vmm.ErrNoSlots
	}
	m.dbg.hw[free[0]] = hwSlot{used: true, addr: addr, access: x86.AccessExec, len: 1}
	return nil
}

// RemoveHWBreakpoint implements vmm.HWBreakpoints.
func (m *Machine) RemoveHWBreakpoint(addr uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.stoppedForDebug(); err != nil {
		return err
	}
	if i := m.dbg.execSlot(addr); i >= 0 {
		m.dbg.hw[i] = hwSlot{}
		return nil
	}
	return fmt.Errorf("no hardware breakpoint at %#x", addr)
}

func (d *debugState) execSlot(addr uint64) int {
	for i, s := range d.hw {
		if s.used && s.watch == nil && s.addr == addr {
			return i
		}
	}
	return -1
}

func (d *debugState) hasHW(addr uint64) bool { return d.execSlot(addr) >= 0 }

// guestDebug is the KVM_SET_GUEST_DEBUG state vCPU v needs: breakpoint
// interception, the debug-register slots (without skipSlot) and, when
// stepping, SINGLESTEP (with BLOCKIRQ where the host offers it).
func (d *debugState) guestDebug(v *vcpu, step bool, skipSlot int) kvmsys.GuestDebug {
	m := v.m
	var g kvmsys.GuestDebug
	if (len(d.sw) > 0 || len(d.traps) > 0) && m.host.SWBreakpoint == swbpInt3Exit {
		g.Control |= kvmsys.KVM_GUESTDBG_USE_SW_BP
	}
	var slots [4]x86.Slot
	for i, s := range d.hw {
		if s.used && i != skipSlot {
			slots[i] = x86.Slot{Enabled: true, Addr: s.addr, Access: s.access, Len: s.len}
			g.DebugReg[i] = s.addr
		}
	}
	if dr7, err := x86.EncodeDR7(slots); err == nil && dr7 != 0 {
		g.Control |= kvmsys.KVM_GUESTDBG_USE_HW_BP
		g.DebugReg[7] = dr7
	}
	if step {
		g.Control |= kvmsys.KVM_GUESTDBG_SINGLESTEP
		if m.host.BlockIRQ {
			g.Control |= kvmsys.KVM_GUESTDBG_BLOCKIRQ
		}
	}
	g.Control |= v.inject
	if g.Control != 0 {
		g.Control |= kvmsys.KVM_GUESTDBG_ENABLE
	}
	return g
}

// ---- classifying stops ----

// classifyDebug turns a KVM_EXIT_DEBUG into a stop. ok=false means the
// exit was the guest's own (re-injected) or nothing to report.
func (d *debugState) classifyDebug(v *vcpu, stepping bool) (vmm.Stop, bool) {
	m := v.m
	e := v.run.Debug()
	pc := v.pc()
	switch e.Exception {
	case x86.VecBP:
		if bp := m.swAt(v, pc); bp != nil {
			return vmm.Stop{Reason: vmm.ReasonBreakpoint, PC: pc, Addr: pc}, true
		}
		// The guest's own int3: hand it back.
		v.inject |= kvmsys.KVM_GUESTDBG_INJECT_BP
		return vmm.Stop{}, false
	case x86.VecDB:
		dr6 := e.DR6
		for _, i := range x86.HitSlots(dr6) {
			s := d.hw[i]
			if !s.used {
				continue
			}
			if s.watch != nil {
				return m.drWatchStop(v, s.watch), true
			}
			if s.addr == pc {
				return vmm.Stop{Reason: vmm.ReasonHWBreakpoint, PC: pc, Addr: pc}, true
			}
		}
		if dr6&x86.DR6BS != 0 && stepping {
			return vmm.Stop{Reason: vmm.ReasonStep, PC: pc}, true
		}
		if d.execSlot(pc) >= 0 {
			return vmm.Stop{Reason: vmm.ReasonHWBreakpoint, PC: pc, Addr: pc}, true
		}
		if !stepping {
			v.inject |= kvmsys.KVM_GUESTDBG_INJECT_DB
		}
		return vmm.Stop{}, false
	}
	return vmm.Stop{}, false
}

// emulationBreakpoint recognises our int3 on hosts that report it as an
// emulation failure: RIP is one of our breakpoints and the byte there is
// still our 0xCC.
func (d *debugState) emulationBreakpoint(v *vcpu) (vmm.Stop, bool) {
	m := v.m
	if m.host.SWBreakpoint != swbpEmulation || !v.emulationFailureAt() {
		return vmm.Stop{}, false
	}
	pc := v.pc()
	bp := m.swAt(v, pc)
	if bp == nil || m.mem.ram[bp.gpa] != 0xcc {
		return vmm.Stop{}, false
	}
	return vmm.Stop{Reason: vmm.ReasonBreakpoint, PC: pc, Addr: pc}, true
}

// hltBreakpoint recognises our HLT patch: a HLT exit one byte after one of
// our breakpoints. RIP is moved back to the breakpoint.
func (d *debugState) hltBreakpoint(v *vcpu) (vmm.Stop, bool) {
	m := v.m
	if m.host.SWBreakpoint != swbpHLT {
		return vmm.Stop{}, false
	}
	pc := v.pc() - 1
	bp := m.swAt(v, pc)
	if bp == nil {
		return vmm.Stop{}, false
	}
	r := v.regs()
	r.RIP--
	if err := v.setRegs(r); err != nil {
		return v.failed(err), true
	}
	return vmm.Stop{Reason: vmm.ReasonBreakpoint, PC: pc, Addr: pc}, true
}

// reinjectGuestInt3 hands the guest its own int3 on hosts where it
// surfaces as an emulation failure: the #BP is injected as a trap after
// the int3, as the CPU would deliver it.
func (d *debugState) reinjectGuestInt3(v *vcpu) bool {
	m := v.m
	if !v.emulationFailureAt() || !m.host.InjectBP {
		return false
	}
	var b [1]byte
	pa, _, err := m.translate(v, v.pc())
	if err != nil {
		return false
	}
	m.readPhys(b[:], pa)
	if b[0] != 0xcc || m.dbg.sw[pa] != nil {
		return false
	}
	r := v.regs()
	r.RIP++
	if err := v.setRegs(r); err != nil {
		return false
	}
	v.inject |= kvmsys.KVM_GUESTDBG_INJECT_BP
	return true
}

// resumeFromBreakpoint lets vCPU v leave one of our breakpoints at its PC:
// RF for a debug-register breakpoint on hosts that honour it, otherwise a
// single step with the breakpoint lifted. done=true means that step itself
// stopped for a reason worth reporting.
func (m *Machine) resumeFromBreakpoint(v *vcpu) (vmm.Stop, bool) {
	pc := v.pc()
	atSW := m.swAt(v, pc) != nil
	slot := m.dbg.execSlot(pc)
	if !atSW && slot < 0 {
		return vmm.Stop{}, false
	}
	if !atSW && m.host.HWResume == hwResumeRF {
		r := v.regs()
		r.RFLAGS |= x86.FlagRF
		if err := v.setRegs(r); err != nil {
			return v.failed(err), true
		}
		return vmm.Stop{}, false
	}
	var s vmm.Stop
	v.arm()
	v.do(func() { s = v.step(false) }) // a HLT here: continue waits in the run
	s.VCPU = v.idx
	if s.Reason == vmm.ReasonStep {
		return vmm.Stop{}, false
	}
	return s, true
}
