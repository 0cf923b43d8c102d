package gdbremote

import (
	"context"
	"os"
	"testing"

	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

func qemuTarget(accel string, pvm bool) vmmtest.Factory {
	return func(t *testing.T, g *vmmtest.Guest) vmm.Target {
		qemu := vmmtest.RequireQEMU(t)
		l, _ := test.NewNullLogger()
		tg, err := LaunchQEMU(context.Background(), QEMUConfig{Path: qemu, Program: g.Path, MemoryMiB: 64, VCPUs: 1,
			Accel: accel, Log: l, Entry: vmmtest.Sym(t, g, "entry32"), NoSWBreakpoints: pvm, NoStubWatchpoints: pvm})
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
}

func TestConformanceQEMUTCG(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	vmmtest.Conformance(t, g, qemuTarget("tcg", false))
}

func TestConformanceQEMUKVM(t *testing.T) {
	vmmtest.RequireKVM(t)
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		// On a PVM host an int3 is fatal to a QEMU-KVM guest and debug-register
		// watchpoints never fire: run with the debug registers only, which
		// the suite then uses for breakpoints; watchpoints fall back.
		t.Log("PVM host: QEMU-KVM with hardware breakpoints only")
	}
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	_, pvm := os.Stat("/sys/module/kvm_pvm")
	vmmtest.Conformance(t, g, qemuTarget("kvm", pvm == nil))
}
