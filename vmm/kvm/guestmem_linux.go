//go:build linux && amd64

package kvm

import (
	"fmt"

	"vmdap/vmm"
	"vmdap/x86/paging"
)

// Guest memory as the debugger sees it: by guest-virtual address through a
// vCPU's page tables (vmm.Target's ReadMemory and WriteMemory), and by
// guest-physical address (vmm.PhysicalMemory). Reads show the guest's own
// bytes where vmdap has planted a breakpoint; writes there update the
// saved original and keep the breakpoint (debug_linux.go).

// translate maps a guest-virtual address with vCPU v's paging state.
func (m *Machine) translate(v *vcpu, va uint64) (pa, rem uint64, err error) {
	pa, rem, err = paging.Translate(m.mem, v.pagingState(), va)
	if err != nil {
		return 0, 0, err
	}
	if pa >= m.mem.size {
		return 0, 0, fmt.Errorf("virtual address %#x maps to %#x, outside guest RAM", va, pa)
	}
	return pa, rem, nil
}

// readPhys copies guest-physical memory into p with vmdap's breakpoint
// bytes replaced by the guest's own.
func (m *Machine) readPhys(p []byte, gpa uint64) {
	copy(p, m.mem.ram[gpa:])
	end := gpa + uint64(len(p))
	if len(m.dbg.sw)+len(m.dbg.traps) == 0 {
		return
	}
	for a, bp := range m.dbg.sw {
		if a >= gpa && a < end {
			p[a-gpa] = bp.orig
		}
	}
	for a, orig := range m.dbg.traps {
		if a >= gpa && a < end {
			p[a-gpa] = orig
		}
	}
}

// writePhys stores p into guest-physical memory; bytes that land on one of
// vmdap's breakpoints update the saved original and leave the breakpoint in
// place.
func (m *Machine) writePhys(p []byte, gpa uint64) {
	d := &m.dbg
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(m.mem.ram[gpa:], p)
	end := gpa + uint64(len(p))
	plant := m.plantByte()
	for a, bp := range d.sw {
		if a >= gpa && a < end {
			bp.orig = p[a-gpa]
			m.mem.ram[a] = plant
		}
	}
	for a := range d.traps {
		if a >= gpa && a < end {
			d.traps[a] = p[a-gpa]
			m.mem.ram[a] = plant
		}
	}
}

// copyPhys copies between p and guest-physical memory at gpa (in RAM).
func (m *Machine) copyPhys(p []byte, gpa uint64, write bool) {
	if write {
		m.writePhys(p, gpa)
	} else {
		m.readPhys(p, gpa)
	}
}

// access copies between p and guest-virtual memory of vCPU i.
func (m *Machine) access(i int, p []byte, addr uint64, write bool) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.stoppedVCPU(i)
	if err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		va := addr + uint64(n)
		pa, rem, err := m.translate(v, va)
		if err != nil {
			return n, &vmm.FaultError{Addr: va, Write: write, Reason: err.Error()}
		}
		c := uint64(len(p) - n)
		if c > rem {
			c = rem
		}
		if pa+c > m.mem.size {
			c = m.mem.size - pa
		}
		m.copyPhys(p[n:n+int(c)], pa, write)
		n += int(c)
	}
	return n, nil
}

// ReadMemory implements vmm.Target.
func (m *Machine) ReadMemory(i int, p []byte, addr uint64) (int, error) {
	return m.access(i, p, addr, false)
}

// WriteMemory implements vmm.Target.
func (m *Machine) WriteMemory(i int, p []byte, addr uint64) (int, error) {
	return m.access(i, p, addr, true)
}

// physAccess copies between p and guest-physical memory.
func (m *Machine) physAccess(p []byte, addr uint64, write bool) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == stateRunning {
		return 0, vmm.ErrNotStopped
	}
	if addr >= m.mem.size {
		return 0, &vmm.FaultError{Addr: addr, Write: write, Reason: "outside guest RAM"}
	}
	n := len(p)
	if addr+uint64(n) > m.mem.size {
		n = int(m.mem.size - addr)
	}
	m.copyPhys(p[:n], addr, write)
	if n < len(p) {
		return n, &vmm.FaultError{Addr: addr + uint64(n), Write: write, Reason: "outside guest RAM"}
	}
	return n, nil
}

// ReadPhysical implements vmm.PhysicalMemory.
func (m *Machine) ReadPhysical(p []byte, addr uint64) (int, error) {
	return m.physAccess(p, addr, false)
}

// WritePhysical implements vmm.PhysicalMemory.
func (m *Machine) WritePhysical(p []byte, addr uint64) (int, error) {
	return m.physAccess(p, addr, true)
}

var _ vmm.RAMLayout = (*Machine)(nil)

// RAM implements vmm.RAMLayout: guest RAM is one range from address 0
// (the memslots page protection splits are all of it).
func (m *Machine) RAM() []vmm.PhysRange {
	return []vmm.PhysRange{{Addr: 0, Size: m.mem.size}}
}
