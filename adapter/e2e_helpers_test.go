package adapter_test

import (
	"context"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-dap"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/adapter"
	"vmdap/adapter/daptest"
	"vmdap/vmm"
	"vmdap/vmm/core"
	"vmdap/vmm/gdbremote"
	"vmdap/vmm/kvm"
	"vmdap/vmm/kvm/boot"
	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

// kvmBackends is main's backend wiring, for in-process sessions.
type kvmBackends struct{}

func (kvmBackends) Launch(ctx context.Context, cfg adapter.LaunchConfig, serial io.Writer, log logrus.FieldLogger) (vmm.Target, error) {
	img, err := os.ReadFile(cfg.Program)
	if err != nil {
		return nil, err
	}
	return kvm.New(kvm.Config{Image: img, Protocol: boot.Protocol(cfg.Boot), Memory: uint64(cfg.Memory) << 20,
		VCPUs: cfg.VCPUs, Cmdline: cfg.Args, Serial: serial, Log: log, IRQChip: cfg.IRQChip})
}

func (kvmBackends) Attach(ctx context.Context, cfg adapter.AttachConfig, log logrus.FieldLogger) (vmm.Target, error) {
	if cfg.CoreFile != "" {
		t, err := core.Open(cfg.CoreFile, log)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	t, err := gdbremote.Attach(ctx, gdbremote.Config{Addr: cfg.GDBServer, Stub: cfg.Stub, Log: log})
	if err != nil {
		return nil, err
	}
	return t, nil
}

type env struct {
	t    *testing.T
	c    *daptest.Client
	g    *vmmtest.Guest
	src  string
	done chan error
}

// newClient serves one DAP session in-process over a pipe. Every message
// the adapter sends is checked against the DAP schema: an invalid one
// fails the test.
func newClient(t testing.TB) (*daptest.Client, chan error) {
	t.Helper()
	return newClientWith(t, kvmBackends{})
}

// newClientWith is newClient over other backends.
func newClientWith(t testing.TB, backends adapter.Backends) (*daptest.Client, chan error) {
	t.Helper()
	l, _ := test.NewNullLogger()
	srv := &adapter.Server{Backends: backends, Log: l}
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(a); close(done) }()
	chk := newSchemaCheck(t)
	c := daptest.NewLogged(b, chk.log)
	if os.Getenv("VMDAP_LANE") != "" {
		// Nested emulation on a 2-core host: two L2 vCPUs run inside two
		// TCG threads; give events time.
		c.Timeout = 2 * time.Minute
	}
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c, done
}

// launchExample starts a session on the example guest, stopping at the
// given source lines (markers found in main.c).
func launchExample(t *testing.T, cfg map[string]any) *env {
	t.Helper()
	vmmtest.RequireKVM(t)
	return launchProgram(t, vmmtest.BuildExample(t, "kernel").Path, cfg)
}

// launchAs starts a session on a guest image (src: its C file) for a
// client unlike the test client, whose initialize says init (0-based
// lines, URIs, …), with cfg added to the launch arguments.
func launchAs(t *testing.T, program, src string, init, cfg map[string]any) *env {
	t.Helper()
	vmmtest.RequireKVM(t)
	e := &env{t: t, src: src}
	e.c, e.done = newClient(t)
	args := map[string]any{"adapterID": "vmdap"}
	maps.Copy(args, init)
	_, err := e.c.Request("initialize", args)
	e.must(err)
	launch := map[string]any{"program": program, "memory": 64}
	maps.Copy(launch, cfg)
	e.must(e.c.Launch(launch))
	_, err = e.c.WaitEvent("initialized")
	e.must(err)
	return e
}

// launchProgram starts a session on a guest image whose source is the
// example's main.c.
func launchProgram(t *testing.T, program string, cfg map[string]any) *env {
	t.Helper()
	vmmtest.RequireKVM(t)
	e := &env{t: t, src: exampleSource(t)}
	e.c, e.done = newClient(t)
	if _, err := e.c.Initialize(); err != nil {
		t.Fatal(err)
	}
	args := map[string]any{"program": program, "memory": 64}
	for k, v := range cfg {
		args[k] = v
	}
	if err := e.c.Launch(args); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.WaitEvent("initialized"); err != nil {
		t.Fatal(err)
	}
	return e
}

func exampleSource(t testing.TB) string {
	root, err := guests.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "examples", "kernel", "main.c")
}

// strippedExample is the example guest without its debug information
// (objcopy --strip-debug): ELF symbols only.
func strippedExample(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "stripped.elf")
	if b, err := exec.Command("objcopy", "--strip-debug", buildExample(t), out).CombinedOutput(); err != nil {
		t.Skipf("objcopy: %v: %s", err, b)
	}
	return out
}

