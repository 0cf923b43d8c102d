//go:build linux && amd64

package kvm

import (
	"fmt"

	"vmdap/vmm"
	"vmdap/x86"
	"vmdap/x86/paging"
)

// Pages a read trap cannot cover. A page watched for reads is in no
// memslot (memory_linux.go), so every access to it exits as MMIO, which
// vmdap emulates. That works for the data accesses of an instruction, but
// not for the CPU's own reads: KVM cannot fetch an instruction from a page
// without a memslot (KVM_EXIT_INTERNAL_ERROR, an emulation failure, and
// the vCPU cannot go on) nor walk page tables through one (the walk
// faults, and the guest triple-faults). A read or readWrite page
// watchpoint is therefore refused on a page that holds the image's code,
// that a vCPU executes from now, that holds a paging structure
// reachable from a vCPU's CR3, or a vCPU's descriptor tables (IDT, GDT,
// TSS, LDT: read by the CPU at every interrupt and segment load). Write traps keep the page readable (a
// read-only memslot), so a write watchpoint works on all of them.
//
// The check is made when the watchpoint is set. Code that later runs from
// a watched page, or page tables the guest later allocates there, are
// caught when they fail (readTrapFailure) and reported with the
// watchpoint's name instead of the bare hypervisor error.

// maxTablePages bounds the page-table walk of each CR3 (64 MiB of
// tables, far more than a guest of a few GiB maps with).
const maxTablePages = 1 << 14

// readTrapError says why a page cannot trap reads. It is an
// ErrUnsupported: another watchpoint kind may still fit.
type readTrapError struct {
	addr uint64 // the watched (virtual) address
	gpa  uint64 // the page
	why  string
}

func (e *readTrapError) Error() string {
	return fmt.Sprintf("%#x cannot be watched for reads by page protection: its page (guest-physical %#x) %s, and KVM cannot "+
		"run code, walk page tables or read descriptor tables through a page that traps reads; a write watchpoint works there", e.addr, e.gpa, e.why)
}

func (e *readTrapError) Unwrap() error { return vmm.ErrUnsupported }

// readTrapHazard returns why the pages of wp (translated) cannot trap
// reads, or nil when they can.
func (m *Machine) readTrapHazard(wp *watchpoint) error {
	off := uint64(0)
	for _, r := range wp.ranges {
		for g := r.gpa &^ (pageSize - 1); g < r.gpa+r.len; g += pageSize {
			va := wp.w.Addr + off
			if g > r.gpa {
				va += g - r.gpa
			}
			if why := m.cpuReads(g); why != "" {
				return &readTrapError{addr: va, gpa: g, why: why}
			}
		}
		off += r.len
	}
	return nil
}

// cpuReads says how the CPU reads guest-physical page gpa on its own ("" if
// it is not known to): code of the image, a vCPU's current instruction,
// a paging structure.
func (m *Machine) cpuReads(gpa uint64) string {
	for _, c := range m.code {
		if gpa < c.gpa+c.len && c.gpa < gpa+pageSize {
			return fmt.Sprintf("holds the image's code (%#x-%#x)", c.gpa, c.gpa+c.len)
		}
	}
	for _, v := range m.vcpus {
		if pa, _, err := m.translate(v, v.pc()); err == nil && pa&^(pageSize-1) == gpa {
			return fmt.Sprintf("holds the code vCPU %d runs (at %#x)", v.idx, v.pc())
		}
	}
	if why := m.tablePage(gpa); why != "" {
		return why
	}
	return m.descTablePage(gpa)
}

// maxDescPages bounds the pages of one descriptor table looked at (a GDT
// is at most 64 KiB; a TSS with its I/O bitmap about 8 KiB).
const maxDescPages = 17

