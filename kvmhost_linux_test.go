package main

import (
	"testing"

	"github.com/sirupsen/logrus"

	"vmdap/vmm/kvm"
)

// requireGuestSyscalls skips the test where vmdap's VMM cannot run guest
// user space: the host's probe saw a SYSCALL from guest ring 3 never reach
// ring 0 (KVM's PVM flavour). why says what the test would need it for.
func requireGuestSyscalls(t *testing.T, why string) {
	t.Helper()
	h, err := kvm.Probe(logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	if h.SyscallProbed && !h.SyscallWorks {
		t.Skipf("skipping: a system call from guest ring 3 does not reach ring 0 on this host (%s), so %s", h.SyscallWhy, why)
	}
}

// requireRing0 skips the test where the host's probe found that vmdap's
// VMM cannot run insn at guest ring 0 (KVM's PVM flavour emulates ring 0
// without SSE arithmetic). why says what the test would need it for.
func requireRing0(t *testing.T, insn, why string) {
	t.Helper()
	h, err := kvm.Probe(logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range h.Ring0Gaps {
		if g.Insn == insn {
			t.Skipf("skipping: this host cannot run %s at guest ring 0 (%s), so %s", insn, g.Why, why)
		}
	}
}
