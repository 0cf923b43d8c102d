package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/gdbremote"
	"vmdap/vmm/gdbremote/rsp"
	"vmdap/vmm/vmmtest"
)

// Sessions over QEMU's GDB stub, through the vmdap binary, where QEMU
// misbehaves for real: killed (SIGKILL) with the guest stopped or running,
// frozen (SIGSTOP) so that it never answers a pause, failing to start;
// and the ways a session can let QEMU go (terminateDebuggee,
// suspendDebuggee).

// qemuChild finds the QEMU that a vmdap process launched, and the address
// of its GDB stub.
func qemuChild(t *testing.T, vmdap *exec.Cmd) (pid int, gdbAddr string) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so from the last ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(vmdap.Process.Pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		for i, a := range args {
			if a == "-gdb" && i+1 < len(args) {
				return p, strings.TrimPrefix(args[i+1], "tcp:")
			}
		}
	}
	t.Fatalf("no QEMU child of vmdap (pid %d)", vmdap.Process.Pid)
	return 0, ""
}

// startStoppedQEMU starts QEMU stopped with its stub on a free loopback port and
// waits until the stub listens.
func startStoppedQEMU(t *testing.T, g *vmmtest.Guest, extra ...string) (*exec.Cmd, string, *strings.Builder) {
	t.Helper()
	qemu := vmmtest.RequireQEMU(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	args := append([]string{"-accel", "tcg", "-machine", "pc", "-m", "64", "-display", "none", "-no-reboot",
		"-monitor", "none", "-serial", "null", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
		"-kernel", g.Path, "-S", "-gdb", "tcp:" + addr}, extra...)
	q := exec.Command(qemu, args...)
	stderr := &strings.Builder{}
	q.Stderr = stderr
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Process.Signal(syscall.SIGCONT); q.Process.Kill(); q.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 500 {
			t.Fatalf("QEMU's stub never listened: %v\n%s", err, stderr)
		}
		time.Sleep(10 * time.Millisecond) // QEMU is starting; polling its socket
	}
	return q, addr, stderr
}

// qemuDAP is a session on the mb guest over QEMU: launched by vmdap
// (q = nil: qpid from /proc) or attached to a QEMU the test started.
type qemuDAP struct {
	t     *testing.T
	c     *daptest.Client
	vmdap *exec.Cmd
	q     *exec.Cmd // attached: the QEMU the test started
	qpid  int
	addr  string // QEMU's stub
	g     *vmmtest.Guest
}

func newQemuDAP(t *testing.T, how string, cfg map[string]any) *qemuDAP {
	t.Helper()
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	d := &qemuDAP{t: t, g: g}
	d.c, d.vmdap = stdioVmdap(t)
	d.c.Timeout = 2 * time.Minute // a QEMU starting on a loaded machine (QEMU-KVM here emulates ring 0)
	if _, err := d.c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if how == "attach" {
		d.q, d.addr, _ = startStoppedQEMU(t, g)
		d.qpid = d.q.Process.Pid
		args := map[string]any{"gdbServer": d.addr, "program": g.Path}
		for k, v := range cfg {
			args[k] = v
		}
		if _, err := d.c.Request("attach", args); err != nil {
			t.Fatal(err)
		}
	} else {
		vmmtest.RequireQEMU(t)
		args := map[string]any{"program": g.Path, "hypervisor": "qemu", "memory": 64, "stopOnEntry": true}
		for k, v := range cfg {
			args[k] = v
		}
		if err := d.c.Launch(args); err != nil {
			t.Fatal(err)
		}
		d.qpid, d.addr = qemuChild(t, d.vmdap)
	}
	d.c.WaitEvent("initialized")
	d.must(d.c.ConfigurationDone())
	if ev, err := d.c.Stopped(); err != nil || ev.Body.Reason != "entry" {
		t.Fatalf("entry: %+v %v", ev, err)
	}
	return d
}

func (d *qemuDAP) must(err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
}

// toMain64 runs to main64 with the spin loop armed (the guest then runs
// for ever).
func (d *qemuDAP) toMain64(spin bool) {
	d.t.Helper()
	_, err := d.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "main64"}}})
	d.must(err)
	d.must(d.c.Continue(1))
	if ev, err := d.c.Stopped(); err != nil || ev.Body.Reason != "function breakpoint" {
		d.t.Fatalf("to main64: %+v %v", ev, err)
	}
	if spin {
		d.write("spin", 1)
	}
}

