package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/session"
	"vmdap/vmm/vmmtest"
)

// BenchmarkLinuxCoreVsDrgnCrash times a post-mortem look at one core dump
// of Debian's cloud kernel (QEMU's dump-guest-memory -p, with the
// kernel's VMCOREINFO: -device vmcoreinfo and qemu_fw_cfg loaded, made
// once before the timing) by three tools, in the same run (the machines
// are shared: compare the ratios). Each opens the core with the vmlinux
// and shows the tasks, the kernel log, the modules and the stack of pid
// 1 (/init's shell, asleep in wait), as a process timed from its start to
// its exit, with its peak RSS (wait4's ru_maxrss):
//
//   - vmdap: the built binary over stdio: initialize, attach with
//     coreFile (its response: the core is open, the vmlinux loaded),
//     configurationDone, then tasks, dmesg, lsmod and pid 1's
//     stackTrace, disconnect; cold (no index cache, as drgn and crash
//     keep none) and with the index cache a first session wrote;
//   - drgn (python3-drgn for /usr/bin/python3): set_core_dump,
//     load_debug_info, then for_each_task, get_printk_records, the
//     modules list and stack_trace(pid 1), with the vmlinux without its
//     ORC tables (vmlinuxForDrgn: drgn 0.0.22 cannot read 6.4+ ORC);
//   - crash (Debian's 8.0.2): crash -s --kaslr auto vmlinux core with
//     ps, log, mod, bt 1 on its standard input. crash 8.0.2 predates this 6.12 kernel:
//     where its output shows it could not read the dump (fewer tasks than
//     the kernel has, no stack), its part is skipped and its errors are
//     logged, never timed as a fast answer.
//
// Every tool's output is checked (the tasks, the modules, the log's last
// line, a frame in the scheduler), so that a failure is not timed as a
// fast session. The metrics: each tool's ms and MB, and drgn/vmdap,
// crash/vmdap (time, and RSS), against vmdap cold.
//
//	go test -run '^$' -bench LinuxCoreVsDrgnCrash -benchtime 3x .
func BenchmarkLinuxCoreVsDrgnCrash(b *testing.B) {
	k := vmmtest.RequireLinux(b)
	vmmtest.RequireQEMU(b)
	core := benchCore(b, k)
	cache := b.TempDir()
	first := vmdapCoreSession(b, k, core, cache) // writes the index cache
	haveDrgn := exec.Command("/usr/bin/python3", "-c", "import drgn").Run() == nil
	drgnVmlinux := ""
	if haveDrgn {
		drgnVmlinux = vmlinuxForDrgn(b, k.Vmlinux, b.TempDir())
	}
	crashWhy := ""
	if _, err := exec.LookPath("crash"); err != nil {
		crashWhy = "crash is not installed (apt-get install crash)"
	}
	var vmdap, cached, drgn, crash toolRun
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vmdap.add(vmdapCoreSession(b, k, core, ""))
		cached.add(vmdapCoreSession(b, k, core, cache))
		if haveDrgn {
			drgn.add(drgnCoreSession(b, drgnVmlinux, core, first))
		}
		if crashWhy == "" {
			r, why := crashCoreSession(b, k, core, first)
			if crashWhy = why; why == "" {
				crash.add(r)
			}
		}
	}
	b.StopTimer()
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(vmdap.total), "vmdap-ms")
	b.ReportMetric(ms(vmdap.open), "vmdap-open-ms")
	b.ReportMetric(float64(vmdap.rss>>20), "vmdap-rss-MB")
	b.ReportMetric(ms(cached.total), "vmdap-cached-ms")
	b.ReportMetric(ms(cached.open), "vmdap-cached-open-ms")
	b.ReportMetric(float64(cached.rss>>20), "vmdap-cached-rss-MB")
	if haveDrgn {
		b.ReportMetric(ms(drgn.total), "drgn-ms")
		b.ReportMetric(float64(drgn.rss>>20), "drgn-rss-MB")
		b.ReportMetric(float64(drgn.total)/float64(vmdap.total), "drgn/vmdap")
		b.ReportMetric(float64(drgn.rss)/float64(vmdap.rss), "drgn/vmdap-rss")
	} else {
		b.Log("drgn: skipped, python3-drgn is not installed for /usr/bin/python3")
	}
	if crashWhy == "" {
		b.ReportMetric(ms(crash.total), "crash-ms")
		b.ReportMetric(float64(crash.rss>>20), "crash-rss-MB")
		b.ReportMetric(float64(crash.total)/float64(vmdap.total), "crash/vmdap")
		b.ReportMetric(float64(crash.rss)/float64(vmdap.rss), "crash/vmdap-rss")
	} else {
		b.Logf("crash: skipped: %s", crashWhy)
	}
	b.Logf("vmdap's requests (cold, its first run of %d): %s", b.N, vmdap.steps)
}

