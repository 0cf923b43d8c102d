//go:build linux && amd64

package kvm

import (
	"encoding/binary"
	"strings"
	"testing"

	"vmdap/vmm"
	"vmdap/vmm/kvm/boot"
	"vmdap/vmm/vmmtest"
)

// newStub loads testdata/guests/lmjump (a Multiboot 32-bit stub that
// enables paging and far-jumps into long mode through a GDT in its own
// code page), stopped at its entry.
func newStub(t *testing.T) *fixture {
	t.Helper()
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "lmjump")
	out := &syncBuffer{}
	m, err := New(Config{Image: g.Data, Memory: 16 << 20, Serial: out, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &fixture{t: t, m: m, g: g, serial: out}
}

// A software breakpoint write-protects its page. When that page holds the
// GDT (as in most Multiboot stubs), the far jump's write of the code
// descriptor's accessed bit must still complete: KVM's emulator cannot
// write it to a read-only memslot and used to retry the ljmp for ever.
func TestLongModeJumpWithSoftwareBreakpoint(t *testing.T) {
	f := newStub(t)
	if err := f.m.InsertBreakpoint(f.sym("in_long_mode")); err != nil {
		t.Fatal(err)
	}
	f.wantStop(f.cont(), vmm.ReasonBreakpoint, "in_long_mode", 0)
	s, _ := f.m.SRegs(0)
	if !s.CS.L || s.CS.Selector != 8 {
		t.Fatalf("CS after the far jump: %+v, want the 64-bit code segment", s.CS)
	}
	if err := f.m.RemoveBreakpoint(f.sym("in_long_mode")); err != nil {
		t.Fatal(err)
	}
	if s := f.cont(); s.Reason != vmm.ReasonExited || s.ExitCode != 0x31 {
		t.Fatalf("run to the end: %v", s)
	}
}

// Stepping the far jump (and resuming from a breakpoint on it) with the
// page write-protected moves into long mode.
func TestLongModeJumpStep(t *testing.T) {
	f := newStub(t)
	if err := f.m.InsertBreakpoint(f.sym("far_jump")); err != nil {
		t.Fatal(err)
	}
	f.wantStop(f.cont(), vmm.ReasonBreakpoint, "far_jump", 0)
	f.wantStop(f.step(0), vmm.ReasonStep, "entry64", 0)
	f.wantStop(f.step(0), vmm.ReasonStep, "load_ds", 0)
	f.wantStop(f.step(0), vmm.ReasonStep, "load_ds", 2) // mov %ax,%ds loads the data descriptor
	// A stepped segment load sees what the CPU writes: the descriptors
	// it loaded are marked accessed. (A free run under kvm_amd completes
	// the jump and leaves the bit clear: measured in the AMD lane.)
	for _, sel := range []uint64{8, 16} {
		if d := f.u64(f.sym("gdt") + sel); d>>40&1 == 0 {
			t.Fatalf("descriptor %#x = %#x: accessed bit clear after a step loaded it", sel, d)
		}
	}
	if s := f.cont(); s.Reason != vmm.ReasonExited || s.ExitCode != 0x31 {
		t.Fatalf("run to the end: %v", s)
	}
	// Resume from a breakpoint on the ljmp itself (step off it, then run).
	f = newStub(t)
	if err := f.m.InsertBreakpoint(f.sym("far_jump")); err != nil {
		t.Fatal(err)
	}
	f.wantStop(f.cont(), vmm.ReasonBreakpoint, "far_jump", 0)
	if s := f.cont(); s.Reason != vmm.ReasonExited || s.ExitCode != 0x31 {
		t.Fatalf("continue from the ljmp: %v", s)
	}
}

// A page watchpoint on the GDT's page (write-protected the same way) sees
// the guest's write after the jump, and nothing before.
func TestLongModeJumpWithWatchOnGDTPage(t *testing.T) {
	f := newStub(t)
	w := vmm.Watch{Addr: f.sym("marker"), Len: 4, Access: vmm.AccessWrite, Kind: vmm.WatchPage}
	if err := f.m.InsertWatchpoint(w); err != nil {
		t.Fatal(err)
	}
	s := f.cont()
	if s.Reason != vmm.ReasonWatchpoint || s.Watch == nil || s.Watch.Addr != f.sym("marker") {
		t.Fatalf("got %v, want the write to marker", s)
	}
	if got := binary.LittleEndian.Uint32(s.Watch.New); got != 0x600df00d {
		t.Fatalf("new value %#x", got)
	}
}

// The 32-bit xv6's entry (testdata/guests/paging32): CR4.PSE, a page
// directory of 4 MiB pages, CR0.PG without long mode. It boots where the
// probe says the host runs 32-bit paging; elsewhere (PVM runs only 64-bit
// paging) it triple-faults on the CR0 write and the stop says why.
func TestPaging32(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "paging32") // the Multiboot header boots the ELF64 form too
	m, err := New(Config{Image: g.Data, Memory: 16 << 20, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f := &fixture{t: t, m: m, g: g}
	h := m.Host()
	if !h.LegacyPagingProbed {
		t.Fatal("the host probe did not try paging outside long mode")
	}
	s := f.cont()
	if h.Paging32 {
		if s.Reason != vmm.ReasonExited || s.ExitCode != 0x41 {
			t.Fatalf("host runs 32-bit paging, but the guest stopped with %v", s)
		}
		return
	}
	t.Logf("%s: %s", h.Vendor, h.legacyPagingNote())
	// Paging is off: the PC is the physical address of the label (linked
	// at 0x80000000 + physical).
	if at := f.sym("enable_paging") - 0x80000000; s.Reason != vmm.ReasonShutdown || s.PC != at {
		t.Fatalf("got %v, want a triple fault at enable_paging (%#x)", s, at)
	}
	for _, want := range []string{"32-bit paging with 4 MiB pages", "outside long mode", h.Vendor, "vmdap check", `hypervisor "qemu"`} {
		if !strings.Contains(s.Detail, want) {
			t.Fatalf("stop detail %q does not say %q", s.Detail, want)
		}
	}
	found := false
	for _, l := range h.Lines() {
		found = found || strings.Contains(l, "32-bit paging (4 MiB pages) NO")
	}
	if !found {
		t.Fatalf("vmdap check lines do not state it: %q", h.Lines())
	}
}

// A Multiboot 2 kernel (testdata/guests/mb2: only a Multiboot 2 header)
// boots with boot "auto": EAX holds the Multiboot 2 magic, EBX the
// information structure, whose tags it reads back on COM1.
func TestBootMultiboot2(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, "mb2")
	out := &syncBuffer{}
	m, err := New(Config{Image: g.Data, Memory: 64 << 20, Cmdline: "console=ttyS0 mb2=yes", Serial: out, Log: testLogger(),
		Modules: []boot.Module{{Data: []byte("INITRD-0123456789"), Cmdline: "initrd.img rw"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f := &fixture{t: t, m: m, g: g}
	// Entered in 32-bit protected mode without paging, as the spec says.
	s, _ := m.SRegs(0)
	r, _ := m.Regs(0)
	if s.CR0&1 == 0 || s.CR0&(1<<31) != 0 || s.CS.L || !s.CS.DB || r.RIP != f.sym("entry32") || r.RAX != 0x36d76289 || r.RFLAGS&(1<<9) != 0 {
		t.Fatalf("entry state: rip %#x eax %#x eflags %#x cr0 %#x cs %+v", r.RIP, r.RAX, r.RFLAGS, s.CR0, s.CS)
	}
	st := f.cont()
	if st.Reason != vmm.ReasonExited || st.ExitCode != 0x12<<1|1 {
		t.Fatalf("%v, output %q", st, out.String())
	}
	o := out.String()
	t.Logf("guest output:\n%s", o)
	for _, want := range []string{
		"mb2 magic=0x0000000036d76289",
		"cmdline=console=ttyS0 mb2=yes\n",
		"loader=vmdap\n",
		"mem_lower=640 mem_upper=64512\n",
		"mmap entries=3 ram=65151K\n", // 0x9fc00 + 63 MiB
		"len=17 string=initrd.img rw data=INITRD-0\n",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
}
