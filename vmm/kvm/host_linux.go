//go:build linux && amd64

package kvm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"vmdap/vmm"
	"vmdap/vmm/kvm/internal/kvmsys"
)

// DevicePath is the KVM device.
const DevicePath = "/dev/kvm"

// AccessError explains why /dev/kvm cannot be used, with the fix.
type AccessError struct {
	Err error
	Fix string
}

func (e *AccessError) Error() string { return fmt.Sprintf("%v (%s)", e.Err, e.Fix) }
func (e *AccessError) Unwrap() error { return e.Err }

func openKVM() (*os.File, error) {
	f, err := os.OpenFile(DevicePath, os.O_RDWR|syscallOCloexec, 0)
	if err == nil {
		return f, nil
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &AccessError{Err: err, Fix: "this machine has no KVM: enable virtualization (VT-x/AMD-V, or nested virtualization in a VM) and load kvm_intel or kvm_amd"}
	case errors.Is(err, fs.ErrPermission):
		return nil, &AccessError{Err: err, Fix: "add your user to the kvm group (sudo usermod -aG kvm $USER, then log in again), or: sudo chgrp kvm /dev/kvm && sudo chmod 660 /dev/kvm"}
	}
	return nil, err
}

// Vendor names the flavour of KVM: "Intel VMX", "AMD SVM", "PVM" or
// "unknown", from the loaded modules and the CPU flags.
func detectVendor() (vendor, module string) {
	for _, c := range []struct{ mod, name string }{
		{"kvm_pvm", "PVM"}, {"kvm_intel", "Intel VMX"}, {"kvm_amd", "AMD SVM"},
	} {
		if _, err := os.Stat("/sys/module/" + c.mod); err == nil {
			return c.name, c.mod
		}
	}
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "flags") {
			continue
		}
		f := " " + line + " "
		switch {
		case strings.Contains(f, " vmx "):
			return "Intel VMX", "kvm_intel"
		case strings.Contains(f, " svm "):
			return "AMD SVM", "kvm_amd"
		}
		break
	}
	return "unknown", ""
}

type swbpMethod uint8

const (
	swbpNone      swbpMethod = iota
	swbpInt3Exit             // int3 → KVM_EXIT_DEBUG #BP (VT-x, AMD-V)
	swbpEmulation            // int3 → KVM_EXIT_INTERNAL_ERROR at the breakpoint (emulated CPL0, e.g. PVM)
	swbpHLT                  // hlt patch → KVM_EXIT_HLT after the breakpoint (int3 lost on the host)
)

func (s swbpMethod) String() string {
	return [...]string{"none", "int3 (KVM_EXIT_DEBUG #BP)", "int3 (emulation-failure exit)", "hlt patch (KVM_EXIT_HLT)"}[s]
}

type hwResume uint8

const (
	hwResumeStep hwResume = iota // disable the slot, step, re-arm
	hwResumeRF                   // RFLAGS.RF
)

func (h hwResume) String() string {
	if h == hwResumeRF {
		return "RFLAGS.RF"
	}
	return "disable-step-rearm"
}

// HostInfo is what vmdap found out about the host's KVM.
type HostInfo struct {
	Vendor     string
	Module     string
	APIVersion int
	MaxVCPUs   int
	Memslots   int
	GuestDbg2  uint32 // KVM_CAP_SET_GUEST_DEBUG2 mask

	SyncRegs      bool
	ImmediateExit bool
	ReadOnlyMem   bool
	BlockIRQ      bool
	InjectBP      bool

	// Probed on a tiny guest.
	SWBreakpoint    swbpMethod
	HWBreakpoints   bool
	HWResume        hwResume
	DRWatch         bool
	StepWorks       bool
	IOExitAtInsn    bool // an OUT exit reports RIP at the OUT (VT-x, AMD-V) rather than after it
	StepKeptOnWrite bool // single-step survives a KVM_SET_REGS (PVM); vmdap re-arms anyway
	// CPUIDHidden lists the supported CPUID features whose instructions
	// failed at ring 0 in the probe guest: the guest is not offered them.
	CPUIDHidden []HiddenFeature
	CPUIDProbed int // instructions tried
	// MaxBasicLeaf, when not 0, is the lowered maximum basic CPUID leaf:
	// the host showed hidden leaf-7 features whatever KVM was told.
	MaxBasicLeaf uint32
	// Ring0Gaps lists baseline instructions (no CPUID bit) that failed.
	Ring0Gaps []Ring0Gap
	// SYSCALL from guest ring 3 (probe_syscall_linux.go): does it reach
	// ring 0? SyscallWhy says what happened when it does not.
	SyscallProbed, SyscallWorks bool
	SyscallWhy                  string
	// Paging turned on outside long mode (probe_paging_linux.go).
	LegacyPagingProbed bool
	Paging32           bool // 32-bit paging with 4 MiB pages (CR4.PSE)
	PAE32              bool // PAE paging with EFER.LME clear
	// Our int3 in real mode (probe_realmode_linux.go): does it reach the
	// VMM? RealModeWhy says what happened when it does not.
	RealModeProbed, RealModeInt3 bool
	RealModeWhy                  string
	ProbeDurationUS              int64
}

