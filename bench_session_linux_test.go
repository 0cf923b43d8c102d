package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// BenchmarkLinuxSessionVsGDB times the session every kernel tutorial
// starts with, done by gdb and by vmdap against Debian's cloud kernel
// under QEMU TCG, in the same run (the machines are shared: compare the
// ratio). Each tool gets a fresh QEMU with the same command line, stopped
// at reset (-S -gdb, nokaslr), and does: attach (loading the vmlinux), a
// breakpoint on start_kernel, continue to it, backtrace, the frame's
// locals and arguments, three nexts, a step into a call, finish, print
// init_task.comm and *init_task.active_mm (a struct through a pointer), a
// breakpoint at the line of init/main.c that calls setup_arch, continue
// to it, detach.
//
//   - gdb: `gdb -batch -nx` with the commands as -ex, timed from its start
//     to its exit (its reading of the vmlinux is part of its cost, as
//     vmdap's is part of its attach);
//   - vmdap: the built binary over stdio, timed from the initialize
//     request to the disconnect response, with no index cache (a first
//     session: gdb keeps none either), and each step's time as a metric
//     (a stop's time is the request's until the stopped event and the
//     stackTrace that shows where; attach's is until initialized).
//
// Both outputs are checked step by step (gdb's text, vmdap's responses),
// so that a failure cannot be timed as a fast session. Peak RSS is each
// process's (wait4's ru_maxrss, VmHWM), CPU time its user and system
// time. ns/op is a whole iteration's (both tools and their QEMUs): read
// gdb-ns/op, vmdap-ns/op and their ratio. VMDAP_BENCH_CPUPROFILE=file
// profiles vmdap's side, VMDAP_BENCH_LOG=file logs its traffic,
// VMDAP_BENCH_INDEX_CACHE=dir gives it an index cache.
//
//	go test -run '^$' -bench LinuxSessionVsGDB -benchtime 3x .
func BenchmarkLinuxSessionVsGDB(b *testing.B) {
	k := vmmtest.RequireLinux(b)
	vmmtest.RequireQEMU(b)
	if _, err := exec.LookPath("gdb"); err != nil {
		b.Skip("skipping: gdb is not installed (apt-get install gdb)")
	}
	line := callLine(b, k.Vmlinux, "start_kernel", "setup_arch")
	var gdbTime, vmdapTime, vmdapProc, gdbCPU, vmdapCPU time.Duration
	var gdbRSS, vmdapRSS int64
	steps := map[string]time.Duration{}
	var order []string
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := gdbKernelTutorial(b, k, line)
		gdbTime += g.d
		gdbCPU += g.cpu
		gdbRSS = max(gdbRSS, g.rss)
		r := vmdapKernelTutorial(b, k, line)
		vmdapTime += r.total
		vmdapProc += r.process
		vmdapCPU += r.cpu
		vmdapRSS = max(vmdapRSS, r.rss)
		for _, s := range r.steps {
			if _, ok := steps[s.name]; !ok {
				order = append(order, s.name)
			}
			steps[s.name] += s.d
		}
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64(gdbTime/n), "gdb-ns/op")
	b.ReportMetric(float64(vmdapTime/n), "vmdap-ns/op")
	b.ReportMetric(float64(gdbTime)/float64(vmdapTime), "gdb/vmdap")
	b.ReportMetric(float64(vmdapProc/n), "vmdap-process-ns/op")
	// CPU time (user + system) is what each tool costs the machine, and
	// varies less than wall time on a shared one: the guest's boot (most
	// of the wall time) is QEMU's.
	b.ReportMetric(float64((gdbCPU / n).Milliseconds()), "gdb-cpu-ms")
	b.ReportMetric(float64((vmdapCPU / n).Milliseconds()), "vmdap-cpu-ms")
	b.ReportMetric(float64(gdbCPU)/float64(vmdapCPU), "gdb/vmdap-cpu")
	b.ReportMetric(float64(gdbRSS>>20), "gdb-rss-MB")
	b.ReportMetric(float64(vmdapRSS>>20), "vmdap-rss-MB")
	for _, s := range order {
		b.ReportMetric(float64((steps[s]/n).Microseconds())/1000, s+"-ms")
	}
	// A benchmark's log is cut after 10 lines: three steps a line.
	var t strings.Builder
	fmt.Fprintf(&t, "gdb %v, vmdap %v (initialize to disconnect; %v from exec to exit), gdb/vmdap %.2f; CPU gdb %v, vmdap %v; peak RSS gdb %d MB, vmdap %d MB (mean of %d)",
		(gdbTime / n).Round(time.Millisecond), (vmdapTime / n).Round(time.Millisecond), (vmdapProc / n).Round(time.Millisecond),
		float64(gdbTime)/float64(vmdapTime), (gdbCPU / n).Round(time.Millisecond), (vmdapCPU / n).Round(time.Millisecond),
		gdbRSS>>20, vmdapRSS>>20, b.N)
	for i, s := range order {
		sep := " | "
		if i%3 == 0 {
			sep = "\n"
		}
		fmt.Fprintf(&t, "%s%s %.1f ms", sep, s, float64((steps[s]/n).Microseconds())/1000)
	}
	b.Log(t.String())
}

