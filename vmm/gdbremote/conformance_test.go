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

// qemuThroughProxy launches the guest under QEMU TCG, then hands the stub
// over to a proxy (our own connection closed without resuming) and
// attaches through it.
func qemuThroughProxy(t *testing.T, g *vmmtest.Guest, proxy func(string) (*vmmtest.BhyveProxy, error)) (*Target, *vmmtest.BhyveProxy) {
	t.Helper()
	inner := qemuTarget("tcg", false)(t, g).(*Target)
	addr := inner.cfg.Addr
	inner.c.Close()
	px, err := proxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	l, _ := test.NewNullLogger()
	tg, err := Attach(context.Background(), Config{Addr: px.Addr(), Stub: "auto", Log: l,
		launched: &launched{exit: inner.onExit, stop: inner.onClose}})
	if err != nil {
		t.Fatal(err)
	}
	return tg, px
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

// TestConformanceBhyveDialect runs the scenario against QEMU behind a
// proxy that answers only bhyve's packets: no G/P (register writes are
// refused), no vCont, no Z1-Z4 (software breakpoints only; watchpoints
// emulated by stepping and comparing), no no-ack mode.
func TestConformanceBhyveDialect(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	vmmtest.Conformance(t, g, func(t *testing.T, g *vmmtest.Guest) vmm.Target {
		tg, _ := qemuThroughProxy(t, g, vmmtest.NewBhyveProxy)
		if tg.stubName != "bhyve" || tg.vCont || tg.gWrite || tg.pWrite || tg.z[1] || tg.z[2] || tg.pipeline {
			t.Fatalf("dialect not detected: stub %s vCont %v G %v P %v Z1 %v Z2 %v QEMU's pipelining %v", tg.stubName, tg.vCont, tg.gWrite, tg.pWrite, tg.z[1], tg.z[2], tg.pipeline)
		}
		if _, ok := tg.RegisterWriter(); ok {
			t.Fatal("register writes offered without G or P")
		}
		return tg
	})
}
