//go:build !(linux && amd64)

package kvm

import (
	"fmt"

	"github.com/sirupsen/logrus"

	"vmdap/vmm"
)

// Machine is unavailable on this platform.
type Machine struct{ vmm.Target }

// HostInfo is empty on this platform.
type HostInfo struct {
	Vendor                       string
	DRWatch                      bool
	RealModeProbed, RealModeInt3 bool
}

// Lines reports that there is no KVM here.
func (h *HostInfo) Lines() []string { return []string{"KVM: not available on this platform"} }

// EmulatesRing0: no KVM here.
func (h *HostInfo) EmulatesRing0() bool { return false }

// Capabilities says there is no KVM here.
func (h *HostInfo) Capabilities() vmm.Capabilities {
	return vmm.Capabilities{Backend: "kvm", Notes: []string{"KVM needs Linux on amd64"}}
}

// SoftwareBreakpoints is false: there is no KVM here.
func (h *HostInfo) SoftwareBreakpoints(irqchip bool) bool { return false }

// New reports that KVM exists only on Linux/amd64.
func New(cfg Config) (*Machine, error) {
	return nil, fmt.Errorf("the embedded KVM VMM needs Linux on amd64: %w", vmm.ErrUnsupported)
}

// Probe reports that KVM exists only on Linux/amd64.
func Probe(log logrus.FieldLogger) (*HostInfo, error) {
	return nil, fmt.Errorf("KVM needs Linux on amd64: %w", vmm.ErrUnsupported)
}

// AccessError explains why /dev/kvm cannot be used.
type AccessError struct {
	Err error
	Fix string
}

func (e *AccessError) Error() string { return e.Err.Error() }
