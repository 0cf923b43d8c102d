package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/session"
	"vmdap/vmm/vmmtest"
)

// What the drgn test's /init prints once its modules are loaded.
const drgnLoaded = "VMDAP-DRGN-MODULES-LOADED"

// TestLinuxAwareMatchesDrgn compares vmdap's Linux awareness with drgn's
// at the same stops of Debian's cloud kernel under QEMU TCG (two CPUs),
// booted with and without KASLR: at each stop QEMU writes an ELF core of
// the guest (vmdap's console "monitor dump-guest-memory -p", through the
// stub's qRcmd), drgn reads it with the vmlinux, and what vmdap shows
// must be what drgn reads: tasks (pid, thread group, parent, state
// letter, CPU, task_struct, name, kernel thread, running), the task and
// vCPU threads' names, the stacks of the tasks not running (unwound
// from where they were switched out), dmesg and dmesg N (each record's timestamp and
// text) and what kernelLog printed, lsmod (size, references, address,
// state, users), mounts, iomem, ioports, per_cpu, per_cpu_ptr, this_cpu,
// this_cpu_ptr and current on each vCPU, jiffies, nr_cpu_ids, version and
// cmdline. The stops: a function breakpoint on nls_ascii's init (the
// module is COMING, its init code still there; insmod runs), and a pause
// once /init sleeps with its modules LIVE. Only formatting is normalised
// (drgn prints a multi-line record's timestamp once, vmdap on each line
// as the kernel's console does; vmdap brackets a kernel thread's name as
// ps does; drgn shows no tail-call frames and names entry code by its
// containing symbol); where drgn 0.0.22 is wrong (a wrapped log record's
// text, two newer task-state rules, ORC of 6.4+ kernels, QEMU's vCPU
// numbers taken for pids), vmmtest's drgn script says so and reads as the
// kernel does. Each core is also opened post-mortem, in a second vmdap
// session (attach with coreFile), which must show what the live session
// showed at that stop and what drgn read; at the second stop, so are
// QEMU's core without paging and its compressed kdump, and makedumpfile's
// ELF and compressed kdumps of it (compareCore, compareCoreFormats).
func TestLinuxAwareMatchesDrgn(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	vmmtest.RequireDrgn(t)
	nls := vmmtest.RequireLinuxModule(t, k, "kernel/fs/nls/nls_ascii")
	fw := vmmtest.RequireLinuxModule(t, k, "kernel/drivers/firmware/qemu_fw_cfg")
	// xt_mark uses x_tables: lsmod's references and Used by.
	xt := vmmtest.RequireLinuxModule(t, k, "kernel/net/netfilter/x_tables")
	xtMark := vmmtest.RequireLinuxModule(t, k, "kernel/net/netfilter/xt_mark")
	ko := map[string][]byte{}
	for name, m := range map[string]vmmtest.LinuxModule{"fw.ko": fw, "nls.ko": nls, "xt.ko": xt, "xtmark.ko": xtMark} {
		b, err := os.ReadFile(m.KO)
		mustOK(t, err)
		ko[name] = b
	}
	// A process of three threads (tasks walks each process's threads).
	threads := filepath.Join(t.TempDir(), "threads")
	if out, err := exec.Command("gcc", "-static", "-pthread", "-O2", "-o", threads, filepath.Join("testdata", "linux", "threads.c")).CombinedOutput(); err != nil {
		t.Fatalf("building testdata/linux/threads.c (static, with pthreads): %v\n%s", err, out)
	}
	bin, err := os.ReadFile(threads)
	mustOK(t, err)
	ko["threads"] = bin
	// qemu_fw_cfg first: it hands QEMU's vmcoreinfo device the kernel's
	// VMCOREINFO, without which drgn cannot read QEMU's core. A tmpfs, a
	// sleeping child, a stopped one (T) and a zombie (Z: a child of a
	// shell that execs sleep, which never reaps it) give the mounts and
	// tasks more than init's.
	extra := "$B mkdir -p /mnt/d && $B mount -t tmpfs drgnscratch /mnt/d\n" +
		"$B sleep 7200 &\n" +
		"$B sleep 7201 & $B kill -STOP $!\n" +
		"$B sh -c '$B true & exec $B sleep 7202' &\n" +
		"$B chmod 755 /threads && /threads &\n" +
		// Enough log (debug level: not on the console) that the ring's
		// text and descriptors wrap; a record of two lines.
		"i=0; while [ $i -lt 5000 ]; do echo \"<7>vmdap-drgn filler $i: the quick brown fox jumps over the lazy dog\" >/dev/kmsg; i=$((i+1)); done\n" +
		"printf '<6>vmdap-drgn two lines: one\\ntwo\\n' >/dev/kmsg\n" +
		"$B insmod /fw.ko && $B insmod /xt.ko && $B insmod /xtmark.ko && $B insmod /nls.ko\n" +
		// CPU 0 spins in user space: the pause finds it there (current
		// through IA32_KERNEL_GS_BASE, the vCPU named in user mode).
		"$B taskset 1 $B awk 'BEGIN { while (1) {} }' &\n" +
		"$B sleep 1\n" + // the spinner runs by then
		"echo '<2>" + drgnLoaded + "' >/dev/kmsg\n" +
		"while :; do $B sleep 3600; done"
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	mustOK(t, os.WriteFile(initrd, vmmtest.InitramfsWith(t, extra, ko), 0o644))
	// With KASLR too: vmdap finds the slide at a stop, drgn reads it from
	// VMCOREINFO (KERNELOFFSET), and the per-CPU areas and module
	// addresses move.
	for _, kaslr := range []bool{false, true} {
		// printk.devkmsg=on: /init's writes to /dev/kmsg are not rate-limited.
		name, args := "nokaslr", "console=ttyS0 nokaslr panic=-1 printk.devkmsg=on"
		if kaslr {
			name, args = "kaslr", "console=ttyS0 panic=-1 printk.devkmsg=on"
		}
		t.Run(name, func(t *testing.T) { drgnStops(t, k, nls, initrd, args, kaslr) })
	}
}