func (d *qemuDAP) write(sym string, v uint64) {
	d.t.Helper()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	n := 8
	if sym == "spin" {
		n = 4
	}
	_, err := d.c.Request("writeMemory", map[string]any{"memoryReference": fmt.Sprintf("%#x", vmmtest.Sym(d.t, d.g, sym)),
		"data": base64.StdEncoding.EncodeToString(b[:n])})
	d.must(err)
}

func (d *qemuDAP) eval(expr string) string {
	d.t.Helper()
	r, err := d.c.Evaluate(0, expr)
	d.must(err)
	return r.Body.Result
}

func (d *qemuDAP) pc() uint64 {
	d.t.Helper()
	st, err := d.c.StackTrace(1)
	d.must(err)
	pc, err := strconv.ParseUint(strings.TrimPrefix(st.Body.StackFrames[0].InstructionPointerReference, "0x"), 16, 64)
	d.must(err)
	return pc
}

func (d *qemuDAP) setPC(sym string) {
	d.t.Helper()
	_, err := d.c.Request("setExpression", map[string]any{"expression": "$rip", "value": fmt.Sprintf("%#x", vmmtest.Sym(d.t, d.g, sym))})
	d.must(err)
	if got := d.pc(); got != vmmtest.Sym(d.t, d.g, sym) {
		d.t.Fatalf("rip %#x after setting it to %s", got, sym)
	}
}

// ended checks the end of a session whose QEMU went away: an important
// output with the reason, one exited (with code), one terminated, and
// requests that fail saying why.
func (d *qemuDAP) ended(wantCode int, wantWhy ...string) {
	d.t.Helper()
	m, err := d.c.WaitEvent("exited")
	d.must(err)
	if code := m.(*dap.ExitedEvent).Body.ExitCode; code != wantCode {
		d.t.Errorf("exit code %d, want %d", code, wantCode)
	}
	if _, err := d.c.WaitEvent("terminated"); err != nil {
		d.t.Fatal(err)
	}
	out := d.c.Output("important")
	for _, w := range wantWhy {
		if !strings.Contains(out, w) {
			d.t.Errorf("important output %q does not say %q", out, w)
		}
	}
	if _, err := d.c.StackTrace(1); err == nil || !strings.Contains(err.Error(), "exited") {
		d.t.Errorf("stackTrace after the end: %v", err)
	}
	if _, err := d.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "main64"}}}); err == nil {
		d.t.Error("setFunctionBreakpoints succeeded after the end")
	}
	if err := d.c.Continue(1); err == nil || !strings.Contains(err.Error(), wantWhy[0]) {
		d.t.Errorf("continue after the end: %v", err)
	}
	if err := d.c.Step("next", 1, ""); err == nil || !strings.Contains(err.Error(), wantWhy[0]) {
		d.t.Errorf("next after the end: %v", err)
	}
	d.must(d.c.Disconnect())
	for _, e := range d.c.Events() {
		if n := e.(dap.EventMessage).GetEvent().Event; n == "exited" || n == "terminated" {
			d.t.Errorf("a second %s event", n)
		}
	}
}

// TestQEMUKilledOverDAP: QEMU killed (SIGKILL) while the guest is stopped
// is noticed at once, without a request; while it runs, the run ends with
// it. The user sees why, the exit status is QEMU's when vmdap launched it
// (-1 for a signal) and -1 when attached (unknown, not 0), and requests
// fail saying so.
func TestQEMUKilledOverDAP(t *testing.T) {
	for _, how := range []string{"launch", "attach"} {
		for _, running := range []bool{false, true} {
			name := how + "/stopped"
			if running {
				name = how + "/running"
			}
			t.Run(name, func(t *testing.T) {
				d := newQemuDAP(t, how, nil)
				d.toMain64(running)
				if running {
					d.must(d.c.Continue(1))
				} else if _, err := d.c.StackTrace(1); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Kill(d.qpid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				why := []string{"closed the connection"}
				if how == "launch" {
					why = []string{"QEMU was killed by signal 9"}
				}
				if !running {
					why = append(why, "while the guest was stopped")
				}
				d.ended(-1, why...)
			})
		}
	}
}

// TestQEMUPauseUnansweredOverDAP: a QEMU that never answers the pause
// (frozen with SIGSTOP, as QEMU once stayed silent after a Linux panic):
// vmdap gives up after its interrupt timeout, says so and ends the
// session.
func TestQEMUPauseUnansweredOverDAP(t *testing.T) {
	d := newQemuDAP(t, "attach", nil)
	d.toMain64(true)
	d.must(d.c.Continue(1))
	// Freeze QEMU only once the guest runs: frozen before vmdap's resume
	// packets are answered, it would end the session on their reply
	// timeout instead (said as such), not on the ^C's.
	waitCPU(t, d.qpid, 200*time.Millisecond)
	d.must(syscall.Kill(d.qpid, syscall.SIGSTOP))
	if _, err := d.c.Request("pause", map[string]any{"threadId": 1}); err != nil {
		t.Fatal(err)
	}
	d.ended(-1, "did not answer the interrupt (^C)")
}

// waitCPU waits until process pid has used d more CPU time than it had
// (a QEMU running its guest's spin loop uses it at once).
func waitCPU(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	used := func() time.Duration {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The fields after the command's closing parenthesis: utime and
		// stime are the 12th and 13th of them, in clock ticks (100/s).
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		u, _ := strconv.ParseUint(f[11], 10, 64)
		s, _ := strconv.ParseUint(f[12], 10, 64)
		return time.Duration(u+s) * 10 * time.Millisecond
	}
	start := used()
	for deadline := time.Now().Add(time.Minute); used()-start < d; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d used less than %s of CPU in a minute: the guest does not run", pid, d)
		}
	}
}

