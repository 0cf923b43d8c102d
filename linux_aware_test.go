package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/session/symbols"
	"vmdap/vmm/vmmtest"
)

// What the test's /init prints once the module is loaded, and unloaded.
const (
	awareLoaded   = "VMDAP-AWARE-MODULE-LOADED"
	awareRemoved  = "VMDAP-AWARE-MODULE-REMOVED"
	awareReloaded = "VMDAP-AWARE-MODULE-RELOADED"
)

// awareInitramfs builds vmmtest's initramfs with the module ko at /mod.ko
// and an /init that loads it with insmod, unloads it with rmmod a second
// later and loads it again at once (its struct module, often at the
// address the first one had), says so on the console each time and
// sleeps: the kernel has a
// user process (init, pid 1) to list, and stays up to be inspected.
func awareInitramfs(t *testing.T, ko, name string) string {
	t.Helper()
	mod, err := os.ReadFile(ko)
	if err != nil {
		t.Fatal(err)
	}
	// The markers go through the kernel log, as vmmtest's InitMarker does
	// (the console writes it out at once, where a tty write waits for
	// the UART's interrupt).
	extra := "$B mkdir -p /mnt/a/b && $B mount -t tmpfs scratch /mnt/a/b\n" +
		"$B insmod /mod.ko && echo '<2>" + awareLoaded + "' >/dev/kmsg\n" +
		"$B sleep 1\n" +
		"$B rmmod " + name + " && echo '<2>" + awareRemoved + "' >/dev/kmsg\n" +
		"$B insmod /mod.ko && echo '<2>" + awareReloaded + "' >/dev/kmsg\n" +
		"while :; do $B sleep 3600; done"
	p := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := os.WriteFile(p, vmmtest.InitramfsWith(t, extra, map[string][]byte{"mod.ko": mod}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitConsole waits until the guest's console holds want.
func waitConsole(t *testing.T, console func() string, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		out := console()
		if strings.Contains(out, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the guest's console in %v; it says:\n%s", want, d, out)
		}
		time.Sleep(100 * time.Millisecond) // polling output the guest writes
	}
}

// mustOK fails the test at once on an error.
func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// evalIn evaluates expr in a frame (0: the global scope) and returns its
// result, failing the test when it cannot.
func evalIn(t *testing.T, c *daptest.Client, frame int, expr string) string {
	t.Helper()
	r, err := c.Evaluate(frame, expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return r.Body.Result
}

// consolesOnFailure, deferred, logs the debug console and the end of the
// guest's console when the test failed.
func consolesOnFailure(t *testing.T, c *daptest.Client, console func() string) {
	if t.Failed() {
		out := console()
		var evs []string
		for _, e := range c.Events() {
			if ev := e.(dap.EventMessage).GetEvent(); ev.Event != "output" {
				evs = append(evs, fmt.Sprintf("%.300s", fmt.Sprintf("%+v", e)))
			}
		}
		t.Logf("debug console:\n%s\nguest console (its end):\n%s\nevents not waited for:\n%s", c.Output("console"), out[max(0, len(out)-6000):], strings.Join(evs, "\n"))
	}
}

// TestLinuxAwareUnderQEMU: Debian's cloud kernel under QEMU TCG with two
// CPUs and the test's initramfs, attached at reset (linuxAware says what
// is checked).
func TestLinuxAwareUnderQEMU(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	mod := vmmtest.RequireLinuxModule(t, k, "kernel/fs/nls/nls_ascii")
	initrd := awareInitramfs(t, mod.KO, mod.Name)
	serial := filepath.Join(t.TempDir(), "serial.log")
	addr, _ := startQEMU(t, "-machine", "pc", "-m", "512", "-smp", "2", "-serial", "file:"+serial,
		"-kernel", k.Vmlinuz, "-initrd", initrd, "-append", "console=ttyS0 nokaslr panic=-1")
	// The kernel's sources as a user has them: the build's relative
	// compilation directory mapped to a tree of their own (sourceMap),
	// for the module's symbols as for the kernel's.
	tree := filepath.Join(t.TempDir(), "linux")
	c := attachDAP(t, addr, map[string]any{"program": k.Vmlinux, "modules": mod.DebugDir, "kernelLog": true, "taskThreads": true,
		"sourceMap": map[string]string{"debian/build/build_amd64_none_cloud-amd64": tree}})
	linuxAware(t, c, k, mod, filepath.Join(tree, "fs", "nls", "nls_ascii.c"), 2, 40*time.Second, func() string {
		b, _ := os.ReadFile(serial)
		return string(b)
	})
}

// TestLinuxAwareOnKVM is linuxAware on vmdap's own VMM: Debian's vmlinux
// launched through PVH with the initrd, one vCPU and KVM's irqchip. Where
// KVM emulates ring 0 (PVM) the boot takes minutes.
func TestLinuxAwareOnKVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots Linux on vmdap's VMM (minutes where ring 0 is emulated): not with -short")
	}
	vmmtest.RequireKVM(t)
	// The scenario's /init loads a module: user space must run. Where a
	// system call from guest ring 3 never reaches ring 0 (the host's probe
	// says so: KVM's PVM flavour), no Linux user space can; the module
	// scenario is covered under QEMU there (TestLinuxAwareUnderQEMU).
	requireGuestSyscalls(t, "Linux's /init cannot load the module")
	k := vmmtest.RequireLinux(t)
	mod := vmmtest.RequireLinuxModule(t, k, "kernel/fs/nls/nls_ascii")
	initrd := awareInitramfs(t, mod.KO, mod.Name)
	c := stdioClient(t)
	c.Timeout = time.Minute
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	// The command line of vmm/kvm's Linux tests without nosmp, which
	// turns the IOAPIC off: COM1 then has no interrupt and its tty (for
	// /init's shell) is polled; with the IOAPIC it takes IRQ 4, as on a
	// machine of several CPUs.
	tree := filepath.Join(t.TempDir(), "linux") // the sources as a user has them (as under QEMU)
	err := c.Launch(map[string]any{"program": k.Vmlinux, "boot": "pvh", "initrd": initrd, "irqchip": true, "memory": 256, "vcpus": 1,
		"args":        "console=ttyS0 nokaslr quiet panic=-1 mitigations=off init_on_alloc=0 pci=off cryptomgr.notests nowatchdog",
		"stopOnEntry": true, "modules": mod.DebugDir, "kernelLog": true, "taskThreads": true,
		"sourceMap": map[string]string{"debian/build/build_amd64_none_cloud-amd64": tree}})
	if err != nil {
		t.Fatal(err)
	}
	// A boot that stalls (hung tasks, RCU stalls: seen where the host is
	// loaded and ring 0 is emulated) does not recover: end the session
	// then rather than waiting out the timeouts.
	done, exited := make(chan struct{}), make(chan struct{})
	defer func() { close(done); <-exited }()
	go func() {
		defer close(exited)
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Second): // polling the guest's console
			}
			out := c.Output("stdout")
			for _, stall := range []string{"rcu_preempt detected stalls", "blocked for more than"} {
				if i := strings.Index(out, stall); i >= 0 {
					t.Errorf("the guest's boot stalled (%q on its console): vmdap's VMM did not boot it to /init", stall)
					c.Close()
					return
				}
			}
		}
	}()
	start := time.Now()
	// Ring 0 runs natively here (requireGuestSyscalls): minutes are plenty.
	linuxAware(t, c, k, mod, filepath.Join(tree, "fs", "nls", "nls_ascii.c"), 1, 3*time.Minute, func() string { return c.Output("stdout") })
	t.Logf("scenario on vmdap's VMM: %v", time.Since(start).Round(time.Second))
}

