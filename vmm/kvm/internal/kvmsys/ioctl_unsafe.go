//go:build linux && amd64

package kvmsys

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl issues one ioctl with a pointer argument. A signal (Go's
// preemption sends them) can interrupt a slow one, such as KVM_CREATE_VM
// on a nested host, before it did anything: EINTR is retried. KVM_RUN,
// whose EINTR means something, goes through Run instead.
func ioctl(fd int, req uintptr, arg unsafe.Pointer) (uintptr, error) {
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		switch e {
		case 0:
			return r, nil
		case unix.EINTR:
			continue
		}
		return r, e
	}
}

// ioctlVal issues one ioctl with an integer argument (EINTR retried).
func ioctlVal(fd int, req uintptr, arg uintptr) (uintptr, error) {
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		switch e {
		case 0:
			return r, nil
		case unix.EINTR:
			continue
		}
		return r, e
	}
}

func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// APIVersion issues KVM_GET_API_VERSION on /dev/kvm.
func APIVersion(kvm int) (int, error) {
	r, err := ioctlVal(kvm, KVM_GET_API_VERSION, 0)
	return int(r), wrap("KVM_GET_API_VERSION", err)
}

// CheckExtension issues KVM_CHECK_EXTENSION on /dev/kvm or a VM fd.
func CheckExtension(fd int, cap int) int {
	r, err := ioctlVal(fd, KVM_CHECK_EXTENSION, uintptr(cap))
	if err != nil {
		return 0
	}
	return int(r)
}

// CreateVM issues KVM_CREATE_VM (machine type 0) and returns the VM fd.
func CreateVM(kvm int) (int, error) {
	r, err := ioctlVal(kvm, KVM_CREATE_VM, 0)
	return int(r), wrap("KVM_CREATE_VM", err)
}

// VCPUMmapSize issues KVM_GET_VCPU_MMAP_SIZE.
func VCPUMmapSize(kvm int) (int, error) {
	r, err := ioctlVal(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)
	return int(r), wrap("KVM_GET_VCPU_MMAP_SIZE", err)
}

// CreateVCPU issues KVM_CREATE_VCPU on a VM fd.
func CreateVCPU(vm int, id int) (int, error) {
	r, err := ioctlVal(vm, KVM_CREATE_VCPU, uintptr(id))
	return int(r), wrap("KVM_CREATE_VCPU", err)
}

// SetTSSAddr issues KVM_SET_TSS_ADDR.
func SetTSSAddr(vm int, addr uint64) error {
	_, err := ioctlVal(vm, KVM_SET_TSS_ADDR, uintptr(addr))
	return wrap("KVM_SET_TSS_ADDR", err)
}

// SetUserMemoryRegion issues KVM_SET_USER_MEMORY_REGION.
func SetUserMemoryRegion(vm int, r *UserspaceMemoryRegion) error {
	_, err := ioctl(vm, KVM_SET_USER_MEMORY_REGION, unsafe.Pointer(r))
	return wrap("KVM_SET_USER_MEMORY_REGION", err)
}

// HostAddr returns the userspace address of the first byte of mem, for
// UserspaceMemoryRegion.UserspaceAddr.
func HostAddr(mem []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&mem[0]))) }

// Run issues KVM_RUN. It returns the raw errno (EINTR matters).
func Run(vcpu int) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(vcpu), KVM_RUN, 0)
	if e != 0 {
		return e
	}
	return nil
}

// GetRegs issues KVM_GET_REGS.
func GetRegs(vcpu int, r *Regs) error {
	_, err := ioctl(vcpu, KVM_GET_REGS, unsafe.Pointer(r))
	return wrap("KVM_GET_REGS", err)
}

// SetRegs issues KVM_SET_REGS.
func SetRegs(vcpu int, r *Regs) error {
	_, err := ioctl(vcpu, KVM_SET_REGS, unsafe.Pointer(r))
	return wrap("KVM_SET_REGS", err)
}