// TestQEMUStartFailureOverDAP: a QEMU that cannot start says why in the
// launch error: here the image lock another QEMU holds.
func TestQEMUStartFailureOverDAP(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	drive := func(id string) string { return "file=" + img + ",format=raw,if=ide,id=" + id }
	startStoppedQEMU(t, g, "-drive", drive("d0")) // holds the image's write lock
	c := stdioClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	err := c.Launch(map[string]any{"program": g.Path, "hypervisor": "qemu", "memory": 64, "qemuArgs": []string{"-drive", drive("d1")}})
	if err == nil || !strings.Contains(err.Error(), `Failed to get "write" lock`) || !strings.Contains(err.Error(), "QEMU exited with status 1") {
		t.Fatalf("launch with a locked image: %v", err)
	}
	t.Log(err)
}

// TestQEMUStepOverHaltOverDAP: a GDB stub holds interrupts off while it
// steps, so the session steps a hlt by running to the instruction after
// it: the PIT's interrupt wakes it and its handler runs (the tick count
// grows). A hlt with interrupts off then waits for ever, and a pause ends
// the step.
func TestQEMUStepOverHaltOverDAP(t *testing.T) {
	for _, accel := range []string{"tcg", "kvm"} {
		t.Run(accel, func(t *testing.T) {
			if accel == "kvm" {
				vmmtest.RequireKVM(t)
			}
			d := newQemuDAP(t, "launch", map[string]any{"accel": accel})
			d.toMain64(false)
			_, err := d.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []any{}})
			d.must(err)
			d.write("pit_goal", 1<<40) // wait for ever (QEMU-KVM's PIT catches up on ticks missed while stopped)
			d.setPC("pit_wait")
			hlt := vmmtest.Sym(t, d.g, "pit_hlt")
			ibp := map[string]any{"breakpoints": []map[string]any{{"instructionReference": fmt.Sprintf("%#x", hlt)}}}
			for i := 0; i < 2; i++ {
				_, err = d.c.Request("setInstructionBreakpoints", ibp)
				d.must(err)
				d.must(d.c.Continue(1))
				if ev, err := d.c.Stopped(); err != nil || ev.Body.Reason != "instruction breakpoint" {
					t.Fatalf("to the hlt: %+v %v", ev, err)
				}
				_, err = d.c.Request("setInstructionBreakpoints", map[string]any{"breakpoints": []any{}})
				d.must(err)
				before := d.eval("pit_ticks")
				d.must(d.c.Step("stepIn", 1, "instruction"))
				if ev, err := d.c.Stopped(); err != nil || ev.Body.Reason != "step" {
					t.Fatalf("step of the hlt: %+v %v", ev, err)
				}
				after := d.eval("pit_ticks")
				if pc := d.pc(); pc != hlt+1 || after == before {
					t.Fatalf("step of the hlt: at %#x (want %#x), ticks %s (were %s)", pc, hlt+1, after, before)
				}
			}
			// cli; hlt: nothing ends the step but a pause.
			d.setPC("park")
			d.must(d.c.Step("stepIn", 1, "instruction"))
			if ev, err := d.c.Stopped(); err != nil || ev.Body.Reason != "step" || d.pc() != vmmtest.Sym(t, d.g, "park")+1 {
				t.Fatalf("step of the cli: %+v %v", ev, err)
			}
			d.must(d.c.Step("stepIn", 1, "instruction"))
			_, err = d.c.Request("pause", map[string]any{"threadId": 1})
			d.must(err)
			if ev, err := d.c.Stopped(); err != nil || ev.Body.Reason != "pause" {
				t.Fatalf("the step of hlt with interrupts off: %+v %v, want it to wait until the pause", ev, err)
			}
			d.must(d.c.Disconnect())
		})
	}
}

