package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

func stdioClient(t *testing.T) *daptest.Client {
	t.Helper()
	c, _ := stdioVmdap(t)
	return c
}

// stdioVmdap starts the vmdap binary as an editor does (DAP on stdio) and
// returns a client on it and its process.
func stdioVmdap(t *testing.T) (*daptest.Client, *exec.Cmd) {
	t.Helper()
	args := []string{"dap"}
	if lvl := os.Getenv("VMDAP_TEST_LOG"); lvl != "" {
		// VMDAP_TEST_LOG=debug shows the adapter's logs (on stderr).
		args = []string{"--log-level", lvl, "dap"}
	}
	cmd := exec.Command(vmdapBin, args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("vmdap did not exit after its client closed stdin")
		}
	})
	return daptest.New(rwc{stdout, stdin}), cmd
}

func mbSource(t *testing.T) string {
	root, _ := guests.RepoRoot()
	return filepath.Join(root, "testdata", "guests", "mb", "main.c")
}

// qemuSession runs the same source-level checks over a QEMU-backed
// session: a breakpoint by line, locals/globals, a step, the exit status.
func qemuSession(t *testing.T, c *daptest.Client, src string, wantExit int) {
	t.Helper()
	line, err := daptest.LineOf(src, "hits = hits + 1;")
	if err != nil {
		t.Fatal(err)
	}
	bps, err := c.SetBreakpoints(src, daptest.Line(line))
	if err != nil || !bps.Body.Breakpoints[0].Verified {
		t.Fatalf("setBreakpoints: %+v %v", bps, err)
	}
	if err := c.Continue(1); err != nil {
		t.Fatal(err)
	}
	ev, err := c.Stopped()
	if err != nil || ev.Body.Reason != "breakpoint" {
		t.Fatalf("stopped %+v %v", ev, err)
	}
	st, err := c.StackTrace(1)
	if err != nil || st.Body.StackFrames[0].Name != "main64" || st.Body.StackFrames[0].Line != line {
		t.Fatalf("stack %+v %v", st.Body.StackFrames, err)
	}
	fid := st.Body.StackFrames[0].Id
	r, err := c.Evaluate(fid, "magic")
	if err != nil || r.Body.Result != "732803074" { // 0x2badb002
		t.Fatalf("magic = %v %v", r, err)
	}
	if err := c.Step("next", 1, ""); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "step" {
		t.Fatalf("next: %+v %v", ev, err)
	}
	if r, err := c.Evaluate(0, "hits"); err != nil || r.Body.Result != "1" {
		t.Fatalf("hits after the step = %v %v", r, err)
	}
	if r, err := c.Evaluate(0, "x/2xb &hits"); err != nil || !strings.Contains(r.Body.Result, "<hits>:\t0x01\t0x00") {
		t.Fatalf("x over a GDB stub: %+v %v", r, err)
	}
	// Physical memory through QEMU's physical-memory mode: hits's page
	// walked through the guest's tables, and read there; virtual reads
	// stay virtual after it.
	r, err = c.Evaluate(0, "gva2gpa &hits")
	var gpa uint64
	if err != nil || !strings.HasPrefix(r.Body.Result, "gpa: ") {
		t.Fatalf("gva2gpa over QEMU's stub: %+v %v", r, err)
	}
	fmt.Sscanf(strings.TrimPrefix(r.Body.Result, "gpa: "), "%v", &gpa)
	if r, err := c.Evaluate(0, fmt.Sprintf("xp/2xb %#x", gpa)); err != nil || r.Body.Result != fmt.Sprintf("%#x:\t0x01\t0x00", gpa) {
		t.Fatalf("xp/2xb of hits's guest-physical address %#x: %+v %v", gpa, r, err)
	}
	if r, err := c.Evaluate(0, "hits"); err != nil || r.Body.Result != "1" {
		t.Fatalf("hits after the physical read = %v %v", r, err)
	}
	// Jump to Cursor back to the increment (rip written through the stub)
	// and run it again.
	tr, err := c.Request("gotoTargets", map[string]any{"source": map[string]any{"path": src}, "line": line})
	if err != nil || len(tr.(*dap.GotoTargetsResponse).Body.Targets) != 1 {
		t.Fatalf("gotoTargets: %+v %v", tr, err)
	}
	if _, err := c.Request("goto", map[string]any{"threadId": 1, "targetId": tr.(*dap.GotoTargetsResponse).Body.Targets[0].Id}); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "goto" {
		t.Fatalf("goto: %+v %v", ev, err)
	}
	if st, err := c.StackTrace(1); err != nil || st.Body.StackFrames[0].Line != line {
		t.Fatalf("after the goto: %+v %v", st, err)
	}
	if err := c.Step("next", 1, ""); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "step" {
		t.Fatalf("next: %+v %v", ev, err)
	}
	if r, err := c.Evaluate(0, "hits"); err != nil || r.Body.Result != "2" {
		t.Fatalf("hits after jumping back and stepping = %v %v", r, err)
	}
	c.SetBreakpoints(src)
	if err := c.Continue(1); err != nil {
		t.Fatal(err)
	}
	m, err := c.WaitEvent("exited")
	if err != nil {
		t.Fatal(err)
	}
	// wantExit < 0: attached, QEMU's own exit status is not visible.
	if code := m.(*dap.ExitedEvent).Body.ExitCode; wantExit >= 0 && code != wantExit {
		t.Fatalf("exit status %d, want %d", code, wantExit)
	}
	if wantExit >= 0 && !strings.Contains(c.Output("stdout"), "multiboot magic=0x000000002badb002") {
		t.Fatalf("guest output %q", c.Output("stdout"))
	}
}