// GetSRegs issues KVM_GET_SREGS.
func GetSRegs(vcpu int, s *SRegs) error {
	_, err := ioctl(vcpu, KVM_GET_SREGS, unsafe.Pointer(s))
	return wrap("KVM_GET_SREGS", err)
}

// SetSRegs issues KVM_SET_SREGS.
func SetSRegs(vcpu int, s *SRegs) error {
	_, err := ioctl(vcpu, KVM_SET_SREGS, unsafe.Pointer(s))
	return wrap("KVM_SET_SREGS", err)
}

// SetGuestDebug issues KVM_SET_GUEST_DEBUG.
func SetGuestDebug(vcpu int, d *GuestDebug) error {
	_, err := ioctl(vcpu, KVM_SET_GUEST_DEBUG, unsafe.Pointer(d))
	return wrap("KVM_SET_GUEST_DEBUG", err)
}

// GetMSR reads one MSR with KVM_GET_MSRS.
func GetMSR(vcpu int, index uint32) (uint64, error) {
	m := MSRs{NMSRs: 1, Entry: MSREntry{Index: index}}
	n, err := ioctl(vcpu, KVM_GET_MSRS, unsafe.Pointer(&m))
	if err == nil && n != 1 {
		err = fmt.Errorf("MSR %#x not read", index)
	}
	return m.Entry.Data, wrap("KVM_GET_MSRS", err)
}

// SetMSR writes one MSR with KVM_SET_MSRS.
func SetMSR(vcpu int, index uint32, v uint64) error {
	m := MSRs{NMSRs: 1, Entry: MSREntry{Index: index, Data: v}}
	n, err := ioctl(vcpu, KVM_SET_MSRS, unsafe.Pointer(&m))
	if err == nil && n != 1 {
		err = fmt.Errorf("MSR %#x not written", index)
	}
	return wrap("KVM_SET_MSRS", err)
}

// GetDebugRegs issues KVM_GET_DEBUGREGS.
func GetDebugRegs(vcpu int, d *DebugRegs) error {
	_, err := ioctl(vcpu, KVM_GET_DEBUGREGS, unsafe.Pointer(d))
	return wrap("KVM_GET_DEBUGREGS", err)
}

// SetDebugRegs issues KVM_SET_DEBUGREGS.
func SetDebugRegs(vcpu int, d *DebugRegs) error {
	_, err := ioctl(vcpu, KVM_SET_DEBUGREGS, unsafe.Pointer(d))
	return wrap("KVM_SET_DEBUGREGS", err)
}

// GetVCPUEvents issues KVM_GET_VCPU_EVENTS.
func GetVCPUEvents(vcpu int, e *VCPUEvents) error {
	_, err := ioctl(vcpu, KVM_GET_VCPU_EVENTS, unsafe.Pointer(e))
	return wrap("KVM_GET_VCPU_EVENTS", err)
}

// SetVCPUEvents issues KVM_SET_VCPU_EVENTS.
func SetVCPUEvents(vcpu int, e *VCPUEvents) error {
	_, err := ioctl(vcpu, KVM_SET_VCPU_EVENTS, unsafe.Pointer(e))
	return wrap("KVM_SET_VCPU_EVENTS", err)
}

// cpuid2 mirrors struct kvm_cpuid2 with room for entries.
type cpuid2 struct {
	Nent    uint32
	_       uint32
	Entries [256]CPUIDEntry2
}

// SupportedCPUID issues KVM_GET_SUPPORTED_CPUID on /dev/kvm.
func SupportedCPUID(kvm int) ([]CPUIDEntry2, error) {
	c := &cpuid2{Nent: 256}
	if _, err := ioctl(kvm, KVM_GET_SUPPORTED_CPUID, unsafe.Pointer(c)); err != nil {
		return nil, wrap("KVM_GET_SUPPORTED_CPUID", err)
	}
	return append([]CPUIDEntry2(nil), c.Entries[:c.Nent]...), nil
}

