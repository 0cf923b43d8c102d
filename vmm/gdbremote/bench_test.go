package gdbremote

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/vmm"
	"vmdap/vmm/kvm"
	"vmdap/vmm/vmmtest"
)

// spinLoop runs the guest to main64, sets spin so that it loops forever
// and returns the loop body's address (the spin_loop label).
func spinLoop(b *testing.B, tg vmm.Target, g *vmmtest.Guest) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	main64 := vmmtest.Sym(b, g, "main64")
	hw, ok := tg.HWBreakpoints()
	if ok {
		hw.InsertHWBreakpoint(main64)
	} else {
		sw, _ := tg.SWBreakpoints()
		sw.InsertBreakpoint(main64)
	}
	tg.Continue()
	if s, err := tg.Wait(ctx); err != nil || s.PC != main64 {
		b.Fatalf("to main64: %v %v", s, err)
	}
	if ok {
		hw.RemoveHWBreakpoint(main64)
	} else {
		sw, _ := tg.SWBreakpoints()
		sw.RemoveBreakpoint(main64)
	}
	tg.WriteMemory(0, []byte{1, 0, 0, 0}, vmmtest.Sym(b, g, "spin"))
	return vmmtest.Sym(b, g, "spin_loop")
}

func measure(b *testing.B, tg vmm.Target, g *vmmtest.Guest, steps, hits int) (float64, float64) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	loop := spinLoop(b, tg, g)
	st, _ := tg.Stepper()
	t0 := time.Now()
	for i := 0; i < steps; i++ {
		st.Step(0)
		if _, err := tg.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	stepRate := float64(steps) / time.Since(t0).Seconds()
	hw, ok := tg.HWBreakpoints()
	if ok {
		hw.InsertHWBreakpoint(loop)
	} else {
		sw, _ := tg.SWBreakpoints()
		sw.InsertBreakpoint(loop)
	}
	t1 := time.Now()
	for i := 0; i < hits; i++ {
		tg.Continue()
		if s, err := tg.Wait(ctx); err != nil || s.PC != loop {
			b.Fatalf("hit %d: %v %v", i, s, err)
		}
	}
	return stepRate, float64(hits) / time.Since(t1).Seconds()
}

// gdbRate runs gdb -batch against a fresh QEMU: to main64, set spin, then
// n stepi (or n continues onto an hbreak on the loop), timed against the
// same script with n = 0.
func gdbRate(b *testing.B, qemu, gdb string, g *vmmtest.Guest, loop uint64, hits bool, n int) float64 {
	run := func(n int) time.Duration {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		q := exec.Command(qemu, "-accel", "tcg", "-machine", "pc", "-m", "64", "-display", "none", "-no-reboot",
			"-monitor", "none", "-serial", "null", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
			"-kernel", g.Path, "-S", "-gdb", "tcp:"+addr)
		q.Start()
		defer func() { q.Process.Kill(); q.Wait() }()
		script := fmt.Sprintf("set pagination off\nset confirm off\nset architecture i386:x86-64\n"+
			"target remote %s\nhbreak *%#x\ncontinue\ndelete\nset {int}%#x = 1\n", addr, vmmtest.Sym(b, g, "main64"), vmmtest.Sym(b, g, "spin"))
		if hits {
			script += fmt.Sprintf("hbreak *%#x\nset $i = 0\nwhile $i < %d\ncontinue\nset $i = $i + 1\nend\n", loop, n)
		} else if n > 0 {
			script += fmt.Sprintf("stepi %d\n", n)
		}
		script += "kill\nquit\n"
		f := filepath.Join(b.TempDir(), "cmds.gdb")
		os.WriteFile(f, []byte(script), 0o644)
		time.Sleep(200 * time.Millisecond) // QEMU's stub comes up; not synchronisation of results
		t0 := time.Now()
		out, err := exec.Command(gdb, "-batch", "-nx", "-x", f, g.Path).CombinedOutput()
		if err != nil {
			b.Fatalf("gdb: %v\n%s", err, out)
		}
		return time.Since(t0)
	}
	base := run(0)
	full := run(n)
	return float64(n) / (full - base).Seconds()
}

// BenchmarkBackends: instruction steps and breakpoint hits per second on
// the same guest through vmdap on its own KVM VMM, vmdap attached to QEMU
// (TCG) and gdb attached to QEMU (TCG).
func BenchmarkBackends(b *testing.B) {
	qemu := vmmtest.RequireQEMU(b)
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		b.Skip("gdb not installed")
	}
	vmmtest.RequireKVM(b)
	g := vmmtest.BuildGuest(b, "mb", vmmtest.ELF32)
	l, _ := test.NewNullLogger()
	const steps, hits = 2000, 300
	for i := 0; i < b.N; i++ {
		m, err := kvm.New(kvm.Config{Image: g.Data, Memory: 64 << 20, Log: l})
		if err != nil {
			b.Fatal(err)
		}
		ks, kh := measure(b, m, g, steps, hits)
		m.Close()
		q, err := LaunchQEMU(context.Background(), QEMUConfig{Path: qemu, Program: g.Path, MemoryMiB: 64, Log: l, Entry: vmmtest.Sym(b, g, "entry32")})
		if err != nil {
			b.Fatal(err)
		}
		qs, qh := measure(b, q, g, steps, hits)
		q.Close()
		la := vmmtest.Sym(b, g, "spin_loop")
		gs := gdbRate(b, qemu, gdb, g, la, false, steps/4)
		gh := gdbRate(b, qemu, gdb, g, la, true, hits/3)
		b.ReportMetric(ks, "kvm-steps/s")
		b.ReportMetric(qs, "qemu-steps/s")
		b.ReportMetric(gs, "gdb+qemu-steps/s")
		b.ReportMetric(kh, "kvm-hits/s")
		b.ReportMetric(qh, "qemu-hits/s")
		b.ReportMetric(gh, "gdb+qemu-hits/s")
	}
}