// linuxAware is the Linux-awareness scenario on a session started (at the
// kernel's entry, stopped) with the modules folder of the -dbg package,
// the kernel log at stops and tasks as threads, over a kernel whose /init
// loads a module shipped with the kernel (nls_ascii), unloads it, and
// sleeps: a function breakpoint on the module's init function and a line
// breakpoint in its exit function, set before the kernel even boots, are
// pending, bind when the module loads (a module event says so), and the
// first hits, with the module's source and the kernel's frames below;
// lsmod lists the module, dmesg holds the banner, per-CPU data, current
// and container_of evaluate, the modules view shows the module with its
// symbols; the init breakpoint is pending again once the init code is
// freed; the line breakpoint hits at rmmod, and the unload is a module
// event that leaves it pending; paused once /init sleeps, tasks lists init (pid 1)
// and swapper, and the tasks are threads whose stacks unwind from where
// they were switched out. nlsSource is the module's source file as the
// client names it (its line breakpoints; its frames end with it). console
// returns the guest's console output so far; wait bounds each wait for an
// event.
func linuxAware(t *testing.T, c *daptest.Client, k vmmtest.Linux, mod vmmtest.LinuxModule, nlsSource string, vcpus int, wait time.Duration, console func() string) {
	c.Timeout = wait
	defer consolesOnFailure(t, c, console)
	must := func(err error) { t.Helper(); mustOK(t, err) }
	eval := func(frame int, expr string) string { t.Helper(); return evalIn(t, c, frame, expr) }
	// waitBP waits for the next breakpoint event of breakpoint id
	// (keeping those of the others for their own waits).
	others := map[int][]dap.Breakpoint{}
	waitBP := func(id int, verified bool, what string) dap.Breakpoint {
		t.Helper()
		for {
			var bb dap.Breakpoint
			if q := others[id]; len(q) > 0 {
				bb, others[id] = q[0], q[1:]
			} else {
				b, err := c.WaitEvent("breakpoint")
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				bb = b.(*dap.BreakpointEvent).Body.Breakpoint
			}
			if bb.Id != id {
				others[bb.Id] = append(others[bb.Id], bb)
				continue
			}
			if bb.Verified != verified {
				t.Fatalf("%s: breakpoint event %+v, want verified %v", what, bb, verified)
			}
			return bb
		}
	}
	// The line of the module's exit function's body, from its debug file.
	dbg, err := symbols.LoadRelocated(filepath.Join(mod.DebugDir, "kernel", "fs", "nls", "nls_ascii.ko"), map[string]uint64{".exit.text": 0x10000})
	must(err)
	exitFn := dbg.FuncByName("exit_nls_ascii")
	if exitFn == nil {
		t.Fatal("no exit_nls_ascii in the module's debug file")
	}
	pe, _ := dbg.PrologueEnd(exitFn)
	exitLoc, ok := dbg.PCToLine(pe)
	if !ok {
		t.Fatal("no line for exit_nls_ascii")
	}
	// Lines of char2uni and uni2char, the module's charset conversions
	// (never called here), for breakpoints with conditions.
	bodyLine := func(name string) symbols.Location {
		fn := dbg.FuncByName(name)
		if fn == nil {
			t.Fatalf("no %s in the module's debug file", name)
		}
		pe, _ := dbg.PrologueEnd(fn)
		loc, ok := dbg.PCToLine(pe)
		if !ok {
			t.Fatalf("no line for %s", name)
		}
		return loc
	}
	convLoc, badLoc := bodyLine("char2uni"), bodyLine("uni2char")

	_, err = c.WaitEvent("initialized")
	must(err)
	// Before the module loads: a function breakpoint on its init and a
	// line breakpoint in its exit function, both pending.
	fb, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "init_nls_ascii"}}})
	must(err)
	bp := fb.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints
	if len(bp) != 1 || bp[0].Verified || !strings.Contains(bp[0].Message, "module") {
		t.Fatalf("breakpoint on the module's init before it loads: %+v (want unverified, pending on a module)", bp)
	}
	// The condition names char2uni's parameter: checked when the
	// breakpoint binds, not refused before (its names are unknown then).
	lb, err := c.SetBreakpoints(nlsSource, daptest.Line(exitLoc.Line),
		map[string]any{"line": convLoc.Line, "condition": "boundlen < 0"}, map[string]any{"line": badLoc.Line, "condition": "no_such_name > 0"})
	must(err)
	exitBP, convBP, badBP := lb.Body.Breakpoints[0], lb.Body.Breakpoints[1], lb.Body.Breakpoints[2]
	if exitBP.Verified || !strings.Contains(exitBP.Message, "module") {
		t.Fatalf("line breakpoint in the module's exit before it loads: %+v (want unverified, pending on a module)", exitBP)
	}
	if convBP.Verified || !strings.Contains(convBP.Message, "module") || badBP.Verified || !strings.Contains(badBP.Message, "module") {
		t.Fatalf("conditional line breakpoints in the module before it loads: %+v, %+v (want unverified, pending on a module)", convBP, badBP)
	}
	must(c.ConfigurationDone())
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("attach stop: %+v %v", ev, err)
	}
	must(c.Continue(1))

	// The module loads: a module event, the breakpoint binds, then hits.
	m, err := c.WaitEvent("module")
	must(err)
	me := m.(*dap.ModuleEvent).Body
	if me.Reason != "new" || me.Module.Name != mod.Name || !strings.Contains(me.Module.SymbolStatus, "loaded") || me.Module.AddressRange == "" {
		t.Fatalf("module event %+v", me)
	}
	if bb := waitBP(exitBP.Id, true, "the exit line breakpoint when the module loads"); bb.Line != exitLoc.Line {
		t.Errorf("the exit line breakpoint bound at line %d, want %d", bb.Line, exitLoc.Line)
	}
	waitBP(bp[0].Id, true, "the init function breakpoint when the module loads")
	// A condition on char2uni's parameter holds; one on a name uni2char
	// does not see fails once the names are known.
	if bb := waitBP(convBP.Id, true, "the conditional breakpoint in char2uni when the module loads"); bb.Line != convLoc.Line {
		t.Errorf("the conditional breakpoint bound at line %d, want %d", bb.Line, convLoc.Line)
	}
	if bb := waitBP(badBP.Id, false, "the breakpoint with a bad condition in uni2char when the module loads"); !strings.Contains(bb.Message, "no_such_name") {
		t.Errorf("the breakpoint with a bad condition when it binds: %+v, want its condition refused", bb)
	}
	ev, err := c.Stopped()
	must(err)
	if ev.Body.Reason != "function breakpoint" {
		t.Fatalf("stopped for %q (%s), want the function breakpoint", ev.Body.Reason, ev.Body.Description)
	}
	m, err = c.Request("stackTrace", map[string]any{"threadId": ev.Body.ThreadId}) // all the frames
	must(err)
	st := m.(*dap.StackTraceResponse)
	var names []string
	for _, f := range st.Body.StackFrames {
		names = append(names, f.Name)
	}
	top := st.Body.StackFrames[0]
	if top.Name != "init_nls_ascii" || top.Source == nil || !strings.HasSuffix(top.Source.Path, nlsSource) {
		t.Fatalf("top frame %+v (frames %v)", top, names)
	}
	if !strings.Contains(strings.Join(names, " "), "do_init_module") {
		t.Fatalf("frames %v: want the kernel's do_init_module below the module's init", names)
	}
	// Through the system call's entry (its ORC pt_regs) to where the
	// loader called it in user space: the last frame, at a user address.
	last := st.Body.StackFrames[len(st.Body.StackFrames)-1]
	if ua, err := strconv.ParseUint(last.InstructionPointerReference, 0, 64); err != nil || ua >= 1<<47 ||
		!strings.Contains(strings.Join(names, " "), "entry_SYSCALL_64") {
		t.Errorf("frames %v (last at %s): want the system call's entry, then the user-space caller", names, last.InstructionPointerReference)
	}
	fid := top.Id
	// kernelLog: the log so far came out at the stop.
	if out := c.Output("console"); !strings.Contains(out, "] Linux version ") {
		t.Errorf("no kernel log in the console at the stop (kernelLog): %.3000s", out)
	}

	// The module's own global, from its DWARF.
	if r := eval(fid, "table.charset"); !strings.Contains(r, "ascii") {
		t.Errorf("table.charset = %s", r)
	}
	// lsmod (the symbols' state in a column of its own, not under Used
	// by), the modules view.
	if out := eval(fid, "lsmod"); !strings.Contains(out, mod.Name) || !strings.Contains(out, "Symbols") {
		t.Fatalf("lsmod:\n%s", out)
	}
	// help lists the commands and the idioms; an lx- command vmdap does
	// not have says where to look.
	if out := eval(fid, "help"); !strings.Contains(out, "dmesg [N]") || !strings.Contains(out, "container_of(ptr, type, member)") {
		t.Errorf("help:\n%s", out)
	}
	if _, err := c.Evaluate(fid, "lx-symbols"); err == nil || !strings.Contains(err.Error(), "type help") {
		t.Errorf("lx-symbols: %v", err)
	}
	mr, err := c.Request("modules", map[string]any{})
	must(err)
	var found *dap.Module
	for i, m := range mr.(*dap.ModulesResponse).Body.Modules {
		if m.Name == mod.Name {
			found = &mr.(*dap.ModulesResponse).Body.Modules[i]
		}
	}
	if found == nil || !strings.HasSuffix(found.Path, "nls_ascii.ko") {
		t.Fatalf("modules: %+v", mr.(*dap.ModulesResponse).Body.Modules)
	}
	// The kernel log.
	if out := eval(fid, "dmesg"); !strings.Contains(out, "Linux version "+strings.SplitN(k.Version, "+", 2)[0]) {
		t.Fatalf("dmesg has no banner:\n%.2000s", out)
	}
	if out := eval(fid, "dmesg 3"); strings.Count(out, "\n") < 3 || strings.Contains(out, "Linux version") {
		t.Errorf("dmesg 3:\n%s", out)
	}
	// Its identity and resource maps (lx-version, lx-cmdline, lx-iomem,
	// lx-ioports): the banner, the command line the test booted it with,
	// the kernel's image inside System RAM, and the PIT's ports, which
	// x86 Linux always reserves.
	if out := eval(fid, "version"); !strings.HasPrefix(out, "Linux version "+strings.SplitN(k.Version, "+", 2)[0]) {
		t.Errorf("version: %q", out)
	}
	if out := eval(fid, "lx-cmdline"); !strings.Contains(out, "console=ttyS0 nokaslr") {
		t.Errorf("lx-cmdline: %q", out)
	}
	if out := eval(fid, "iomem"); !regexp.MustCompile(`(?m)^[0-9a-f]{8,}-[0-9a-f]{8,} : System RAM\n(  .*\n)*  [0-9a-f]+-[0-9a-f]+ : Kernel code$`).MatchString(out) {
		t.Errorf("iomem: want the kernel's code inside System RAM:\n%s", out)
	}
	if out := eval(fid, "ioports"); !strings.Contains(out, "0040-0043 : timer0\n") {
		t.Errorf("ioports: want the PIT's timer0:\n%s", out)
	}
	// The mounts: the initramfs at /, and what /init mounted.
	if out := eval(fid, "lx-mounts"); !regexp.MustCompile(`(?m)^0x[0-9a-f]+ +\S+ +/ +rootfs$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^0x[0-9a-f]+ +proc +/proc +proc$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^0x[0-9a-f]+ +scratch +/mnt/a/b +tmpfs$`).MatchString(out) {
		t.Errorf("lx-mounts: want rootfs at /, proc at /proc and tmpfs at /mnt/a/b:\n%s", out)
	}
	for text, want := range map[string]string{"lsm": "lsmod", "lx-mo": "lx-mounts", "x = per_c": "per_cpu", "curr": "current"} {
		cr, err := c.Request("completions", map[string]any{"frameId": fid, "text": text, "column": len(text) + 1})
		must(err)
		found := false
		for _, tg := range cr.(*dap.CompletionsResponse).Body.Targets {
			found = found || tg.Label == want
		}
		if !found {
			t.Errorf("completions of %q: %+v, want %s", text, cr.(*dap.CompletionsResponse).Body.Targets, want)
		}
	}
	// Per-CPU data and current.
	n := eval(fid, "per_cpu(runqueues, 0).nr_running")
	if _, err := strconv.ParseUint(n, 10, 32); err != nil {
		t.Errorf("per_cpu(runqueues, 0).nr_running = %q", n)
	}
	if r := eval(fid, fmt.Sprintf("per_cpu(runqueues, %d).cpu", vcpus-1)); r != strconv.Itoa(vcpus-1) {
		t.Errorf("per_cpu(runqueues, %d).cpu = %q", vcpus-1, r)
	}
	cpu := ev.Body.ThreadId - 1
	if r := eval(fid, "this_cpu(runqueues).cpu"); r != strconv.Itoa(cpu) {
		t.Errorf("this_cpu(runqueues).cpu = %q on vCPU %d", r, cpu)
	}
	pid := eval(fid, "current->pid")
	if p, err := strconv.Atoi(pid); err != nil || p <= 1 {
		t.Errorf("current->pid = %q: want the insmod process", pid)
	}
	if r := eval(fid, "container_of(current->tasks.next, struct task_struct, tasks)->pid"); r == "" {
		t.Errorf("container_of: %q", r)
	}
	if r := eval(fid, "container_of(&init_task.tasks, struct task_struct, tasks) == &init_task"); r != "1" {
		t.Errorf("container_of(&init_task.tasks, …) == &init_task: %q", r)
	}
	// gdb's Linux functions ($lx_…, scripts/gdb) agree with the idioms.
	for expr, want := range map[string]string{
		"$lx_current().pid":                                    pid,
		"&$lx_current() == current":                            "1",
		fmt.Sprintf("&$lx_current(%d) == current", cpu):        "1",
		"&$lx_per_cpu(runqueues, 0) == &per_cpu(runqueues, 0)": "1",
		`$lx_per_cpu("runqueues", 0).cpu`:                      "0",
		"$lx_per_cpu(runqueues).cpu":                           strconv.Itoa(cpu),
		"$lx_task_by_pid(" + pid + ").pid":                     pid,
		"&$lx_task_by_pid(1) == container_of(init_task.tasks.next, struct task_struct, tasks)":                                              "1",
		`$container_of(current->tasks.next, "struct task_struct", "tasks") == container_of(current->tasks.next, struct task_struct, tasks)`: "1",
		"&$lx_thread_info(current) == &current->thread_info":                                                                                "1",
		"$lx_thread_info_by_pid(" + pid + ").cpu == current->thread_info.cpu":                                                               "1",
		`$lx_module("` + mod.Name + `").name`:                                                                                               `"` + mod.Name + `"`,
		`"a\tb"`:                                                                                                                            `"a\tb"`,
	} {
		if r := eval(fid, expr); r != want {
			t.Errorf("%s = %q, want %q", expr, r, want)
		}
	}
	for _, expr := range []string{`$lx_module("no_such_module")`, "$lx_task_by_pid(999999)", "$lx_nope()", `$container_of(current, "struct nope", "x")`} {
		if _, err := c.Evaluate(fid, expr); err == nil {
			t.Errorf("%s evaluated", expr)
		}
	}

	// The module's init code is freed (do_free_init): its breakpoint goes
	// back to pending. rmmod runs its exit function: the line breakpoint
	// there hits.
	must(c.Continue(1))
	waitBP(bp[0].Id, false, "the init function breakpoint once the init code is freed")
	ev, err = c.Stopped()
	must(err)
	st, err = c.StackTrace(ev.Body.ThreadId)
	must(err)
	names = names[:0]
	for _, f := range st.Body.StackFrames {
		names = append(names, f.Name)
	}
	if ev.Body.Reason != "breakpoint" || names[0] != "exit_nls_ascii" || st.Body.StackFrames[0].Line != exitLoc.Line ||
		!strings.Contains(strings.Join(names, " "), "delete_module") {
		t.Fatalf("stopped for %q in %v (line %d), want exit_nls_ascii:%d called by delete_module", ev.Body.Reason, names, st.Body.StackFrames[0].Line, exitLoc.Line)
	}
	// Unloaded: a module event, and its breakpoint is pending again. Where
	// software breakpoints work, the unload is hooked (free_module) and
	// both events come at once; on debug registers alone (four, left to
	// the user but for the load hook) they come at the next load. /init
	// loads it again at once (its struct module often where the first one
	// was): a module event, and the init function's breakpoint, pending
	// since the init code was freed, hits again.
	must(c.Continue(1))
	m, err = c.WaitEvent("module")
	must(err)
	if me := m.(*dap.ModuleEvent).Body; me.Reason != "removed" || me.Module.Name != mod.Name {
		t.Fatalf("module event %+v, want %s removed", me, mod.Name)
	}
	waitBP(exitBP.Id, false, "the exit line breakpoint once the module is unloaded")
	m, err = c.WaitEvent("module")
	must(err)
	if me := m.(*dap.ModuleEvent).Body; me.Reason != "new" || me.Module.Name != mod.Name {
		t.Fatalf("module event %+v, want %s new again", me, mod.Name)
	}
	ev, err = c.Stopped()
	must(err)
	st, err = c.StackTrace(ev.Body.ThreadId)
	must(err)
	if ev.Body.Reason != "function breakpoint" || st.Body.StackFrames[0].Name != "init_nls_ascii" {
		t.Fatalf("after the module is loaded again: stopped for %q in %s, want the init function breakpoint", ev.Body.Reason, st.Body.StackFrames[0].Name)
	}
	// On to /init's sleep, and paused there.
	must(c.Continue(1))
	waitConsole(t, console, awareReloaded, 3*wait)
	_, err = c.Request("pause", map[string]any{"threadId": 1})
	must(err)
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "pause" {
		t.Fatalf("pause: %+v %v", ev, err)
	}
	if out := eval(0, "lsmod"); !strings.Contains(out, mod.Name) {
		t.Errorf("lsmod after the module is loaded again:\n%s", out)
	}
	out := eval(0, "tasks")
	if !regexp.MustCompile(`(?m)^\s+1\s+1\s+0 [RSD]\s+\d+\s+0x[0-9a-f]+\s+init\b`).MatchString(out) {
		t.Fatalf("tasks: no init (pid 1):\n%s", out)
	}
	for cpu := 0; cpu < vcpus; cpu++ {
		if !strings.Contains(out, fmt.Sprintf("[swapper/%d]", cpu)) {
			t.Fatalf("tasks: no swapper/%d:\n%s", cpu, out)
		}
	}
	t.Logf("tasks:\n%s", out)

	// taskThreads: the tasks are threads; a sleeping one's stack is
	// unwound from where it was switched out.
	th, err := c.Request("threads", nil)
	must(err)
	var kthreadd, initID int
	var all []string
	for _, x := range th.(*dap.ThreadsResponse).Body.Threads {
		all = append(all, fmt.Sprintf("%d %s", x.Id, x.Name))
		switch {
		case strings.HasPrefix(x.Name, "pid 2: [kthreadd]"):
			kthreadd = x.Id
		case strings.HasPrefix(x.Name, "pid 1: init "):
			initID = x.Id
		}
	}
	if kthreadd == 0 || initID == 0 || !strings.HasPrefix(all[0], "1 vCPU 0") {
		t.Fatalf("threads: %v", all)
	}
	st, err = c.StackTrace(kthreadd)
	must(err)
	names = names[:0]
	for _, f := range st.Body.StackFrames {
		names = append(names, f.Name)
	}
	if j := strings.Join(names, " "); len(names) < 3 || !strings.Contains(j, "schedule") || !strings.Contains(j, "kthreadd") {
		t.Fatalf("kthreadd's stack: %v", names)
	}
	t.Logf("kthreadd: %v", names)
	if r := eval(st.Body.StackFrames[0].Id, "$rsp != 0"); r != "1" {
		t.Errorf("$rsp in kthreadd's frame: %s", r)
	}
	// current in a task's frame is that task (crash's set PID).
	if r := eval(st.Body.StackFrames[0].Id, "current->pid"); r != "2" {
		t.Errorf("current->pid in kthreadd's frame: %s", r)
	}
	if _, err := c.Request("next", map[string]any{"threadId": kthreadd}); err == nil || !strings.Contains(err.Error(), "cannot be stepped") {
		t.Errorf("next on a sleeping task: %v", err)
	}
	must(c.Disconnect())
}