// Capabilities names the strategies the probe picked and what a user of
// this host should know; which mechanisms a machine offers is its
// accessors' answer (SWBreakpoints(), HWBreakpoints(), …).
// EmulatesRing0 reports whether the probe found guest ring 0 run by
// KVM's instruction emulator (an int3 there is an emulation failure, as
// on KVM's PVM flavour): millions of instructions a second, where a
// kernel's boot takes minutes.
func (h *HostInfo) EmulatesRing0() bool { return h.SWBreakpoint == swbpEmulation }

func (h *HostInfo) Capabilities() vmm.Capabilities {
	c := vmm.Capabilities{
		Backend:            "kvm",
		Host:               h.Vendor,
		SWBreakpointMethod: h.SWBreakpoint.String(),
		HWResumeMethod:     h.HWResume.String(),
		StepMethod:         "KVM_GUESTDBG_SINGLESTEP",
	}
	if h.BlockIRQ {
		c.StepMethod += " + BLOCKIRQ"
	}
	if h.Vendor == "PVM" {
		c.Notes = append(c.Notes, "guest ring-0 code is emulated by KVM on this host; ring-3 guest code runs natively and is invisible to breakpoints, stepping and watchpoints")
	}
	if !h.DRWatch {
		c.Notes = append(c.Notes, "debug-register data watchpoints do not fire on this host; watchpoints use page protection")
	}
	if len(h.CPUIDHidden) > 0 {
		c.Notes = append(c.Notes, "the guest's CPUID hides what this host cannot run at ring 0 (vmdap check says why): "+strings.Join(h.hiddenNames(), " "))
	}
	if h.MaxBasicLeaf != 0 {
		c.Notes = append(c.Notes, fmt.Sprintf("this host's CPUID shows its own leaf-7 features whatever KVM_SET_CPUID2 says: the guest's maximum basic CPUID leaf is %d", h.MaxBasicLeaf))
	}
	if cl := h.LinuxClearCPUID(); len(cl) > 0 {
		c.Notes = append(c.Notes, "this host's CPUID shows some of those whatever KVM_SET_CPUID2 says: a Linux guest gets clearcpuid="+strings.Join(cl, ","))
	}
	for _, g := range h.Ring0Gaps {
		c.Notes = append(c.Notes, fmt.Sprintf("this host cannot run %s at ring 0 and it has no CPUID bit: %s", g.Insn, g.Note))
	}
	if h.SyscallProbed && !h.SyscallWorks {
		c.Notes = append(c.Notes, "a system call from guest ring 3 does not reach ring 0 on this host ("+h.SyscallWhy+"): "+syscallNote)
	}
	if h.LegacyPagingProbed && (!h.Paging32 || !h.PAE32) {
		c.Notes = append(c.Notes, h.legacyPagingNote())
	}
	if h.RealModeProbed && !h.RealModeInt3 {
		c.Notes = append(c.Notes, h.realModeNote())
	}
	return c
}

// SoftwareBreakpoints says whether a machine on this host offers software
// breakpoints, with or without an in-kernel irqchip (a hlt-patch
// breakpoint cannot work with one).
func (h *HostInfo) SoftwareBreakpoints(irqchip bool) bool {
	return h.SWBreakpoint != swbpNone && !(irqchip && h.SWBreakpoint == swbpHLT)
}

