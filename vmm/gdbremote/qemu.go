package gdbremote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
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
	// NoSWBreakpoints, NoStubWatchpoints: see Config.
	NoSWBreakpoints, NoStubWatchpoints bool
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

type logWriter struct{ log logrus.FieldLogger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info("qemu: " + string(p))
	return len(p), nil
}

// LaunchQEMU starts QEMU stopped (-S) with its GDB stub on a free loopback
// port, attaches, and runs the guest to its entry point. Closing the
// target stops QEMU and reaps it.
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
	cmd.Stderr = logWriter{log.WithField("layer", "qemu")}
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting QEMU: %w", err)
	}
	var (
		once     sync.Once
		waitDone = make(chan struct{})
		status   int
	)
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			status = ee.ExitCode()
		}
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
	var t *Target
	deadline := time.Now().Add(15 * time.Second)
	for {
		t, err = Attach(ctx, Config{Addr: addr, Stub: "qemu", Log: log, Host: "QEMU (" + QEMUAccel(c) + ")", NoSWBreakpoints: c.NoSWBreakpoints, NoStubWatchpoints: c.NoStubWatchpoints})
		if err == nil {
			break
		}
		select {
		case <-waitDone:
			return nil, fmt.Errorf("QEMU exited with status %d before its GDB stub answered (see the log for its message)", status)
		default:
		}
		if time.Now().After(deadline) {
			kill()
			return nil, fmt.Errorf("QEMU's GDB stub did not answer: %w", err)
		}
		time.Sleep(50 * time.Millisecond) // QEMU is starting; polling its socket
	}
	t.onExit = func() (int, bool) {
		select {
		case <-waitDone:
			return status, true
		case <-time.After(5 * time.Second):
			return 0, false
		}
	}
	t.onClose = kill
	if c.Entry != 0 {
		if err := t.runTo(ctx, c.Entry); err != nil {
			t.Close()
			return nil, fmt.Errorf("running the guest to its entry %#x: %w", c.Entry, err)
		}
	}
	return t, nil
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
