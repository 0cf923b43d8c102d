package gdbremote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"vmdap/vmm"
)

// QEMUConfig describes a guest for vmdap to run under QEMU.
type QEMUConfig struct {
	Path      string // qemu-system-x86_64 (default: from PATH)
	Program   string // the kernel (Multiboot ELF32, an ELF with a PVH note, or a Linux bzImage)
	Initrd    string // -initrd: an initial RAM disk (Linux) or module
	MemoryMiB int
	VCPUs     int
	Cmdline   string
	Accel     string   // "tcg" (default) or "kvm"
	ExtraArgs []string // appended to QEMU's argv as given
	Serial    io.Writer
	Log       logrus.FieldLogger
	// Entry, when not 0, is where the guest is run to before the target is
	// handed over (QEMU starts at the reset vector).
	Entry uint64
	// NoSWBreakpoints, NoStubWatchpoints, InterruptTimeout: see Config.
	NoSWBreakpoints, NoStubWatchpoints bool
	InterruptTimeout                   time.Duration
}

// QEMUArgs returns the argv vmdap gives QEMU (without the binary).
func QEMUArgs(c QEMUConfig, gdbAddr string) []string {
	accel := c.Accel
	if accel == "" {
		accel = "tcg"
	}
	args := []string{"-accel", accel, "-machine", "pc", "-m", strconv.Itoa(c.MemoryMiB), "-smp", strconv.Itoa(c.VCPUs),
		"-display", "none", "-no-reboot", "-monitor", "none", "-serial", "stdio",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", c.Program, "-S", "-gdb", "tcp:" + gdbAddr}
	if c.Initrd != "" {
		args = append(args, "-initrd", c.Initrd)
	}
	if c.Cmdline != "" {
		args = append(args, "-append", c.Cmdline)
	}
	return append(args, c.ExtraArgs...)
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// stderrTail logs QEMU's stderr line by line and keeps its last lines
// for the errors a user sees ("Failed to get "write" lock", "KVM internal
// error").
type stderrTail struct {
	log logrus.FieldLogger

	mu    sync.Mutex // guards lines and part
	lines []string
	part  []byte
}

const (
	tailLines   = 8
	tailLineLen = 400
)

func (w *stderrTail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.add(string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	if len(w.part) > tailLineLen {
		w.add(string(w.part))
		w.part = w.part[:0]
	}
	return len(p), nil
}

// add keeps one line (w.mu held).
func (w *stderrTail) add(l string) {
	l = strings.TrimSpace(l)
	if l == "" {
		return
	}
	w.log.Info("qemu: " + l)
	if len(l) > tailLineLen {
		l = l[:tailLineLen] + "…"
	}
	w.lines = append(w.lines, l)
	if len(w.lines) > tailLines {
		w.lines = w.lines[len(w.lines)-tailLines:]
	}
}

// String returns the kept lines, joined.
func (w *stderrTail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := w.lines
	if len(w.part) > 0 {
		lines = append(lines[:len(lines):len(lines)], strings.TrimSpace(string(w.part)))
	}
	return strings.Join(lines, "; ")
}

// LaunchQEMU starts QEMU stopped (-S) with its GDB stub on a free loopback
// port, attaches, and runs the guest to its entry point. Closing the
// target stops QEMU and reaps it. When QEMU fails to start, the error
// carries what it printed on stderr.
func LaunchQEMU(ctx context.Context, c QEMUConfig) (*Target, error) {
	if c.Path == "" {
		p, err := exec.LookPath("qemu-system-x86_64")
		if err != nil {
			return nil, fmt.Errorf("qemu-system-x86_64 not found on PATH (set qemuPath): %w", err)
		}
		c.Path = p
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = 128
	}
	if c.VCPUs == 0 {
		c.VCPUs = 1
	}
	log := c.Log
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Path, QEMUArgs(c, addr)...)
	cmd.Stdout = c.Serial
	if cmd.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	tail := &stderrTail{log: log.WithField("layer", "qemu")}
	cmd.Stderr = tail
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting QEMU: %w", err)
	}
	var (
		once     sync.Once
		waitDone = make(chan struct{})
		exit     exitInfo
	)
	go func() {
		err := cmd.Wait() // returns once stderr is read to its end
		if st := cmd.ProcessState; st != nil {
			exit.status = st.ExitCode()
			if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				exit.signal = fmt.Sprintf("%d (%v)", int(ws.Signal()), ws.Signal())
			}
		} else if err != nil {
			exit.status = -1
		}
		exit.ended = true
		exit.stderr = tail.String()
		close(waitDone)
	}()
	kill := func() {
		once.Do(func() {
			if cmd.Process != nil {
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-waitDone:
				case <-time.After(3 * time.Second):
					cmd.Process.Kill()
					<-waitDone
				}
			}
		})
	}
	hooks := &launched{
		exit: func() exitInfo {
			select {
			case <-waitDone:
				return exit
			case <-time.After(5 * time.Second):
				return exitInfo{stderr: tail.String()}
			}
		},
		stop:    kill,
		release: func() { release(cmd.Process.Pid, waitDone) },
	}
	var t *Target
	deadline := time.Now().Add(15 * time.Second)
	for {
		t, err = Attach(ctx, Config{Addr: addr, Stub: "qemu", Log: log, Host: "QEMU (" + QEMUAccel(c) + ")",
			NoSWBreakpoints: c.NoSWBreakpoints, NoStubWatchpoints: c.NoStubWatchpoints, InterruptTimeout: c.InterruptTimeout,
			launched: hooks})
		if err == nil {
			break
		}
		select {
		case <-waitDone:
			return nil, qemuFailed(exit)
		default:
		}
		if time.Now().After(deadline) {
			kill()
			msg := fmt.Sprintf("QEMU's GDB stub did not answer: %v", err)
			if s := tail.String(); s != "" {
				msg += "; QEMU said: " + s
			}
			return nil, errors.New(msg)
		}
		select {
		case <-waitDone: // QEMU gave up: say why
			return nil, qemuFailed(exit)
		case <-time.After(50 * time.Millisecond): // QEMU is starting; polling its socket
		}
	}
	if c.Entry != 0 {
		if err := t.runTo(ctx, c.Entry); err != nil {
			t.Close()
			return nil, fmt.Errorf("running the guest to its entry %#x: %w", c.Entry, err)
		}
	}
	return t, nil
}

