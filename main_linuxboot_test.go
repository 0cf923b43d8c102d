package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/vmm/vmmtest"
)

// TestLaunchBzImageUnderQEMU launches Debian's cloud kernel as the file
// distributions ship (vmlinuz, a bzImage) with an initrd under QEMU
// (-kernel, -initrd, -append): stopped at the protected-mode kernel's
// 32-bit entry, then on to /init, which prints its marker with both CPUs
// online and powers the machine off; QEMU's exit status 0 is the DAP exit
// code.
func TestLaunchBzImageUnderQEMU(t *testing.T) {
	vmmtest.RequireQEMU(t)
	l := vmmtest.RequireLinux(t)
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := os.WriteFile(initrd, vmmtest.Initramfs(t, ""), 0o644); err != nil {
		t.Fatal(err)
	}
	c := stdioClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	err := c.Launch(map[string]any{"program": l.Vmlinuz, "initrd": initrd, "hypervisor": "qemu", "memory": 256, "vcpus": 2,
		"args": "console=ttyS0 nokaslr quiet panic=-1", "stopOnEntry": true})
	if err != nil {
		t.Fatal(err)
	}
	c.WaitEvent("initialized")
	c.ConfigurationDone()
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("entry: %+v %v", ev, err)
	}
	st, err := c.StackTrace(1)
	if err != nil || len(st.Body.StackFrames) == 0 || st.Body.StackFrames[0].InstructionPointerReference != "0x100000" {
		t.Fatalf("entry frame %+v %v, want the 32-bit entry 0x100000", st, err)
	}
	if !strings.Contains(c.Output("console"), `no "symbols" file`) {
		t.Errorf("no note about the missing symbols; console: %q", c.Output("console"))
	}
	if err := c.Continue(1); err != nil {
		t.Fatal(err)
	}
	m, err := c.WaitEvent("exited")
	if err != nil {
		t.Fatal(err)
	}
	out := c.Output("stdout")
	if code := m.(*dap.ExitedEvent).Body.ExitCode; code != 0 {
		t.Fatalf("exit status %d, want 0 (a power-off); guest output:\n%s", code, out)
	}
	if !strings.Contains(out, vmmtest.InitMarker+" cpus=2") {
		t.Fatalf("guest output lacks %q:\n%s", vmmtest.InitMarker+" cpus=2", out)
	}
	if !strings.Contains(out, vmmtest.TTYMarker) {
		t.Fatalf("guest output lacks /init's tty write %q:\n%s", vmmtest.TTYMarker, out)
	}
	i := strings.Index(out, vmmtest.InitMarker)
	t.Logf("%s", strings.SplitN(out[i:], "\n", 2)[0])
	c.Disconnect()
}
