//go:build linux && amd64

package kvmsys

import (
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIoctlSurvivesSignals: signals (Go's preemption sends SIGURG) make
// a slow ioctl such as KVM_CREATE_VM return EINTR (a nested-KVM lane
// failed on it); the wrappers retry. Under a storm of signals every
// KVM_CREATE_VM must still succeed; without the retry about a quarter
// fail on this machine.
func TestIoctlSurvivesSignals(t *testing.T) {
	kvm, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no usable /dev/kvm (%v): KVM tests skip", err)
	}
	defer unix.Close(kvm)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				syscall.Kill(os.Getpid(), syscall.SIGURG) // ignored by Go but for preemption
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := 0; i < 200; i++ {
		vm, err := CreateVM(kvm)
		if err != nil {
			t.Fatalf("KVM_CREATE_VM %d under signals: %v", i, err)
		}
		unix.Close(vm)
	}
}
