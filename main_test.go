package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vmdap/adapter/daptest"
	"vmdap/vmm/kvm"
	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

var vmdapBin string

func TestMain(m *testing.M) {
	if b := os.Getenv("VMDAP_BIN"); b != "" {
		// A vmdap built beforehand (the nested-KVM lanes have no Go).
		vmdapBin = b
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "vmdap-bin")
	if err != nil {
		panic(err)
	}
	vmdapBin = filepath.Join(dir, "vmdap")
	if out, err := exec.Command("go", "build", "-o", vmdapBin, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type procRW struct {
	r  *os.File
	w  *os.File
	cm *exec.Cmd
}

// TestStdioCarriesOnlyDAP runs a whole session through the binary on
// stdio with debug logging on: every byte on stdout must be DAP.
func TestStdioCarriesOnlyDAP(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildExample(t, "kernel")
	cmd := exec.Command(vmdapBin, "--log-level", "debug", "--log-output", "dap,kvm", "dap")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := daptest.New(rwc{stdout, stdin})
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(map[string]any{"program": g.Path, "memory": 64}); err != nil {
		t.Fatal(err)
	}
	c.WaitEvent("initialized")
	if err := c.ConfigurationDone(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitEvent("exited"); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("vmdap exited: %v\n%s", err, stderr.String())
	}
	// The client parsed every message; a stray byte would have broken the
	// framing and failed the requests above. The logs went to stderr.
	if !strings.Contains(stderr.String(), "layer=dap") || !strings.Contains(stderr.String(), "KVM host probed") {
		t.Fatalf("expected debug logs on stderr, got:\n%.2000s", stderr.String())
	}
}

// TestStdinFromAPipeIsPolled checks that stdio mode reads an editor's
// pipe through Go's poller (nonblocking): a blocking read held a
// processor, and while a kernel's symbols were indexed each request
// waited up to 10 ms for the worker to run it.
func TestStdinFromAPipeIsPolled(t *testing.T) {
	cmd := exec.Command(vmdapBin, "dap")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	c := daptest.New(rwc{stdout, stdin})
	if _, err := c.Initialize(); err != nil { // stdin is being read
		t.Fatal(err)
	}
	info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/0", cmd.Process.Pid))
	if err != nil {
		t.Skipf("skipping: no /proc fdinfo here: %v", err)
	}
	for _, line := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatalf("fdinfo flags %q: %v", v, err)
			}
			if flags&syscall.O_NONBLOCK == 0 {
				t.Fatalf("vmdap reads its stdin pipe blocking (flags %o)", flags)
			}
			return
		}
	}
	t.Fatalf("no flags in fdinfo:\n%s", info)
}

type rwc struct {
	r interface{ Read([]byte) (int, error) }
	w interface {
		Write([]byte) (int, error)
		Close() error
	}
}

func (x rwc) Read(p []byte) (int, error)  { return x.r.Read(p) }
func (x rwc) Write(p []byte) (int, error) { return x.w.Write(p) }
func (x rwc) Close() error                { return x.w.Close() }

