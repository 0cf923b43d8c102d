// Package rsp is a client for the GDB remote serial protocol as the
// hypervisor stubs vmdap attaches to speak it: QEMU's gdbstub (TCG and
// KVM), bhyve's debug server (bhyve -G), cloud-hypervisor and Firecracker.
//
// It owns the wire: packet framing ($data#cs), checksums, the '}' escape
// (XOR 0x20), run-length decoding ('*'), acks and no-ack mode, the 0x03
// interrupt, and parsers for what stubs send back: qSupported features,
// target descriptions (qXfer:features:read, parsed as XML with xi:include;
// QEMU hides some register names in XML comments), stop replies
// (T/S/W/X with watch/rwatch/awatch/swbreak/hwbreak/thread) and thread
// lists. Errors name the packet they answer (ProtocolError); an empty
// reply means "unsupported".
//
// What a stub sends is bounded: a packet (MaxPacket on the wire, four
// times that expanded), the registers of a target description; a reply
// that does not come within Timeout ends the connection. Fuzz tests cover
// the framing and every parser (fuzz_test.go, corpora in testdata/fuzz).
//
// The stubs' gaps, which the gdbremote package works around:
//   - QEMU: no no-ack mode; no swbreak/hwbreak stop reasons; closes the
//     socket without a W packet when the guest exits; under KVM, 'p'
//     returns stale values (use 'g') and Z0 or Z2-Z4 may not work.
//   - bhyve: no G/P, vCont, X, Z1-Z4, no no-ack mode; 'D' does not resume.
package rsp