// drgnStops boots the kernel with initrd and the command line args, and
// compares vmdap with drgn at a breakpoint in nls_ascii's init and at a
// pause once /init sleeps, where it also checks the core's other
// formats (compareCoreFormats: with KASLR, kdump, the ELF kdump; without,
// the compressed ones).
func drgnStops(t *testing.T, k vmmtest.Linux, nls vmmtest.LinuxModule, initrd, args string, kdump bool) {
	serial := filepath.Join(t.TempDir(), "serial.log")
	addr, _ := startQEMU(t, "-machine", "pc", "-m", "256", "-smp", "2", "-serial", "file:"+serial, "-device", "vmcoreinfo",
		"-kernel", k.Vmlinuz, "-initrd", initrd, "-append", args)
	cfg := map[string]any{"program": k.Vmlinux, "modules": nls.DebugDir}
	c := attachDAP(t, addr, map[string]any{"program": k.Vmlinux, "modules": nls.DebugDir, "taskThreads": true, "kernelLog": true})
	c.Timeout = 2 * time.Minute
	console := func() string { b, _ := os.ReadFile(serial); return string(b) }
	defer consolesOnFailure(t, c, console)

	_, err := c.WaitEvent("initialized")
	mustOK(t, err)
	_, err = c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "init_nls_ascii"}}})
	mustOK(t, err)
	mustOK(t, c.ConfigurationDone())
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("attach stop: %+v %v", ev, err)
	}
	mustOK(t, c.Continue(1))
	ev, err := c.Stopped()
	mustOK(t, err)
	if ev.Body.Reason != "function breakpoint" {
		t.Fatalf("stopped for %q (%s), want the breakpoint on init_nls_ascii", ev.Body.Reason, ev.Body.Description)
	}
	dir := t.TempDir()
	noORC := vmlinuxForDrgn(t, k.Vmlinux, dir)
	t.Run("init_nls_ascii", func(t *testing.T) { compareWithDrgn(t, c, cfg, noORC, dir, "init.core", 2, false, false) })

	mustOK(t, c.Continue(1))
	waitConsole(t, console, drgnLoaded, 2*time.Minute)
	_, err = c.Request("pause", map[string]any{"threadId": 1})
	mustOK(t, err)
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "pause" {
		t.Fatalf("pause: %+v %v", ev, err)
	}
	t.Run("sleeping", func(t *testing.T) { compareWithDrgn(t, c, cfg, noORC, dir, "sleep.core", 2, true, kdump) })
	mustOK(t, c.Disconnect())
}

