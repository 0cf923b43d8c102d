//go:build linux && amd64

package kvmsys

import (
	"sync/atomic"
	"unsafe"
)

// RunPage is a vCPU's mmap'd struct kvm_run.
type RunPage []byte

func (r RunPage) at(off int) unsafe.Pointer { return unsafe.Pointer(&r[off]) }

// ExitReason returns kvm_run.exit_reason.
func (r RunPage) ExitReason() uint32 { return *(*uint32)(r.at(runExitReason)) }

// SetImmediateExit writes kvm_run.immediate_exit. It may be called from any
// thread; the kernel reads the byte once when KVM_RUN starts.
func (r RunPage) SetImmediateExit(v bool) {
	// An aligned 32-bit atomic store covering bytes 0-3: byte 0
	// (request_interrupt_window) is always 0 for vmdap, bytes 2-3 are
	// padding.
	var w uint32
	if v {
		w = 1 << 8
	}
	atomic.StoreUint32((*uint32)(r.at(0)), w)
}

// IO returns kvm_run.io.
func (r RunPage) IO() *IOExit { return (*IOExit)(r.at(runUnion)) }

// IOData returns the data buffer of an IO exit.
func (r RunPage) IOData() []byte {
	io := r.IO()
	n := int(io.Size) * int(io.Count)
	off := int(io.DataOffset)
	if off <= 0 || off+n > len(r) {
		return nil
	}
	return r[off : off+n]
}

// MMIO returns kvm_run.mmio.
func (r RunPage) MMIO() *MMIOExit { return (*MMIOExit)(r.at(runUnion)) }

// Debug returns kvm_run.debug.arch.
func (r RunPage) Debug() *DebugExit { return (*DebugExit)(r.at(runUnion)) }

// Internal returns kvm_run.internal.
func (r RunPage) Internal() *InternalExit { return (*InternalExit)(r.at(runUnion)) }

// FailEntryReason returns kvm_run.fail_entry.hardware_entry_failure_reason.
func (r RunPage) FailEntryReason() uint64 { return *(*uint64)(r.at(runUnion)) }

// SetValidRegs writes kvm_run.kvm_valid_regs.
func (r RunPage) SetValidRegs(v uint64) { *(*uint64)(r.at(runValidRegs)) = v }

// SetDirtyRegs writes kvm_run.kvm_dirty_regs.
func (r RunPage) SetDirtyRegs(v uint64) { *(*uint64)(r.at(runDirtyRegs)) = v }

// DirtyRegs reads kvm_run.kvm_dirty_regs.
func (r RunPage) DirtyRegs() uint64 { return *(*uint64)(r.at(runDirtyRegs)) }

// SyncRegs returns kvm_run.s.regs.regs.
func (r RunPage) SyncRegs() *Regs { return (*Regs)(r.at(runSyncRegs)) }

// SyncSRegs returns kvm_run.s.regs.sregs.
func (r RunPage) SyncSRegs() *SRegs { return (*SRegs)(r.at(runSyncRegs + 144)) }

// Sizes of the mirrored structs, for the layout test.
var Sizes = map[string]uintptr{
	"kvm_regs":                    unsafe.Sizeof(Regs{}),
	"kvm_sregs":                   unsafe.Sizeof(SRegs{}),
	"kvm_segment":                 unsafe.Sizeof(Segment{}),
	"kvm_dtable":                  unsafe.Sizeof(DTable{}),
	"kvm_guest_debug":             unsafe.Sizeof(GuestDebug{}),
	"kvm_debugregs":               unsafe.Sizeof(DebugRegs{}),
	"kvm_vcpu_events":             unsafe.Sizeof(VCPUEvents{}),
	"kvm_userspace_memory_region": unsafe.Sizeof(UserspaceMemoryRegion{}),
	"kvm_cpuid_entry2":            unsafe.Sizeof(CPUIDEntry2{}),
	"kvm_msi":                     unsafe.Sizeof(MSI{}),
	"kvm_irq_level":               unsafe.Sizeof(IRQLevel{}),
	"kvm_irqchip":                 unsafe.Sizeof(IRQChip{}),
	"kvm_fpu":                     unsafe.Sizeof(FPU{}),
	"kvm_xsave":                   unsafe.Sizeof(XSave{}),
	"kvm_msrs+1":                  unsafe.Sizeof(MSRs{}),
	"kvm_msr_entry":               unsafe.Sizeof(MSREntry{}),
}

// Offsets of fields the layout test checks.
var Offsets = map[string]uintptr{
	"kvm_sregs.gdt":                     unsafe.Offsetof(SRegs{}.GDT),
	"kvm_sregs.idt":                     unsafe.Offsetof(SRegs{}.IDT),
	"kvm_sregs.cr0":                     unsafe.Offsetof(SRegs{}.CR0),
	"kvm_sregs.efer":                    unsafe.Offsetof(SRegs{}.EFER),
	"kvm_guest_debug.debugreg":          unsafe.Offsetof(GuestDebug{}.DebugReg),
	"kvm_vcpu_events.flags":             unsafe.Offsetof(VCPUEvents{}.Flags),
	"kvm_vcpu_events.exception_payload": unsafe.Offsetof(VCPUEvents{}.ExceptionPayload),
	"kvm_run.io.data_offset":            runUnion + unsafe.Offsetof(IOExit{}.DataOffset),
	"kvm_run.mmio.len":                  runUnion + unsafe.Offsetof(MMIOExit{}.Len),
	"kvm_run.mmio.is_write":             runUnion + unsafe.Offsetof(MMIOExit{}.IsWrite),
	"kvm_run.debug.arch.dr6":            runUnion + unsafe.Offsetof(DebugExit{}.DR6),
	"kvm_run.internal.data":             runUnion + unsafe.Offsetof(InternalExit{}.Data),
}
