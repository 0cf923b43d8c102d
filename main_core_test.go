package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/vmm/vmmtest"
)

// TestCoreDumpOfLinuxPanic is post-mortem debugging as a kernel developer
// does it with crash or drgn: Debian's cloud kernel (with KASLR, two
// CPUs) panics under QEMU for want of a root file system and waits
// (panic=0); QEMU's monitor dumps the machine in each format it writes
// (ELF, ELF with paging, and in the flattened compressed kdump format
// with zlib, LZO and snappy, where this QEMU has them), and
// vmdap opens each dump with the vmlinux: it starts stopped on the CPU
// that panicked, in panic() called from the root mount; the kernel log
// says why; the tasks are there; and every format shows the same
// stacks, log and tasks, as they hold the same machine. The dumps carry no
// VMCOREINFO (QEMU gets it from a module this guest never loads), so the
// KASLR slide is found from memory. A dump cannot run: continue, next and
// breakpoints are refused with a reason, and the session goes on.
func TestCoreDumpOfLinuxPanic(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	qemu := vmmtest.RequireQEMU(t)
	dir := t.TempDir()
	serial, mon := filepath.Join(dir, "serial.log"), filepath.Join(dir, "monitor.sock")
	q := exec.Command(qemu, "-accel", "tcg,thread=single", "-machine", "pc", "-m", "256", "-smp", "2",
		"-display", "none", "-no-reboot", "-serial", "file:"+serial, "-monitor", "unix:"+mon+",server=on,wait=off",
		"-kernel", k.Vmlinuz, "-append", "console=ttyS0 panic=0")
	mustOK(t, q.Start())
	t.Cleanup(func() { q.Process.Kill(); q.Wait() })
	console := func() string { b, _ := os.ReadFile(serial); return string(b) }
	waitConsole(t, console, "---[ end Kernel panic", 4*time.Minute)

	hmp := dialHMP(t, mon)
	hmp("stop") // every dump of one moment (the panicked CPU spins in its delay loop)
	formats := []struct{ name, flag string }{{"elf", ""}, {"elf-paging", "-p"}, {"kdump-zlib", "-z"}, {"kdump-lzo", "-l"}, {"kdump-snappy", "-s"}}
	var first *coreView
	for _, f := range formats {
		core := filepath.Join(dir, f.name+".core")
		out := hmp(strings.TrimSpace("dump-guest-memory " + f.flag + " " + core))
		if st, err := os.Stat(core); err != nil || st.Size() == 0 {
			if msg := lastLine(out); strings.Contains(msg, "not available") {
				t.Logf("this QEMU cannot write %s: %s", f.name, msg)
				continue
			}
			t.Fatalf("dump-guest-memory %s: %q, and no dump (%v)", f.flag, out, err)
		}
		t.Run(f.name, func(t *testing.T) {
			v := openPanicCore(t, core, k.Vmlinux)
			if first == nil {
				first = &v
				return
			}
			for _, d := range []struct{ what, got, want string }{{"stack", v.frames, first.frames}, {"dmesg", v.dmesg, first.dmesg}, {"tasks", v.tasks, first.tasks}} {
				if d.got != d.want {
					t.Errorf("%s differs from the ELF dump's:\n%s\nELF dump:\n%s", d.what, d.got, d.want)
				}
			}
		})
		os.Remove(core)
	}
}

