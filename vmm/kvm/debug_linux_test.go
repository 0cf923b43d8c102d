//go:build linux && amd64

package kvm

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

func TestSoftwareBreakpointHitAndResume(t *testing.T) {
	f := newMech(t, 1)
	f.setU64(f.sym("loop_count"), 5)
	bp := f.sym("loop_dec")
	if err := f.m.InsertBreakpoint(bp); err != nil {
		t.Fatal(err)
	}
	f.at(0, "case_loop")
	for i := 1; i <= 5; i++ {
		s := f.cont()
		if s.Reason != vmm.ReasonBreakpoint || s.PC != bp || s.Addr != bp {
			t.Fatalf("hit %d: %v", i, s)
		}
		if c := f.u64(f.sym("counter")); c != uint64(i) {
			t.Fatalf("hit %d: counter = %d", i, c)
		}
	}
	if s := f.cont(); s.Reason != vmm.ReasonHalted || s.PC != f.sym("loop_done")+1 {
		t.Fatalf("after the loop: %v", s)
	}
	if err := f.m.RemoveBreakpoint(bp); err != nil {
		t.Fatal(err)
	}
}

// TestBreakpointInsertedOnce: the backend writes and erases; counting why
// a breakpoint exists is the session's job, so a second insert at one
// address is refused, and one remove erases.
func TestBreakpointInsertedOnce(t *testing.T) {
	f := newMech(t, 1)
	addr := f.sym("loop_dec")
	var orig [1]byte
	f.m.ReadPhysical(orig[:], addr)
	if err := f.m.InsertBreakpoint(addr); err != nil {
		t.Fatal(err)
	}
	if err := f.m.InsertBreakpoint(addr); !errors.Is(err, vmm.ErrBreakpointExists) {
		t.Fatalf("second insert: %v, want ErrBreakpointExists", err)
	}
	if err := f.m.RemoveBreakpoint(addr); err != nil {
		t.Fatal(err)
	}
	if b := f.m.mem.ram[addr]; b != orig[0] {
		t.Fatalf("byte after one remove: %#x, want the guest's %#x", b, orig[0])
	}
	if err := f.m.RemoveBreakpoint(addr); err == nil {
		t.Fatal("second remove succeeded")
	}
	if !f.m.host.HWBreakpoints {
		return
	}
	if err := f.m.InsertHWBreakpoint(addr); err != nil {
		t.Fatal(err)
	}
	if err := f.m.InsertHWBreakpoint(addr); !errors.Is(err, vmm.ErrBreakpointExists) {
		t.Fatalf("second hardware insert: %v, want ErrBreakpointExists", err)
	}
	if n := len(f.m.dbg.freeSlots()); n != 3 {
		t.Fatalf("%d free slots after one hardware breakpoint, want 3", n)
	}
}

func TestBreakpointBytesInvisible(t *testing.T) {
	f := newMech(t, 1)
	addr := f.sym("loop_top")
	before := make([]byte, 16)
	f.m.ReadMemory(0, before, addr)
	if err := f.m.InsertBreakpoint(addr); err != nil {
		t.Fatal(err)
	}
	if err := f.m.InsertBreakpoint(addr + 7); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	f.m.ReadMemory(0, got, addr)
	if !bytes.Equal(got, before) {
		t.Fatalf("virtual read shows breakpoint bytes: %x, want %x", got, before)
	}
	f.m.ReadPhysical(got, addr)
	if !bytes.Equal(got, before) {
		t.Fatalf("physical read shows breakpoint bytes: %x, want %x", got, before)
	}
	// A debugger write over the breakpoint changes the saved byte; the
	// breakpoint stays.
	patched := append([]byte(nil), before...)
	patched[7] = 0x90
	if _, err := f.m.WriteMemory(0, patched[7:8], addr+7); err != nil {
		t.Fatal(err)
	}
	f.m.ReadMemory(0, got, addr)
	if got[7] != 0x90 {
		t.Fatalf("read after write = %#x, want 0x90", got[7])
	}
	if f.m.mem.ram[addr+7] != f.m.plantByte() {
		t.Fatal("breakpoint lost after a write over it")
	}
	f.m.WriteMemory(0, before[7:8], addr+7)
	f.m.RemoveBreakpoint(addr)
	f.m.RemoveBreakpoint(addr + 7)
	if !bytes.Equal(f.m.mem.ram[addr:addr+16], before) {
		t.Fatal("memory not restored after removing breakpoints")
	}
}

