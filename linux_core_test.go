package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// sessionView is what a session shows at a stop: a live one's, to be
// compared with a session on a core dump of the same stop.
type sessionView struct {
	commands map[string]string // a console command's output
	exprs    map[string]string // "vCPU v: expr" (v -1: the global scope)'s result
	threads  map[int]string
	stacks   map[int][]string // each vCPU's frames, name@pc
	user     map[int]bool     // the vCPUs whose first frame is in user space
}

// The console commands and expressions a sessionView holds; perCPUExprs
// are evaluated for each Linux CPU (%d), vcpuExprs in each vCPU's frame.
var (
	viewCommands = []string{"tasks", "dmesg", "dmesg 20", "lsmod", "mounts", "version", "cmdline", "iomem", "ioports"}
	perCPUExprs  = []string{"per_cpu(runqueues, %d).nr_running", "per_cpu(runqueues, %d).curr->pid",
		"per_cpu_ptr(&runqueues, %d)->nr_running", "(unsigned long)*per_cpu_ptr(system_wq->cpu_pwq, %d)"}
	vcpuExprs = []string{"current->pid", "(unsigned long)current", "this_cpu(runqueues).cpu",
		"this_cpu_ptr(&runqueues)->cpu", "this_cpu(runqueues).nr_running"}
	globalExprs = []string{"jiffies", "nr_cpu_ids", "init_task.comm"}
)

// viewOf reads a stopped session's view: vcpus vCPUs, whose Linux CPUs
// are 0 to vcpus-1.
func viewOf(t *testing.T, c *daptest.Client, vcpus int) sessionView {
	t.Helper()
	v := sessionView{commands: map[string]string{}, exprs: map[string]string{}, threads: map[int]string{},
		stacks: map[int][]string{}, user: map[int]bool{}}
	frames := make([]int, vcpus)
	for cpu := range frames {
		st, err := c.StackTrace(cpu + 1)
		mustOK(t, err)
		if len(st.Body.StackFrames) == 0 {
			t.Fatalf("vCPU %d has no frames", cpu)
		}
		frames[cpu] = st.Body.StackFrames[0].Id
		for _, f := range st.Body.StackFrames {
			v.stacks[cpu] = append(v.stacks[cpu], f.Name+"@"+f.InstructionPointerReference)
		}
		v.user[cpu] = parseU(st.Body.StackFrames[0].InstructionPointerReference) < 0xffff800000000000
	}
	for _, cmd := range viewCommands {
		v.commands[cmd] = evalIn(t, c, frames[0], cmd)
	}
	for _, e := range globalExprs {
		v.exprs["vCPU -1: "+e] = evalIn(t, c, frames[0], e)
	}
	for cpu := range frames {
		for _, e := range perCPUExprs {
			e = fmt.Sprintf(e, cpu)
			v.exprs["vCPU -1: "+e] = evalIn(t, c, frames[0], e)
		}
		for _, e := range vcpuExprs {
			v.exprs[fmt.Sprintf("vCPU %d: %s", cpu, e)] = evalIn(t, c, frames[cpu], e)
		}
	}
	m, err := c.Request("threads", nil)
	mustOK(t, err)
	for _, th := range m.(*dap.ThreadsResponse).Body.Threads {
		v.threads[th.Id] = th.Name
	}
	return v
}

// coreSession opens a core dump in a new vmdap session (attach with
// coreFile) with the live session's program and modules, and returns it
// at its first stop: a pause (no CPU panicked at the test's stops).
func coreSession(t *testing.T, core string, cfg map[string]any) (*daptest.Client, time.Duration) {
	t.Helper()
	c := stdioClient(t)
	c.Timeout = 2 * time.Minute
	_, err := c.Initialize()
	mustOK(t, err)
	args := map[string]any{"coreFile": core, "taskThreads": true}
	for k, v := range cfg {
		args[k] = v
	}
	start := time.Now()
	_, err = c.Request("attach", args)
	mustOK(t, err)
	opened := time.Since(start)
	_, err = c.WaitEvent("initialized")
	mustOK(t, err)
	mustOK(t, c.ConfigurationDone())
	ev, err := c.Stopped()
	mustOK(t, err)
	if ev.Body.Reason != "pause" || !strings.Contains(ev.Body.Description, "core dump") {
		t.Errorf("the core dump's session stopped for %q (%s), want a pause at the core dump (no CPU panicked)", ev.Body.Reason, ev.Body.Description)
	}
	return c, opened
}

