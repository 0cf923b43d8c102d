package main

import (
	"os"
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

// requireFastRing0 skips a test that runs a kernel for long on vmdap's
// VMM where the host's KVM emulates guest ring 0 (minutes of boot), unless
// VMDAP_LINUX_BOOT is set. why says what the test runs.
func requireFastRing0(t *testing.T, why string) {
	t.Helper()
	h, err := kvm.Probe(logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	if h.EmulatesRing0() && os.Getenv("VMDAP_LINUX_BOOT") == "" {
		t.Skipf("skipping: this host's KVM emulates guest ring 0, where %s takes many minutes; set VMDAP_LINUX_BOOT=1 to run it", why)
	}
}
