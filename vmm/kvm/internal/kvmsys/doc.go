// Package kvmsys is vmdap's mirror of the Linux KVM userspace ABI for
// x86-64: ioctl numbers, the C structs they pass (each type names the struct
// it mirrors in include/uapi/linux/kvm.h or arch/x86/include/uapi/asm/kvm.h),
// the layout of the mmap'd struct kvm_run, and thin wrappers that issue the
// ioctls. Every unsafe.Pointer lives in a *_unsafe.go file; sizes and
// numbers are checked against the kernel's literals in the tests.
//
// Names follow the kernel's spelling on purpose, so a reader can grep the
// kernel documentation (Documentation/virt/kvm/api.rst) for them.
package kvmsys