// compareCore opens core in a vmdap session and checks that it shows
// what the live session showed at the stop the core was dumped at (live)
// and what drgn read of it (d). filtered says makedumpfile left out user
// pages (-d 31): a vCPU stopped in user mode then has its first frame
// only, the user stack it would unwind by being gone, which is the one
// difference allowed.
func compareCore(t *testing.T, core string, cfg map[string]any, live sessionView, d vmmtest.DrgnLinux, vcpus int, filtered bool) {
	t.Helper()
	c, opened := coreSession(t, core, cfg)
	defer func() {
		if t.Failed() {
			t.Logf("the core dump's debug console:\n%s", c.Output("console"))
		}
	}()
	got := viewOf(t, c, vcpus)
	// The session's start names the dump and its kernel's release.
	note := c.Output("console")
	if rel := strings.TrimSpace(afterPrefix(note, "vmdap:   osrelease:")); !strings.Contains(note, "vmdap: core dump "+core+" (") || rel == "" || !strings.Contains(d.Banner, " "+rel+" ") {
		t.Errorf("the debug console at the start:\n%s\nwant the core's path and the release in drgn's banner %q", note, d.Banner)
	}
	lines, frames := 0, 0
	for _, out := range live.commands {
		lines += strings.Count(out, "\n") + 1
	}
	for _, f := range live.stacks {
		frames += len(f)
	}
	t.Logf("core dump opened (attach response) in %v; compared: %d lines of %d commands, %d expressions, %d threads, %d vCPU frames",
		opened.Round(time.Millisecond), lines, len(live.commands), len(live.exprs), len(live.threads), frames)
	if len(live.threads) <= vcpus || frames < vcpus || len(live.exprs) == 0 {
		t.Errorf("the live session showed %d threads, %d vCPU frames and %d expressions: want its tasks too, a frame a vCPU, and values", len(live.threads), frames, len(live.exprs))
	}
	for _, cmd := range viewCommands {
		compareText(t, cmd, "live", got.commands[cmd], strings.Split(strings.TrimRight(live.commands[cmd], "\n"), "\n"))
	}
	for _, e := range sortedKeys(live.exprs) {
		if got.exprs[e] != live.exprs[e] {
			t.Errorf("%s = %s, the live session showed %s", e, got.exprs[e], live.exprs[e])
		}
	}
	for _, id := range sortedKeys(live.threads) {
		if got.threads[id] != live.threads[id] {
			t.Errorf("thread %d is %q, the live session showed %q", id, got.threads[id], live.threads[id])
		}
	}
	for _, id := range sortedKeys(got.threads) {
		if _, ok := live.threads[id]; !ok {
			t.Errorf("thread %d (%s) was not in the live session's threads", id, got.threads[id])
		}
	}
	for v := 0; v < vcpus; v++ {
		want := live.stacks[v]
		if filtered && live.user[v] {
			want = want[:1] // makedumpfile -d 31 dropped the user stack
		}
		if g := strings.Join(got.stacks[v], " "); g != strings.Join(want, " ") {
			t.Errorf("vCPU %d's stack:\n  core %s\n  live %s", v, g, strings.Join(want, " "))
		}
	}
	// And against drgn's reading, with the checks the live session had:
	// the task threads' stacks are the core session's own.
	if _, bad := d.Errors["tasks"]; !bad {
		compareTasks(t, got.commands["tasks"], d)
		compareThreads(t, c, d, vcpus)
	}
	mustOK(t, c.Disconnect())
}

