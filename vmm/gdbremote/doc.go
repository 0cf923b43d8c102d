// Package gdbremote is a vmm.Target over a hypervisor's GDB stub: QEMU
// (TCG or KVM), bhyve (-G), cloud-hypervisor, Firecracker. vCPUs are the
// stub's threads, in the order the stub lists them.
//
// Capabilities are probed at attach, not assumed: qSupported, the target
// description, and harmless trial packets (writing back the registers just
// read; inserting and removing a breakpoint at the current PC; a
// watchpoint on the stack). Where a stub lacks a mechanism vmdap falls
// back and says so in Capabilities' methods and notes: software
// breakpoints written with M when Z0 is missing, watchpoints emulated by
// single-stepping and comparing when Z2 is missing (bhyve), register
// writes refused with a clear error when neither G nor P exists (bhyve),
// guest-physical memory where QEMU's physical-memory mode is (physical.go).
// What a stub does that no packet announces is learnt at run time:
// whether its step executes the instruction under its own breakpoint
// (run.go).
//
// The attach handshake is bounded in time, and what a stub sends in it in
// size (packets, target description, thread list): a broken or hostile
// stub ends the attach with the reason, it cannot wedge or bloat vmdap.
//
// A run costs as few round trips as the stub allows: a step is one
// packet and its stop reply; nothing is read that nobody asked for (a
// stop's PC is left to Regs when the reply does not carry it; memory is
// read in lines cached for the stop). Stubs hold interrupts off while
// stepping (Stepper.StepsHalt is false): the session steps a hlt by
// running to the instruction after it.
//
// The end (end.go): a stub that closes the connection, or a hypervisor
// that dies, is noticed at once, with the guest running or stopped, as a
// final stop that says how; a stub that does not answer a ^C is given up
// after a timeout. Close detaches an attached stub (the guest runs on)
// and stops a QEMU vmdap launched (qemu.go); Detach and Terminate do what
// a client asks instead.
package gdbremote