func (e *env) line(marker string) int {
	e.t.Helper()
	n, err := daptest.LineOf(e.src, marker)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) stopped(reason string) *dap.StoppedEvent {
	e.t.Helper()
	ev, err := e.c.Stopped()
	if err != nil {
		e.t.Fatal(err)
	}
	if ev.Body.Reason != reason {
		e.t.Fatalf("stopped with reason %q (%s), want %q", ev.Body.Reason, ev.Body.Description, reason)
	}
	return ev
}

// startAt ends the configuration with a function breakpoint on fn and
// waits for the stop there: the id of the frame it stopped in.
func (e *env) startAt(fn string) int {
	e.t.Helper()
	_, err := e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": fn}}})
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("function breakpoint")
	return e.top().Id
}

// startAtLine ends the configuration with a breakpoint on the line of
// the source holding marker and waits for the stop there.
func (e *env) startAtLine(marker string) {
	e.t.Helper()
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(e.line(marker)))
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
}

func (e *env) top() dap.StackFrame {
	e.t.Helper()
	st, err := e.c.StackTrace(1)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Body.StackFrames[0]
}

func (e *env) at(fn string, line int) dap.StackFrame {
	e.t.Helper()
	f := e.top()
	if f.Name != fn || f.Line != line {
		e.t.Fatalf("at %s:%d, want %s:%d", f.Name, f.Line, fn, line)
	}
	return f
}

func (e *env) eval(frame int, expr string) string {
	e.t.Helper()
	r, err := e.c.Evaluate(frame, expr)
	if err != nil {
		e.t.Fatalf("evaluate %q: %v", expr, err)
	}
	return r.Body.Result
}

func (e *env) vars(frame int, scope string) map[string]string {
	e.t.Helper()
	vs, err := e.c.ScopeVars(frame, scope)
	if err != nil {
		e.t.Fatal(err)
	}
	m := map[string]string{}
	for _, v := range vs {
		m[v.Name] = v.Value
	}
	return m
}

func (e *env) step(cmd string) {
	e.t.Helper()
	e.must(e.c.Step(cmd, 1, ""))
	e.stopped("step")
}

// seqStep is one move of a stepping table, as Delve's testseq tables
// are: a run-control command and where it must stop, a function and the
// line of main.c holding a marker (or off lines after it).
type seqStep struct {
	cmd    string // "continue" (to a breakpoint), "next", "stepIn", "stepOut"
	fn     string
	marker string
	off    int
}

// seq runs a stepping table from the current stop, failing at the first
// move that stops elsewhere, and returns the last frame.
func (e *env) seq(steps ...seqStep) dap.StackFrame {
	e.t.Helper()
	var f dap.StackFrame
	for i, s := range steps {
		e.must(e.c.Step(s.cmd, 1, ""))
		want := "step"
		if s.cmd == "continue" {
			want = "breakpoint"
		}
		ev := e.stopped(want)
		f = e.top()
		if line := e.line(s.marker) + s.off; f.Name != s.fn || f.Line != line {
			e.t.Fatalf("move %d, %s (%s): at %s:%d, want %s:%d (%q%+d)", i+1, s.cmd, ev.Body.Reason, f.Name, f.Line, s.fn, line, s.marker, s.off)
		}
	}
	return f
}

func (e *env) runToExit() int {
	e.t.Helper()
	e.must(e.c.Continue(1))
	m, err := e.c.WaitEvent("exited")
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.c.WaitEvent("terminated"); err != nil {
		e.t.Fatal(err)
	}
	return m.(*dap.ExitedEvent).Body.ExitCode
}

func hasPrefix(s, p string) bool { return strings.HasPrefix(s, p) }

// checkNoLeaks runs a session (runOne) once to warm up (the host probe,
// caches, the runtime's own threads), then three times, and fails if
// goroutines or file descriptors are left behind.
func checkNoLeaks(t *testing.T, runOne func()) {
	t.Helper()
	runOne()
	g0, fd0 := runtime.NumGoroutine(), countFDs(t)
	for range 3 {
		runOne()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // let exiting goroutines finish; polling, not synchronisation
	}
	if g := runtime.NumGoroutine(); g > g0 {
		buf := make([]byte, 1<<16)
		n := runtime.Stack(buf, true)
		t.Fatalf("goroutines: %d before, %d after\n%s", g0, g, buf[:n])
	}
	if fd := countFDs(t); fd > fd0 {
		t.Fatalf("file descriptors: %d before, %d after", fd0, fd)
	}
}