func sortedKeys[K string | int, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// compareCoreFormats checks the other dumps of a stop the live session
// shows: QEMU's without paging (no virtual segments: vmdap translates by
// each CPU's CR3 from QEMU's notes), and, as makedumpfile costs about 30 s
// a run (its -x reads the vmlinux's DWARF: makedumpfile 1.7.2 cannot read
// a 6.12 kernel from VMCOREINFO alone), in one boot each of:
//   - without KASLR (kdump false): QEMU's compressed kdump (-z, flattened)
//     and makedumpfile's (-c), the compressed format's two writers.
//     makedumpfile's at dump level 1 (no zero pages) only: at 31,
//     makedumpfile 1.7.2 takes some of this 6.12 kernel's slab pages for
//     page cache or free pages and leaves them out, live task_structs
//     among them (drgn reads "Excluded page" there too), which its ELF
//     format hides by keeping holes of fewer than 256 pages;
//   - with KASLR (kdump true): makedumpfile's ELF kdump at dump level 31
//     (user pages left out: a vCPU in user mode has one frame), with its notes as
//     a crashed machine's kdump writes them (KdumpNotes: NT_PRSTATUS and
//     VMCOREINFO only, the user's GS base), where vmdap translates by the
//     kernel's init_top_pgt and phys_base, and takes the notes' order for
//     the CPUs'.
//
// c is the live session, stopped.
func compareCoreFormats(t *testing.T, c *daptest.Client, dir string, cfg map[string]any, live sessionView, d vmmtest.DrgnLinux, vcpus int, kdump bool) {
	t.Helper()
	dumped := func(flag, name string) string {
		t.Helper()
		core := dir + "/" + name
		out := evalIn(t, c, 0, strings.TrimSpace("monitor dump-guest-memory "+flag)+" "+core)
		if st, err := os.Stat(core); err != nil || st.Size() == 0 {
			t.Fatalf("monitor dump-guest-memory %s %s: %q, and no core (%v)", flag, core, out, err)
		}
		return core
	}
	converted := func(core, format string, level int, name string) string {
		t.Helper()
		out := dir + "/" + name
		start := time.Now()
		vmmtest.Makedumpfile(t, core, cfg["program"].(string), out, format, level)
		t.Logf("makedumpfile %s -d %d: %v", format, level, time.Since(start).Round(time.Millisecond))
		return out
	}
	core := dumped("", "nopaging.core")
	defer os.Remove(core)
	t.Run("QEMU core without paging", func(t *testing.T) { compareCore(t, core, cfg, live, d, vcpus, false) })
	if !kdump {
		z := dumped("-z", "qemu.kdump")
		defer os.Remove(z)
		t.Run("QEMU compressed kdump", func(t *testing.T) { compareCore(t, z, cfg, live, d, vcpus, false) })
		kc := converted(core, "-c", 1, "makedumpfile.kdump")
		defer os.Remove(kc)
		t.Run("makedumpfile compressed kdump", func(t *testing.T) { compareCore(t, kc, cfg, live, d, vcpus, false) })
		return
	}
	kd := converted(core, "-E", 31, "kdump.elf")
	defer os.Remove(kd)
	n, err := vmmtest.KdumpNotes(kd)
	mustOK(t, err)
	if n != vcpus {
		t.Errorf("makedumpfile's ELF kdump had %d QEMU notes, want one a vCPU (%d)", n, vcpus)
	}
	t.Run("makedumpfile ELF kdump", func(t *testing.T) { compareCore(t, kd, cfg, live, d, vcpus, true) })
}

// afterPrefix returns the rest of text's first line that starts with
// prefix ("": none).
func afterPrefix(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return rest
		}
	}
	return ""
}

// TestLinuxCorePTI opens a dump of Debian's kernel with page table
// isolation forced (pti=on) and one CPU spinning in user mode (awk,
// pinned to CPU 1): that CPU's CR3 is its process's user page table,
// which maps almost none of the kernel. QEMU's dump without paging has no
// virtual segments to fall back on, so vmdap reads the kernel's memory
// through the kernel's own page table (init_top_pgt, which VMCOREINFO
// names): current on each vCPU and the tasks must be what drgn reads of
// a dump with paging of the same moment (drgn 0.0.22 cannot read one
// without: "recursive address translation"; nor one whose segments QEMU
// took from a user page table, that of the first vCPU: the spinner is
// on the second).
func TestLinuxCorePTI(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	vmmtest.RequireDrgn(t)
	vmlinux := vmlinuxForDrgn(t, k.Vmlinux, t.TempDir())
	// drgn 0.0.22 fails on about one such dump in three ("recursive
	// address translation"), and the spinner's CPU may be in the kernel
	// (an interrupt) at the moment of the dump, by the moment: up to
	// three boots.
	var core string
	var d vmmtest.DrgnLinux
	var err error
	for try := 0; try < 3; try++ {
		dump := linuxCore(t, k, "console=ttyS0 panic=-1 pti=on", "$B taskset 2 $B awk 'BEGIN { while (1) {} }' &\n$B sleep 1")
		core = dump(false)
		if d, err = vmmtest.DrgnTryRead(t, dump(true), vmlinux); err == nil && (len(d.VCPUUser) < 2 || !d.VCPUUser[1]) {
			err = fmt.Errorf("vCPUs in user mode: %v, want vCPU 1 (the spinner)", d.VCPUUser)
		}
		if err == nil {
			break
		}
		t.Logf("boot %d: %v", try+1, err)
	}
	if err != nil {
		t.Skipf("skipping: no dump of three had drgn's reading and vCPU 1 in user mode: %v", err)
	}
	c, _ := coreSession(t, core, map[string]any{"program": k.Vmlinux})
	for v := 0; v < 2 && v < len(d.CPUs); v++ {
		st, err := c.StackTrace(v + 1)
		mustOK(t, err)
		if got := evalIn(t, c, st.Body.StackFrames[0].Id, "current->pid"); got != fmt.Sprint(d.CPUs[v].CurrentPID) {
			t.Errorf("current->pid on vCPU %d = %s, drgn reads CPU %d's current pid %d", v, got, v, d.CPUs[v].CurrentPID)
		}
	}
	if _, bad := d.Errors["tasks"]; !bad {
		compareTasks(t, evalIn(t, c, 0, "tasks"), d)
	}
	mustOK(t, c.Disconnect())
}

