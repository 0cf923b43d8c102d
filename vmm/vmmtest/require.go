package vmmtest

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"testing"
)

// RequireKVM skips the test when /dev/kvm is missing or not accessible,
// saying which and how to fix it.
func RequireKVM(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err == nil {
		f.Close()
		return
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		t.Skip("skipping: /dev/kvm does not exist on this machine (no KVM)")
	case errors.Is(err, fs.ErrPermission):
		t.Skip("skipping: /dev/kvm is not accessible to this user (add the user to the kvm group)")
	default:
		t.Skipf("skipping: cannot open /dev/kvm: %v", err)
	}
}

// RequireQEMU returns the path of qemu-system-x86_64, or skips the test.
func RequireQEMU(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("skipping: qemu-system-x86_64 is not installed (.ci/run installs it)")
	}
	return p
}