func TestGuestWriteOverBreakpoint(t *testing.T) {
	f := newMech(t, 1)
	site := f.sym("patch_site")
	if err := f.m.InsertBreakpoint(site); err != nil {
		t.Fatal(err)
	}
	f.at(0, "case_selfmod")
	// The guest's movb writes 0x90 over our breakpoint: the breakpoint
	// still hits, and the instruction under it is now the guest's nop.
	s := f.cont()
	if s.Reason != vmm.ReasonBreakpoint || s.PC != site {
		t.Fatalf("got %v, want the breakpoint at patch_site", s)
	}
	var b [1]byte
	f.m.ReadMemory(0, b[:], site)
	if b[0] != 0x90 {
		t.Fatalf("guest's byte under the breakpoint = %#x, want 0x90", b[0])
	}
	if err := f.m.RemoveBreakpoint(site); err != nil {
		t.Fatal(err)
	}
	if f.m.mem.ram[site] != 0x90 {
		t.Fatalf("after removal memory has %#x, want the guest's 0x90", f.m.mem.ram[site])
	}
	// nop then hlt
	if s := f.cont(); s.Reason != vmm.ReasonHalted || s.PC != site+3 {
		t.Fatalf("got %v", s)
	}
}

func TestStepFromBreakpoint(t *testing.T) {
	f := newMech(t, 1)
	if err := f.m.InsertBreakpoint(f.sym("case_nops_2")); err != nil {
		t.Fatal(err)
	}
	f.at(0, "case_nops")
	f.wantStop(f.cont(), vmm.ReasonBreakpoint, "case_nops_2", 0)
	f.wantStop(f.step(0), vmm.ReasonStep, "case_nops_2", 1)
}

