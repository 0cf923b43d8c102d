// Package kvm is vmdap's embedded micro-VMM on Linux KVM: it loads a guest
// kernel (ELF64 direct entry, Multiboot 1, PVH), runs it on one OS thread
// per vCPU, emulates the few devices a debugging session needs (COM1, the
// QEMU-compatible debug-exit port, the 0xe9 debug console) and owns every
// debug mechanism itself, as a vmm.Target.
//
// Every mechanism has more than one strategy, because KVM hosts differ
// (see the host notes in the project README):
//
//   - software breakpoints: int3 reported as KVM_EXIT_DEBUG #BP (VT-x,
//     AMD-V), int3 reported as an emulation failure at the breakpoint
//     (hosts whose KVM emulates ring-0 code, such as PVM), or a HLT patch
//     (hosts where int3 never reaches the VMM);
//   - resuming from a debug-register execute breakpoint: RFLAGS.RF, or
//     disable-step-rearm where RF is ignored;
//   - watchpoints: debug registers where they fire, page protection (a
//     read-only or absent memslot, with each access emulated and checked
//     against the exact range) everywhere.
//
// Probe (run once per process, at the first VM creation) tries each on a
// tiny guest and picks what works; the choice is logged and reported in
// vmm.Capabilities. Vendor-specific fix-ups (re-arming single-step after
// any exit or register write, hiding vmdap's TF from pushf and exception
// frames) live in step_linux.go; the step of a HLT with an in-kernel
// irqchip (Config.IRQChip), which must let the awaited interrupt's handler
// run, in haltstep_linux.go. Segment loads whose descriptor sits on a
// write-protected page (KVM's emulator cannot set its accessed bit there)
// are handled in accessed_linux.go.
//
// Concurrency: KVM_RUN for a vCPU is only ever issued from that vCPU's own
// goroutine, locked to its OS thread (a KVM_RUN from another thread costs a
// synchronize_rcu in the kernel). Other vCPU ioctls are issued by the
// controlling goroutine while the vCPU is stopped. Hand-offs between the
// two spin briefly before blocking: a blocking hand-off to a locked thread
// costs ~50 µs on the team's hosts, a single step ~8 µs.
package kvm