// TestListenLoopbackSeveralClients serves two clients one after another on
// TCP; an address without a host binds loopback.
func TestListenLoopbackSeveralClients(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildExample(t, "kernel")
	cmd := exec.Command(vmdapBin, "--listen", ":0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	addr := ""
	for sc.Scan() {
		if i := strings.Index(sc.Text(), "listening on "); i >= 0 {
			addr = strings.TrimSpace(sc.Text()[i+len("listening on "):])
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("listening on %q, want loopback", addr)
	}
	for i := 0; i < 2; i++ {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c := daptest.New(conn)
		if _, err := c.Initialize(); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if err := c.Launch(map[string]any{"program": g.Path, "memory": 64, "stopOnEntry": true}); err != nil {
			t.Fatal(err)
		}
		c.WaitEvent("initialized")
		c.ConfigurationDone()
		if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "entry" {
			t.Fatalf("client %d: %v %v", i, ev, err)
		}
		if err := c.Disconnect(); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{":4711": "127.0.0.1:4711", "4711": "127.0.0.1:4711",
		"0.0.0.0:4711": "0.0.0.0:4711", "localhost:1": "localhost:1"} {
		if got, err := listenAddr(in); err != nil || got != want {
			t.Errorf("listenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestCheckCommand(t *testing.T) {
	vmmtest.RequireKVM(t)
	out, err := exec.Command(vmdapBin, "check").CombinedOutput()
	if err != nil {
		t.Fatalf("vmdap check: %v\n%s", err, out)
	}
	for _, want := range []string{"KVM flavour:", "software breakpoints:", "debug-register watchpoints fire:", "single-step:"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("vmdap check output lacks %q:\n%s", want, out)
		}
	}
	// The host's notes, as a session's console shows them.
	h, err := kvm.Probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range h.Capabilities().Notes {
		if !strings.Contains(string(out), n) {
			t.Errorf("vmdap check output lacks the note %q:\n%s", n, out)
		}
	}
}

// TestDemo runs the README's main command end to end.
func TestDemo(t *testing.T) {
	vmmtest.RequireKVM(t)
	out, err := exec.Command(vmdapBin, "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("vmdap demo: %v\n%s", err, out)
	}
	for _, want := range []string{"stopped: breakpoint", "in           sum_squares", "data breakpoint", "=> 0x", "| sum of squares: 30", "exited with status 1"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("demo transcript lacks %q:\n%s", want, out)
		}
	}
}

// TestDemoBuildsAsTheMakefile: `vmdap demo` builds the example with the
// flags of its Makefile (what editors' users build it with), which are
// those the tests build it with.
func TestDemoBuildsAsTheMakefile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("examples", "kernel", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string][]string{}
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		if name, val, ok := strings.Cut(l, "="); ok && !strings.ContainsAny(name, ":\t") {
			vars[strings.TrimSpace(name)] = strings.Fields(val)
		}
	}
	for name, want := range map[string][]string{"CFLAGS": exampleCFlags, "LDFLAGS": exampleLDFlags} {
		if got := vars[name]; !slices.Equal(got, want) {
			t.Errorf("the Makefile's %s = %q, the demo's %q", name, got, want)
		}
	}
	if !slices.Equal(guests.CFlags, exampleCFlags) {
		t.Errorf("the tests build guests with %q, the demo the example with %q", guests.CFlags, exampleCFlags)
	}
}

// TestListenWarnsOffLoopback: binding every interface (or any address but
// loopback) serves DAP to anyone who can reach the port; vmdap says so.
func TestListenWarnsOffLoopback(t *testing.T) {
	for _, a := range []string{"127.0.0.1:4711", "[::1]:4711"} {
		ta, _ := net.ResolveTCPAddr("tcp", a)
		if w := exposureWarning(ta); w != "" {
			t.Errorf("%s: warned %q", a, w)
		}
	}
	cmd := exec.Command(vmdapBin, "--listen", "0.0.0.0:0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "warning:") {
			if !strings.Contains(sc.Text(), "every network interface") || !strings.Contains(sc.Text(), "no authentication") {
				t.Fatalf("warning %q", sc.Text())
			}
			go func() {
				for sc.Scan() {
				}
			}()
			return
		}
	}
	t.Fatal("no warning for --listen 0.0.0.0:0")
}

// TestHelpSucceeds: --help and -h print the usage on stdout and exit 0,
// as go's own flag handling and other command-line tools do; a bad flag
// is an error (2) with the usage on stderr.
func TestHelpSucceeds(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr strings.Builder
		cmd := exec.Command(vmdapBin, arg)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("vmdap %s: %v (stderr %q)", arg, err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "usage: vmdap") || !strings.Contains(stdout.String(), "-listen") {
			t.Errorf("vmdap %s printed %q on stdout, want the usage", arg, stdout.String())
		}
	}
	out, err := exec.Command(vmdapBin, "--no-such-flag").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "no-such-flag") {
		t.Errorf("vmdap --no-such-flag: %v, %q; want exit status 2 naming the flag", err, out)
	}
}

// TestBadCommandLinesRefused: a misspelt --log-output trace and words
// after a command were ignored without a word (no trace logged, the
// words dropped); each is an error (2) that names it.
func TestBadCommandLinesRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-output", "dpa", "check"}, `unknown trace "dpa"`},
		{[]string{"--log-output", "dap,kvm,gdbwire", "check"}, `unknown trace "gdbwire"`},
		{[]string{"check", "--verbose"}, `check: unexpected arguments ["--verbose"]`},
		{[]string{"dap", "kernel.elf"}, `dap: unexpected arguments ["kernel.elf"]`},
		{[]string{"demo", "kernel", "extra"}, `demo: unexpected arguments ["extra"]`},
	} {
		out, err := exec.Command(vmdapBin, tc.args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("vmdap %q: %v, %q; want exit status 2 and %q", tc.args, err, out, tc.want)
		}
	}
	// An example the source tree has not: named, with the ones it has.
	out, err := exec.Command(vmdapBin, "demo", "nosuch").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `no example guest "nosuch"`) || !strings.Contains(string(out), "kernel") {
		t.Errorf("vmdap demo nosuch: %v, %q; want a failure naming the examples there are", err, out)
	}
}