// compareWithDrgn has QEMU dump the stopped guest to a core in dir, runs
// drgn on it and compares what vmdap shows at this stop with drgn's
// reading; then it opens the core in a second vmdap session (attach with
// coreFile, and cfg: the live session's program and modules), which must
// show what the live one did (compareCore). settled says /init has
// started all it starts: that stop also checks the other formats of the
// dump (compareCoreFormats). They are checked at one stop of the two
// only, each costing a dump of the guest's memory and a session (and
// makedumpfile about 30 s), and the settled stop has the most to compare
// (all tasks, a vCPU in user mode).
func compareWithDrgn(t *testing.T, c *daptest.Client, cfg map[string]any, vmlinux, dir, name string, vcpus int, settled, kdump bool) {
	core := filepath.Join(dir, name)
	// vmdap's answers first, then the dump: the guest stays stopped
	// between them (the monitor command does not resume it).
	live := viewOf(t, c, vcpus)
	// A frame of each vCPU, for the expressions (current is the vCPU's).
	frames := make([]int, vcpus)
	for v := range frames {
		st, err := c.StackTrace(v + 1)
		mustOK(t, err)
		frames[v] = st.Body.StackFrames[0].Id
	}
	eval := func(expr string) string { t.Helper(); return evalIn(t, c, frames[0], expr) }
	tasks, dmesg, dmesg20, lsmod, mounts := live.commands["tasks"], live.commands["dmesg"], live.commands["dmesg 20"], live.commands["lsmod"], live.commands["mounts"]
	version, cmdline, iomem, ioports := live.commands["version"], live.commands["cmdline"], live.commands["iomem"], live.commands["ioports"]
	start := time.Now()
	out := eval("monitor dump-guest-memory -p " + core)
	if st, err := os.Stat(core); err != nil || st.Size() == 0 {
		t.Fatalf("monitor dump-guest-memory %s: %q, and no core (%v)", core, out, err)
	}
	d := vmmtest.DrgnRead(t, core, vmlinux)
	t.Logf("dump and drgn: %v", time.Since(start).Round(time.Millisecond))
	t.Run("QEMU core", func(t *testing.T) { compareCore(t, core, cfg, live, d, vcpus, false) })
	os.Remove(core)
	if settled {
		compareCoreFormats(t, c, dir, cfg, live, d, vcpus, kdump)
	}
	for part, why := range d.Errors {
		t.Logf("drgn could not read %s (not compared): %s", part, why)
	}
	// A comparison with nothing is none: the guest has tasks, a log, its
	// four modules and mounts at both stops.
	if len(d.Tasks) < 3 || len(d.Log) == 0 || len(d.Modules) != 4 || len(d.Mounts) == 0 || len(d.CPUs) != vcpus {
		t.Errorf("drgn read %d tasks, %d log records, %d modules, %d mounts, %d CPUs: want some of each, the four modules and %d CPUs",
			len(d.Tasks), len(d.Log), len(d.Modules), len(d.Mounts), len(d.CPUs), vcpus)
	}
	users := 0
	for _, m := range d.Modules {
		users += len(m.Users)
	}
	if users == 0 {
		t.Errorf("drgn's modules: %+v, want x_tables used by xt_mark", d.Modules)
	}
	// Once /init sleeps, its threads, stopped child and zombie are there.
	kinds := map[string]int{}
	for _, tk := range d.Tasks {
		kinds[tk.State]++
		if tk.PID != tk.TGID {
			kinds["thread"]++
		}
	}
	t.Logf("drgn: %d tasks (states and threads: %v), %d log records, %d modules, %d mounts; vCPUs in user mode: %v", len(d.Tasks), kinds, len(d.Log), len(d.Modules), len(d.Mounts), d.VCPUUser)
	if settled && (kinds["thread"] != 2 || kinds["T"] == 0 || kinds["Z"] == 0) {
		t.Errorf("drgn's tasks: %v, want /init's two threads, its stopped child (T) and its zombie (Z)", kinds)
	}
	if _, bad := d.Errors["tasks"]; !bad {
		compareTasks(t, tasks, d)
		compareThreads(t, c, d, vcpus)
	}
	if _, bad := d.Errors["log"]; !bad {
		compareLog(t, "dmesg", dmesg, d.Log)
		compareLog(t, "dmesg 20", dmesg20, d.Log[max(0, len(d.Log)-20):])
		compareKernelLog(t, c.Output("console"), d.Log)
	}
	if _, bad := d.Errors["modules"]; !bad {
		compareModules(t, lsmod, d.Modules)
	}
	if _, bad := d.Errors["mounts"]; !bad {
		compareMounts(t, mounts, d.Mounts)
	}
	for _, r := range []struct {
		name, out string
		want      []string
	}{{"iomem", iomem, d.IOMem}, {"ioports", ioports, d.IOPorts}} {
		if _, bad := d.Errors[r.name]; !bad {
			compareLines(t, r.name, r.out, r.want)
		}
	}
	if _, bad := d.Errors["cpus"]; !bad {
		for _, cpu := range d.CPUs {
			for expr, want := range map[string]string{
				fmt.Sprintf("per_cpu(runqueues, %d).nr_running", cpu.CPU):                   fmt.Sprint(cpu.NrRunning),
				fmt.Sprintf("per_cpu(runqueues, %d).curr->pid", cpu.CPU):                    fmt.Sprint(cpu.CurrPID),
				fmt.Sprintf("per_cpu_ptr(&runqueues, %d)->nr_running", cpu.CPU):             fmt.Sprint(cpu.NrRunning),
				fmt.Sprintf("(unsigned long)*per_cpu_ptr(system_wq->cpu_pwq, %d)", cpu.CPU): fmt.Sprint(cpu.SystemWQPwq),
			} {
				if got := eval(expr); !sameNumber(got, parseU(want)) {
					t.Errorf("%s = %s, drgn reads %s", expr, got, want)
				}
			}
		}
		// current on each vCPU: QEMU's vCPU N is Linux's CPU N (the boot
		// CPU is CPU 0, the others are numbered in the MADT's order, which
		// is QEMU's).
		for v := range frames {
			if v >= len(d.CPUs) {
				break
			}
			cpu := d.CPUs[v]
			if got := evalIn(t, c, frames[v], "current->pid"); got != fmt.Sprint(cpu.CurrentPID) {
				t.Errorf("current->pid on vCPU %d = %s, drgn reads CPU %d's current pid %d", v, got, v, cpu.CurrentPID)
			}
			if got := evalIn(t, c, frames[v], "(unsigned long)current"); !sameNumber(got, cpu.Current) {
				t.Errorf("current on vCPU %d = %s, drgn reads CPU %d's current %#x", v, got, v, cpu.Current)
			}
			for _, expr := range []string{"this_cpu(runqueues).cpu", "this_cpu_ptr(&runqueues)->cpu"} {
				if got := evalIn(t, c, frames[v], expr); got != fmt.Sprint(v) {
					t.Errorf("%s on vCPU %d = %s, want %d", expr, v, got, v)
				}
			}
			if got := evalIn(t, c, frames[v], "this_cpu(runqueues).nr_running"); got != fmt.Sprint(cpu.NrRunning) {
				t.Errorf("this_cpu(runqueues).nr_running on vCPU %d = %s, drgn reads CPU %d's %d", v, got, v, cpu.NrRunning)
			}
		}
	}
	for expr, want := range map[string]string{"jiffies": fmt.Sprint(d.Jiffies), "nr_cpu_ids": fmt.Sprint(d.NrCPUs)} {
		if got := eval(expr); !sameNumber(got, parseU(want)) {
			t.Errorf("%s = %s, drgn reads %s", expr, got, want)
		}
	}
	if got := eval("init_task.comm"); !strings.HasPrefix(got, strconv.Quote(d.InitComm)[:len(d.InitComm)+1]) {
		t.Errorf("init_task.comm = %s, drgn reads %q", got, d.InitComm)
	}
	if strings.TrimRight(version, "\n") != strings.TrimRight(d.Banner, "\n") {
		t.Errorf("version = %q, drgn reads linux_banner %q", version, d.Banner)
	}
	if strings.TrimRight(cmdline, "\n") != d.Cmdline {
		t.Errorf("cmdline = %q, drgn reads saved_command_line %q", cmdline, d.Cmdline)
	}
}

