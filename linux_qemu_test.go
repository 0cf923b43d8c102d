package main

import (
	"debug/elf"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/session/symbols"
	"vmdap/vmm/vmmtest"
)

// startQEMU starts qemu-system-x86_64 stopped with its GDB stub on a free
// loopback port, with args after the common ones, and returns the stub's
// address.
func startQEMU(t testing.TB, args ...string) (string, *exec.Cmd) {
	t.Helper()
	return startQEMUReboot(t, false, args...)
}

// startQEMUReboot is startQEMU where a guest's reboot may reset the
// machine (reboot) rather than end QEMU.
func startQEMUReboot(t testing.TB, reboot bool, args ...string) (string, *exec.Cmd) {
	t.Helper()
	qemu := vmmtest.RequireQEMU(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	accel := "tcg"
	if i := slices.Index(args, "-smp"); i >= 0 && i+1 < len(args) && args[i+1] != "1" {
		// Several vCPUs in one host thread: Linux under multi-threaded
		// TCG hits "Oops: int3" at a static key's patch site (text_poke_bp)
		// in about 1 boot in 36 here, with no debugger attached too (a
		// race of QEMU's, not vmdap's), which would fail the test.
		accel = "tcg,thread=single"
	}
	all := []string{"-accel", accel, "-display", "none", "-monitor", "none"}
	if !reboot {
		all = append(all, "-no-reboot")
	}
	all = append(all, args...)
	all = append(all, "-S", "-gdb", "tcp:"+addr)
	q := exec.Command(qemu, all...)
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Process.Kill(); q.Wait() })
	return addr, q
}