// qemuAtEntry launches program under QEMU through the vmdap binary and
// waits for the stop at its entry.
func qemuAtEntry(t *testing.T, program string) *daptest.Client {
	t.Helper()
	c := stdioClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(map[string]any{"program": program, "hypervisor": "qemu", "memory": 64, "stopOnEntry": true}); err != nil {
		t.Fatal(err)
	}
	c.WaitEvent("initialized")
	c.ConfigurationDone()
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("entry: %+v %v", ev, err)
	}
	return c
}

func TestLaunchQEMUOverDAP(t *testing.T) {
	vmmtest.RequireQEMU(t)
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	c := qemuAtEntry(t, g.Path)
	st, _ := c.StackTrace(1)
	if st.Body.StackFrames[0].Name != "entry32" {
		t.Fatalf("entry at %s, want entry32", st.Body.StackFrames[0].Name)
	}
	qemuSession(t, c, mbSource(t), 0x21)
	c.Disconnect()
	// A plain ELF64 kernel cannot boot under QEMU's -kernel: a clear error.
	ex := vmmtest.BuildExample(t, "kernel")
	c2 := stdioClient(t)
	c2.Initialize()
	if err := c2.Launch(map[string]any{"program": ex.Path, "hypervisor": "qemu"}); err == nil || !strings.Contains(err.Error(), "Multiboot") {
		t.Fatalf("ELF64 under QEMU: %v", err)
	}
}

// attachToQEMU starts QEMU by hand (stopped, stub on a free loopback
// port) and attaches a DAP session to it.
func attachToQEMU(t *testing.T, g *vmmtest.Guest) (*daptest.Client, *exec.Cmd) {
	t.Helper()
	qemu := vmmtest.RequireQEMU(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	q := exec.Command(qemu, "-accel", "tcg", "-machine", "pc", "-m", "64", "-display", "none", "-no-reboot",
		"-monitor", "none", "-serial", "null", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
		"-kernel", g.Path, "-S", "-gdb", "tcp:"+addr)
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Process.Kill(); q.Wait() })
	c := stdioClient(t)
	c.Initialize()
	var err error
	for i := 0; i < 100; i++ {
		_, err = c.Request("attach", map[string]any{"gdbServer": addr, "program": g.Path})
		if err == nil || !strings.Contains(err.Error(), "connect") {
			break
		}
		time.Sleep(50 * time.Millisecond) // QEMU is starting; polling its socket
	}
	if err != nil {
		t.Fatal(err)
	}
	return c, q
}

func TestAttachQEMUOverDAP(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	c, _ := attachToQEMU(t, g)
	c.WaitEvent("initialized")
	c.ConfigurationDone()
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("attach stop: %+v %v", ev, err)
	}
	qemuSession(t, c, mbSource(t), -1)
}

// TestStubDiesMidSession: the hypervisor is killed while the guest runs;
// the session ends cleanly (exited, terminated) and vmdap stays up.
func TestStubDiesMidSession(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	c, q := attachToQEMU(t, g)
	c.WaitEvent("initialized")
	c.ConfigurationDone()
	c.Stopped()
	// Make the guest spin, continue, then kill QEMU.
	if _, err := c.Request("writeMemory", map[string]any{"memoryReference": fmt.Sprintf("%#x", vmmtest.Sym(t, g, "spin")), "data": "AQAAAA=="}); err != nil {
		t.Fatal(err)
	}
	if err := c.Continue(1); err != nil {
		t.Fatal(err)
	}
	q.Process.Kill()
	if _, err := c.WaitEvent("terminated"); err != nil {
		t.Fatal(err)
	}
	// The adapter still answers.
	if _, err := c.Request("threads", nil); err == nil {
		t.Log("threads answered after the stub died")
	}
	if err := c.Disconnect(); err != nil {
		t.Fatalf("disconnect after the stub died: %v", err)
	}
}

