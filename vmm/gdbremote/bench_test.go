package gdbremote

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/vmm"
	"vmdap/vmm/kvm"
	"vmdap/vmm/vmmtest"
)

// spinLoop runs the guest to main64, sets spin so that it loops forever
// and returns the loop body's address (the spin_loop label).
func spinLoop(b testing.TB, tg vmm.Target, g *vmmtest.Guest) uint64 {
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

func measure(b testing.TB, tg vmm.Target, g *vmmtest.Guest, steps, hits int) (float64, float64) {
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
// n stepi (or n continues onto an hbreak on the loop). gdb times the n
// operations itself (its Python: time.monotonic around them), as measure
// times vmdap's; a gdb without Python is timed from outside, against the
// same script with n = 0.
func gdbRate(b testing.TB, qemu, gdb string, g *vmmtest.Guest, loop uint64, hits bool, n int) float64 {
	run := func(n int, timed bool) (time.Duration, string) {
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
			script += fmt.Sprintf("hbreak *%#x\ncontinue\n", loop) // the first hit, from wherever the guest is
		}
		if timed {
			script += "python import time; t0 = time.monotonic()\n"
		}
		if hits {
			script += fmt.Sprintf("set $i = 0\nwhile $i < %d\ncontinue\nset $i = $i + 1\nend\n", n)
		} else if n > 0 {
			script += fmt.Sprintf("stepi %d\n", n)
		}
		if timed {
			script += "python print('gdb-seconds %.9f' % (time.monotonic() - t0))\n"
		}
		script += "kill\nquit\n"
		f := filepath.Join(b.TempDir(), "cmds.gdb")
		os.WriteFile(f, []byte(script), 0o644)
		// QEMU is starting: wait until its stub listens (a connection it
		// sees opened and closed before gdb's changes nothing: -S).
		for i := 0; ; i++ {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if i == 200 {
				b.Fatalf("QEMU's stub at %s never listened: %v", addr, err)
			}
			time.Sleep(10 * time.Millisecond) // polling QEMU's socket
		}
		t0 := time.Now()
		out, err := exec.Command(gdb, "-batch", "-nx", "-x", f, g.Path).CombinedOutput()
		if err != nil {
			b.Fatalf("gdb: %v\n%s", err, out)
		}
		return time.Since(t0), string(out)
	}
	if out, _ := exec.Command(gdb, "-batch", "-nx", "-ex", "python print('gdb-python')").CombinedOutput(); strings.Contains(string(out), "gdb-python") {
		_, out := run(n, true)
		for _, ln := range strings.Split(out, "\n") {
			var sec float64
			if _, err := fmt.Sscanf(ln, "gdb-seconds %f", &sec); err == nil && sec > 0 {
				return float64(n) / sec
			}
		}
		b.Fatalf("gdb printed no time:\n%s", out)
	}
	base, _ := run(0, false)
	full, _ := run(n, false)
	return float64(n) / (full - base).Seconds()
}

// BenchmarkBackends: instruction steps and breakpoint hits per second on
// the same guest through vmdap on its own KVM VMM, vmdap attached to QEMU
// (TCG) and gdb attached to QEMU (TCG), each doing the same number of
// them. The machine is shared: the three are measured in turn, three
// rounds, and each rate is the median of its rounds; the vmdap/gdb ratios
// are the medians of the rounds' ratios (each round's two measurements
// are close in time).
func BenchmarkBackends(b *testing.B) {
	qemu := vmmtest.RequireQEMU(b)
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		b.Skip("gdb not installed")
	}
	vmmtest.RequireKVM(b)
	g := vmmtest.BuildGuest(b, "mb", vmmtest.ELF32)
	l, _ := test.NewNullLogger()
	const steps, hits, rounds = 2000, 300, 3
	median := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	for i := 0; i < b.N; i++ {
		var ks, kh, qs, qh, gs, gh, rs, rh []float64
		for r := 0; r < rounds; r++ {
			m, err := kvm.New(kvm.Config{Image: g.Data, Memory: 64 << 20, Log: l})
			if err != nil {
				b.Fatal(err)
			}
			s, h := measure(b, m, g, steps, hits)
			m.Close()
			ks, kh = append(ks, s), append(kh, h)
			q, err := LaunchQEMU(context.Background(), QEMUConfig{Path: qemu, Program: g.Path, MemoryMiB: 64, Log: l, Entry: vmmtest.Sym(b, g, "entry32")})
			if err != nil {
				b.Fatal(err)
			}
			s, h = measure(b, q, g, steps, hits)
			q.Close()
			qs, qh = append(qs, s), append(qh, h)
			la := vmmtest.Sym(b, g, "spin_loop")
			gsr := gdbRate(b, qemu, gdb, g, la, false, steps)
			ghr := gdbRate(b, qemu, gdb, g, la, true, hits)
			gs, gh = append(gs, gsr), append(gh, ghr)
			rs, rh = append(rs, s/gsr), append(rh, h/ghr)
		}
		b.ReportMetric(median(ks), "kvm-steps/s")
		b.ReportMetric(median(qs), "qemu-steps/s")
		b.ReportMetric(median(gs), "gdb+qemu-steps/s")
		b.ReportMetric(median(kh), "kvm-hits/s")
		b.ReportMetric(median(qh), "qemu-hits/s")
		b.ReportMetric(median(gh), "gdb+qemu-hits/s")
		b.ReportMetric(median(rs), "qemu/gdb-steps")
		b.ReportMetric(median(rh), "qemu/gdb-hits")
		b.Logf("rounds: qemu steps %.0f, gdb %.0f; qemu hits %.0f, gdb %.0f", qs, gs, qh, gh)
	}
}