// stubState attaches to a QEMU's stub from outside vmdap and returns the
// guest's pc and spin-loop counter (attaching stops the guest; the
// target's Close detaches, and QEMU resumes it).
func stubState(t *testing.T, addr string, g *vmmtest.Guest) (pc, spins uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tg, err := gdbremote.Attach(ctx, gdbremote.Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	r, err := tg.Regs(0)
	if err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	if _, err := tg.ReadMemory(0, b[:], vmmtest.Sym(t, g, "spins")); err != nil {
		t.Fatal(err)
	}
	return r.RIP, binary.LittleEndian.Uint64(b[:])
}

// waitExit waits for a QEMU the test started to exit (bounded: one that
// never does fails the test).
func waitExit(t *testing.T, q *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- q.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("QEMU did not exit")
		return nil
	}
}

// pauseSpinning runs the guest spinning at main64 and pauses it, and
// returns where it stopped and its spin count.
func (d *qemuDAP) pauseSpinning() (pc, spins uint64) {
	d.t.Helper()
	d.must(d.c.Continue(1))
	_, err := d.c.Request("pause", map[string]any{"threadId": 1})
	d.must(err)
	if _, err := d.c.Stopped(); err != nil {
		d.t.Fatal(err)
	}
	spins, err = strconv.ParseUint(strings.Fields(d.eval("spins"))[0], 0, 64)
	d.must(err)
	return d.pc(), spins
}

// stillAt checks, through the stub, that the guest let go suspended has
// not run since the pause that left it at pc with its spin count.
func (d *qemuDAP) stillAt(pc0, spins0 uint64) {
	d.t.Helper()
	pc, spins := stubState(d.t, d.addr, d.g)
	if pc != pc0 || spins != spins0 {
		d.t.Fatalf("after suspendDebuggee: pc %#x spins %d, were %#x %d: the guest ran", pc, spins, pc0, spins0)
	}
}

func (d *qemuDAP) disconnect(args map[string]any) {
	d.t.Helper()
	if _, err := d.c.Request("disconnect", args); err != nil {
		d.t.Fatal(err)
	}
}

// TestDisconnectHonoursTerminateDebuggee: after attach, a disconnect lets
// the guest run on without vmdap's breakpoints (it runs to its exit), or
// ends QEMU (terminateDebuggee: true), or leaves it stopped
// (suspendDebuggee: true); after a launch, terminateDebuggee: false leaves
// QEMU and its guest running, or stopped with suspendDebuggee.
func TestDisconnectHonoursTerminateDebuggee(t *testing.T) {
	t.Run("attach/default", func(t *testing.T) {
		d := newQemuDAP(t, "attach", nil)
		d.toMain64(false) // main64's breakpoint stays set
		d.disconnect(nil)
		// Detached with the breakpoint out: the guest runs to its exit.
		if err := waitExit(t, d.q); err == nil || d.q.ProcessState.ExitCode() != 0x21 {
			t.Fatalf("QEMU after the detach: %v, want the guest's exit 0x21", err)
		}
	})
	t.Run("attach/terminate", func(t *testing.T) {
		d := newQemuDAP(t, "attach", nil)
		d.toMain64(true)
		d.disconnect(map[string]any{"terminateDebuggee": true})
		if err := waitExit(t, d.q); err != nil {
			t.Fatalf("QEMU after terminateDebuggee: %v, want it ended by vmdap", err)
		}
	})
	t.Run("attach/suspend", func(t *testing.T) {
		d := newQemuDAP(t, "attach", nil)
		d.toMain64(true)
		pc0, spins0 := d.pauseSpinning()
		d.disconnect(map[string]any{"suspendDebuggee": true})
		d.stillAt(pc0, spins0)
	})
	t.Run("launch/terminate=false", func(t *testing.T) {
		d := newQemuDAP(t, "launch", nil)
		d.toMain64(true)
		main64 := d.pc()
		// vmdap waits for the QEMU it let go: end it first.
		t.Cleanup(func() { syscall.Kill(d.qpid, syscall.SIGKILL) })
		d.disconnect(map[string]any{"terminateDebuggee": false})
		// An editor stops its adapter at the end of the session.
		d.vmdap.Process.Signal(syscall.SIGTERM)
		if err := syscall.Kill(d.qpid, 0); err != nil {
			t.Fatalf("QEMU after terminateDebuggee: false: %v", err)
		}
		// vmdap left it at main64, resumed: it moves on (spinning, or on
		// its way there). A debugger that looks at once may catch it before
		// QEMU scheduled its vCPU again: look a few times (each look
		// detaches, and the guest runs on).
		deadline := time.Now().Add(30 * time.Second)
		for {
			pc, spins := stubState(t, d.addr, d.g)
			if pc != main64 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after terminateDebuggee: false: pc %#x spins %d for 30 s: the guest did not run on", pc, spins)
			}
		}
	})
	t.Run("launch/terminate=false,suspend", func(t *testing.T) {
		d := newQemuDAP(t, "launch", nil)
		d.toMain64(true)
		pc0, spins0 := d.pauseSpinning()
		t.Cleanup(func() { syscall.Kill(d.qpid, syscall.SIGKILL) })
		d.disconnect(map[string]any{"terminateDebuggee": false, "suspendDebuggee": true})
		d.vmdap.Process.Signal(syscall.SIGTERM)
		if err := syscall.Kill(d.qpid, 0); err != nil {
			t.Fatalf("QEMU after terminateDebuggee: false: %v", err)
		}
		d.stillAt(pc0, spins0)
	})
}

