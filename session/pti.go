package session

import (
	"bytes"

	"vmdap/vmm"
	"vmdap/x86"
	"vmdap/x86/paging"
)

// Page-table isolation: x86-64 Linux with PTI runs user code (and the
// first instructions of each kernel entry) under page tables that map
// almost nothing of the kernel. Each PGD is an 8 KiB pair, the kernel's
// first, and CR3 names the user half by bit 12 (the kernel's
// kernel_to_user_pgdp). So at a stop there, a kernel read or write the
// vCPU's tables fault on is done as the kernel would do it after its CR3
// switch: through the pair's kernel half, walked and accessed in
// guest-physical memory, where the backend reads that (vmdap's VMM,
// QEMU's stub; a dump has its own fallback, the kernel's init_top_pgt).
//
// A CR3 with bit 12 set is no proof of PTI (a PGD without it is any 4 KiB
// page): the kernel half is used only once it maps linux_banner where the
// symbols say, with the image's bytes there. What was found is kept until
// the guest runs again.

// ptiState is what is known of the kernel halves at this stop: each
// candidate kernel CR3 checked, and whether it maps the kernel.
type ptiState map[uint64]bool

// forgetPTI drops what was known of the page tables (the guest ran).
// Session.mu held.
func (s *Session) forgetPTI() { s.pti = nil }

// ptiKernelTables returns the kernel half of vCPU v's page-table pair
// when v runs under the user half of a PTI kernel. Session.mu held.
func (s *Session) ptiKernelTables(v int, pm vmm.PhysicalMemory) (paging.State, bool) {
	if !s.isLinux() {
		return paging.State{}, false
	}
	sr, err := s.t.SRegs(v)
	if err != nil || sr.EFER&x86.EFERLMA == 0 || sr.CR3&(1<<12) == 0 {
		return paging.State{}, false
	}
	st := paging.FromSRegs(sr)
	st.CR3 &^= 1<<12 | 0xfff // the kernel half; no PCID bits
	ok, known := s.pti[st.CR3]
	if !known {
		ok = s.mapsKernel(st, pm)
		if s.pti == nil {
			s.pti = ptiState{}
		}
		s.pti[st.CR3] = ok
	}
	return st, ok
}

// mapsKernel says whether tables st map linux_banner where the symbols
// say, holding the image's bytes.
func (s *Session) mapsKernel(st paging.State, pm vmm.PhysicalMemory) bool {
	banner, ok := s.sym.LinkSymbol("linux_banner")
	if !ok {
		return false
	}
	want, ok := s.sym.ImageBytes(banner, bannerProbe)
	if !ok {
		return false
	}
	got := make([]byte, bannerProbe)
	n, err := through(pm, st, got, banner+s.sym.Slide(), false)
	return err == nil && n == len(got) && bytes.Equal(got, want)
}

// through reads or writes virtual memory through page tables st, in
// guest-physical memory, a page at a time.
func through(pm vmm.PhysicalMemory, st paging.State, p []byte, addr uint64, write bool) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		pa, remain, err := paging.Translate(physReader{pm}, st, a)
		if err != nil {
			return n, &vmm.FaultError{Addr: a, Write: write, Reason: err.Error()}
		}
		c := int(min(remain, uint64(len(p)-n)))
		var m int
		if write {
			m, err = pm.WritePhysical(p[n:n+c], pa)
		} else {
			m, err = pm.ReadPhysical(p[n:n+c], pa)
		}
		n += m
		if err != nil {
			return n, err
		}
		if m < c {
			return n, &vmm.FaultError{Addr: a + uint64(m), Write: write, Reason: "outside guest memory"}
		}
	}
	return n, nil
}

// kernelPTI finishes a read or write of kernel memory that vCPU v's page
// tables faulted on, through the kernel half of its PTI pair; ok is
// false when that does not apply. Session.mu held.
func (s *Session) kernelPTI(v int, p []byte, addr uint64, write bool) (int, bool) {
	if addr < kernelHalf {
		return 0, false
	}
	pm, ok := s.t.PhysicalMemory()
	if !ok {
		return 0, false
	}
	st, ok := s.ptiKernelTables(v, pm)
	if !ok {
		return 0, false
	}
	n, _ := through(pm, st, p, addr, write)
	return n, true
}
