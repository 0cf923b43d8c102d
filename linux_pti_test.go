package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/vmm/vmmtest"
)

// TestLinuxPTIUserStopUnderQEMU: a kernel with page-table isolation
// (pti=on) runs user code under page tables that map almost nothing of
// the kernel. A pause that lands in user space on the only vCPU still
// shows the kernel's data (current, init_task, the task list, the log,
// the frames' symbols): vmdap reads it through the kernel's half of the
// page-table pair, in guest-physical memory, as the kernel does on entry.
func TestLinuxPTIUserStopUnderQEMU(t *testing.T) {
	k := vmmtest.RequireLinux(t)
	dir := t.TempDir()
	const ready = "VMDAP-PTI-READY"
	initrd := filepath.Join(dir, "initrd.cpio")
	script := "$B awk 'BEGIN { while (1) {} }' &\necho '<2>" + ready + "' >/dev/kmsg\nwhile :; do $B sleep 3600; done"
	if err := os.WriteFile(initrd, vmmtest.InitramfsWith(t, script, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "serial.log")
	addr, _ := startQEMU(t, "-machine", "pc", "-m", "512", "-smp", "1", "-serial", "file:"+serial,
		"-kernel", k.Vmlinuz, "-initrd", initrd, "-append", "console=ttyS0 nokaslr pti=on panic=-1")
	c := attachRunning(t, addr, k.Vmlinux)
	waitConsole(t, func() string { b, _ := os.ReadFile(serial); return string(b) }, ready, 3*time.Minute)

	// Pause until the stop is in user space (the spinner's): most are.
	var top dap.StackFrame
	for try := 0; ; try++ {
		_, err := c.Request("pause", map[string]any{"threadId": 1})
		mustOK(t, err)
		if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "pause" {
			t.Fatalf("pause: %+v %v", ev, err)
		}
		if evalIn(t, c, 0, "$cs & 3") == "3" {
			st, err := c.StackTrace(1)
			mustOK(t, err)
			top = st.Body.StackFrames[0]
			break
		}
		if try == 30 {
			t.Fatal("no pause of 30 landed in user space")
		}
		mustOK(t, c.Continue(1))
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("stopped in user space: %s", top.Name)
	fid := top.Id
	// The spinner is busybox's awk (its comm is busybox's), init's child,
	// running on CPU 0.
	if got := evalIn(t, c, fid, "current->comm"); !strings.Contains(got, `"busybox"`) {
		t.Errorf("current->comm in the spinner = %s", got)
	}
	if got := evalIn(t, c, fid, "init_task.comm"); !strings.Contains(got, `"swapper`) {
		t.Errorf("init_task.comm = %s", got)
	}
	out := evalIn(t, c, fid, "tasks")
	m := regexp.MustCompile(`(?m)^\s+(\d+)\s+\d+\s+1 R\s+0\s+\S+\s+busybox\s+\(running\)$`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "[swapper/0]") {
		t.Fatalf("tasks: want swapper/0 and the spinner running on CPU 0:\n%s", out)
	}
	if got := evalIn(t, c, fid, "current->pid"); got != m[1] {
		t.Errorf("current->pid = %s, tasks says pid %s runs", got, m[1])
	}
	// A kernel variable written there (the debug console's C assignment)
	// reads back.
	was := evalIn(t, c, fid, "panic_timeout")
	evalIn(t, c, fid, "panic_timeout = 7")
	if got := evalIn(t, c, fid, "panic_timeout"); got != "7" {
		t.Errorf("panic_timeout after writing 7 = %s", got)
	}
	evalIn(t, c, fid, "panic_timeout = "+was)
	if out := evalIn(t, c, fid, "dmesg"); !strings.Contains(out, ready) {
		t.Errorf("dmesg has no %s:\n%.2000s", ready, out)
	}
	mustOK(t, c.Disconnect())
}