// vmlinuxForDrgn writes the vmlinux without its ORC tables into dir:
// drgn 0.0.22 decodes ORC entries by the numbering of kernels before 6.4
// ("unknown ORC entry type 3" here); without them it unwinds by the
// DWARF CFI.
func vmlinuxForDrgn(t testing.TB, vmlinux, dir string) string {
	t.Helper()
	noORC := filepath.Join(dir, "vmlinux")
	if out, err := exec.Command("objcopy", "--remove-section=.orc_unwind", "--remove-section=.orc_unwind_ip", "--remove-section=.orc_header", vmlinux, noORC).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	return noORC
}

func parseU(s string) uint64 { n, _ := strconv.ParseUint(s, 0, 64); return n }

// sameNumber reports whether an evaluate result shows n (in decimal or
// hex, with whatever follows the number).
func sameNumber(got string, n uint64) bool {
	f := strings.Fields(got)
	if len(f) == 0 {
		return false
	}
	v, err := strconv.ParseUint(f[0], 0, 64)
	return err == nil && v == n
}

// taskRow is a row of vmdap's tasks.
var taskRow = regexp.MustCompile(`^\s*(\d+)\s+(\d+)\s+(\d+) (\S)\s+(\d+)\s+(0x[0-9a-f]+)\s+(.*)$`)

