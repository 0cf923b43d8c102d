// Package gdbremote is a vmm.Target over a hypervisor's GDB stub: QEMU
// (TCG or KVM), bhyve (-G), cloud-hypervisor, Firecracker. vCPUs are the
// stub's threads, in the order the stub lists them.
//
// Capabilities are probed at attach, not assumed: qSupported, the target
// description, and harmless trial packets (writing back the registers just
// read; inserting and removing a breakpoint at the current PC; a
// watchpoint on the stack). Where a stub lacks a mechanism vmdap falls
// back and says so in Capabilities: software breakpoints written with M
// when Z0 is missing, watchpoints emulated by single-stepping and
// comparing when Z2 is missing (bhyve), register writes refused with a
// clear error when neither G nor P exists (bhyve). A breakpoint at the
// current PC is stepped over before resuming (z, s, Z), as stubs do not do
// it themselves. A step of a hlt runs to the next instruction instead
// (halt.go), because stubs hold interrupts off while stepping and the hlt
// would never see its interrupt. A stub that closes the connection without a W packet
// (QEMU on isa-debug-exit) ends the target as "exited".
package gdbremote