func TestHardwareBreakpoint(t *testing.T) {
	f := newMech(t, 1)
	if !f.m.host.HWBreakpoints {
		t.Skip("host has no hardware breakpoints")
	}
	f.setU64(f.sym("loop_count"), 3)
	bp := f.sym("loop_dec")
	if err := f.m.InsertHWBreakpoint(bp); err != nil {
		t.Fatal(err)
	}
	f.at(0, "case_loop")
	for i := 1; i <= 3; i++ {
		s := f.cont()
		if s.Reason != vmm.ReasonHWBreakpoint || s.PC != bp {
			t.Fatalf("hit %d: %v", i, s)
		}
		if c := f.u64(f.sym("counter")); c != uint64(i) {
			t.Fatalf("hit %d: counter = %d", i, c)
		}
	}
	// Slots are finite.
	for _, a := range []uint64{1, 2, 3} {
		if err := f.m.InsertHWBreakpoint(f.sym("case_nops") + a); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.m.InsertHWBreakpoint(f.sym("case_call")); !errors.Is(err, vmm.ErrNoSlots) {
		t.Fatalf("fifth slot: %v, want ErrNoSlots", err)
	}
	if err := f.m.RemoveHWBreakpoint(bp); err != nil {
		t.Fatal(err)
	}
	if s := f.cont(); s.Reason != vmm.ReasonHalted {
		t.Fatalf("got %v", s)
	}
}

func (f *fixture) pageWatch(sym string, off uint64, n int, acc vmm.Access) vmm.Watch {
	f.t.Helper()
	w := vmm.Watch{Addr: f.sym(sym) + off, Len: n, Access: acc, Kind: vmm.WatchPage}
	if err := f.m.InsertWatchpoint(w); err != nil {
		f.t.Fatal(err)
	}
	return w
}

func TestPageWatchWrite(t *testing.T) {
	f := newMech(t, 1)
	f.setU64(f.sym("watched"), 7)
	f.pageWatch("watched", 0, 8, vmm.AccessWrite)
	f.at(0, "case_write")
	s := f.cont()
	f.wantStop(s, vmm.ReasonWatchpoint, "case_write_after", 0)
	if s.Watch == nil || le64(s.Watch.Old) != 7 || le64(s.Watch.New) != 0x1234 || s.Watch.Access != vmm.AccessWrite {
		t.Fatalf("watch hit %+v", s.Watch)
	}
	// Writing the same value still stops.
	s = f.cont()
	f.wantStop(s, vmm.ReasonWatchpoint, "case_write_same_after", 0)
	if le64(s.Watch.Old) != 0x1234 || le64(s.Watch.New) != 0x1234 {
		t.Fatalf("same-value hit %+v", s.Watch)
	}
	if s := f.cont(); s.Reason != vmm.ReasonHalted {
		t.Fatalf("got %v", s)
	}
	if v := f.u64(f.sym("watched")); v != 0x1234 {
		t.Fatalf("watched = %#x: the emulated write was lost", v)
	}
}

func TestPageWatchReadAndNeighbours(t *testing.T) {
	f := newMech(t, 1)
	f.setU64(f.sym("watched"), 99)
	f.pageWatch("watched", 0, 8, vmm.AccessRead)
	f.at(0, "case_write")
	// Writes do not trigger a read watchpoint.
	f.setU64(f.sym("loop_count"), 1)
	f.at(0, "case_read")
	s := f.cont()
	f.wantStop(s, vmm.ReasonWatchpoint, "case_read_after", 0)
	if r, _ := f.m.Regs(0); r.RAX != 99 {
		t.Fatalf("emulated read loaded %d, want 99", r.RAX)
	}
	// A hot loop on the same page, outside the range: no stop, right sum.
	f.setU64(f.sym("loop_count"), 2000)
	f.at(0, "case_hot")
	if s := f.cont(); s.Reason != vmm.ReasonHalted {
		t.Fatalf("hot neighbour: %v", s)
	}
	if v := f.u64(f.sym("hot_var")); v != 2000 {
		t.Fatalf("hot_var = %d, want 2000", v)
	}
}

func TestPageWatchRepMovsPushStruct(t *testing.T) {
	f := newMech(t, 1)
	f.pageWatch("watched_buf", 8, 4, vmm.AccessWrite)
	f.at(0, "case_repwatch")
	s := f.cont()
	if s.Reason != vmm.ReasonWatchpoint || s.PC != f.sym("case_repwatch_insn") {
		t.Fatalf("rep movsb into the range: %v", s)
	}
	if s.Watch.Addr != f.sym("watched_buf")+8 {
		t.Fatalf("access at %#x, want watched_buf+8", s.Watch.Addr)
	}
	for s.Reason == vmm.ReasonWatchpoint {
		s = f.cont()
	}
	if s.Reason != vmm.ReasonHalted {
		t.Fatalf("got %v", s)
	}

	f.pageWatch("watched_stack", 248, 8, vmm.AccessWrite)
	f.at(0, "case_push")
	s = f.cont()
	f.wantStop(s, vmm.ReasonWatchpoint, "case_push_after", 0)
	if le64(s.Watch.New) != 0x55 {
		t.Fatalf("push hit %+v", s.Watch)
	}

	f.pageWatch("watched_struct", 0, 16, vmm.AccessWrite)
	f.at(0, "case_struct")
	s1, s2 := f.cont(), f.cont()
	if s1.Reason != vmm.ReasonWatchpoint || s2.Reason != vmm.ReasonWatchpoint {
		t.Fatalf("struct: %v, %v", s1, s2)
	}
	if s2.Watch.Addr != f.sym("watched_struct")+8 || len(s2.Watch.New) != 16 || s2.Watch.New[8] != 2 {
		t.Fatalf("second field hit %+v", s2.Watch)
	}
}

func TestStepReportsWatchpoint(t *testing.T) {
	f := newMech(t, 1)
	f.pageWatch("watched", 0, 8, vmm.AccessWrite)
	f.at(0, "case_write")
	s := f.step(0)
	f.wantStop(s, vmm.ReasonWatchpoint, "case_write_after", 0)
}

func TestPause(t *testing.T) {
	f := newMech(t, 1)
	f.at(0, "case_spin")
	f.runUntil("spinning", func() bool { return f.u64(f.sym("spin_count")) != 0 }) // each burst ends in a pause stop
	n := f.u64(f.sym("spin_count"))
	if n == 0 {
		t.Fatal("guest did not run")
	}
	// Paused means paused: memory does not move.
	if m := f.u64(f.sym("spin_count")); m != n {
		t.Fatal("guest still running after the pause stop")
	}
}

func TestAllStopTwoVCPUs(t *testing.T) {
	f := newMech(t, 2)
	f.setU64(f.sym("loop_count"), 200000)
	for i := 0; i < 2; i++ {
		f.at(i, "case_percpu")
		r, _ := f.m.Regs(i)
		r.RDI = uint64(i)
		f.m.SetRegs(i, r)
	}
	// vCPU 1 gets a breakpoint where vCPU 0 never goes: an address only
	// reachable when rdi == 1 does not exist, so use a page watch on
	// percpu[1] instead.
	w := vmm.Watch{Addr: f.sym("percpu") + 8, Len: 8, Access: vmm.AccessWrite, Kind: vmm.WatchPage}
	if err := f.m.InsertWatchpoint(w); err != nil {
		t.Fatal(err)
	}
	s := f.cont()
	if s.Reason != vmm.ReasonWatchpoint || s.VCPU != 1 {
		t.Fatalf("got %v, want vCPU 1's watchpoint", s)
	}
	// All stopped: vCPU 0's counter does not move.
	a := f.u64(f.sym("percpu"))
	time.Sleep(5 * time.Millisecond)
	if b := f.u64(f.sym("percpu")); a != b {
		t.Fatal("vCPU 0 still runs after an all-stop")
	}
	if err := f.m.RemoveWatchpoint(w); err != nil {
		t.Fatal(err)
	}
	f.setU64(f.sym("loop_count"), 0)
}

func TestWatchpointKinds(t *testing.T) {
	f := newMech(t, 1)
	kinds := f.m.WatchKinds()
	if kinds[len(kinds)-1].Kind != vmm.WatchPage {
		t.Fatalf("page protection not offered: %+v", kinds)
	}
	err := f.m.InsertWatchpoint(vmm.Watch{Addr: f.sym("watched"), Len: 8, Access: vmm.AccessWrite, Kind: vmm.WatchDebugReg})
	if f.m.host.DRWatch {
		if err != nil {
			t.Fatal(err)
		}
		f.at(0, "case_write")
		f.wantStop(f.cont(), vmm.ReasonWatchpoint, "case_write_after", 0)
	} else if !errors.Is(err, vmm.ErrUnsupported) {
		t.Fatalf("DR watchpoint on a host where they never fire: %v", err)
	}
	if err := f.m.InsertWatchpoint(vmm.Watch{Addr: f.sym("watched"), Len: 8, Access: vmm.AccessRead, Kind: vmm.WatchDebugReg}); err == nil {
		t.Fatal("read-only debug-register watchpoint accepted")
	}
}

// TestConcurrentStopBeforeExit: when one vCPU's watched write lets another
// vCPU end the guest in the same all-stop, the watchpoint is reported
// first and the exit on the next Continue (found on real AMD-V, where
// debug-register watchpoints race with the other vCPU).
func TestConcurrentStopBeforeExit(t *testing.T) {
	f := newMech(t, 2)
	m := f.m
	m.mu.Lock()
	m.state = stateStopped
	m.running = 2
	m.vcpus[0].busy, m.vcpus[1].busy = true, true
	m.collect(event{vcpu: 0, stop: vmm.Stop{VCPU: 0, Reason: vmm.ReasonExited, ExitCode: 1}})
	m.collect(event{vcpu: 1, stop: vmm.Stop{VCPU: 1, Reason: vmm.ReasonWatchpoint, PC: 0x1234}})
	m.mu.Unlock()
	s := f.wait()
	if s.Reason != vmm.ReasonWatchpoint || s.VCPU != 1 {
		t.Fatalf("first stop %v, want vCPU 1's watchpoint", s)
	}
	if err := m.Continue(); err != nil {
		t.Fatal(err)
	}
	if s := f.wait(); s.Reason != vmm.ReasonExited || s.ExitCode != 1 {
		t.Fatalf("second stop %v, want the exit", s)
	}
}

// TestBreakpointByLoadAddress: a kernel linked high is entered with paging
// off, so its high addresses map nowhere yet. A software breakpoint there
// goes where the image's PT_LOAD segment put the code, and is hit once the
// kernel has mapped itself; an alias of that byte shares it; an address no
// page table and no segment names is a fault.
func TestBreakpointByLoadAddress(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "higher")
	out := &syncBuffer{}
	m, err := New(Config{Image: g.Data, VCPUs: 1, Memory: 64 << 20, Serial: out, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f := &fixture{t: t, m: m, g: g, serial: out}
	const kernelVMA, aliasVMA = 0xffffffff80000000, 0xffffff0000000000
	sk := f.sym("start_kernel")
	if _, err := m.ReadMemory(0, make([]byte, 1), sk); err == nil {
		t.Fatal("start_kernel is readable at the entry: the guest does not test what it should")
	}
	if err := m.InsertBreakpoint(sk); err != nil {
		t.Fatalf("breakpoint on start_kernel before paging: %v", err)
	}
	if err := m.InsertBreakpoint(sk - kernelVMA); err != nil { // its physical alias, identity-mapped now
		t.Fatal(err)
	}
	if len(m.dbg.sw) != 1 {
		t.Fatalf("%d breakpoint bytes for two aliases, want 1", len(m.dbg.sw))
	}
	if err := m.RemoveBreakpoint(sk - kernelVMA); err != nil {
		t.Fatal(err)
	}
	var fe *vmm.FaultError
	if err := m.InsertBreakpoint(f.sym("module_init") - kernelVMA + aliasVMA); !errors.As(err, &fe) {
		t.Fatalf("breakpoint at an address nothing maps: %v, want a FaultError", err)
	}
	if s := f.cont(); s.Reason != vmm.ReasonBreakpoint || s.PC != sk {
		t.Fatalf("got %v, want the breakpoint at start_kernel %#x", s, sk)
	}
	if err := m.RemoveBreakpoint(sk); err != nil {
		t.Fatal(err)
	}
	if s := f.cont(); s.Reason != vmm.ReasonExited || s.ExitCode != 0x30<<1|1 {
		t.Fatalf("got %v, want the guest's exit 0x30 (serial %q)", s, out.String())
	}
}

// TestPageWatchReadRefusedWhereTheCPUReads: reads cannot be trapped on a
// page holding code, page tables or a descriptor table (KVM cannot fetch,
// walk or deliver an interrupt through a page in no memslot); the refusal is an ErrUnsupported that says why,
// and a write watch on the same bytes is placed.
func TestPageWatchReadRefusedWhereTheCPUReads(t *testing.T) {
	f := newMech(t, 1)
	sr, err := f.m.SRegs(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr uint64
		why  string
	}{
		{f.sym("case_read"), "holds the image's code"},
		{sr.CR3 &^ 0xfff, "holds page tables of vCPU 0"},
		{sr.GDT.Base, "holds the GDT of vCPU 0"},
	} {
		for _, acc := range []vmm.Access{vmm.AccessRead, vmm.AccessReadWrite} {
			err := f.m.InsertWatchpoint(vmm.Watch{Addr: c.addr, Len: 4, Access: acc, Kind: vmm.WatchPage})
			if !errors.Is(err, vmm.ErrUnsupported) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("%s watch at %#x: %v", acc, c.addr, err)
			}
		}
		w := vmm.Watch{Addr: c.addr, Len: 4, Access: vmm.AccessWrite, Kind: vmm.WatchPage}
		if err := f.m.InsertWatchpoint(w); err != nil {
			t.Fatalf("write watch at %#x: %v", c.addr, err)
		}
		if err := f.m.RemoveWatchpoint(w); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKernelGSBase: SRegs reads IA32_KERNEL_GS_BASE (KVM_GET_MSRS) and
// SetSRegs writes it (KVM_SET_MSRS), apart from GS's own base.
func TestKernelGSBase(t *testing.T) {
	f := newMech(t, 1)
	s, err := f.m.SRegs(0)
	if err != nil {
		t.Fatal(err)
	}
	const k = 0xffff888012345000
	gs := s.GS.Base
	s.KernelGSBase = k
	if err := f.m.SetSRegs(0, s); err != nil {
		t.Fatal(err)
	}
	if s, err = f.m.SRegs(0); err != nil || s.KernelGSBase != k || s.GS.Base != gs {
		t.Fatalf("after SetSRegs: kernel GS base %#x, GS base %#x (%v); want %#x and %#x", s.KernelGSBase, s.GS.Base, err, uint64(k), gs)
	}
	// It stays the guest's across a run.
	f.at(0, "case_spin")
	f.runUntil("spinning", func() bool { return f.u64(f.sym("spin_count")) != 0 })
	if s, err = f.m.SRegs(0); err != nil || s.KernelGSBase != k {
		t.Fatalf("after a run: kernel GS base %#x (%v), want %#x", s.KernelGSBase, err, uint64(k))
	}
}