// Lines renders the host facts for `vmdap check`.
func (h *HostInfo) Lines() []string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	l := []string{
		fmt.Sprintf("KVM flavour: %s (module %s), API version %d", h.Vendor, orNone(h.Module), h.APIVersion),
		fmt.Sprintf("max vCPUs: %d, memslots: %d", h.MaxVCPUs, h.Memslots),
		fmt.Sprintf("KVM_CAP_SET_GUEST_DEBUG2: %#x (BLOCKIRQ %s, INJECT_BP %s)", h.GuestDbg2, yes(h.BlockIRQ), yes(h.InjectBP)),
		fmt.Sprintf("sync regs: %s, immediate exit: %s, read-only memslots: %s", yes(h.SyncRegs), yes(h.ImmediateExit), yes(h.ReadOnlyMem)),
		"software breakpoints: " + h.SWBreakpoint.String() + pick(h.SoftwareBreakpoints(true), "", " (none with \"irqchip\": debug registers only)"),
		"step of a hlt with \"irqchip\": " + pick(h.SoftwareBreakpoints(true), "waits for the interrupt and runs its handler", "a bare step (the interrupt is held until the next continue)"),
		fmt.Sprintf("hardware breakpoints: %s, resume by %s", yes(h.HWBreakpoints), h.HWResume),
		"debug-register watchpoints fire: " + yes(h.DRWatch) + pick(h.DRWatch, "", " (page-protection watchpoints are used)"),
		"single-step: " + yes(h.StepWorks),
		"OUT exit reports RIP: " + pick(h.IOExitAtInsn, "at the instruction", "after the instruction") + " (vmdap completes I/O with immediate_exit either way)",
		"single-step survives a register write: " + yes(h.StepKeptOnWrite) + " (vmdap re-arms after every write either way)",
	}
	if len(h.CPUIDHidden) == 0 {
		l = append(l, fmt.Sprintf("guest CPUID: KVM_GET_SUPPORTED_CPUID as is (%d ring-0 instructions of its features probed, all run)", h.CPUIDProbed))
	} else {
		l = append(l, fmt.Sprintf("guest CPUID: KVM_GET_SUPPORTED_CPUID minus %d feature(s) whose instructions this host cannot run at ring 0 (%d probed):", len(h.CPUIDHidden), h.CPUIDProbed))
		for _, f := range h.CPUIDHidden {
			l = append(l, "  hides "+f.String()+"; "+f.Bit)
		}
		if h.MaxBasicLeaf != 0 {
			l = append(l, fmt.Sprintf("  the host's CPUID shows its own leaf-7 features whatever KVM_SET_CPUID2 says: the guest's maximum basic leaf is lowered to %d, so leaf 7 and above are gone", h.MaxBasicLeaf))
		}
		if cl := h.LinuxClearCPUID(); len(cl) > 0 {
			l = append(l, "  the guest's CPUID still shows "+strings.Join(cl, " ")+" whatever KVM_SET_CPUID2 says: vmdap adds clearcpuid="+strings.Join(cl, ",")+" to a Linux kernel's command line")
		}
	}
	for _, g := range h.Ring0Gaps {
		l = append(l, fmt.Sprintf("ring-0 instruction %s fails (%s) and has no CPUID bit to hide: %s", g.Insn, g.Why, g.Note))
	}
	if h.SyscallProbed {
		l = append(l, "syscall from guest ring 3 reaches ring 0: "+pick(h.SyscallWorks, "yes", "NO ("+h.SyscallWhy+"): "+syscallNote))
	}
	if n := h.legacyPagingNote(); n != "" {
		l = append(l, n)
	}
	if n := h.realModeNote(); n != "" {
		l = append(l, n)
	}
	l = append(l, fmt.Sprintf("probe took %d µs", h.ProbeDurationUS))
	return l
}

// syscallNote says what a broken ring-3 SYSCALL means for a guest.
const syscallNote = "a kernel's user space cannot make system calls here (Linux's /init dies at entry_SYSCALL_64); its kernel boots up to there"

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func pick(b bool, y, n string) string {
	if b {
		return y
	}
	return n
}

func (h *HostInfo) readCaps(kvm int) {
	h.APIVersion, _ = kvmsys.APIVersion(kvm)
	h.MaxVCPUs = kvmsys.CheckExtension(kvm, kvmsys.KVM_CAP_MAX_VCPUS)
	if h.MaxVCPUs <= 0 {
		h.MaxVCPUs = kvmsys.CheckExtension(kvm, kvmsys.KVM_CAP_NR_VCPUS)
	}
	if h.MaxVCPUs <= 0 {
		h.MaxVCPUs = 1
	}
	if h.MaxVCPUs > 64 {
		h.MaxVCPUs = 64
	}
	h.Memslots = kvmsys.CheckExtension(kvm, kvmsys.KVM_CAP_NR_MEMSLOTS)
	h.GuestDbg2 = uint32(kvmsys.CheckExtension(kvm, kvmsys.KVM_CAP_SET_GUEST_DEBUG2))
	h.SyncRegs = kvmsys.CheckExtension(kvm, kvmsys.KVM_CAP_SYNC_REGS)&(kvmsys.KVM_SYNC_X86_REGS|kvmsys.KVM_SYNC_X86_SREGS) == kvmsys.KVM_SYNC_X86_REGS|kvmsys.KVM_SYNC_X86_SREGS
	h.ImmediateExit = kvmsys.CheckExtension(kvm, kvmsys.KVM_CAP_IMMEDIATE_EXIT) > 0
	h.ReadOnlyMem = kvmsys.CheckExtension(kvm, kvmsys.KVM_CAP_READONLY_MEM) > 0
	h.BlockIRQ = h.GuestDbg2&kvmsys.KVM_GUESTDBG_BLOCKIRQ != 0
	h.InjectBP = h.GuestDbg2&kvmsys.KVM_GUESTDBG_INJECT_BP != 0
}
