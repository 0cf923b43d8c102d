// Package boot turns a guest kernel file into the initial state of a
// machine: which bytes go where in guest-physical memory, the boot
// structures a protocol promises (page tables and GDT for the 64-bit
// entries, the Linux zero page, the Multiboot 1 and Multiboot 2
// information structures, the PVH hvm_start_info), the initrd and modules,
// the firmware tables a PC's BIOS would leave (ACPI, MP), and each vCPU's
// registers at entry.
//
// It knows five protocols, chosen in this order when the caller asks for
// "auto": the Linux/x86 boot protocol for a bzImage (linux.go), PVH when
// the ELF file carries a XEN_ELFNOTE_PHYS32_ENTRY note, Multiboot 1 when a
// valid header sits in the first 8 KiB, Multiboot 2 when one sits in the
// first 32 KiB, otherwise the 64-bit direct entry for ELF64 x86-64
// executables. A Multiboot header vmdap cannot honour is an error, not a
// fall-back to the 64-bit entry, and every "cannot boot" error says what
// was looked for. The same kernel file therefore boots here and under QEMU
// -kernel, GRUB, Firecracker or cloud-hypervisor.
//
// The package is pure: it writes into a []byte that stands for guest RAM and
// is tested without KVM (and fuzzed: a crafted file gives an error, never a
// panic).
package boot
