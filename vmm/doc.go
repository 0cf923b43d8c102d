// Package vmm owns the contract between vmdap's debug session and the
// machines it debugs: the Target interface every backend implements (the
// embedded KVM micro-VMM in vmm/kvm, GDB remote stubs in vmm/gdbremote,
// core dumps in vmm/core),
// the optional capabilities a backend may offer, and the values a guest
// stop is reported as.
//
// The core of Target is small: list vCPUs, read registers and memory,
// continue, wait for the next stop, pause, close. Everything else is a
// capability discovered at run time: a backend returns (ext, true) from an
// accessor such as Stepper() only when the host or stub really provides the
// mechanism. The accessors are the one source of what a target offers (the
// session and the DAP capabilities are built from them); Capabilities()
// only names how each mechanism is realised and what the host cannot do,
// for logs and `vmdap check`. A stop is a value (Stop), never an error;
// errors are reserved for requests that could not be carried out.
//
// Run control is all-stop: Continue resumes every vCPU; when one of them
// stops, all are stopped before Wait returns the Stop. Resuming a vCPU whose
// PC sits on one of the target's own breakpoints first executes the
// instruction under it; callers never step over breakpoints themselves.
package vmm