// toolRun is one tool's run on the core: wall time from its start to its
// exit, the attach response's (vmdap), peak RSS.
type toolRun struct {
	total, open time.Duration
	rss         int64
	steps       string
	// what vmdap showed, for the other tools' outputs to be checked by
	tasks   int
	modules []string
	lastLog string
}

func (r *toolRun) add(o toolRun) {
	r.total += o.total
	r.open += o.open
	r.rss = max(r.rss, o.rss)
	if r.steps == "" {
		r.steps = o.steps
	}
}

// benchCore boots the kernel with a few sleeping processes and has QEMU
// dump it with paging once it is set up (linuxCore).
func benchCore(b *testing.B, k vmmtest.Linux) string {
	b.Helper()
	core := linuxCore(b, k, "console=ttyS0 panic=-1", "$B sleep 7200 &\n$B sleep 7201 &\n$B sleep 1")(true)
	// QEMU's notes give each vCPU's number + 1 as its pr_pid, where a
	// kdump has the pid running there: drgn (and crash) would take pid
	// 1's stack from vCPU 0's registers. As the drgn oracle does, the
	// pids are cleared (vmdap reads none of them).
	if err := vmmtest.ClearPRStatusPIDs(core); err != nil {
		b.Fatal(err)
	}
	return core
}

// rusage returns a finished process's peak RSS.
func rusage(cmd *exec.Cmd) int64 {
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
}

// taskLine is a row of vmdap's tasks: pid, tgid, ppid, state, cpu,
// task_struct, name.
var taskLine = regexp.MustCompile(`(?m)^\s*\d+\s+\d+\s+\d+ \S\s+\d+\s+0x[0-9a-f]+\s+\S`)