// tutorialQEMU starts the QEMU a tool attaches to, stopped at reset, and
// waits until it runs: its start is neither tool's cost. The returned
// function ends it: a guest a tool detached from boots on to its panic
// and spins there, and would take a processor from the next tool's QEMU.
func tutorialQEMU(b *testing.B, k vmmtest.Linux) (string, func()) {
	b.Helper()
	qmp := filepath.Join(b.TempDir(), "qmp")
	addr, q := startQEMU(b, "-machine", "pc", "-m", "512", "-smp", "1", "-serial", "null",
		"-kernel", k.Vmlinuz, "-append", "console=ttyS0 nokaslr", "-qmp", "unix:"+qmp+",server=on,wait=off")
	waitQMP(b, qmp)
	return addr, func() { q.Process.Kill(); q.Wait() }
}

// callLine returns the line of init/main.c where fn calls callee (gdb's
// disassembly, then its line table), for a line breakpoint the boot
// reaches soon after fn starts.
func callLine(b *testing.B, vmlinux, fn, callee string) int {
	b.Helper()
	out, err := exec.Command("gdb", "-batch", "-nx", "-ex", "file "+vmlinux, "-ex", "disassemble "+fn).Output()
	if err != nil {
		b.Fatalf("gdb disassemble %s: %v", fn, err)
	}
	m := regexp.MustCompile(`(0x[0-9a-f]+) <\+\d+>:\s+call\s+0x[0-9a-f]+ <` + callee + `>`).FindSubmatch(out)
	if m == nil {
		b.Fatalf("%s calls no %s in gdb's disassembly", fn, callee)
	}
	out, err = exec.Command("gdb", "-batch", "-nx", "-ex", "file "+vmlinux, "-ex", "info line *"+string(m[1])).Output()
	if err != nil {
		b.Fatalf("gdb info line: %v", err)
	}
	l := regexp.MustCompile(`Line (\d+) of "init/main.c"`).FindSubmatch(out)
	if l == nil {
		b.Fatalf("the call of %s is not on a line of init/main.c: %s", callee, out)
	}
	n, _ := strconv.Atoi(string(l[1]))
	return n
}

// gdbRun is gdb's run: its wall time, CPU time and peak RSS.
type gdbRun struct {
	d, cpu time.Duration
	rss    int64
}

// gdbKernelTutorial runs the session in gdb and checks, in order, that
// each command did what it should.
func gdbKernelTutorial(b *testing.B, k vmmtest.Linux, line int) gdbRun {
	b.Helper()
	addr, stop := tutorialQEMU(b, k)
	defer stop()
	cmds := []string{"file " + k.Vmlinux, "target remote " + addr, "break start_kernel", "continue", "bt",
		"info locals", "info args", "next", "next", "next", "step", "finish", "print init_task.comm",
		"print *init_task.active_mm", fmt.Sprintf("break init/main.c:%d", line), "continue", "detach"}
	args := []string{"-batch", "-nx"}
	for _, c := range cmds {
		args = append(args, "-ex", c)
	}
	cmd := exec.Command("gdb", args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("gdb: %v\n%s", err, out)
	}
	// What each command prints, in order (gdb -batch goes on past a
	// failed -ex: its output is the only evidence).
	want := []string{
		`(?m)^Breakpoint 1 at 0x[0-9a-f]+: file init/main.c`,
		`(?m)^Breakpoint 1, start_kernel \(\) at init/main.c:\d+`,
		`(?m)^#0  start_kernel \(\) at init/main.c:\d+`,
		`(?m)^#1  0x[0-9a-f]+ in x86_64_start_reservations`,
		`(?m)^command_line = `,
		`(?m)^No arguments\.`,
		// A line's number, then its text, or "in init/main.c" where
		// gdb has not the kernel's sources.
		`(?m)^\d+\t`,
		`(?m)^\d+\t`,
		`(?m)^\d+\t`,
		`(?m)^[a-z_0-9]+ \(.*\) at [^\n]+:\d+\n\d+\t`, // the step's new function
		`(?m)^start_kernel \(\) at init/main.c:\d+`,   // finish
		`(?m)^\$1 = "swapper`,
		`(?m)^\$2 = \{.*pgd = 0x[0-9a-f]+ <init_top_pgt>`,
		fmt.Sprintf(`(?m)^Breakpoint 2 at 0x[0-9a-f]+: file init/main.c, line %d\.`, line),
		fmt.Sprintf(`(?m)^Breakpoint 2, start_kernel \(\) at init/main.c:%d`, line),
		`(?m)^\[Inferior 1 \(process 1\) detached\]`,
	}
	rest := out
	for _, w := range want {
		loc := regexp.MustCompile(w).FindIndex(rest)
		if loc == nil {
			b.Fatalf("gdb's output has no %q after what came before:\n%s", w, out)
		}
		if strings.Contains(w, "the step's") && strings.HasPrefix(string(rest[loc[0]:]), "start_kernel ") {
			b.Fatalf("gdb's step stayed in start_kernel:\n%s", out)
		}
		rest = rest[loc[1]:]
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return gdbRun{d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), ru.Maxrss << 10}
}