// compareTasks compares vmdap's tasks with drgn's, task by task
// (task_struct address).
func compareTasks(t *testing.T, out string, d vmmtest.DrgnLinux) {
	t.Helper()
	failed := t.Failed()
	defer func() {
		if !failed && t.Failed() {
			t.Logf("vmdap's tasks:\n%s", out)
		}
	}()
	got := map[uint64]vmmtest.DrgnTask{}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for _, l := range lines[1:] {
		m := taskRow.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("tasks: a line not a task: %q", l)
			continue
		}
		tk := vmmtest.DrgnTask{Addr: parseU(m[6]), State: m[4], Comm: m[7]}
		tk.PID, _ = strconv.Atoi(m[1])
		tk.TGID, _ = strconv.Atoi(m[2])
		tk.PPID, _ = strconv.Atoi(m[3])
		tk.CPU, _ = strconv.Atoi(m[5])
		tk.Comm, tk.Running = strings.CutSuffix(tk.Comm, "  (running)")
		if strings.HasPrefix(tk.Comm, "[") && strings.HasSuffix(tk.Comm, "]") {
			tk.Comm, tk.Kthread = tk.Comm[1:len(tk.Comm)-1], true
		}
		got[tk.Addr] = tk
	}
	for _, want := range d.Tasks {
		g, ok := got[want.Addr]
		if !ok {
			t.Errorf("tasks: no pid %d (%s, task_struct %#x), which drgn lists", want.PID, want.Comm, want.Addr)
			continue
		}
		delete(got, want.Addr)
		want.Stack = nil // compared with the task threads' stacks
		if fmt.Sprint(g) != fmt.Sprint(want) {
			t.Errorf("tasks: pid %d (%#x):\n  vmdap %+v\n  drgn  %+v", want.PID, want.Addr, g, want)
		}
	}
	for _, g := range got {
		t.Errorf("tasks: pid %d (%s, task_struct %#x) is not in drgn's list", g.PID, g.Comm, g.Addr)
	}
}

