package core

import (
	"errors"
	"fmt"
	"io"

	"vmdap/x86"
	"vmdap/x86/paging"
)

// dump is a machine as a core file recorded it.
type dump struct {
	format string
	phys   io.ReaderAt // guest-physical memory; reads of what is absent fail with *absentError
	virt   vmap        // an ELF core's virtual segments
	cpus   []cpu
	info   map[string]string // VMCOREINFO (nil without)
	// pagingFrom says where the CPUs' paging state came from.
	pagingFrom string
	// kernel is the kernel's own paging state (init_top_pgt, from
	// VMCOREINFO), when known: kernel addresses a CPU's page tables do
	// not map (a user CR3 under page table isolation maps almost none)
	// translate by it.
	kernel   paging.State
	kernelOK bool
}

// cpu is one CPU's registers at the dump. paging is false when nothing
// says how its virtual addresses translate (no CR3, no VMCOREINFO).
type cpu struct {
	regs   x86.Regs
	sregs  x86.SRegs
	paging bool
}

// kernelTextMap is __START_KERNEL_map, where x86-64 Linux maps its image;
// kernelHalf starts the kernel's half of the address space.
const (
	kernelTextMap = 0xffffffff80000000
	kernelHalf    = 0xffff800000000000
)

// setCPUs takes each CPU's registers from its QEMU note when there is one
// (all registers), else from its NT_PRSTATUS (the general ones; paging by
// the kernel's own tables, named in VMCOREINFO).
func (d *dump) setCPUs(n notes) error {
	d.info = n.info
	d.kernel, d.kernelOK = d.kernelPaging()
	switch {
	case len(n.qemu) > 0:
		for i, q := range n.qemu {
			r, s, err := x86.ParseQEMUCPUState(q, n.longMode)
			if err != nil {
				return fmt.Errorf("CPU %d: %w", i, err)
			}
			d.cpus = append(d.cpus, cpu{regs: r, sregs: s, paging: true})
		}
		d.pagingFrom = "each CPU's CR3"
	case len(n.prstatus) > 0:
		kp, ok := d.kernel, d.kernelOK
		for _, pr := range n.prstatus {
			r, s := pr.regs, pr.sregs
			if ok {
				s.CR0, s.CR3, s.CR4, s.EFER = kp.CR0, kp.CR3, kp.CR4, kp.EFER
			}
			d.cpus = append(d.cpus, cpu{regs: r, sregs: s, paging: ok})
		}
		if ok {
			d.pagingFrom = "the kernel's page tables (init_top_pgt)"
		}
	default:
		return errors.New("the dump has no CPU state (neither NT_PRSTATUS nor QEMU notes)")
	}
	if d.pagingFrom == "" {
		if len(d.virt) == 0 {
			d.pagingFrom = "none: virtual addresses are physical"
		} else {
			d.pagingFrom = "the dump's virtual segments"
		}
	}
	return nil
}

// kernelPaging is the paging state of an x86-64 Linux kernel whose
// VMCOREINFO names its top page table: what crash and drgn use for a
// kdump, whose notes carry no control registers.
func (d *dump) kernelPaging() (paging.State, bool) {
	pgt, ok := infoNumber(d.info, "SYMBOL(init_top_pgt)", 16)
	if !ok {
		pgt, ok = infoNumber(d.info, "SYMBOL(init_level4_pgt)", 16) // before 4.13
	}
	physBase, ok2 := infoNumber(d.info, "NUMBER(phys_base)", 10)
	if !ok || !ok2 || pgt < kernelTextMap {
		return paging.State{}, false
	}
	st := paging.State{CR0: x86.CR0PE | x86.CR0PG, CR3: pgt - kernelTextMap + physBase, CR4: x86.CR4PAE, EFER: x86.EFERLME | x86.EFERLMA}
	if l5, ok := infoNumber(d.info, "NUMBER(pgtable_l5_enabled)", 10); ok && l5 != 0 {
		st.CR4 |= x86.CR4LA57
	}
	return st, true
}

// translate returns the guest-physical address of va as CPU c sees it,
// and how many bytes from there share its page.
func (d *dump) translate(c *cpu, va uint64) (pa, remain uint64, err error) {
	if c.paging {
		st := paging.FromSRegs(c.sregs)
		pa, remain, err = paging.Translate(d.phys, st, va)
		if err == nil {
			return pa, remain, nil
		}
		if d.kernelOK && va >= kernelHalf && st != d.kernel {
			if pa, remain, err := paging.Translate(d.phys, d.kernel, va); err == nil {
				return pa, remain, nil
			}
		}
	}
	// A segment whose virtual address is its physical one (QEMU's dump
	// without paging, and makedumpfile's ELF of it, say p_vaddr =
	// p_paddr) maps nothing: where the CPU's page tables say va is not
	// mapped, it is not (a user address read through it would read
	// whatever physical memory has that address).
	var nm *paging.NotMappedError
	if pa, remain, ok := d.virt.translate(va); ok && !(pa == va && errors.As(err, &nm)) {
		return pa, remain, nil
	}
	if err != nil {
		return 0, 0, err
	}
	if len(d.virt) > 0 {
		return 0, 0, fmt.Errorf("virtual address %#x is in none of the dump's segments", va)
	}
	return va, 1<<12 - va&0xfff, nil
}