// attachDAP attaches a stdio session of the real binary to a stub.
func attachDAP(t *testing.T, addr string, cfg map[string]any) *daptest.Client {
	t.Helper()
	c := stdioClient(t)
	c.Timeout = 2 * time.Minute
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	args := map[string]any{"gdbServer": addr}
	for k, v := range cfg {
		args[k] = v
	}
	var err error
	for i := 0; i < 200; i++ {
		_, err = c.Request("attach", args)
		if err == nil || !strings.Contains(err.Error(), "connect") {
			break
		}
		time.Sleep(50 * time.Millisecond) // QEMU is starting; polling its socket
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLinuxUnderQEMU debugs Debian's cloud kernel booting under QEMU TCG
// through the GDB stub, as a kernel developer would: a function
// breakpoint on start_kernel set at reset, the stack through the boot
// path, locals, a line breakpoint in init/main.c, a step, arguments of a
// kernel function, struct fields (also through a pointer), disassembly
// and completions.
func TestLinuxUnderQEMU(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	addr, _ := startQEMU(t, "-machine", "pc", "-m", "512", "-smp", "1", "-serial", "null",
		"-kernel", k.Vmlinuz, "-append", "console=ttyS0 nokaslr")
	c := attachDAP(t, addr, map[string]any{"program": k.Vmlinux})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	stopped := func(reason string) {
		t.Helper()
		ev, err := c.Stopped()
		must(err)
		if ev.Body.Reason != reason {
			t.Fatalf("stopped for %q (%s), want %q", ev.Body.Reason, ev.Body.Description, reason)
		}
	}
	top := func() []dap.StackFrame {
		t.Helper()
		st, err := c.StackTrace(1)
		must(err)
		if len(st.Body.StackFrames) == 0 {
			t.Fatal("no frames")
		}
		return st.Body.StackFrames
	}
	_, err := c.WaitEvent("initialized")
	must(err)
	fb, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{
		{"name": "start_kernel", "mode": "hardware"}}})
	must(err)
	if b := fb.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints; len(b) != 1 || !b[0].Verified {
		t.Fatalf("function breakpoint on start_kernel: %+v", b)
	}
	must(c.ConfigurationDone())
	stopped("entry")
	must(c.Continue(1))
	stopped("function breakpoint")

	// The boot path's frames, with source.
	frames := top()
	var names []string
	for _, f := range frames {
		names = append(names, f.Name)
	}
	if frames[0].Name != "start_kernel" || frames[0].Source == nil || !strings.HasSuffix(frames[0].Source.Path, "init/main.c") {
		t.Fatalf("top frame %+v", frames[0])
	}
	if len(frames) < 3 || !strings.Contains(strings.Join(names, " "), "x86_64_start_kernel") {
		t.Fatalf("frames %v: want the boot path through x86_64_start_kernel", names)
	}
	fid := frames[0].Id
	locals, err := c.ScopeVars(fid, "Locals")
	must(err)
	if len(locals) == 0 {
		t.Fatalf("no locals in start_kernel")
	}
	// Struct fields, directly and through a pointer.
	r, err := c.Evaluate(fid, "init_task.comm")
	must(err)
	if !strings.Contains(r.Body.Result, "swapper") {
		t.Fatalf("init_task.comm = %q", r.Body.Result)
	}
	r, err = c.Evaluate(fid, "(&init_task)->pid")
	must(err)
	if r.Body.Result != "0" {
		t.Fatalf("(&init_task)->pid = %q", r.Body.Result)
	}
	r, err = c.Evaluate(fid, "init_task.tasks.next != 0")
	must(err)
	if r.Body.Result != "1" {
		t.Fatalf("init_task.tasks.next != 0 = %q", r.Body.Result)
	}
	// Through a pointer to a struct init/main.c only declares (struct
	// files_struct, struct sched_class): its definition, found by name,
	// as gdb finds it.
	r, err = c.Evaluate(fid, "init_task.files->fdt")
	must(err)
	if !strings.Contains(r.Body.Result, "<init_files+") || r.Body.Type != "struct fdtable *" {
		t.Fatalf("init_task.files->fdt = %q (%s), want a pointer into init_files", r.Body.Result, r.Body.Type)
	}
	if r, err = c.Evaluate(fid, "sizeof(*init_task.sched_class) == sizeof(struct sched_class) && sizeof(*init_task.files) > 0"); err != nil || r.Body.Result != "1" {
		t.Fatalf("the sizes of structs through pointers to declarations: %+v, %v", r, err)
	}
	// A per-CPU variable read as it is (an offset from 0, unmapped) fails
	// saying how to read it, and that way reads it.
	if _, err := c.Evaluate(fid, "runqueues.nr_running"); err == nil || !strings.Contains(err.Error(), "per_cpu(var, cpu)") || !strings.Contains(err.Error(), "this_cpu(var)") {
		t.Errorf("runqueues.nr_running: %v, want a failure naming per_cpu and this_cpu", err)
	}
	if _, err := c.Evaluate(fid, "per_cpu(runqueues, 0).nr_running"); err != nil {
		t.Errorf("per_cpu(runqueues, 0).nr_running: %v", err)
	}
	// A member of a null pointer is no per-CPU variable, though its
	// address is as low.
	if _, err := c.Evaluate(fid, "((struct task_struct *)0)->pid"); err == nil || strings.Contains(err.Error(), "per_cpu") {
		t.Errorf("((struct task_struct *)0)->pid: %v, want a failure that says nothing of per-CPU variables", err)
	}

	// A line breakpoint a few lines further in start_kernel, picked from
	// the line table.
	sym, err := symbols.Load(k.Vmlinux, "")
	must(err)
	fn := sym.FuncByName("start_kernel")
	first, _ := sym.PCToLine(fn.Low)
	lines := sym.FileLines("init/main.c", first.Line+5, first.Line+60)
	if len(lines) == 0 {
		t.Fatal("no lines with code in start_kernel")
	}
	target := lines[0]
	bps, err := c.SetBreakpoints(filepath.Join("linux", "init", "main.c"), daptest.Line(target))
	must(err)
	if b := bps.Body.Breakpoints[0]; !b.Verified || b.Line != target {
		t.Fatalf("line breakpoint at init/main.c:%d: %+v", target, b)
	}
	must(c.Continue(1))
	stopped("breakpoint")
	if f := top()[0]; f.Name != "start_kernel" || f.Line != target {
		t.Fatalf("at %s:%d, want start_kernel:%d", f.Name, f.Line, target)
	}
	// A step over the line stays in start_kernel on a later line.
	must(c.Step("next", 1, ""))
	stopped("step")
	if f := top()[0]; f.Name != "start_kernel" || f.Line == target {
		t.Fatalf("after next: %s:%d", f.Name, f.Line)
	}

	// Arguments of a kernel function.
	fb, err = c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{
		{"name": "setup_arch", "mode": "hardware"}}})
	must(err)
	if b := fb.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints; !b[0].Verified {
		t.Fatalf("function breakpoint on setup_arch: %+v", b)
	}
	must(c.Continue(1))
	stopped("function breakpoint")
	frames = top()
	if frames[0].Name != "setup_arch" || len(frames) < 2 || frames[1].Name != "start_kernel" {
		t.Fatalf("frames at setup_arch: %+v", frames[:min(2, len(frames))])
	}
	args, err := c.ScopeVars(frames[0].Id, "Arguments")
	must(err)
	if len(args) != 1 || args[0].Name != "cmdline_p" || !strings.HasPrefix(args[0].Value, "0x") {
		t.Fatalf("setup_arch's arguments: %+v", args)
	}
	// The caller's locals are there too.
	if _, err := c.ScopeVars(frames[1].Id, "Locals"); err != nil {
		t.Fatal(err)
	}

	// A function that exists only inlined binds where it was inlined, and
	// stops there with a frame of its own above its caller's, as in gdb.
	sites := sym.InlinedSites("setup_command_line")
	if len(sites) == 0 || len(sym.FuncsByName("setup_command_line")) != 0 {
		t.Fatalf("setup_command_line: inlined sites %x, copies %d", sites, len(sym.FuncsByName("setup_command_line")))
	}
	calls := sym.InlinedAt(sites[0])
	if len(calls) == 0 {
		t.Fatalf("no inlined call at %#x", sites[0])
	}
	fb, err = c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{
		{"name": "setup_command_line", "mode": "hardware"}}})
	must(err)
	if b := fb.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints; !b[0].Verified {
		t.Fatalf("function breakpoint on the inlined setup_command_line: %+v", b)
	}
	must(c.Continue(1))
	stopped("function breakpoint")
	frames = top()
	if len(frames) < 2 || frames[0].Name != "setup_command_line" || frames[1].Name != "start_kernel" ||
		frames[1].Line != calls[len(calls)-1].CallLine || frames[0].InstructionPointerReference != frames[1].InstructionPointerReference {
		t.Fatalf("frames at the inlined setup_command_line: %+v", frames[:min(2, len(frames))])
	}
	// Its own variables (the inlined copy's), and its caller's.
	if _, err := c.ScopeVars(frames[0].Id, "Locals"); err != nil {
		t.Fatal(err)
	}

	// Disassembly at the pc, with its source line (in the file as the
	// frame names it: the adapter finds the relative compile directory's
	// files from its working directory).
	dis, err := c.Disassemble(frames[0].InstructionPointerReference, 0, 8)
	must(err)
	want, _ := sym.PCToLine(sites[0])
	if in := dis.Body.Instructions; len(in) != 8 || in[0].Instruction == "" || in[0].Location == nil || frames[0].Source == nil ||
		in[0].Location.Path != frames[0].Source.Path || !strings.HasSuffix(want.File, "/"+filepath.Base(in[0].Location.Path)) || in[0].Line != want.Line {
		t.Fatalf("disassembly: %+v", dis.Body.Instructions[:1])
	}
	// Completions from the kernel's globals and functions.
	cr, err := c.Request("completions", map[string]any{"frameId": frames[0].Id, "text": "init_ta", "column": 8})
	must(err)
	found := false
	for _, it := range cr.(*dap.CompletionsResponse).Body.Targets {
		if it.Label == "init_task" {
			found = true
		}
	}
	if !found {
		t.Fatalf("completions of init_ta: %+v", cr.(*dap.CompletionsResponse).Body.Targets)
	}

	// A condition and a logpoint in the kernel's idioms (current, this_cpu,
	// $lx_current) are checked when set as they will evaluate: verified,
	// and the condition holds where pid 1 runs the rootfs initcall.
	fb, err = c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{
		{"name": "populate_rootfs", "mode": "hardware",
			"condition": "current->pid == 1 && $lx_current().pid == 1 && this_cpu(runqueues).nr_running < 100 && per_cpu(runqueues, 0).cpu == 0"}}})
	must(err)
	if b := fb.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints[0]; !b.Verified {
		t.Fatalf("a breakpoint whose condition names current: %+v", b)
	}
	setup, _ := sym.PCToLine(sym.FuncByName("kernel_init_freeable").Low) // (init/main.c, as start_kernel; pid 1 runs it once)
	bps, err = c.SetBreakpoints(filepath.Join("linux", "init", "main.c"),
		map[string]any{"line": setup.Line, "mode": "hardware", "logMessage": "pid {current->pid} runs {$lx_current().comm}"})
	must(err)
	if b := bps.Body.Breakpoints[0]; !b.Verified {
		t.Fatalf("a logpoint that names current: %+v", b)
	}
	must(c.Continue(1))
	stopped("function breakpoint")
	if f := top()[0]; f.Name != "populate_rootfs" {
		t.Fatalf("the conditional breakpoint stopped in %s", f.Name)
	}
	if out := c.Output("console"); !strings.Contains(out, `pid 1 runs "swapper/0"`) {
		t.Errorf("the logpoint in do_basic_setup printed %q, want pid 1 and its comm", out)
	}
	must(c.Disconnect())
}