// What linuxCore's guest prints once it is set up.
const coreBenchReady = "VMDAP-CORE-BENCH-READY"

// linuxCore boots the kernel under QEMU TCG with two CPUs, the command
// line args and an initramfs that loads qemu_fw_cfg (which hands QEMU
// the kernel's VMCOREINFO) and runs extra, stops the machine once extra
// has run, and returns what has QEMU dump it (QMP's dump-guest-memory,
// with paging or not) to a new file: dumps of the same moment.
func linuxCore(t testing.TB, k vmmtest.Linux, args, extra string) (dump func(paging bool) string) {
	t.Helper()
	dumpAs := linuxCoreAs(t, k, args, extra)
	return func(paging bool) string { t.Helper(); return dumpAs(fmt.Sprintf(`"paging":%v`, paging)) }
}

// linuxCoreAs is linuxCore whose dumps take QMP dump-guest-memory's
// arguments ("paging":false,"format":"kdump-zlib").
func linuxCoreAs(t testing.TB, k vmmtest.Linux, args, extra string) (dump func(qmpArgs string) string) {
	t.Helper()
	fw := vmmtest.RequireLinuxModule(t, k, "kernel/drivers/firmware/qemu_fw_cfg")
	ko, err := os.ReadFile(fw.KO)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	initrd := filepath.Join(dir, "initrd.cpio")
	script := "$B insmod /fw.ko\n" + extra + "\necho '<2>" + coreBenchReady + "' >/dev/kmsg\nwhile :; do $B sleep 3600; done"
	if err := os.WriteFile(initrd, vmmtest.InitramfsWith(t, script, map[string][]byte{"fw.ko": ko}), 0o644); err != nil {
		t.Fatal(err)
	}
	serial, qmp := filepath.Join(dir, "serial.log"), filepath.Join(dir, "qmp")
	startQEMU(t, "-machine", "pc", "-m", "256", "-smp", "2", "-serial", "file:"+serial, "-device", "vmcoreinfo",
		"-kernel", k.Vmlinuz, "-initrd", initrd, "-append", args,
		"-qmp", "unix:"+qmp+",server=on,wait=off")
	qmpRun(t, qmp, `{"execute":"cont"}`)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _ := os.ReadFile(serial)
		if strings.Contains(string(out), coreBenchReady) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest did not print %s in 2 minutes:\n%s", coreBenchReady, out)
		}
		time.Sleep(100 * time.Millisecond) // polling output the guest writes
	}
	qmpRun(t, qmp, `{"execute":"stop"}`)
	n := 0
	return func(qmpArgs string) string {
		t.Helper()
		n++
		core := filepath.Join(dir, fmt.Sprintf("linux%d.core", n))
		qmpRun(t, qmp, fmt.Sprintf(`{"execute":"dump-guest-memory","arguments":{%s,"protocol":"file:%s"}}`, qmpArgs, core))
		return core
	}
}

// qmpRun runs one QMP command and fails the test unless it returns.
func qmpRun(t testing.TB, sock, cmd string) {
	t.Helper()
	c := dialQMP(t, sock)
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(c)
	r.ReadString('\n') // the greeting
	for _, cmd := range []string{`{"execute":"qmp_capabilities"}`, cmd} {
		fmt.Fprintln(c, cmd)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("QMP %s: %v", cmd, err)
			}
			if strings.Contains(line, `"event"`) {
				continue
			}
			if !strings.Contains(line, `"return"`) {
				t.Fatalf("QMP %s: %s", cmd, line)
			}
			break
		}
	}
}

// dialQMP connects to QEMU's QMP socket, which QEMU may not have made
// yet.
func dialQMP(t testing.TB, sock string) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	for i := 0; i < 400; i++ {
		if c, err = net.Dial("unix", sock); err == nil {
			return c
		}
		time.Sleep(25 * time.Millisecond) // QEMU is starting; polling its socket
	}
	t.Fatalf("QMP: %v", err)
	return nil
}
