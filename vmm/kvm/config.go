package kvm

import (
	"io"

	"github.com/sirupsen/logrus"

	"vmdap/vmm/kvm/boot"
)

// Config describes a machine to create.
type Config struct {
	// Image is the guest kernel file's contents.
	Image []byte
	// Protocol forces a boot protocol; "" or "auto" chooses.
	Protocol boot.Protocol
	// Memory is guest RAM in bytes (default DefaultMemory). It is reserved
	// lazily: untouched guest memory costs no host memory.
	Memory uint64
	// VCPUs is the number of vCPUs (default 1).
	VCPUs int
	// Cmdline is the kernel command line (Linux, Multiboot, PVH).
	Cmdline string
	// Initrd is an initial RAM disk: boot_params' ramdisk for a bzImage,
	// a module for PVH, the first module for Multiboot 1 and 2.
	Initrd []byte
	// Modules are loaded after the kernel and described to Multiboot 1
	// and 2 kernels (an initrd, say).
	Modules []boot.Module
	// Serial receives what the guest writes to COM1 and to port 0xe9.
	Serial io.Writer
	// Input feeds COM1's receiver.
	Input io.Reader
	// Log receives the VMM's logs; nil discards them.
	Log logrus.FieldLogger
	// IRQChip creates KVM's in-kernel interrupt controllers (local APICs
	// at 0xfee00000, IOAPIC, PIC), so that interrupts can be delivered
	// (SignalMSI). A halted vCPU then waits in the kernel for an interrupt
	// instead of stopping with ReasonHalted, the firmware tables describe
	// the APICs (ACPI MADT, MP table), and the application processors of
	// the protocols that start only the boot processor (Linux, PVH,
	// Multiboot) wait for the guest's INIT and startup IPIs.
	IRQChip bool
}

// DefaultMemory is the default guest RAM size.
const DefaultMemory = 128 << 20

func (c *Config) defaults() {
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if c.VCPUs == 0 {
		c.VCPUs = 1
	}
	if c.Log == nil {
		l := logrus.New()
		l.Out = io.Discard
		c.Log = l
	}
}
