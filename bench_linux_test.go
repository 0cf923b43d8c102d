package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// BenchmarkLinuxSymbols measures vmdap on Debian's cloud kernel beside gdb
// and drgn on the same vmlinux, in the same run (the machines are shared:
// compare the ratios):
//
//   - symbols ready: vmdap's attach response (the vmlinux is loaded
//     before it is sent), from a cold start (no index cache) and with
//     the index cache a first session wrote; gdb's `file vmlinux` plus
//     one `info line`; drgn's load_debug_info plus one lookup (when
//     python3-drgn is installed);
//   - peak RSS of each process;
//   - at stops in kernel functions, the slowest of stackTrace, scopes,
//     the variables of Locals and Arguments, evaluate (init_task.comm, a
//     field through a pointer), a function breakpoint by name, a line
//     breakpoint in init/main.c and a completion.
//
// go test -run '^$' -bench LinuxSymbols -benchtime 3x .
func BenchmarkLinuxSymbols(b *testing.B) {
	k := vmmtest.RequireLinux(b)
	vmmtest.RequireQEMU(b)
	var ready, cachedReady, gdbReady, drgnReady, slowest time.Duration
	var rss, gdbRSS, drgnRSS int64
	slowOp := ""
	ops := map[string]time.Duration{}
	haveDrgn := exec.Command("/usr/bin/python3", "-c", "import drgn").Run() == nil
	cache := b.TempDir()
	vmdapKernelSession(b, k, cache) // writes the index cache
	if files, _ := os.ReadDir(cache); len(files) != 1 {
		b.Fatalf("the first session left %d files in the index cache, want 1", len(files))
	}
	for i := 0; i < b.N; i++ {
		d, r := gdbLoad(b, k.Vmlinux)
		gdbReady += d
		gdbRSS = max(gdbRSS, r)
		if haveDrgn {
			d, r := drgnLoad(b, k.Vmlinux)
			drgnReady += d
			drgnRSS = max(drgnRSS, r)
		}
		cachedReady += vmdapKernelSession(b, k, cache).ready
		res := vmdapKernelSession(b, k, "")
		ready += res.ready
		rss = max(rss, res.rss)
		for op, d := range res.ops {
			if d > slowest {
				slowest, slowOp = d, op
			}
			ops[op] = max(ops[op], d)
		}
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64((ready / n).Milliseconds()), "vmdap-ready-ms")
	b.ReportMetric(float64((gdbReady / n).Milliseconds()), "gdb-ready-ms")
	b.ReportMetric(float64(gdbReady)/float64(ready), "gdb/vmdap")
	b.ReportMetric(float64((cachedReady / n).Milliseconds()), "vmdap-cached-ready-ms")
	b.ReportMetric(float64(rss>>20), "vmdap-rss-MB")
	b.ReportMetric(float64(gdbRSS>>20), "gdb-rss-MB")
	if haveDrgn {
		b.ReportMetric(float64((drgnReady / n).Milliseconds()), "drgn-ready-ms")
		b.ReportMetric(float64(drgnReady)/float64(ready), "drgn/vmdap")
		b.ReportMetric(float64(drgnReady)/float64(cachedReady), "drgn/vmdap-cached")
		b.ReportMetric(float64(drgnRSS>>20), "drgn-rss-MB")
	}
	b.ReportMetric(float64(slowest.Microseconds())/1000, "slowest-request-ms")
	b.Logf("slowest request at a stop: %s (%v)", slowOp, slowest)
	names := make([]string, 0, len(ops))
	for op := range ops {
		names = append(names, op)
	}
	slices.Sort(names)
	for _, op := range names {
		b.Logf("%-45s %8.2f ms (slowest of %d runs)", op, float64(ops[op].Microseconds())/1000, b.N)
	}
}