// descTablePage says whether guest-physical page gpa holds a descriptor
// table a vCPU's CPU reads on its own ("" if not): its IDT (at every
// interrupt and exception, or real mode's vector table), GDT (at segment
// loads), TSS (stack switches) or LDT.
func (m *Machine) descTablePage(gpa uint64) string {
	for _, v := range m.vcpus {
		s := v.sregs()
		present := func(sg x86.Segment) bool { return sg.Present && !sg.Unusable }
		for _, t := range []struct {
			name        string
			base, limit uint64
			use         bool
		}{
			{"IDT", s.IDT.Base, uint64(s.IDT.Limit), true},
			{"GDT", s.GDT.Base, uint64(s.GDT.Limit), s.CR0&1 != 0},
			{"TSS", s.TR.Base, uint64(s.TR.Limit), s.CR0&1 != 0 && present(s.TR)},
			{"LDT", s.LDT.Base, uint64(s.LDT.Limit), s.CR0&1 != 0 && present(s.LDT)},
		} {
			if !t.use || t.limit == 0 {
				continue
			}
			first := t.base &^ (pageSize - 1)
			for i, va := 0, first; i < maxDescPages && va <= t.base+t.limit; i, va = i+1, va+pageSize {
				if pa, _, err := m.translate(v, va); err == nil && pa&^(pageSize-1) == gpa {
					return fmt.Sprintf("holds the %s of vCPU %d (at %#x)", t.name, v.idx, t.base)
				}
			}
		}
	}
	return ""
}

// tablePage says whether guest-physical page gpa holds a paging structure
// of a vCPU ("" if not).
func (m *Machine) tablePage(gpa uint64) string {
	walked := map[paging.State]bool{}
	for _, v := range m.vcpus {
		st := v.pagingState()
		if walked[st] {
			continue
		}
		walked[st] = true
		pages, _ := paging.Tables(m.mem, st, maxTablePages)
		for _, p := range pages {
			if p == gpa {
				return fmt.Sprintf("holds page tables of vCPU %d (%s paging, CR3 %#x)", v.idx, st.Mode(), st.CR3)
			}
		}
	}
	return ""
}

// readTrapped returns the read watchpoint that makes guest-physical page
// gpa trap reads, or nil.
func (m *Machine) readTrapped(gpa uint64) *watchpoint {
	if m.mem.kindOf(gpa/pageSize) != slotAbsent {
		return nil
	}
	for _, wp := range m.dbg.watches {
		if wp.w.Kind != vmm.WatchPage || wp.w.Access&vmm.AccessRead == 0 {
			continue
		}
		for _, r := range wp.ranges {
			if gpa < r.gpa+r.len && r.gpa < gpa+pageSize {
				return wp
			}
		}
	}
	return nil
}

// describeWatch names a watchpoint for a message.
func describeWatch(wp *watchpoint) string {
	return fmt.Sprintf("the %s watchpoint on %d bytes at %#x", wp.w.Access, wp.w.Len, wp.w.Addr)
}

// readTrapFailure explains an emulation failure of v that a read trap
// caused: the instruction at RIP sits on a page a read watchpoint traps
// ("" when it does not).
func (v *vcpu) readTrapFailure() string {
	m := v.m
	pc := v.pc()
	for _, va := range []uint64{pc, pc + 14} { // an instruction is at most 15 bytes
		pa, _, err := m.translate(v, va)
		if err != nil {
			continue
		}
		g := pa &^ (pageSize - 1)
		if wp := m.readTrapped(g); wp != nil {
			return fmt.Sprintf("vCPU %d runs code at %#x from guest-physical page %#x, which %s traps for reads: "+
				"KVM cannot fetch instructions from a page that traps reads (watch writes only there)",
				v.idx, pc, g, describeWatch(wp))
		}
	}
	return ""
}

// readTrapShutdown explains a triple fault that a read trap may have
// caused: a page a read watchpoint traps holds v's page tables ("" when
// none does).
func (v *vcpu) readTrapShutdown() string {
	m := v.m
	pages, _ := paging.Tables(m.mem, v.pagingState(), maxTablePages)
	for _, p := range pages {
		if wp := m.readTrapped(p); wp != nil {
			return fmt.Sprintf("; guest-physical page %#x holds vCPU %d's page tables and %s traps it for reads: "+
				"KVM cannot walk page tables through a page that traps reads", p, v.idx, describeWatch(wp))
		}
	}
	return ""
}
