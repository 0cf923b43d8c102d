package gdbremote

import (
	"vmdap/vmm"
	"vmdap/x86/paging"
)

// Guest-physical memory, where the stub offers it: QEMU's
// Qqemu.PhyMemMode:1 makes its 'm' and 'M' take guest-physical addresses
// until Qqemu.PhyMemMode:0 (probed at attach with qqemu.PhyMemMode, which
// answers the mode; other stubs answer nothing). The mode is on only for
// the packets of one call, under t.mu, so every other read stays virtual.
//
// Software breakpoints the stub writes into guest memory (QEMU with KVM)
// are hidden from physical reads too: each one's virtual address is
// translated through vCPU 0's page tables (a kernel's code is mapped
// alike on every vCPU).

var _ vmm.PhysicalMemory = (*Target)(nil)

// PhysicalMemory implements vmm.Target: QEMU's stub reads and writes
// guest-physical memory.
func (t *Target) PhysicalMemory() (vmm.PhysicalMemory, bool) { return t, t.phyMem }

// ReadPhysical implements vmm.PhysicalMemory.
func (t *Target) ReadPhysical(p []byte, addr uint64) (int, error) {
	var n int
	err := t.physically(func(shadows map[uint64]*swbp) error {
		var err error
		n, err = t.readMem(p, addr)
		for pa, bp := range shadows {
			if pa >= addr && pa < addr+uint64(n) {
				p[pa-addr] = bp.orig
			}
		}
		return err
	})
	return n, err
}

// WritePhysical implements vmm.PhysicalMemory. Bytes over a software
// breakpoint the stub wrote into memory update its saved original; the
// int3 stays, as WriteMemory keeps it.
func (t *Target) WritePhysical(p []byte, addr uint64) (int, error) {
	var n int
	err := t.physically(func(shadows map[uint64]*swbp) error {
		data := append([]byte(nil), p...)
		for pa, bp := range shadows {
			if pa >= addr && pa < addr+uint64(len(p)) {
				bp.orig = p[pa-addr]
				data[pa-addr] = 0xcc
			}
		}
		var err error
		n, err = t.writeMem(data, addr)
		return err
	})
	return n, err
}

// physically runs fn, under t.mu with the guest stopped, with the stub's
// memory packets on physical addresses, and gives it the guest-physical
// address of each software breakpoint whose int3 is in guest memory. The
// mode is switched back whatever fn did.
func (t *Target) physically(fn func(shadows map[uint64]*swbp) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.phyMem {
		return vmm.ErrUnsupported
	}
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	var virt []uint64
	for a, bp := range t.sw {
		if bp.shadow {
			virt = append(virt, a)
		}
	}
	var st paging.State
	if len(virt) > 0 {
		// Read before the switch: the registers are no memory packet,
		// but the special registers of a vCPU in real mode come from
		// the monitor, and nothing is read virtually in the mode.
		s, err := t.sregsLocked(0)
		if err != nil {
			return err
		}
		st = paging.FromSRegs(s)
	}
	if _, err := t.x("switching memory packets to physical addresses", "Qqemu.PhyMemMode:1"); err != nil {
		return err
	}
	shadows := map[uint64]*swbp{}
	for _, a := range virt {
		if pa, _, err := paging.Translate(physReaderAt{t}, st, a); err == nil {
			shadows[pa] = t.sw[a]
		}
	}
	err := fn(shadows)
	if _, err2 := t.x("switching memory packets back to virtual addresses", "Qqemu.PhyMemMode:0"); err2 != nil && err == nil {
		err = err2
	}
	return err
}

// physReaderAt reads guest-physical memory for the page walker, with the
// stub already in physical mode (t.mu held).
type physReaderAt struct{ t *Target }

func (r physReaderAt) ReadAt(p []byte, off int64) (int, error) { return r.t.readMem(p, uint64(off)) }