// TestLinuxAwareKASLRUnderQEMU: with KASLR the kernel's symbols move by
// the slide found at the first stop, but its per-CPU variables (offsets
// into each CPU's area) do not: per_cpu, this_cpu and current still find
// them, and tasks and dmesg read through the moved symbols. CPU 0 spins in
// user space: the pause finds it there, and the slide is found through
// the other vCPU, idle in the kernel.
func TestLinuxAwareKASLRUnderQEMU(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	spin := "$B taskset 1 $B awk 'BEGIN { while (1) {} }' &\n"
	if err := os.WriteFile(initrd, vmmtest.Initramfs(t, spin+"while :; do $B sleep 3600; done"), 0o644); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(t.TempDir(), "serial.log")
	addr, _ := startQEMU(t, "-machine", "pc", "-m", "512", "-smp", "2", "-serial", "file:"+serial,
		"-kernel", k.Vmlinuz, "-initrd", initrd, "-append", "console=ttyS0 panic=-1")
	c := attachDAP(t, addr, map[string]any{"program": k.Vmlinux})
	c.Timeout = time.Minute
	must := func(err error) { t.Helper(); mustOK(t, err) }
	eval := func(expr string) string { t.Helper(); return evalIn(t, c, 0, expr) }
	_, err := c.WaitEvent("initialized")
	must(err)
	must(c.ConfigurationDone())
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("attach stop: %+v %v", ev, err)
	}
	must(c.Continue(1))
	waitConsole(t, func() string { b, _ := os.ReadFile(serial); return string(b) }, vmmtest.InitMarker, 3*time.Minute)
	_, err = c.Request("pause", map[string]any{"threadId": 1})
	must(err)
	ev, err := c.Stopped()
	must(err)
	if st, err := c.StackTrace(ev.Body.ThreadId); err == nil && len(st.Body.StackFrames) > 0 {
		t.Logf("paused on vCPU %d at %s", ev.Body.ThreadId-1, st.Body.StackFrames[0].InstructionPointerReference)
	}
	if out := c.Output("console"); !strings.Contains(out, "relocated (KASLR)") {
		t.Fatalf("no KASLR slide found; console: %q", out)
	}
	for cpu := 0; cpu < 2; cpu++ {
		if r := eval(fmt.Sprintf("per_cpu(runqueues, %d).cpu", cpu)); r != strconv.Itoa(cpu) {
			t.Errorf("per_cpu(runqueues, %d).cpu = %q", cpu, r)
		}
	}
	// In user space (or kernel entry code before its SWAPGS) GS holds the
	// user's base and IA32_KERNEL_GS_BASE the CPU's per-CPU area: QEMU's
	// stub gives it as k_gs_base (per-CPU symbols are zero-based in this
	// kernel: the offset is the area).
	if eval("$cs & 3") == "3" {
		if r := eval(fmt.Sprintf("$k_gs_base == __per_cpu_offset[%d]", ev.Body.ThreadId-1)); r != "1" {
			t.Errorf("in user space: $k_gs_base %s is not CPU %d's per-CPU area (%s)", eval("$k_gs_base"), ev.Body.ThreadId-1, r)
		}
	}
	// The vCPUs are named after the tasks they run.
	th, err := c.Request("threads", nil)
	must(err)
	ts := th.(*dap.ThreadsResponse).Body.Threads
	t.Logf("threads: %+v", ts)
	user := ""
	if eval("$cs & 3") == "3" {
		user = ", user mode"
	}
	comm, pid := strings.Trim(eval("current->comm"), `"`), eval("current->pid")
	if eval("current->mm == 0") == "1" && pid != "0" {
		comm = "[" + comm + "]" // a kernel thread, as ps shows one (the pause can land in one)
	}
	want := fmt.Sprintf("vCPU %d: %s (pid %s%s)", ev.Body.ThreadId-1, comm, pid, user)
	if len(ts) != 2 || ts[ev.Body.ThreadId-1].Name != want || !regexp.MustCompile(`^vCPU \d: .+ \(pid \d+(, user mode)?\)$`).MatchString(ts[2-ev.Body.ThreadId].Name) {
		t.Errorf("threads: %+v, want vCPU %d named %q", ts, ev.Body.ThreadId-1, want)
	}
	if r := eval("this_cpu(runqueues).cpu"); r != strconv.Itoa(ev.Body.ThreadId-1) {
		t.Errorf("this_cpu(runqueues).cpu = %q on vCPU %d", r, ev.Body.ThreadId-1)
	}
	if r := eval("current->thread_info.cpu == this_cpu(runqueues).cpu"); r != "1" {
		t.Errorf("current's CPU is not this CPU: %q", r)
	}
	if out := eval("tasks"); !regexp.MustCompile(`(?m)^\s+1\s+1\s+0 [RSD]\s+\d+\s+0x[0-9a-f]+\s+init\b`).MatchString(out) {
		t.Errorf("tasks: no init (pid 1):\n%s", out)
	}
	if out := eval("dmesg"); !strings.Contains(out, "Linux version") {
		t.Errorf("dmesg has no banner:\n%.2000s", out)
	}
	must(c.Disconnect())
}