// vmdapCoreSession opens the core in the built binary and shows tasks,
// dmesg, lsmod and pid 1's stack, with the symbols' index cache in cache
// ("": none, a cold start).
func vmdapCoreSession(b *testing.B, k vmmtest.Linux, core, cache string) toolRun {
	b.Helper()
	start := time.Now()
	args := []string{"--log-level", "error", "--index-cache", cache}
	if p := os.Getenv("VMDAP_BENCH_CPUPROFILE"); p != "" && cache == "" { // a profile of vmdap's side (the last cold session's)
		args = append(args, "--cpuprofile", p)
	}
	cmd := exec.Command(vmdapBin, append(args, "dap")...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := daptest.New(rwc{stdout, stdin})
	c.Timeout = 2 * time.Minute
	fail := func(what string, err error) {
		b.Helper()
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("vmdap on the core: %s: %v", what, err)
	}
	var r toolRun
	var steps []string
	if _, err := c.Initialize(); err != nil {
		fail("initialize", err)
	}
	steps = append(steps, fmt.Sprintf("start and initialize %.1f ms", float64((time.Since(start)).Microseconds())/1000))
	step := func(name string, f func() error) {
		b.Helper()
		t := time.Now()
		if err := f(); err != nil {
			fail(name, err)
		}
		steps = append(steps, fmt.Sprintf("%s %.1f ms", name, float64(time.Since(t).Microseconds())/1000))
	}
	step("attach", func() error {
		_, err := c.Request("attach", map[string]any{"coreFile": core, "program": k.Vmlinux, "taskThreads": true})
		r.open = time.Since(start)
		return err
	})
	step("configurationDone", func() error {
		if _, err := c.WaitEvent("initialized"); err != nil {
			return err
		}
		if err := c.ConfigurationDone(); err != nil {
			return err
		}
		_, err := c.Stopped()
		return err
	})
	console := func(cmd string, check func(string) error) {
		step(cmd, func() error {
			e, err := c.Evaluate(0, cmd)
			if err != nil {
				return err
			}
			return check(e.Body.Result)
		})
	}
	console("tasks", func(out string) error {
		if r.tasks = len(taskLine.FindAllString(out, -1)); r.tasks < 10 || !strings.Contains(out, "busybox") || strings.Contains(out, "cut short") {
			return fmt.Errorf("tasks: %d rows, want the kernel's threads and the guest's sleeps:\n%s", r.tasks, out)
		}
		return nil
	})
	console("dmesg", func(out string) error {
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if r.lastLog = lines[len(lines)-1]; !strings.Contains(out, coreBenchReady) {
			return fmt.Errorf("dmesg has no %s:\n%s", coreBenchReady, out[max(0, len(out)-2000):])
		}
		return nil
	})
	console("lsmod", func(out string) error {
		for _, l := range strings.Split(out, "\n")[1:] {
			if f := strings.Fields(l); len(f) > 0 {
				r.modules = append(r.modules, f[0])
			}
		}
		if !strings.Contains(out, "qemu_fw_cfg") {
			return fmt.Errorf("lsmod has no qemu_fw_cfg:\n%s", out)
		}
		return nil
	})
	step("stackTrace pid 1", func() error {
		m, err := c.Request("stackTrace", map[string]any{"threadId": session.TaskThreadBase + 1})
		if err != nil {
			return err
		}
		return inScheduler(m.(*dap.StackTraceResponse).Body.StackFrames)
	})
	step("disconnect", c.Disconnect)
	stdin.Close()
	exiting := time.Now()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("vmdap: %v", err)
	}
	steps = append(steps, fmt.Sprintf("exit %.1f ms", float64(time.Since(exiting).Microseconds())/1000))
	r.total, r.rss, r.steps = time.Since(start), rusage(cmd), strings.Join(steps, ", ")
	return r
}

// inScheduler checks that a sleeping task's frames pass through the
// scheduler (__schedule, schedule).
func inScheduler(frames []dap.StackFrame) error {
	var names []string
	for _, f := range frames {
		names = append(names, f.Name)
		if strings.Contains(f.Name, "schedule") {
			return nil
		}
	}
	return fmt.Errorf("pid 1's frames %v pass through no schedule function", names)
}

// drgnCoreSession runs drgn on the core, as vmdapCoreSession does vmdap;
// its output is checked against what vmdap showed (want).
func drgnCoreSession(b *testing.B, vmlinux, core string, want toolRun) toolRun {
	b.Helper()
	script := `import json, sys
from drgn import Program
from drgn.helpers.linux.list import list_for_each_entry
from drgn.helpers.linux.pid import find_task, for_each_task
from drgn.helpers.linux.printk import get_printk_records
p = Program()
p.set_core_dump(sys.argv[1])
p.load_debug_info([sys.argv[2]])
tasks = [(t.pid.value_(), t.comm.string_().decode()) for t in for_each_task(p)]
log = get_printk_records(p)
mods = [m.name.string_().decode() for m in list_for_each_entry("struct module", p["modules"].address_of_(), "list")]
stack = [f.name or "" for f in p.stack_trace(find_task(p, 1))]
print(json.dumps({"tasks": len(tasks), "last": log[-1].text.decode(), "modules": mods, "stack": stack}))`
	start := time.Now()
	cmd := exec.Command("/usr/bin/python3", "-c", script, core, vmlinux)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	d := time.Since(start)
	var got struct {
		Tasks   int      `json:"tasks"`
		Last    string   `json:"last"`
		Modules []string `json:"modules"`
		Stack   []string `json:"stack"`
	}
	if err == nil {
		err = json.Unmarshal(out, &got)
	}
	if err != nil {
		b.Fatalf("drgn on the core: %v\n%s%s", err, out, stderr.String())
	}
	// vmdap's tasks also lists the idle tasks (pid 0), one a CPU, which
	// for_each_task does not.
	if got.Tasks+2 != want.tasks || !strings.HasSuffix(want.lastLog, got.Last) || strings.Join(got.Modules, " ") != strings.Join(want.modules, " ") ||
		!strings.Contains(strings.Join(got.Stack, " "), "schedule") {
		b.Fatalf("drgn read %d tasks, last log record %q, modules %v, pid 1's stack %v; vmdap showed %d tasks (with 2 idle), %q, %v",
			got.Tasks, got.Last, got.Modules, got.Stack, want.tasks, want.lastLog, want.modules)
	}
	return toolRun{total: d, rss: rusage(cmd)}
}