// qemuFailed is the error of a QEMU that exited before its stub answered.
func qemuFailed(e exitInfo) error {
	how := fmt.Sprintf("with status %d", e.status)
	if e.signal != "" {
		how = "killed by signal " + e.signal
	}
	if e.stderr == "" {
		return fmt.Errorf("QEMU exited %s before its GDB stub answered (it printed nothing on stderr)", how)
	}
	return fmt.Errorf("QEMU exited %s before its GDB stub answered: %s", how, e.stderr)
}

// QEMUs that a detach let go (terminateDebuggee: false): they run on, and
// they are still vmdap's children, which die with it (Pdeathsig, so that
// vmdap killed or crashed leaves no QEMU behind). A vmdap that ends its
// session waits for them (WaitReleased).
var released struct {
	mu   sync.Mutex // guards pids and gone
	pids map[int]bool
	gone chan struct{} // closed and renewed when one exits
}

func release(pid int, exited <-chan struct{}) {
	released.mu.Lock()
	if released.pids == nil {
		released.pids = map[int]bool{}
		released.gone = make(chan struct{})
	}
	released.pids[pid] = true
	released.mu.Unlock()
	go func() {
		<-exited
		released.mu.Lock()
		delete(released.pids, pid)
		close(released.gone)
		released.gone = make(chan struct{})
		released.mu.Unlock()
	}()
}

// Released returns the pids of the QEMUs let go that still run.
func Released() []int {
	released.mu.Lock()
	defer released.mu.Unlock()
	var out []int
	for p := range released.pids {
		out = append(out, p)
	}
	return out
}

// WaitReleased waits until every QEMU let go has exited, or ctx ends.
func WaitReleased(ctx context.Context) error {
	for {
		released.mu.Lock()
		n, gone := len(released.pids), released.gone
		released.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-gone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// QEMUAccel names the accelerator.
func QEMUAccel(c QEMUConfig) string {
	if c.Accel == "" {
		return "tcg"
	}
	return c.Accel
}

// runTo runs from the reset vector to addr with a temporary breakpoint.
func (t *Target) runTo(ctx context.Context, addr uint64) error {
	hw := t.z[1]
	var err error
	if hw {
		err = t.InsertHWBreakpoint(addr)
	} else {
		err = t.InsertBreakpoint(addr)
	}
	if err != nil {
		return err
	}
	if err := t.Continue(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := t.Wait(ctx)
	if err != nil {
		return err
	}
	if hw {
		t.RemoveHWBreakpoint(addr)
	} else {
		t.RemoveBreakpoint(addr)
	}
	if s.PC != addr {
		return fmt.Errorf("the guest stopped at %#x (%s) instead", s.PC, s.Reason)
	}
	return nil
}

var _ vmm.Target = (*Target)(nil)
