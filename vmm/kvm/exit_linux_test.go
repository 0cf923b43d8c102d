//go:build linux && amd64

package kvm

import (
	"encoding/binary"
	"strings"
	"testing"

	"vmdap/vmm"
	"vmdap/vmm/kvm/internal/kvmsys"
)

// TestExitsClassifiedAlikeWhenStepping: an exit means the same whether it
// ends a run or a single step, each read from its own kvm_run union member.
// The exits here (a failed VM entry, a system event, an exit vmdap does not
// know, a shutdown on AMD) are ones no host produces on demand, so KVM_RUN
// returns them without running: the rest of the path (the vCPU thread, the
// run and step loops, the all-stop) is the real one.
func TestExitsClassifiedAlikeWhenStepping(t *testing.T) {
	cases := []struct {
		name   string
		reason uint32
		union  uint64 // the first 8 bytes of the exit's union member
		vendor string
		want   vmm.Reason
		detail string
	}{
		{"failed entry", kvmsys.KVM_EXIT_FAIL_ENTRY, 0x80000021, "", vmm.ReasonInternalError, "VM entry failed, hardware reason 0x80000021"},
		{"system event", kvmsys.KVM_EXIT_SYSTEM_EVENT, 2, "", vmm.ReasonShutdown, "system reset or power-off"},
		{"unknown exit", kvmsys.KVM_EXIT_HYPERCALL, 0, "", vmm.ReasonInternalError, "unexpected KVM exit reason 3"},
		{"shutdown on AMD", kvmsys.KVM_EXIT_SHUTDOWN, 0, "AMD SVM", vmm.ReasonShutdown, "KVM resets the vCPU at a shutdown"},
	}
	for _, c := range cases {
		for _, step := range []bool{false, true} {
			f := newMech(t, 1)
			f.at(0, "case_nops")
			if c.vendor != "" {
				h := *f.m.host
				h.Vendor = c.vendor
				f.m.host = &h
			}
			v := f.m.vcpus[0]
			v.kvmRun = func(int) error {
				// kvm_run: exit_reason at offset 8, the union at 32.
				binary.LittleEndian.PutUint32(v.run[8:], c.reason)
				binary.LittleEndian.PutUint64(v.run[32:], c.union)
				return nil
			}
			var s vmm.Stop
			if step {
				s = f.step(0)
			} else {
				s = f.cont()
			}
			if s.Reason != c.want || !strings.Contains(s.Detail, c.detail) {
				t.Errorf("%s (step %v): got %s %q, want %s with %q", c.name, step, s.Reason, s.Detail, c.want, c.detail)
			}
			f.m.Close()
		}
	}
}