// crashCoreSession runs crash on the core, its commands on its standard
// input; why says why its output does not count (its errors), "" when it
// showed what vmdap did (want).
func crashCoreSession(b *testing.B, k vmmtest.Linux, core string, want toolRun) (toolRun, string) {
	b.Helper()
	start := time.Now()
	// --kaslr auto: the kernel's offset from the dump's VMCOREINFO
	// (without it, crash 8.0.2 says the vmlinux and the core "do not
	// match").
	cmd := exec.Command("crash", "-s", "--kaslr", "auto", k.Vmlinux, core)
	cmd.Stdin = strings.NewReader("ps\nlog\nmod\nbt 1\nexit\n")
	outb, err := cmd.CombinedOutput()
	d := time.Since(start)
	out := string(outb)
	if err != nil {
		return toolRun{}, fmt.Sprintf("crash -s --kaslr auto vmlinux core: %v after %v: %s", err, d.Round(time.Millisecond), strings.Join(strings.Fields(firstLines(out, 4)), " "))
	}
	// ps: a row per task (the idle tasks too), PID PPID CPU TASK ST ...
	rows := regexp.MustCompile(`(?m)^[> ]\s*\d+\s+\d+\s+\d+\s+[0-9a-f]{16}\s+[A-Z]{2}\s`).FindAllString(out, -1)
	var bad []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "WARNING") || strings.Contains(l, "failed") || strings.Contains(l, "invalid") || strings.Contains(l, "violation") || strings.Contains(l, "cannot") {
			bad = append(bad, strings.TrimSpace(l))
		}
	}
	missing := []string{}
	if len(rows) != want.tasks {
		missing = append(missing, fmt.Sprintf("ps lists %d tasks, vmdap %d", len(rows), want.tasks))
	}
	if !strings.Contains(out, coreBenchReady) {
		missing = append(missing, "log has no "+coreBenchReady)
	}
	for _, m := range want.modules {
		if !strings.Contains(out, m) {
			missing = append(missing, "mod has no "+m)
		}
	}
	if !regexp.MustCompile(`#\d+ \[[0-9a-f]+\] \S*schedule`).MatchString(out) {
		missing = append(missing, "bt 1 has no schedule frame")
	}
	if len(missing) > 0 {
		return toolRun{}, fmt.Sprintf("crash 8.0.2 could not read this 6.12 kernel's dump (%s in %v): %s; its errors: %s",
			strings.Join(missing, "; "), d.Round(time.Millisecond), firstLines(out, 0), strings.Join(bad, " | "))
	}
	return toolRun{total: d, rss: rusage(cmd)}, ""
}

// firstLines returns text's first n lines (0: none, only the count).
func firstLines(text string, n int) string {
	l := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if n == 0 {
		return fmt.Sprintf("%d lines of output", len(l))
	}
	return strings.Join(l[:min(n, len(l))], "\n")
}