// TestMonitorOverDAP: "monitor CMD" in the debug console goes to QEMU's
// monitor through its stub, as gdb's monitor does: info registers and
// info cpus answer; a system_reset changes the guest under the stop, and
// what the session shows is read again (the pc is the reset vector's,
// an invalidated event tells the client); monitor commands that resume
// the guest behind the session are refused; vmdap's own VMM has none.
func TestMonitorOverDAP(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	addr, _ := startQEMUReboot(t, true, "-machine", "pc", "-m", "64", "-serial", "null", "-kernel", g.Path) // a reset resets
	c := attachDAP(t, addr, map[string]any{"program": g.Path})
	c.WaitEvent("initialized")
	c.ConfigurationDone()
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("attach stop: %+v %v", ev, err)
	}
	repl := func(line string) (string, error) {
		r, err := c.Request("evaluate", map[string]any{"expression": line, "context": "repl"})
		if err != nil {
			return "", err
		}
		return r.(*dap.EvaluateResponse).Body.Result, nil
	}
	if out, err := repl("monitor info cpus"); err != nil || !strings.Contains(out, "CPU #0") || strings.Contains(out, "\r") {
		t.Errorf("monitor info cpus: %q %v", out, err)
	}
	// The Registers scope says as many groups as it has (no Debug group
	// over QEMU's stub, which does not give the debug registers).
	st, err := c.StackTrace(1)
	if err != nil {
		t.Fatal(err)
	}
	scopes, err := c.Scopes(st.Body.StackFrames[0].Id)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scopes.Body.Scopes {
		if sc.Name != "Registers" {
			continue
		}
		vs, err := c.Variables(sc.VariablesReference)
		if err != nil || len(vs.Body.Variables) != sc.NamedVariables {
			t.Errorf("Registers: %d groups said, %d given (%v)", sc.NamedVariables, len(vs.Body.Variables), err)
		}
	}
	// Set a breakpoint at the entry, then run there, so that the reset
	// moves the pc away from a known place.
	if _, err := c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []map[string]any{
		{"instructionReference": fmt.Sprintf("%#x", vmmtest.Sym(t, g, "main64"))}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Continue(1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stopped(); err != nil {
		t.Fatal(err)
	}
	pc, err := c.PC()
	if err != nil || pc != vmmtest.Sym(t, g, "main64") {
		t.Fatalf("at %#x (%v), want main64", pc, err)
	}
	if out, err := repl("monitor info registers"); err != nil || !strings.Contains(out, fmt.Sprintf("RIP=%016x", pc)) {
		t.Errorf("monitor info registers at main64: %q %v", out, err)
	}
	if _, err := repl("monitor system_reset"); err != nil {
		t.Fatalf("monitor system_reset: %v", err)
	}
	if _, err := c.WaitEvent("invalidated"); err != nil {
		t.Errorf("no invalidated event after the reset: %v", err)
	}
	if pc, err := c.PC(); err != nil || pc != 0xfffffff0 {
		t.Errorf("after system_reset the pc is %#x (%v), want the reset vector 0xfffffff0", pc, err)
	}
	if _, err := repl("monitor cont"); err == nil || !strings.Contains(err.Error(), "use Continue") {
		t.Errorf("monitor cont: %v, want it refused", err)
	}
	c.Disconnect()

	// vmdap's own VMM has no monitor: it says what it has instead.
	vmmtest.RequireKVM(t)
	e := stdioClient(t)
	e.Initialize()
	if err := e.Launch(map[string]any{"program": vmmtest.BuildExample(t, "kernel").Path, "stopOnEntry": true}); err != nil {
		t.Fatal(err)
	}
	e.WaitEvent("initialized")
	e.ConfigurationDone()
	if _, err := e.Stopped(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Request("evaluate", map[string]any{"expression": "monitor info registers", "context": "repl"}); err == nil || !strings.Contains(err.Error(), "has no monitor") {
		t.Errorf("monitor on vmdap's VMM: %v", err)
	}
	e.Disconnect()
}

// TestLaunchQEMUPicksQEMUsProtocol: QEMU's -kernel tries Multiboot 1
// before PVH, so a kernel with both is run to its Multiboot entry (vmdap's
// own auto order, PVH first, would wait at an entry QEMU never takes and
// the launch would fail with the guest run to its end); a "boot" QEMU
// will not use is refused, not ignored.
func TestLaunchQEMUPicksQEMUsProtocol(t *testing.T) {
	vmmtest.RequireQEMU(t)
	g := vmmtest.BuildGuest(t, "mbpvh", vmmtest.ELF32)
	c := qemuAtEntry(t, g.Path)
	st, err := c.StackTrace(1)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Body.StackFrames[0].Name; got != "entry32" {
		t.Fatalf("entry at %s, want entry32 (QEMU boots it through Multiboot 1)", got)
	}
	if err := c.Continue(1); err != nil {
		t.Fatal(err)
	}
	ex, err := c.WaitEvent("exited")
	if err != nil {
		t.Fatal(err)
	}
	if code := ex.(*dap.ExitedEvent).Body.ExitCode; code != 0x21 {
		t.Fatalf("exit status %#x, want 0x21 (booted through Multiboot 1)", code)
	}
	c.Disconnect()
	c2 := stdioClient(t)
	c2.Initialize()
	err = c2.Launch(map[string]any{"program": g.Path, "hypervisor": "qemu", "boot": "pvh"})
	if err == nil || !strings.Contains(err.Error(), `"boot": "pvh" cannot be chosen under QEMU`) {
		t.Fatalf(`"boot": "pvh" under QEMU: %v, want a refusal`, err)
	}
}