// waitQMP waits until QEMU answers on its QMP socket: its main loop runs.
func waitQMP(b *testing.B, sock string) {
	b.Helper()
	c := dialQMP(b, sock)
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	for _, cmd := range []string{"", `{"execute":"qmp_capabilities"}`, `{"execute":"query-status"}`} {
		if cmd != "" {
			fmt.Fprintln(c, cmd)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			b.Fatalf("QMP %s: %v", cmd, err)
		}
		if cmd != "" && !strings.Contains(line, `"return"`) {
			b.Fatalf("QMP %s: %s", cmd, line)
		}
	}
}

// gdbLoad times gdb reading the vmlinux's symbols and one line lookup.
func gdbLoad(b *testing.B, vmlinux string) (time.Duration, int64) {
	cmd := exec.Command("gdb", "-batch", "-nx", "-ex", "file "+vmlinux, "-ex", "info line start_kernel")
	return timedRun(b, cmd, "start_kernel")
}

// drgnLoad times drgn indexing the vmlinux's debug information and one
// lookup (its index is built when first needed).
func drgnLoad(b *testing.B, vmlinux string) (time.Duration, int64) {
	script := `import sys, drgn
p = drgn.Program()
p.load_debug_info([sys.argv[1]])
print(p.symbol("start_kernel").name, p.function("start_kernel").address_)`
	return timedRun(b, exec.Command("/usr/bin/python3", "-c", script, vmlinux), "start_kernel")
}