// TestLinuxKASLRUnderQEMU: Debian's kernel booted with KASLR on (no
// nokaslr) runs away from its link addresses. Paused once it has booted
// (to its panic: there is no root file system), vmdap finds the slide,
// says so, and shows correct frames; a function breakpoint set then binds
// at the relocated address and hits. Sessions attached after it (the guest
// runs on when one detaches): a breakpoint set before the slide is known
// moves when it is found and hits; a kernelOffset setting moves the
// symbols without a search.
func TestLinuxKASLRUnderQEMU(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	serial := filepath.Join(t.TempDir(), "serial.log")
	addr, _ := startQEMU(t, "-machine", "pc", "-m", "512", "-smp", "1", "-serial", "file:"+serial,
		"-kernel", k.Vmlinuz, "-append", "console=ttyS0 panic=0")
	c := attachRunning(t, addr, k.Vmlinux)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	waitPanics(t, serial, 1) // the kernel has booted when it reports it cannot mount a root
	_, err := c.Request("pause", map[string]any{"threadId": 1})
	must(err)
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "pause" {
		t.Fatalf("pause: %+v %v", ev, err)
	}
	st, err := c.StackTrace(1)
	must(err)
	var names []string
	for _, f := range st.Body.StackFrames {
		names = append(names, f.Name)
	}
	out := c.Output("console")
	t.Logf("frames %v; console %q", names, out)
	if !strings.Contains(out, "relocated (KASLR)") {
		t.Errorf("no KASLR slide reported; console: %q", out)
	}
	if len(st.Body.StackFrames) < 2 || strings.HasPrefix(names[0], "0x") || !strings.Contains(strings.Join(names, " "), "panic") {
		t.Fatalf("frames after the slide: %v (want named frames through panic)", names)
	}
	// A breakpoint on what panic's loop calls binds at the relocated address.
	fb, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "__const_udelay"}}})
	must(err)
	if b := fb.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints; len(b) != 1 || !b[0].Verified {
		t.Fatalf("function breakpoint on __const_udelay: %+v", b)
	}
	must(c.Continue(1))
	ev, err := c.Stopped()
	must(err)
	if ev.Body.Reason != "function breakpoint" {
		t.Fatalf("stopped for %q, want the function breakpoint", ev.Body.Reason)
	}
	st, err = c.StackTrace(1)
	must(err)
	names = names[:0]
	for _, f := range st.Body.StackFrames {
		names = append(names, f.Name)
	}
	if names[0] != "__const_udelay" || !strings.Contains(strings.Join(names, " "), "panic") {
		t.Fatalf("frames at __const_udelay: %v", names)
	}
	// Detached, not terminated (daptest's Disconnect asks for that): the
	// guest runs on in its panic loop for the sessions below.
	detach := func(c *daptest.Client) {
		t.Helper()
		_, err := c.Request("disconnect", map[string]any{"terminateDebuggee": false})
		must(err)
	}
	detach(c)
	m := regexp.MustCompile(`relocated \(KASLR\) by (0x[0-9a-f]+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no slide in the console: %q", out)
	}
	slide, err := strconv.ParseUint(m[1], 0, 64)
	must(err)
	// __const_udelay's link address range, from the image's symbol table.
	ef, err := elf.Open(k.Vmlinux)
	must(err)
	syms, err := ef.Symbols()
	ef.Close()
	must(err)
	var udelay elf.Symbol
	for _, s := range syms {
		if s.Name == "__const_udelay" && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			udelay = s
		}
	}
	if udelay.Value == 0 {
		t.Fatal("no __const_udelay in vmlinux's symbol table")
	}

	// A second session: a breakpoint set in the configuration phase,
	// before any stop, binds at the link address; once the slide is found
	// it moves to the relocated address (a "changed" breakpoint event,
	// sent before the stop the slide is found at) and hits there.
	c = attachDAP(t, addr, map[string]any{"program": k.Vmlinux})
	_, err = c.WaitEvent("initialized")
	must(err)
	fb, err = c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "__const_udelay"}}})
	must(err)
	b := fb.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints
	if len(b) != 1 || !b[0].Verified {
		t.Fatalf("function breakpoint on __const_udelay before the slide is known: %+v", b)
	}
	link, err := strconv.ParseUint(b[0].InstructionReference, 0, 64)
	if err != nil || link < udelay.Value || link >= udelay.Value+udelay.Size {
		t.Fatalf("__const_udelay bound at %q before the slide is known, want in its link range %#x+%#x",
			b[0].InstructionReference, udelay.Value, udelay.Size)
	}
	var moved *dap.Breakpoint
	stopped := func(reason string) {
		t.Helper()
		for {
			ev, err := c.WaitAnyEvent("breakpoint", "stopped")
			must(err)
			if st, ok := ev.(*dap.StoppedEvent); ok {
				if st.Body.Reason != reason {
					t.Fatalf("stopped for %q (%s), want %q", st.Body.Reason, st.Body.Description, reason)
				}
				return
			}
			if be := ev.(*dap.BreakpointEvent); be.Body.Reason == "changed" && be.Body.Breakpoint.Id == b[0].Id {
				moved = &be.Body.Breakpoint
			}
		}
	}
	must(c.ConfigurationDone())
	stopped("pause") // attached to a guest that ran: it stopped where it was
	// The attach stop finds the slide (the guest is in its panic loop, in
	// the kernel), and the breakpoint moves before it is reported.
	if out := c.Output("console"); !strings.Contains(out, "relocated (KASLR) by "+m[1]+" ") {
		t.Errorf("no KASLR slide %s reported at the second attach stop; console: %q", m[1], out)
	}
	if want := fmt.Sprintf("%#x", link+slide); moved == nil || !moved.Verified || moved.InstructionReference != want {
		t.Fatalf("breakpoint on __const_udelay after the slide: %+v, want verified at %s; events %v", moved, want, c.EventNames())
	}
	must(c.Continue(1))
	stopped("function breakpoint")
	st, err = c.StackTrace(1)
	must(err)
	if f := st.Body.StackFrames; len(f) == 0 || f[0].Name != "__const_udelay" || f[0].InstructionPointerReference != moved.InstructionReference {
		t.Fatalf("frames at the moved breakpoint: %+v", f)
	}
	detach(c)

	// A third session told the slide (kernelOffset) moves the symbols at
	// once and searches for none: the attach stop (where a search would
	// be made) has named frames, and the console says which was used.
	c = attachDAP(t, addr, map[string]any{"program": k.Vmlinux, "kernelOffset": fmt.Sprintf("%#x", slide)})
	_, err = c.WaitEvent("initialized")
	must(err)
	must(c.ConfigurationDone())
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "pause" || !strings.Contains(ev.Body.Description, "attached") {
		t.Fatalf("attach stop with kernelOffset: %+v %v", ev, err)
	}
	st, err = c.StackTrace(1)
	must(err)
	names = names[:0]
	for _, f := range st.Body.StackFrames {
		names = append(names, f.Name)
	}
	if len(names) == 0 || strings.HasPrefix(names[0], "0x") || !strings.Contains(strings.Join(names, " "), "panic") {
		t.Fatalf("frames with kernelOffset: %v (want named frames through panic)", names)
	}
	out = c.Output("console")
	if !strings.Contains(out, "moved by kernelOffset "+m[1]) || strings.Contains(out, "relocated (KASLR)") {
		t.Errorf("console with kernelOffset %s: %q (want the setting's note and no search)", m[1], out)
	}
	detach(c)
}

// attachRunning attaches a session to the stub at addr, with the kernel's
// symbols, and lets the guest run.
func attachRunning(t *testing.T, addr, vmlinux string) *daptest.Client {
	t.Helper()
	c := attachDAP(t, addr, map[string]any{"program": vmlinux})
	if _, err := c.WaitEvent("initialized"); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigurationDone(); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("attach stop: %+v %v", ev, err)
	}
	if err := c.Continue(1); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitPanics waits (3 minutes at most) until the guest's serial log holds
// n kernel panics.
func waitPanics(t *testing.T, serial string, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		b, _ := os.ReadFile(serial)
		if strings.Count(string(b), "Kernel panic") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kernel did not reach panic %d in 3 minutes; serial:\n%s", n, b)
		}
		time.Sleep(200 * time.Millisecond) // waiting for the guest's own output (a file QEMU writes)
	}
}

// TestLinuxKASLRRebootUnderQEMU: a guest that reboots runs at a new slide
// (panic=1: each boot ends in a panic for want of a root, and a reboot a
// second later); the session follows it, and says so.
func TestLinuxKASLRRebootUnderQEMU(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	serial := filepath.Join(t.TempDir(), "serial.log")
	addr, _ := startQEMUReboot(t, true, "-machine", "pc", "-m", "512", "-smp", "1", "-serial", "file:"+serial,
		"-kernel", k.Vmlinuz, "-append", "console=ttyS0 panic=1")
	c := attachRunning(t, addr, k.Vmlinux)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	reloc := regexp.MustCompile(`relocated \(KASLR\) by (0x[0-9a-f]+) `)
	var slides []string
	for boot := 1; boot <= 2; boot++ {
		waitPanics(t, serial, boot) // the boot has ended when it reports it cannot mount a root
		// A pause in the kernel finds its slide; one in the firmware or
		// the decompressor of the next boot does not look, and the guest
		// runs on to another.
		for try := 0; ; try++ {
			_, err := c.Request("pause", map[string]any{"threadId": 1})
			must(err)
			if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "pause" {
				t.Fatalf("pause: %+v %v", ev, err)
			}
			m := reloc.FindAllStringSubmatch(c.Output("console"), -1)
			if len(m) >= boot || len(m) == len(slides) && len(slides) == 1 && try >= 5 {
				if len(m) >= boot {
					slides = append(slides, m[boot-1][1])
				}
				break
			}
			if try == 40 {
				t.Fatalf("boot %d: no slide found at 40 pauses; console: %q", boot, c.Output("console"))
			}
			must(c.Continue(1))
			time.Sleep(500 * time.Millisecond)
		}
		if boot == 2 {
			break
		}
		must(c.Continue(1))
	}
	out := c.Output("console")
	t.Logf("slides %v; console %q", slides, out)
	if len(slides) < 2 {
		// The same slide twice (about 1 in 500): nothing moved, and the
		// frames below still say whether the symbols are right.
		t.Logf("the second boot was not reported at another slide: the same slide twice?")
	} else if !strings.Contains(out, "is no longer at") || slides[0] == slides[1] {
		t.Fatalf("slides %v: the reboot was not reported; console %q", slides, out)
	}
	st, err := c.StackTrace(1)
	must(err)
	var names []string
	for _, f := range st.Body.StackFrames {
		names = append(names, f.Name)
	}
	if len(names) == 0 || strings.HasPrefix(names[0], "0x") {
		t.Fatalf("frames after the reboot: %v (want named frames)", names)
	}
	t.Logf("frames %v", names)
	_, err = c.Request("disconnect", map[string]any{"terminateDebuggee": true})
	must(err)
}

// TestLinuxPanicFilterUnderQEMU: for a Linux image the Linux exception
// filters are offered (a capabilities event after the attach); with
// "Linux: kernel panic" on, a kernel that cannot mount its root stops at
// panic() with its message, formatted as the kernel is about to print it
// (the root device's name through %s), and the stack shows who panicked;
// with "Linux: Oops or BUG" on, an Oops stops at __die() with its kind
// and where it was raised; with "Linux: WARN", a WARN_ON() stops at
// __warn() with its file and line (both provoked from the debugger).
func TestLinuxPanicFilterUnderQEMU(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	serial := filepath.Join(t.TempDir(), "serial.log")
	addr, _ := startQEMU(t, "-machine", "pc", "-m", "512", "-smp", "1", "-serial", "file:"+serial,
		"-kernel", k.Vmlinuz, "-append", "console=ttyS0 nokaslr") // no initrd, no root: a panic
	c := attachDAP(t, addr, map[string]any{"program": k.Vmlinux})
	ce, err := c.WaitEvent("capabilities")
	if err != nil {
		t.Fatal(err)
	}
	offered := map[string]bool{}
	for _, f := range ce.(*dap.CapabilitiesEvent).Body.Capabilities.ExceptionBreakpointFilters {
		offered[f.Filter] = true
	}
	if _, err := c.WaitEvent("initialized"); err != nil {
		t.Fatal(err)
	}
	if !offered["linux-panic"] || !offered["linux-oops"] || !offered["linux-warn"] || !offered["PF"] {
		t.Errorf("exception filters offered for a Linux image: %v", offered)
	}
	r, err := c.Request("setExceptionBreakpoints", map[string]any{"filters": []string{"linux-panic", "linux-oops"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range r.(*dap.SetExceptionBreakpointsResponse).Body.Breakpoints {
		if !b.Verified {
			t.Errorf("filter %d: %+v", i, b)
		}
	}
	mustOK(t, c.ConfigurationDone())
	if _, err := c.Stopped(); err != nil {
		t.Fatal(err)
	}
	mustOK(t, c.Continue(1))
	c.Timeout = 3 * time.Minute
	ev, err := c.Stopped()
	if err != nil {
		b, _ := os.ReadFile(serial)
		t.Fatalf("no stop at the panic: %v; serial:\n%s", err, b)
	}
	const want = "Kernel panic - not syncing: VFS: Unable to mount root fs on "
	if ev.Body.Reason != "exception" || ev.Body.Text != "Kernel panic" || !strings.HasPrefix(ev.Body.Description, want) || strings.Contains(ev.Body.Description, "%") {
		t.Fatalf("stop: %+v", ev.Body)
	}
	t.Logf("stopped: %s", ev.Body.Description)
	info, err := c.Request("exceptionInfo", map[string]any{"threadId": ev.Body.ThreadId})
	if err != nil || !strings.HasPrefix(info.(*dap.ExceptionInfoResponse).Body.Description, want) {
		t.Errorf("exceptionInfo: %+v %v", info, err)
	}
	st, err := c.Request("stackTrace", map[string]any{"threadId": ev.Body.ThreadId})
	if err != nil {
		t.Fatal(err)
	}
	fs := st.(*dap.StackTraceResponse).Body.StackFrames
	if len(fs) < 3 || fs[0].Name != "panic" {
		t.Fatalf("stack at the panic: %+v", fs)
	}
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "mount_root") && !strings.Contains(strings.Join(names, " "), "mount_block_root") {
		t.Errorf("the stack at the panic does not show the root mount: %v", names)
	}
	// Past panic's endbr64 and its ftrace call, which the kernel rewrites
	// at boot after checking the bytes there.
	if d := evalIn(t, c, fs[0].Id, "(unsigned long)$rip - (unsigned long)panic"); d != "9" {
		t.Errorf("the panic stop is at panic+%s, want panic+9", d)
	}
	// The guest has not printed it yet: the stop is at panic's entry.
	if b, _ := os.ReadFile(serial); strings.Contains(string(b), "Kernel panic") {
		t.Errorf("the kernel printed its panic before the stop")
	}
	// An Oops, provoked from here: a jump to address 0 in kernel mode is
	// an instruction fetch from an unmapped page (#PF error code 0x10),
	// which the kernel's page-fault handler turns into an Oops.
	if _, err := c.Request("evaluate", map[string]any{"expression": "$rip = 0", "context": "repl", "frameId": fs[0].Id}); err != nil {
		t.Fatal(err)
	}
	mustOK(t, c.Continue(ev.Body.ThreadId))
	ev, err = c.Stopped()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Body.Reason != "exception" || ev.Body.Text != "Oops" || !strings.HasPrefix(ev.Body.Description, "Oops: 0010, raised at 0x0") {
		t.Fatalf("stop after a jump to 0: %+v", ev.Body)
	}
	t.Logf("stopped: %s", ev.Body.Description)
	// Its stack goes through the exception entry to the null "call" and
	// on to the function that called panic (the return address on top of
	// the stack at address 0, as the kernel's own trace reads it).
	oops, err := c.StackTrace(ev.Body.ThreadId)
	if err != nil {
		t.Fatal(err)
	}
	var onames []string
	for _, f := range oops.Body.StackFrames {
		onames = append(onames, f.Name)
	}
	if j := slices.Index(onames, "0x0"); j < 0 || j+1 >= len(onames) || onames[j+1] != fs[1].Name {
		t.Errorf("the Oops stack %v does not go through 0x0 to %s", onames, fs[1].Name)
	}
	// A WARN, provoked from here too: a jump to the ud2 of a WARN_ON()
	// (a __bug_table entry with only BUGFLAG_WARNING) makes the kernel's
	// #UD handler report it through __warn(), with the entry's file and
	// line.
	if _, err := c.Request("setExceptionBreakpoints", map[string]any{"filters": []string{"linux-warn"}}); err != nil {
		t.Fatal(err)
	}
	st, err = c.Request("stackTrace", map[string]any{"threadId": ev.Body.ThreadId})
	if err != nil {
		t.Fatal(err)
	}
	top := st.(*dap.StackTraceResponse).Body.StackFrames[0].Id
	entry := func(i int) string { return fmt.Sprintf("((struct bug_entry *)&__start___bug_table)[%d]", i) }
	i := 0
	for ; i < 500 && evalIn(t, c, top, "("+entry(i)+".flags & 0xff) == 1") != "1"; i++ { // BUGFLAG_WARNING, not ONCE or DONE (the taint is above)
	}
	if i == 500 {
		t.Fatal("no plain WARN_ON in the first 500 entries of __bug_table")
	}
	e := entry(i)
	bug := evalIn(t, c, top, fmt.Sprintf("/x (unsigned long)&%s.bug_addr_disp + %s.bug_addr_disp", e, e))
	file := evalIn(t, c, top, fmt.Sprintf("(char *)((unsigned long)&%s.file_disp + %s.file_disp)", e, e)) // 0x… "path"
	if q := strings.IndexByte(file, '"'); q >= 0 {
		file = strings.Trim(file[q:], `"`)
	}
	line := evalIn(t, c, top, e+".line")
	if _, err := c.Request("evaluate", map[string]any{"expression": "$rip = " + bug, "context": "repl", "frameId": top}); err != nil {
		t.Fatal(err)
	}
	mustOK(t, c.Continue(ev.Body.ThreadId))
	if ev, err = c.Stopped(); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("WARNING at %s:%s ", file, line); ev.Body.Reason != "exception" || ev.Body.Text != "WARNING" || !strings.HasPrefix(ev.Body.Description, want) {
		t.Fatalf("stop after a jump to the WARN at %s: %+v, want %q…", bug, ev.Body, want)
	}
	t.Logf("stopped: %s", ev.Body.Description)
	mustOK(t, c.Disconnect())
}
