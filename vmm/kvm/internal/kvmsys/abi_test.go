//go:build linux && amd64

package kvmsys

import "testing"

// The literals are the kernel's (printed from <linux/kvm.h> with gcc, and
// listed in the team's host notes); a wrong field type shifts them.
func TestStructLayout(t *testing.T) {
	wantSizes := map[string]uintptr{
		"kvm_regs": 144, "kvm_sregs": 312, "kvm_segment": 24, "kvm_dtable": 16,
		"kvm_guest_debug": 72, "kvm_debugregs": 128, "kvm_vcpu_events": 64,
		"kvm_userspace_memory_region": 32, "kvm_cpuid_entry2": 40, "kvm_msi": 32, "kvm_fpu": 416, "kvm_xsave": 4096, "kvm_irq_level": 8, "kvm_irqchip": 520,
		"kvm_msrs+1": 24, "kvm_msr_entry": 16,
	}
	for name, want := range wantSizes {
		if got := Sizes[name]; got != want {
			t.Errorf("sizeof(%s) = %d, want %d", name, got, want)
		}
	}
	wantOffsets := map[string]uintptr{
		"kvm_sregs.gdt": 192, "kvm_sregs.idt": 208, "kvm_sregs.cr0": 224, "kvm_sregs.efer": 264,
		"kvm_guest_debug.debugreg": 8, "kvm_vcpu_events.flags": 20, "kvm_vcpu_events.exception_payload": 56,
		"kvm_run.io.data_offset": 40, "kvm_run.mmio.len": 48, "kvm_run.mmio.is_write": 52,
		"kvm_run.debug.arch.dr6": 48, "kvm_run.internal.data": 40,
	}
	for name, want := range wantOffsets {
		if got := Offsets[name]; got != want {
			t.Errorf("offsetof(%s) = %d, want %d", name, got, want)
		}
	}
}

func TestIoctlNumbers(t *testing.T) {
	// _IOC(dir, 0xAE, nr, size) recomputed here must equal the literals.
	ioc := func(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | 0xae<<8 | nr }
	const none, write, read = 0, 1, 2
	cases := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"KVM_CREATE_VM", KVM_CREATE_VM, ioc(none, 0x01, 0)},
		{"KVM_GET_VCPU_MMAP_SIZE", KVM_GET_VCPU_MMAP_SIZE, ioc(none, 0x04, 0)},
		{"KVM_CREATE_VCPU", KVM_CREATE_VCPU, ioc(none, 0x41, 0)},
		{"KVM_SET_USER_MEMORY_REGION", KVM_SET_USER_MEMORY_REGION, ioc(write, 0x46, Sizes["kvm_userspace_memory_region"])},
		{"KVM_RUN", KVM_RUN, ioc(none, 0x80, 0)},
		{"KVM_GET_REGS", KVM_GET_REGS, ioc(read, 0x81, Sizes["kvm_regs"])},
		{"KVM_SET_REGS", KVM_SET_REGS, ioc(write, 0x82, Sizes["kvm_regs"])},
		{"KVM_GET_SREGS", KVM_GET_SREGS, ioc(read, 0x83, Sizes["kvm_sregs"])},
		{"KVM_SET_SREGS", KVM_SET_SREGS, ioc(write, 0x84, Sizes["kvm_sregs"])},
		{"KVM_SET_GUEST_DEBUG", KVM_SET_GUEST_DEBUG, ioc(write, 0x9b, Sizes["kvm_guest_debug"])},
		{"KVM_GET_DEBUGREGS", KVM_GET_DEBUGREGS, ioc(read, 0xa1, Sizes["kvm_debugregs"])},
		{"KVM_GET_MSRS", KVM_GET_MSRS, ioc(read|write, 0x88, 8)}, // sizeof(struct kvm_msrs): the header
		{"KVM_SET_MSRS", KVM_SET_MSRS, ioc(write, 0x89, 8)},
		{"KVM_SET_DEBUGREGS", KVM_SET_DEBUGREGS, ioc(write, 0xa2, Sizes["kvm_debugregs"])},
		{"KVM_GET_VCPU_EVENTS", KVM_GET_VCPU_EVENTS, ioc(read, 0x9f, Sizes["kvm_vcpu_events"])},
		{"KVM_SET_VCPU_EVENTS", KVM_SET_VCPU_EVENTS, ioc(write, 0xa0, Sizes["kvm_vcpu_events"])},
		{"KVM_CREATE_IRQCHIP", KVM_CREATE_IRQCHIP, ioc(none, 0x60, 0)},
		{"KVM_SIGNAL_MSI", KVM_SIGNAL_MSI, ioc(write, 0xa5, Sizes["kvm_msi"])},
		{"KVM_IRQ_LINE", KVM_IRQ_LINE, ioc(write, 0x61, Sizes["kvm_irq_level"])},
		{"KVM_GET_IRQCHIP", KVM_GET_IRQCHIP, ioc(read|write, 0x62, Sizes["kvm_irqchip"])},
		{"KVM_SET_IRQCHIP", KVM_SET_IRQCHIP, ioc(read, 0x63, Sizes["kvm_irqchip"])},
		{"KVM_GET_MP_STATE", KVM_GET_MP_STATE, ioc(read, 0x98, 4)},
		{"KVM_SET_MP_STATE", KVM_SET_MP_STATE, ioc(write, 0x99, 4)},
		{"KVM_GET_FPU", KVM_GET_FPU, ioc(read, 0x8c, Sizes["kvm_fpu"])},
		{"KVM_SET_FPU", KVM_SET_FPU, ioc(write, 0x8d, Sizes["kvm_fpu"])},
		{"KVM_GET_XSAVE", KVM_GET_XSAVE, ioc(read, 0xa4, Sizes["kvm_xsave"])},
		{"KVM_SET_XSAVE", KVM_SET_XSAVE, ioc(write, 0xa5, Sizes["kvm_xsave"])},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s = %#x, recomputed %#x", c.name, c.got, c.want)
		}
	}
	// Spot-check against the kernel literals from the host notes.
	if KVM_GET_REGS != 0x8090ae81 || KVM_SET_GUEST_DEBUG != 0x4048ae9b || KVM_GET_SREGS != 0x8138ae83 {
		t.Error("ioctl literals drifted")
	}
}