// compareThreads compares the threads (taskThreads) with drgn's tasks:
// each vCPU named after the task it runs (the CPU's current; in user
// mode when its CS says so), then each task but the idle ones, running on
// its vCPU or not.
func compareThreads(t *testing.T, c *daptest.Client, d vmmtest.DrgnLinux, vcpus int) {
	t.Helper()
	m, err := c.Request("threads", nil)
	mustOK(t, err)
	got := map[int]string{}
	for _, th := range m.(*dap.ThreadsResponse).Body.Threads {
		got[th.Id] = th.Name
	}
	byAddr := map[uint64]vmmtest.DrgnTask{}
	for _, tk := range d.Tasks {
		byAddr[tk.Addr] = tk
	}
	want := map[int]string{}
	for v := 0; v < vcpus && v < len(d.CPUs); v++ {
		cur, ok := byAddr[d.CPUs[v].Current]
		if !ok {
			t.Errorf("drgn's CPU %d runs %#x, which is none of its tasks", v, d.CPUs[v].Current)
			continue
		}
		comm := cur.Comm
		if cur.Kthread && cur.PID != 0 {
			comm = "[" + comm + "]"
		}
		user := ""
		if v < len(d.VCPUUser) && d.VCPUUser[v] {
			user = ", user mode"
		}
		want[v+1] = fmt.Sprintf("vCPU %d: %s (pid %d%s)", v, comm, cur.PID, user)
	}
	for _, tk := range d.Tasks {
		if tk.PID == 0 {
			continue // the idle tasks are the vCPUs
		}
		comm := tk.Comm
		if tk.Kthread {
			comm = "[" + comm + "]"
		}
		name := fmt.Sprintf("pid %d: %s (%s)", tk.PID, comm, tk.State)
		if tk.Running {
			name = fmt.Sprintf("pid %d: %s (%s, running on vCPU %d)", tk.PID, comm, tk.State, tk.CPU)
		}
		want[session.TaskThreadBase+tk.PID] = name
	}
	compareStacks(t, c, d)
	for id, w := range want {
		if g, ok := got[id]; !ok {
			t.Errorf("threads: no thread %d (%s)", id, w)
		} else if g != w {
			t.Errorf("threads: thread %d is %q, drgn's reading makes it %q", id, g, w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("threads: thread %d (%s) is none of drgn's tasks", id, g)
		}
	}
}

// compareStacks compares the stacks of the task threads not running
// with drgn's unwinding of the same tasks from where they were switched
// out (by the DWARF CFI), frame by frame: the pcs, and the functions
// where drgn has DWARF for them (it names code without, the entry code,
// by the ELF symbol that contains it; vmdap by the nearest label, as
// gdb). vmdap shows gdb's tail-call frames (a function that jumped to
// the next one, found from the DWARF's call sites), which drgn does not:
// a vmdap frame right after a jmp may be one drgn lacks. Past drgn's
// last frame (the CFI ends in entry code) vmdap unwinds on by the
// kernel's ORC tables, and to the user-space caller. Dead tasks (Z, X)
// have no stack to compare.
func compareStacks(t *testing.T, c *daptest.Client, d vmmtest.DrgnLinux) {
	t.Helper()
	stacks, frames, tails := 0, 0, 0
	defer func() {
		t.Logf("stacks compared: %d, %d frames of drgn's, %d tail-call frames of vmdap's", stacks, frames, tails)
	}()
	for _, tk := range d.Tasks {
		if tk.PID == 0 || tk.Running || tk.State == "Z" || tk.State == "X" || len(tk.Stack) == 0 {
			continue
		}
		m, err := c.Request("stackTrace", map[string]any{"threadId": session.TaskThreadBase + tk.PID})
		if err != nil {
			t.Errorf("stack of pid %d (%s): %v", tk.PID, tk.Comm, err)
			continue
		}
		var got []vmmtest.DrgnFrame
		for _, f := range m.(*dap.StackTraceResponse).Body.StackFrames {
			if pc := parseU(f.InstructionPointerReference); pc >= 0xffff800000000000 { // not user space
				got = append(got, vmmtest.DrgnFrame{Name: f.Name, PC: pc})
			}
		}
		show := func(fs []vmmtest.DrgnFrame) string {
			var b []string
			for _, f := range fs {
				b = append(b, fmt.Sprintf("%s@%#x", f.Name, f.PC))
			}
			return strings.Join(b, " ")
		}
		stacks++
		frames += len(tk.Stack)
		i, j := 0, 0
		for ; i < len(got) && j < len(tk.Stack); i++ {
			g, w := got[i], tk.Stack[j]
			switch {
			case g.PC == w.PC && (w.Name == "" || g.Name == w.Name):
				j++
			case g.PC != w.PC && afterJump(t, c, g.PC):
				tails++ // a tail-call frame
			default:
				t.Errorf("stack of pid %d (%s): frame %d is %s@%#x, drgn's %s@%#x:\n  vmdap %s\n  drgn  %s",
					tk.PID, tk.Comm, i, g.Name, g.PC, w.Name, w.PC, show(got), show(tk.Stack))
				j = -1
			}
			if j < 0 {
				break
			}
		}
		if j >= 0 && j < len(tk.Stack) {
			t.Errorf("stack of pid %d (%s): vmdap's ends before drgn's frame %s@%#x:\n  vmdap %s\n  drgn  %s",
				tk.PID, tk.Comm, tk.Stack[j].Name, tk.Stack[j].PC, show(got), show(tk.Stack))
		}
	}
}

// afterJump reports whether the instruction before pc in the guest's
// memory is a jmp (rel32 or rel8): pc is then a tail-call frame's.
func afterJump(t *testing.T, c *daptest.Client, pc uint64) bool {
	t.Helper()
	r, err := c.ReadMemory(fmt.Sprintf("%#x", pc-5), 0, 5)
	if err != nil {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(r.Body.Data)
	return err == nil && len(b) == 5 && (b[0] == 0xe9 || b[3] == 0xeb)
}

// compareLog compares vmdap's dmesg with drgn's printk records, each
// record's lines as vmdap shows them (the kernel console's format: the
// timestamp on each line).
func compareLog(t *testing.T, what, out string, recs []vmmtest.DrgnRecord) {
	t.Helper()
	var want []string
	for _, r := range recs {
		stamp := fmt.Sprintf("[%5d.%06d] ", r.TS/1e9, r.TS%1e9/1e3)
		for _, l := range strings.Split(strings.TrimRight(r.Text, "\n"), "\n") {
			want = append(want, stamp+l)
		}
	}
	compareLines(t, what, out, want)
}

// compareKernelLog checks what kernelLog printed at the stops so far (in
// the debug console, among vmdap's other notes): each of drgn's records,
// in order (the ring does not wrap between the test's stops).
func compareKernelLog(t *testing.T, console string, recs []vmmtest.DrgnRecord) {
	t.Helper()
	lines := strings.Split(console, "\n")
	i := 0
	for _, r := range recs {
		stamp := fmt.Sprintf("[%5d.%06d] ", r.TS/1e9, r.TS%1e9/1e3)
		for _, l := range strings.Split(strings.TrimRight(r.Text, "\n"), "\n") {
			want := stamp + l
			for i < len(lines) && lines[i] != want {
				i++
			}
			if i == len(lines) {
				t.Errorf("kernelLog: the debug console has no %q (record %d) after the records before it", want, r.Seq)
				return
			}
			i++
		}
	}
}

// compareLines compares a command's output with drgn's lines, reporting
// the first that differs.
func compareLines(t *testing.T, what, out string, want []string) {
	t.Helper()
	compareText(t, what, "drgn", out, want)
}

// compareText compares a command's output with lines another reader
// (oracle) shows, reporting the first that differs.
func compareText(t *testing.T, what, oracle, out string, want []string) {
	t.Helper()
	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if i, g, w, differ := firstDiff(got, want, 0); differ {
		t.Errorf("%s line %d of %d (%s: %d):\n  vmdap %q\n  %-5s %q\nvmdap's lines around it:\n%s",
			what, i+1, len(got), oracle, len(want), g, oracle, w, strings.Join(got[max(0, i-3):min(len(got), i+4)], "\n"))
	}
}

// firstDiff finds the first line from index from on that differs
// between got and want ("" past the end of either).
func firstDiff(got, want []string, from int) (i int, g, w string, differ bool) {
	for i = from; i < max(len(got), len(want)); i++ {
		g, w = "", ""
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return i, g, w, true
		}
	}
	return 0, "", "", false
}

// compareModules compares vmdap's lsmod with drgn's module list, in the
// kernel's list order.
func compareModules(t *testing.T, out string, mods []vmmtest.DrgnModule) {
	t.Helper()
	failed := t.Failed()
	defer func() {
		if !failed && t.Failed() {
			t.Logf("vmdap's lsmod:\n%s", out)
		}
	}()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	head := lines[0]
	col := func(name string) int { return strings.Index(head, name) }
	var got []vmmtest.DrgnModule
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 5 {
			t.Errorf("lsmod: a line not a module: %q", l)
			continue
		}
		m := vmmtest.DrgnModule{Name: f[0], Size: parseU(f[1]), Base: parseU(f[3]), State: f[4]}
		m.Refs, _ = strconv.Atoi(f[2])
		// Used by is the last column (after Symbols, whose text has spaces).
		if i := col("Used by"); i >= 0 && i < len(l) {
			if u := strings.TrimSpace(l[i:]); u != "" {
				m.Users = strings.Split(u, ",")
			}
		}
		got = append(got, m)
	}
	for i := 0; i < max(len(got), len(mods)); i++ {
		switch {
		case i >= len(got):
			t.Errorf("lsmod: no %s, which drgn lists", mods[i].Name)
		case i >= len(mods):
			t.Errorf("lsmod: %s is not in drgn's list", got[i].Name)
		default:
			w := mods[i]
			w.Addr = 0 // lsmod does not show struct module's address
			sort.Strings(w.Users)
			sort.Strings(got[i].Users)
			if fmt.Sprint(got[i]) != fmt.Sprint(w) {
				t.Errorf("lsmod: module %d:\n  vmdap %+v\n  drgn  %+v", i, got[i], w)
			}
		}
	}
}

// compareMounts compares vmdap's mounts with drgn's, in order.
func compareMounts(t *testing.T, out string, ms []vmmtest.DrgnMount) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var got []vmmtest.DrgnMount
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 4 {
			t.Errorf("mounts: a line not a mount: %q", l)
			continue
		}
		got = append(got, vmmtest.DrgnMount{Addr: parseU(f[0]), Dev: f[1], Dir: f[2], Type: f[3]})
	}
	if fmt.Sprint(got) != fmt.Sprint(ms) {
		t.Errorf("mounts:\n  vmdap %+v\n  drgn  %+v\nvmdap's mounts:\n%s", got, ms, out)
	}
}
