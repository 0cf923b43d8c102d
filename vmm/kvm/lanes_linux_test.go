//go:build linux && amd64

package kvm

import (
	"os"
	"testing"

	"vmdap/vmm/vmmtest"
)

// TestHostStrategies asserts which strategy the probe picked. In the
// nested-KVM lanes (VMDAP_LANE set by vmm/kvm/hostlanes/run) the host is a
// real kvm_amd or kvm_intel, and vmdap must pick the real-hardware paths;
// on a PVM host it must pick the emulation-failure and page-protection
// paths.
func TestHostStrategies(t *testing.T) {
	vmmtest.RequireKVM(t)
	h, err := Probe(testLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range h.Lines() {
		t.Log(l)
	}
	type want struct {
		vendor  string
		swbp    swbpMethod
		resume  hwResume
		drWatch bool
		paging  bool // protected-mode paging without long mode
	}
	var w want
	switch lane := os.Getenv("VMDAP_LANE"); {
	case lane == "svm-tcg":
		// kvm_amd under QEMU TCG: TCG delivers int3 as INTn, never as the
		// #BP intercept, so the probe must fall back to the hlt patch.
		w = want{"AMD SVM", swbpHLT, hwResumeRF, true, true}
	case lane == "vmx-bochs":
		w = want{"Intel VMX", swbpInt3Exit, hwResumeRF, true, true}
	case h.Vendor == "PVM":
		w = want{"PVM", swbpEmulation, hwResumeStep, false, false}
	default:
		t.Skipf("no expectations for host %q outside a lane", h.Vendor)
	}
	// Where an OUT exit leaves RIP depends on more than the vendor (kvm_amd
	// without NRIP-save emulates the OUT first); vmdap handles both, so it
	// is logged above, not asserted.
	paging := h.Paging32 && h.PAE32
	if h.Vendor != w.vendor || h.SWBreakpoint != w.swbp || h.HWResume != w.resume || h.DRWatch != w.drWatch || paging != w.paging {
		t.Fatalf("probe: vendor %q swbp %s resume %s drWatch %v paging %v/%v; want %+v",
			h.Vendor, h.SWBreakpoint, h.HWResume, h.DRWatch, h.Paging32, h.PAE32, w)
	}
	if !h.StepWorks || !h.HWBreakpoints {
		t.Fatalf("step %v, hardware breakpoints %v", h.StepWorks, h.HWBreakpoints)
	}
	if os.Getenv("VMDAP_LANE") != "" && (!h.SyscallWorks || len(h.CPUIDHidden) > 0) {
		// Real VT-x and AMD-V run guest ring 3 and every instruction
		// natively.
		t.Fatalf("syscall from ring 3 works: %v (%s); CPUID hidden: %v", h.SyscallWorks, h.SyscallWhy, h.hiddenNames())
	}
}