type tutorialStep struct {
	name string
	d    time.Duration
}

type tutorialRun struct {
	total   time.Duration // initialize request to disconnect response
	process time.Duration // exec to exit
	cpu     time.Duration // user + system
	rss     int64
	steps   []tutorialStep
}

// vmdapKernelTutorial runs the session in the vmdap binary over stdio and
// checks each response; it returns the times of the whole and of each
// step, and the process's peak RSS.
func vmdapKernelTutorial(b *testing.B, k vmmtest.Linux, line int) tutorialRun {
	b.Helper()
	addr, stopQEMU := tutorialQEMU(b, k)
	defer stopQEMU()
	// No index cache: a first session's, as gdb's every session is.
	// VMDAP_BENCH_INDEX_CACHE=dir times a later one's instead.
	args := []string{"--log-level", "error", "--index-cache", os.Getenv("VMDAP_BENCH_INDEX_CACHE")}
	if p := os.Getenv("VMDAP_BENCH_CPUPROFILE"); p != "" {
		args = append(args, "--cpuprofile", p)
	}
	if p := os.Getenv("VMDAP_BENCH_LOG"); p != "" { // vmdap's debug log: its DAP and RSP traffic timed
		args = append(args, "--log-level", "debug", "--log-output", "dap", "--log-file", p)
	}
	cmd := exec.Command(vmdapBin, append(args, "dap")...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	procStart := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			stdin.Close()
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	c := daptest.New(rwc{stdout, stdin})
	c.Timeout = 2 * time.Minute
	var r tutorialRun
	step := func(name string, f func() error) {
		b.Helper()
		start := time.Now()
		if err := f(); err != nil {
			b.Fatalf("vmdap: %s: %v", name, err)
		}
		r.steps = append(r.steps, tutorialStep{name, time.Since(start)})
	}
	// stop waits for a stop of that reason and asks for its stack, as a
	// client does to show where it stopped; frame 0 must be in fn.
	var st *dap.StackTraceResponse
	thread := 1
	stop := func(reason, fn string) (err error) {
		ev, err := c.Stopped()
		if err != nil {
			return err
		}
		if ev.Body.Reason != reason {
			return fmt.Errorf("stopped for %q, want %q", ev.Body.Reason, reason)
		}
		thread = ev.Body.ThreadId
		if st, err = c.StackTrace(thread); err != nil {
			return err
		}
		if len(st.Body.StackFrames) == 0 {
			return fmt.Errorf("no frames")
		}
		if f := st.Body.StackFrames[0].Name; fn != "" && f != fn {
			return fmt.Errorf("stopped in %s, want %s", f, fn)
		}
		return nil
	}
	names := func() []string {
		var n []string
		for _, f := range st.Body.StackFrames {
			n = append(n, f.Name)
		}
		return n
	}
	start := time.Now()
	step("initialize", func() error { _, err := c.Initialize(); return err })
	step("attach", func() error {
		_, err := c.Request("attach", map[string]any{"gdbServer": addr, "program": k.Vmlinux})
		if err == nil {
			_, err = c.WaitEvent("initialized")
		}
		return err
	})
	step("break-start_kernel", func() error {
		m, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "start_kernel"}}})
		if err != nil {
			return err
		}
		if bps := m.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints; len(bps) != 1 || !bps[0].Verified {
			return fmt.Errorf("%+v, want one verified breakpoint", bps)
		}
		return nil
	})
	step("configurationDone", func() error {
		if err := c.ConfigurationDone(); err != nil {
			return err
		}
		_, err := c.Stopped()
		return err
	})
	step("continue-start_kernel", func() error {
		if err := c.Continue(1); err != nil {
			return err
		}
		if err := stop("function breakpoint", "start_kernel"); err != nil {
			return err
		}
		if n := names(); len(n) < 2 || n[1] != "x86_64_start_reservations" {
			return fmt.Errorf("backtrace %v, want x86_64_start_reservations in frame 1", n)
		}
		return nil
	})
	step("locals-args", func() error {
		sc, err := c.Scopes(st.Body.StackFrames[0].Id)
		if err != nil {
			return err
		}
		got := map[string]bool{}
		for _, s := range sc.Body.Scopes {
			if s.Name != "Locals" && s.Name != "Arguments" {
				continue
			}
			v, err := c.Variables(s.VariablesReference)
			if err != nil {
				return err
			}
			for _, x := range v.Body.Variables {
				got[x.Name] = true
			}
		}
		if !got["command_line"] {
			return fmt.Errorf("start_kernel's variables %v lack command_line", got)
		}
		return nil
	})
	for i := 1; i <= 3; i++ {
		step(fmt.Sprintf("next%d", i), func() error {
			if err := c.Step("next", thread, ""); err != nil {
				return err
			}
			return stop("step", "start_kernel")
		})
	}
	step("stepIn", func() error {
		if err := c.Step("stepIn", thread, ""); err != nil {
			return err
		}
		if err := stop("step", ""); err != nil {
			return err
		}
		if n := names(); n[0] == "start_kernel" || !slices.Contains(n[1:], "start_kernel") {
			return fmt.Errorf("stepIn stopped in %v, want a function start_kernel calls", n)
		}
		return nil
	})
	step("stepOut", func() error {
		if err := c.Step("stepOut", thread, ""); err != nil {
			return err
		}
		return stop("step", "start_kernel")
	})
	fid := st.Body.StackFrames[0].Id
	step("eval-comm", func() error {
		e, err := c.Evaluate(fid, "init_task.comm")
		if err == nil && !strings.Contains(e.Body.Result, "swapper") {
			err = fmt.Errorf("init_task.comm = %q", e.Body.Result)
		}
		return err
	})
	// mm_struct's fields are in an anonymous struct (randomizable layout):
	// the user opens it to see pgd, as gdb prints it whole.
	step("eval-mm", func() error {
		e, err := c.Evaluate(fid, "*init_task.active_mm")
		if err != nil {
			return err
		}
		refs := []int{e.Body.VariablesReference}
		for len(refs) > 0 {
			ref := refs[0]
			refs = refs[1:]
			if ref == 0 {
				continue
			}
			v, err := c.Variables(ref)
			if err != nil {
				return err
			}
			for _, x := range v.Body.Variables {
				if x.Name == "pgd" && strings.Contains(x.Value, "0x") {
					return nil
				}
				if strings.HasPrefix(x.Name, "<anonymous") {
					refs = append(refs, x.VariablesReference)
				}
			}
		}
		return fmt.Errorf("*init_task.active_mm = %q: no pgd among its fields", e.Body.Result)
	})
	step("break-main.c", func() error {
		r, err := c.SetBreakpoints("init/main.c", daptest.Line(line))
		if err != nil {
			return err
		}
		if bps := r.Body.Breakpoints; len(bps) != 1 || !bps[0].Verified || bps[0].Line != line {
			return fmt.Errorf("%+v, want one verified breakpoint at line %d", bps, line)
		}
		return nil
	})
	step("continue-main.c", func() error {
		if err := c.Continue(thread); err != nil {
			return err
		}
		if err := stop("breakpoint", "start_kernel"); err != nil {
			return err
		}
		if l := st.Body.StackFrames[0].Line; l != line {
			return fmt.Errorf("stopped at line %d, want %d", l, line)
		}
		return nil
	})
	step("disconnect", func() error {
		_, err := c.Request("disconnect", map[string]any{"terminateDebuggee": false})
		return err
	})
	r.total = time.Since(start)
	stdin.Close() // vmdap exits at its input's end
	if err := cmd.Wait(); err != nil {
		b.Fatalf("vmdap: %v", err)
	}
	waited = true
	r.process = time.Since(procStart)
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	r.rss = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	return r
}