func timedRun(b *testing.B, cmd *exec.Cmd, want string) (time.Duration, int64) {
	b.Helper()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil || !strings.Contains(string(out), want) {
		b.Fatalf("%s: %v\n%s", cmd.Path, err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return d, ru.Maxrss << 10
}

type kernelRun struct {
	ready time.Duration
	rss   int64
	ops   map[string]time.Duration
}

// vmdapKernelSession attaches the real binary to QEMU booting the kernel
// and times what a user does at the first stops, with the symbols' index
// cache in cache ("": none, a cold start).
func vmdapKernelSession(b *testing.B, k vmmtest.Linux, cache string) kernelRun {
	b.Helper()
	qmp := filepath.Join(b.TempDir(), "qmp")
	addr, _ := startQEMU(b, "-machine", "pc", "-m", "512", "-smp", "1", "-serial", "null",
		"-kernel", k.Vmlinuz, "-append", "console=ttyS0 nokaslr", "-qmp", "unix:"+qmp+",server=on,wait=off")
	// The attach is timed against a QEMU that is up, as a user's is: its
	// own start (seconds before the attach, for a user) is not vmdap's.
	waitQMP(b, qmp)
	args := []string{"--log-level", "error", "--index-cache", cache}
	if p := os.Getenv("VMDAP_BENCH_CPUPROFILE"); p != "" { // a profile of vmdap's side
		args = append(args, "--cpuprofile", p)
	}
	if p := os.Getenv("VMDAP_BENCH_LOG"); p != "" { // vmdap's debug log, its DAP traffic timed
		args = []string{"--log-level", "debug", "--log-output", "dap", "--log-file", p, "--index-cache", cache}
	}
	cmd := exec.Command(vmdapBin, append(args, "dap")...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	c := daptest.New(rwc{stdout, stdin})
	c.Timeout = 2 * time.Minute
	if _, err := c.Initialize(); err != nil {
		b.Fatal(err)
	}
	res := kernelRun{ops: map[string]time.Duration{}}
	var err error
	for i := 0; i < 200; i++ {
		start := time.Now()
		_, err = c.Request("attach", map[string]any{"gdbServer": addr, "program": k.Vmlinux})
		res.ready = time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "connect") {
			break
		}
		time.Sleep(50 * time.Millisecond) // QEMU is starting
	}
	if err != nil {
		b.Fatal(err)
	}
	timed := func(op string, f func() error) {
		b.Helper()
		start := time.Now()
		if err := f(); err != nil {
			b.Fatalf("%s: %v", op, err)
		}
		res.ops[op] = max(res.ops[op], time.Since(start))
	}
	// What was timed must also be right.
	verified := func(m dap.Message, what string) error {
		var bps []dap.Breakpoint
		switch r := m.(type) {
		case *dap.SetFunctionBreakpointsResponse:
			bps = r.Body.Breakpoints
		case *dap.SetBreakpointsResponse:
			bps = r.Body.Breakpoints
		}
		if len(bps) != 1 || !bps[0].Verified {
			return fmt.Errorf("%s: %+v, want one verified breakpoint", what, bps)
		}
		return nil
	}
	evaluates := func(fid int, expr, want string) error {
		r, err := c.Evaluate(fid, expr)
		if err == nil && !strings.Contains(r.Body.Result, want) {
			err = fmt.Errorf("%s = %q, want %q in it", expr, r.Body.Result, want)
		}
		return err
	}
	c.WaitEvent("initialized")
	timed("setFunctionBreakpoints start_kernel", func() error {
		m, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "start_kernel"}}})
		if err != nil {
			return err
		}
		return verified(m, "start_kernel")
	})
	c.ConfigurationDone()
	c.Stopped() // entry
	c.Continue(1)
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "function breakpoint" {
		b.Fatalf("stop at start_kernel: %+v %v", ev, err)
	}
	atStop := func(where string) {
		var st *dap.StackTraceResponse
		timed("stackTrace "+where, func() (err error) {
			if st, err = c.StackTrace(1); err == nil && st.Body.StackFrames[0].Name != where {
				err = fmt.Errorf("frame 0 is %s", st.Body.StackFrames[0].Name)
			}
			return
		})
		fid := st.Body.StackFrames[0].Id
		var sc *dap.ScopesResponse
		timed("scopes "+where, func() (err error) { sc, err = c.Scopes(fid); return })
		vars := 0
		for _, s := range sc.Body.Scopes {
			if s.Name == "Locals" || s.Name == "Arguments" {
				timed("variables "+s.Name+" "+where, func() error {
					v, err := c.Variables(s.VariablesReference)
					if err == nil {
						vars += len(v.Body.Variables)
					}
					return err
				})
			}
		}
		if vars == 0 {
			b.Fatalf("no locals or arguments in %s", where) // start_kernel has locals, setup_arch an argument
		}
		timed("evaluate init_task.comm", func() error { return evaluates(fid, "init_task.comm", "swapper") })
		timed("evaluate (&init_task)->thread.sp", func() error { return evaluates(fid, "(&init_task)->thread.sp >= 0xffff800000000000", "1") })
		timed("completions", func() error {
			m, err := c.Request("completions", map[string]any{"frameId": fid, "text": "init_t", "column": 7})
			if err != nil {
				return err
			}
			for _, t := range m.(*dap.CompletionsResponse).Body.Targets {
				if t.Label == "init_task" {
					return nil
				}
			}
			return fmt.Errorf("no init_task among %d completions of init_t", len(m.(*dap.CompletionsResponse).Body.Targets))
		})
	}
	atStop("start_kernel")
	line := lineOfSymbol(b, k.Vmlinux, "start_kernel") + 10
	timed("setBreakpoints init/main.c", func() error {
		r, err := c.SetBreakpoints("init/main.c", daptest.Line(line))
		if err != nil {
			return err
		}
		return verified(r, "init/main.c:"+fmt.Sprint(line))
	})
	timed("setFunctionBreakpoints setup_arch", func() error {
		m, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "setup_arch"}}})
		if err != nil {
			return err
		}
		return verified(m, "setup_arch")
	})
	c.SetBreakpoints("init/main.c")
	c.Continue(1)
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "function breakpoint" {
		b.Fatalf("stop at setup_arch: %+v %v", ev, err)
	}
	atStop("setup_arch")
	res.rss = peakRSS(b, cmd.Process.Pid)
	c.Disconnect()
	return res
}

// lineOfSymbol returns the line of a function's first row (by gdb).
func lineOfSymbol(b *testing.B, vmlinux, fn string) int {
	out, err := exec.Command("gdb", "-batch", "-nx", "-ex", "file "+vmlinux, "-ex", "info line "+fn).Output()
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		b.Fatalf("gdb: %s", out)
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// peakRSS reads a process's VmHWM.
func peakRSS(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