// packetProxy forwards a GDB connection and counts the client's packets
// by name.
type packetProxy struct {
	addr string
	mu   sync.Mutex // guards sent
	sent map[string]int
}

func newPacketProxy(t *testing.T, upstream string) *packetProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &packetProxy{addr: l.Addr().String(), sent: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		l.Close()
		if err != nil {
			return
		}
		defer c.Close()
		up, err := net.Dial("tcp", upstream)
		if err != nil {
			return
		}
		defer up.Close()
		go io.Copy(c, up)
		r := bufio.NewReader(c)
		for {
			b, err := r.ReadByte()
			if err != nil {
				return
			}
			out := []byte{b}
			if b == '$' {
				pkt, err := r.ReadBytes('#')
				if err != nil {
					return
				}
				cs := make([]byte, 2)
				io.ReadFull(r, cs)
				p.mu.Lock()
				p.sent[rsp.Name(string(pkt[:len(pkt)-1]))]++
				p.mu.Unlock()
				out = append(append(out, pkt...), cs...)
			}
			if _, err := up.Write(out); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return p
}

func (p *packetProxy) take() (map[string]int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, n := p.sent, 0
	for _, v := range m {
		n += v
	}
	p.sent = map[string]int{}
	return m, n
}

// TestDAPStepPackets logs what a DAP step costs end to end over QEMU's
// stub: the step request, and the stackTrace/scopes/variables a client
// asks for at the stop, as VS Code does after each one.
func TestDAPStepPackets(t *testing.T) {
	g := vmmtest.BuildGuest(t, "mb", vmmtest.ELF32)
	_, addr, _ := startStoppedQEMU(t, g)
	px := newPacketProxy(t, addr)
	c := stdioClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request("attach", map[string]any{"gdbServer": px.addr, "program": g.Path}); err != nil {
		t.Fatal(err)
	}
	d := &qemuDAP{t: t, c: c, g: g}
	c.WaitEvent("initialized")
	d.must(c.ConfigurationDone())
	if _, err := c.Stopped(); err != nil {
		t.Fatal(err)
	}
	d.toMain64(true)
	d.pc()
	const n = 20
	var step, stop int
	for i := 0; i < n; i++ {
		px.take()
		d.must(c.Step("stepIn", 1, "instruction"))
		if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "step" {
			t.Fatalf("step: %+v %v", ev, err)
		}
		m, k := px.take()
		step += k
		if i == n-1 {
			t.Logf("the last step: %v", m)
		}
		st, err := c.StackTrace(1)
		d.must(err)
		sc, err := c.Scopes(st.Body.StackFrames[0].Id)
		d.must(err)
		for _, s := range sc.Body.Scopes {
			if !s.Expensive {
				c.Variables(s.VariablesReference)
			}
		}
		m, k = px.take()
		stop += k
		if i == n-1 {
			t.Logf("its stackTrace, scopes and variables: %v", m)
		}
	}
	t.Logf("per DAP step: %.1f packets for the step, %.1f for the views at the stop", float64(step)/n, float64(stop)/n)
}