// SetCPUID2 issues KVM_SET_CPUID2 on a vCPU fd.
func SetCPUID2(vcpu int, entries []CPUIDEntry2) error {
	c := &cpuid2{Nent: uint32(len(entries))}
	copy(c.Entries[:], entries)
	_, err := ioctl(vcpu, KVM_SET_CPUID2, unsafe.Pointer(c))
	return wrap("KVM_SET_CPUID2", err)
}

// CreateIRQChip issues KVM_CREATE_IRQCHIP (in-kernel PIC, IOAPIC and
// local APICs).
func CreateIRQChip(vm int) error {
	_, err := ioctlVal(vm, KVM_CREATE_IRQCHIP, 0)
	return wrap("KVM_CREATE_IRQCHIP", err)
}

// GetIRQChip issues KVM_GET_IRQCHIP for c.ChipID.
func GetIRQChip(vm int, c *IRQChip) error {
	_, err := ioctl(vm, KVM_GET_IRQCHIP, unsafe.Pointer(c))
	return wrap("KVM_GET_IRQCHIP", err)
}

// SetIRQChip issues KVM_SET_IRQCHIP.
func SetIRQChip(vm int, c *IRQChip) error {
	_, err := ioctl(vm, KVM_SET_IRQCHIP, unsafe.Pointer(c))
	return wrap("KVM_SET_IRQCHIP", err)
}

// IRQLine issues KVM_IRQ_LINE: the level of an interrupt line of the
// in-kernel PIC and IOAPIC (a rise is an edge on an edge-triggered pin).
func IRQLine(vm int, irq uint32, level bool) error {
	l := IRQLevel{IRQ: irq}
	if level {
		l.Level = 1
	}
	_, err := ioctl(vm, KVM_IRQ_LINE, unsafe.Pointer(&l))
	return wrap("KVM_IRQ_LINE", err)
}

// SignalMSI issues KVM_SIGNAL_MSI.
func SignalMSI(vm int, m *MSI) error {
	_, err := ioctl(vm, KVM_SIGNAL_MSI, unsafe.Pointer(m))
	return wrap("KVM_SIGNAL_MSI", err)
}

// GetMPState issues KVM_GET_MP_STATE.
func GetMPState(vcpu int) (uint32, error) {
	var st uint32
	_, err := ioctl(vcpu, KVM_GET_MP_STATE, unsafe.Pointer(&st))
	return st, wrap("KVM_GET_MP_STATE", err)
}

// SetMPState issues KVM_SET_MP_STATE.
func SetMPState(vcpu int, st uint32) error {
	_, err := ioctl(vcpu, KVM_SET_MP_STATE, unsafe.Pointer(&st))
	return wrap("KVM_SET_MP_STATE", err)
}

// SetFPU issues KVM_SET_FPU.
func SetFPU(vcpu int, f *FPU) error {
	_, err := ioctl(vcpu, KVM_SET_FPU, unsafe.Pointer(f))
	return wrap("KVM_SET_FPU", err)
}

// GetXSave issues KVM_GET_XSAVE.
func GetXSave(vcpu int, x *XSave) error {
	_, err := ioctl(vcpu, KVM_GET_XSAVE, unsafe.Pointer(x))
	return wrap("KVM_GET_XSAVE", err)
}

// SetXSave issues KVM_SET_XSAVE.
func SetXSave(vcpu int, x *XSave) error {
	_, err := ioctl(vcpu, KVM_SET_XSAVE, unsafe.Pointer(x))
	return wrap("KVM_SET_XSAVE", err)
}

// GetFPU issues KVM_GET_FPU.
func GetFPU(vcpu int, f *FPU) error {
	_, err := ioctl(vcpu, KVM_GET_FPU, unsafe.Pointer(f))
	return wrap("KVM_GET_FPU", err)
}
