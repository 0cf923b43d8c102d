package adapter_test

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/adapter"
	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// Inputs that could kill, wedge or bloat the adapter.

// silentStub accepts connections and never answers (a GDB stub that
// hangs).
type silentStub struct {
	l     net.Listener
	conns chan net.Conn
}

func newSilentStub(t *testing.T) *silentStub {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentStub{l: l, conns: make(chan net.Conn, 4)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.conns <- c
			go io.Copy(io.Discard, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for {
			select {
			case c := <-s.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return s
}

// TestReadLoopIndependentOfRequests: while an attach hangs on a silent
// stub, a cancel request is answered and cancels it, later requests are
// answered, and a closed input ends the session at once (the hung attach
// is abandoned, its stub connection still open).
func TestReadLoopIndependentOfRequests(t *testing.T) {
	stub := newSilentStub(t)
	c, done := newClient(t)
	c.Timeout = 10 * time.Second
	r, err := c.Initialize()
	must(t, err)
	if !r.Body.SupportsCancelRequest {
		t.Fatal("supportsCancelRequest not advertised")
	}
	seq, ch, err := c.Send("attach", map[string]any{"gdbServer": stub.l.Addr().String()})
	must(t, err)
	<-stub.conns // the attach is under way
	_, err = c.Request("cancel", map[string]any{"requestId": seq})
	must(t, err)
	_, err = c.Wait("attach", ch)
	refused(t, "the cancelled attach", err, "cancelled")
	_, err = c.Request("threads", nil)
	refused(t, "threads after the cancelled attach", err, "launch or attach first")
	// A second hung attach; then the client goes away.
	_, _, err = c.Send("attach", map[string]any{"gdbServer": stub.l.Addr().String()})
	must(t, err)
	<-stub.conns
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
}

// TestDisassembleBounded: huge instruction offsets are refused at once,
// not decoded one by one.
func TestDisassembleBounded(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	pc := e.top().InstructionPointerReference
	e.c.Timeout = 10 * time.Second
	for _, off := range []int{-100000, 100000000} {
		_, err := e.c.Disassemble(pc, off, 10)
		refused(t, "disassemble far away", err, "instructionOffset")
	}
	dis, err := e.c.Disassemble(pc, -2000, 4000)
	e.must(err)
	if n := len(dis.Body.Instructions); n != 4000 {
		t.Fatalf("%d instructions, want 4000", n)
	}
	// At the ends of the address space: the slots before address 0 and
	// past the top have no address ("-1", which VS Code leaves out), never
	// a wrapped one.
	for _, c := range []struct {
		ref         string
		off, beyond int // instructionOffset; slots expected without an address
		first       string
	}{
		{"0x2", -5, 3, "0x0"},            // 0x0, 0x1 before 0x2: the pads before them are beyond
		{"0xfffffffffffffffe", 0, 8, ""}, // the last bytes, then nothing
	} {
		dis, err := e.c.Disassemble(c.ref, c.off, 10)
		e.must(err)
		ins := dis.Body.Instructions
		if len(ins) != 10 {
			t.Fatalf("disassemble %s %+d: %d instructions, want 10", c.ref, c.off, len(ins))
		}
		n := 0
		for _, in := range ins {
			if in.Address == "-1" {
				n++
				if in.Instruction != "??" || in.InstructionBytes != "" {
					t.Errorf("disassemble %s: a slot beyond the address space holds an instruction: %+v", c.ref, in)
				}
			} else if a, err := strconv.ParseUint(in.Address, 0, 64); err != nil || c.ref == "0x2" && a > 2 && n < 3 {
				t.Errorf("disassemble %s %+d: address %q (wrapped?) in %+v", c.ref, c.off, in.Address, ins)
			}
		}
		if n < c.beyond {
			t.Errorf("disassemble %s %+d: %d slots beyond the address space, want at least %d: %+v", c.ref, c.off, n, c.beyond, ins)
		}
		if c.first != "" && ins[c.beyond].Address != c.first {
			t.Errorf("disassemble %s %+d: slot %d at %s, want %s", c.ref, c.off, c.beyond, ins[c.beyond].Address, c.first)
		}
	}
}

// TestProgramMustBeARegularFile: a FIFO, a device or a directory as
// program or symbols is refused with a clear error (never read, never
// waited on), and an unreadable image's error never echoes its bytes.
func TestProgramMustBeARegularFile(t *testing.T) {
	vmmtestRequire(t)
	c, _ := newClient(t)
	c.Timeout = 10 * time.Second
	_, err := c.Initialize()
	must(t, err)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("root:$y$j9T$SECRETHASH:19000:0:99999:7:::\n"), 0o600)
	ex := buildExample(t)
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"program": fifo}, "not a regular file"},
		{map[string]any{"program": "/dev/zero"}, "not a regular file"},
		{map[string]any{"program": dir}, "directory"},
		{map[string]any{"program": ex, "symbols": fifo}, "not a regular file"},
	} {
		err := c.Launch(tc.cfg)
		refused(t, "launch "+tc.cfg["program"].(string), err, tc.want)
	}
	err = c.Launch(map[string]any{"program": secret})
	if err == nil {
		t.Fatal("a text file launched")
	}
	for _, leak := range []string{"root", "114 111 111 116", "72 6f 6f 74", "SECRET"} {
		if strings.Contains(err.Error(), leak) {
			t.Fatalf("the error echoes the file: %v", err)
		}
	}
}

// TestListenServesClientsConcurrently: a connected client that says
// nothing does not keep the next one waiting.
func TestListenServesClientsConcurrently(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := test.NewNullLogger()
	srv := &adapter.Server{Backends: kvmBackends{}, Log: log}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	silent, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := daptest.New(conn)
	c.Timeout = 10 * time.Second
	if _, err := c.Initialize(); err != nil {
		t.Fatalf("the second client: %v", err)
	}
	// Closing the listener ends every session and returns.
	l.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request("threads", nil); err == nil || strings.Contains(err.Error(), "launch") {
		t.Fatalf("a session outlived its server: %v", err)
	}
	var one [1]byte
	if _, err := silent.Read(one[:]); err == nil {
		t.Fatal("the silent client's connection stayed open")
	}
}

// TestCloseWhileRunningOverStub: a client that goes away while the guest
// runs behind a GDB stub ends the session at once (the session's wait
// for the guest ends with it, whether or not the backend's own Wait
// notices its Close).
func TestCloseWhileRunningOverStub(t *testing.T) {
	qemu := vmmtest.RequireQEMU(t)
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	q := exec.Command(qemu, "-accel", "tcg", "-display", "none", "-no-reboot", "-monitor", "none", "-serial", "null",
		"-m", "64", "-kernel", g.Path, "-S", "-gdb", "tcp:"+addr)
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Process.Kill(); q.Wait() })
	c, done := newClient(t)
	_, err = c.Initialize()
	must(t, err)
	for i := 0; ; i++ {
		_, err = c.Request("attach", map[string]any{"gdbServer": addr, "program": g.Path})
		if err == nil || !strings.Contains(err.Error(), "connect") || i == 200 {
			break
		}
		time.Sleep(50 * time.Millisecond) // QEMU is starting; polling its socket
	}
	must(t, err)
	_, err = c.WaitEvent("initialized")
	must(t, err)
	must(t, c.ConfigurationDone())
	_, err = c.Stopped()
	must(t, err)
	_, err = c.Request("setExpression", map[string]any{"expression": "spin", "value": "1"})
	must(t, err)
	must(t, c.Continue(1))
	c.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the session did not end after its client went away while the guest ran")
	}
}