// TestLinuxAwareEarlyOnKVM is Linux awareness on vmdap's own VMM without
// user space (which a host that emulates ring 0 cannot run: see
// TestLinuxAwareOnKVM): Debian's vmlinux launched through PVH, a function
// breakpoint on kernel_init, the first code pid 1 runs, set at the entry
// (the VMM places it by physical address at once). There, with the kernel
// log at stops and tasks as threads: the log so far came out, dmesg holds
// the banner, tasks lists swapper, pid 1 running and pid 2 (kthreadd, not
// run yet), current is pid 1, per-CPU data and container_of evaluate, and
// the tasks are threads: pid 1 on its vCPU, pid 2 unwound from its saved
// stack.
func TestLinuxAwareEarlyOnKVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots Linux on vmdap's VMM (a minute or more where ring 0 is emulated): not with -short")
	}
	vmmtest.RequireKVM(t)
	k := vmmtest.RequireLinux(t)
	c := stdioClient(t)
	c.Timeout = 10 * time.Minute
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	must := func(err error) { t.Helper(); mustOK(t, err) }
	eval := func(frame int, expr string) string { t.Helper(); return evalIn(t, c, frame, expr) }
	defer consolesOnFailure(t, c, func() string { return c.Output("stdout") })
	start := time.Now()
	must(c.Launch(map[string]any{"program": k.Vmlinux, "boot": "pvh", "irqchip": true, "memory": 256, "vcpus": 1,
		"args":        "console=ttyS0 nokaslr panic=-1 mitigations=off init_on_alloc=0 pci=off cryptomgr.notests nowatchdog nosmp",
		"stopOnEntry": true, "kernelLog": true, "taskThreads": true}))
	_, err := c.WaitEvent("initialized")
	must(err)
	fb, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "kernel_init"}}})
	must(err)
	if bp := fb.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints; len(bp) != 1 || !bp[0].Verified {
		t.Fatalf("function breakpoint on kernel_init at the entry: %+v, want verified (placed by physical address)", bp)
	}
	must(c.ConfigurationDone())
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("entry stop: %+v %v", ev, err)
	}
	must(c.Continue(1))
	ev, err := c.Stopped()
	must(err)
	t.Logf("kernel_init reached after %v", time.Since(start).Round(time.Second))
	st, err := c.StackTrace(ev.Body.ThreadId)
	must(err)
	top := st.Body.StackFrames[0]
	if ev.Body.Reason != "function breakpoint" || top.Name != "kernel_init" || top.Source == nil || !strings.HasSuffix(top.Source.Path, "init/main.c") {
		t.Fatalf("stopped for %q at %+v, want the function breakpoint in kernel_init (init/main.c)", ev.Body.Reason, top)
	}
	fid := top.Id
	if out := c.Output("console"); !strings.Contains(out, "] Linux version ") {
		t.Errorf("no kernel log in the console at the stop (kernelLog): %.3000s", out)
	}
	if out := eval(fid, "dmesg"); !strings.Contains(out, "Linux version "+strings.SplitN(k.Version, "+", 2)[0]) {
		t.Fatalf("dmesg has no banner:\n%.2000s", out)
	}
	if r := eval(fid, "current->pid"); r != "1" {
		t.Errorf("current->pid = %q in kernel_init, want 1", r)
	}
	if r := eval(fid, "this_cpu(runqueues).cpu"); r != "0" {
		t.Errorf("this_cpu(runqueues).cpu = %q", r)
	}
	if r := eval(fid, "per_cpu(runqueues, 0).curr == current"); r != "1" {
		t.Errorf("per_cpu(runqueues, 0).curr == current: %q", r)
	}
	if r := eval(fid, "container_of(&init_task.tasks, struct task_struct, tasks) == &init_task"); r != "1" {
		t.Errorf("container_of(&init_task.tasks, …) == &init_task: %q", r)
	}
	out := eval(fid, "tasks")
	t.Logf("tasks:\n%s", out)
	// kthreadd (pid 2) has not run yet: it names itself when it does.
	if !regexp.MustCompile(`(?m)^\s+0\s+0\s+0 .*\[swapper/0\]`).MatchString(out) || !regexp.MustCompile(`(?m)^\s+1\s+1\s+0 R\s+0\s.*\(running\)`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\s+2\s+2\s+0 `).MatchString(out) {
		t.Fatalf("tasks: want swapper/0 (pid 0), pid 1 running on CPU 0, and pid 2:\n%s", out)
	}
	th, err := c.Request("threads", nil)
	must(err)
	var kthreadd int
	var all []string
	for _, x := range th.(*dap.ThreadsResponse).Body.Threads {
		all = append(all, fmt.Sprintf("%d %s", x.Id, x.Name))
		if strings.HasPrefix(x.Name, "pid 2: ") {
			kthreadd = x.Id
		}
	}
	if kthreadd == 0 || !strings.HasPrefix(all[0], "1 vCPU 0") || !strings.Contains(strings.Join(all, "\n"), "running on vCPU 0") {
		t.Fatalf("threads: %v", all)
	}
	st, err = c.StackTrace(kthreadd)
	must(err)
	var names []string
	for _, f := range st.Body.StackFrames {
		names = append(names, f.Name)
	}
	t.Logf("pid 2's frames (not run yet): %v", names)
	if len(names) == 0 {
		t.Fatal("kthreadd: no frames")
	}
	must(c.Disconnect())
	t.Logf("scenario on vmdap's VMM: %v", time.Since(start).Round(time.Second))
}

// TestLinuxModuleKASLRUnderQEMU: attached at reset to a kernel that
// relocates itself, with nothing stopping it in the kernel before its
// init loads a module: the slide is found while the guest runs (vmdap
// looks at it now and then until then), so the module-load hook and a
// pending breakpoint on the module's init follow it, the breakpoint stays
// pending (not failed) through the move, and it hits.
func TestLinuxModuleKASLRUnderQEMU(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	mod := vmmtest.RequireLinuxModule(t, k, "kernel/fs/nls/nls_ascii")
	initrd := awareInitramfs(t, mod.KO, mod.Name)
	addr, _ := startQEMU(t, "-machine", "pc", "-m", "512", "-smp", "1", "-serial", "null",
		"-kernel", k.Vmlinuz, "-initrd", initrd, "-append", "console=ttyS0 panic=-1")
	c := attachDAP(t, addr, map[string]any{"program": k.Vmlinux, "modules": mod.DebugDir})
	must := func(err error) { t.Helper(); mustOK(t, err) }
	_, err := c.WaitEvent("initialized")
	must(err)
	fb, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "init_nls_ascii"}}})
	must(err)
	if b := fb.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints; len(b) != 1 || b[0].Verified {
		t.Fatalf("breakpoint on the module's init before it loads: %+v", b)
	}
	must(c.ConfigurationDone())
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("attach stop: %+v %v", ev, err)
	}
	must(c.Continue(1))
	var ev *dap.StoppedEvent
	for ev == nil {
		m, err := c.WaitAnyEvent("breakpoint", "stopped")
		if err != nil {
			// What the session said on the way (the slide, modules) tells
			// where the chain broke.
			t.Fatalf("%v; the debug console said:\n%s", err, c.Output("console"))
		}
		switch m := m.(type) {
		case *dap.BreakpointEvent:
			if b := m.Body.Breakpoint; m.Body.Reason == "changed" && !b.Verified && !strings.Contains(b.Message, "module") {
				t.Fatalf("the pending breakpoint failed on the way: %+v", b)
			}
		case *dap.StoppedEvent:
			ev = m
		}
	}
	if ev.Body.Reason != "function breakpoint" {
		t.Fatalf("stopped for %q (%s), want the module's init", ev.Body.Reason, ev.Body.Description)
	}
	st, err := c.StackTrace(ev.Body.ThreadId)
	must(err)
	if top := st.Body.StackFrames[0].Name; top != "init_nls_ascii" {
		t.Fatalf("stopped in %s, want init_nls_ascii", top)
	}
	if out := c.Output("console"); !strings.Contains(out, "relocated (KASLR)") {
		t.Errorf("no slide reported; console %q", out)
	}
	must(c.Disconnect())
}