// openPanicCore opens a dump of the panicked kernel in vmdap and checks what
// it shows; it returns the panicking CPU's stack, dmesg and tasks.
func openPanicCore(t *testing.T, core, vmlinux string) (v coreView) {
	c := stdioClient(t)
	c.Timeout = 2 * time.Minute
	_, err := c.Initialize()
	mustOK(t, err)
	ev, err := c.OpenCore(core, vmlinux)
	mustOK(t, err)
	if ev.Body.Reason != "exception" || !strings.Contains(ev.Body.Description, "panicked on CPU") {
		t.Fatalf("the dump's stop: %q (%s), want an exception: the kernel panicked", ev.Body.Reason, ev.Body.Description)
	}
	// What VS Code shows in the exception widget of an exception stop.
	ei, err := c.Request("exceptionInfo", map[string]any{"threadId": ev.Body.ThreadId})
	mustOK(t, err)
	if e := ei.(*dap.ExceptionInfoResponse).Body; e.ExceptionId != "Kernel panic" || !strings.HasPrefix(e.Description, "Kernel panic - not syncing: VFS: Unable to mount root fs") {
		t.Errorf("exceptionInfo: %+v, want the kernel's panic message", e)
	}
	if out := c.Output("console"); !strings.Contains(out, "core dump "+core) {
		t.Errorf("the debug console does not name the dump:\n%s", out)
	}
	st, err := c.StackTrace(ev.Body.ThreadId)
	mustOK(t, err)
	var names []string
	for _, f := range st.Body.StackFrames {
		names = append(names, f.Name)
	}
	v.frames = strings.Join(names, "\n")
	for _, fn := range []string{"panic", "mount_root_generic", "prepare_namespace", "kernel_init"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+fn+" ") {
			t.Errorf("the panicking CPU's stack has no %s:\n%s", fn, v.frames)
		}
	}
	top := st.Body.StackFrames[0].Id
	v.dmesg, v.tasks = evalIn(t, c, top, "dmesg"), evalIn(t, c, top, "tasks")
	if !strings.Contains(v.dmesg, "Kernel panic - not syncing: VFS: Unable to mount root fs") || !strings.Contains(v.dmesg, "Linux version 6.") {
		t.Errorf("dmesg has no banner or no panic:\n%s", v.dmesg[max(0, len(v.dmesg)-3000):])
	}
	if !strings.Contains(v.tasks, "swapper/0") || !strings.Contains(v.tasks, "kthreadd") {
		t.Errorf("tasks has no swapper/0 or kthreadd:\n%s", v.tasks)
	}
	for expr, want := range map[string]string{"current->pid": "1", "init_task.pid": "0"} {
		if got := evalIn(t, c, top, expr); got != want {
			t.Errorf("%s = %s, want %s (the root mount panics in pid 1)", expr, got, want)
		}
	}
	// Nothing runs or changes, and saying so ends nothing.
	for _, r := range []struct {
		cmd  string
		args map[string]any
	}{{"continue", map[string]any{"threadId": ev.Body.ThreadId}}, {"next", map[string]any{"threadId": ev.Body.ThreadId}}} {
		if _, err := c.Request(r.cmd, r.args); err == nil || !strings.Contains(err.Error(), "core dump") {
			t.Errorf("%s on a dump: %v, want a refusal that says it is a core dump", r.cmd, err)
		}
	}
	bp, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "panic"}}})
	if err == nil {
		if b := fmt.Sprintf("%+v", bp); !strings.Contains(b, "Verified:false") {
			t.Errorf("a function breakpoint in a dump: %s, want it unverified", b)
		}
	}
	if got := evalIn(t, c, top, "init_task.comm"); !strings.HasPrefix(got, `"swapper/0"`) {
		t.Errorf("after the refusals, init_task.comm = %s", got)
	}
	mustOK(t, c.Disconnect())
	return v
}

// lastLine is the last line a monitor command printed before its prompt.
func lastLine(out string) string {
	l := strings.Split(strings.TrimSpace(strings.TrimSuffix(out, "(qemu) ")), "\n")
	return strings.TrimSpace(l[len(l)-1])
}

// coreView is what a dump's session showed.
type coreView struct{ frames, dmesg, tasks string }

// dialHMP connects to QEMU's human monitor on a Unix socket and returns
// a function that runs one command and returns what it printed.
func dialHMP(t *testing.T, path string) func(cmd string) string {
	var conn net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if conn, err = net.Dial("unix", path); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // QEMU is creating its socket
	}
	mustOK(t, err)
	t.Cleanup(func() { conn.Close() })
	r := bufio.NewReader(conn)
	prompt := func() string {
		conn.SetReadDeadline(time.Now().Add(3 * time.Minute))
		var b strings.Builder
		for !strings.HasSuffix(b.String(), "(qemu) ") {
			c, err := r.ReadByte()
			if err != nil {
				t.Fatalf("QEMU's monitor: %v after %q", err, b.String())
			}
			b.WriteByte(c)
		}
		return b.String()
	}
	prompt()
	return func(cmd string) string {
		_, err := conn.Write([]byte(cmd + "\n"))
		mustOK(t, err)
		return prompt()
	}
}
