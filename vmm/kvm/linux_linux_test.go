//go:build linux && amd64

package kvm

import (
	"context"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vmdap/vmm"
	"vmdap/vmm/kvm/boot"
	"vmdap/vmm/vmmtest"
)

// Debian's cloud kernel booted on vmdap's own VMM, to its /init and to the
// power-off that /init ends with. Ring-0 code is emulated on PVM hosts
// (a few million instructions a second), so a boot takes minutes there;
// each test logs its wall and CPU time.

// testLinuxCmdline is the cheapest command line that boots to /init: the
// console on COM1, no KASLR (symbols stay where the vmlinux says), no
// CPU-bug mitigations (their verw cannot run at ring 0 on PVM), no
// zeroing of every allocation, no PCI probing, no crypto self-tests, no
// lockup detectors, a TSC taken as reliable, and panic=-1 so that a panic
// ends the run at once. Two initcalls are skipped, each minutes of ring-0
// work where that is emulated (measured with initcall_debug and a RIP
// sampler on PVM): trace_eval_init rewrites the print format of every
// trace event for every enum the kernel exports, and jent_mod_init (the
// jitter entropy source) hashes timing samples with SHA-3 until its
// health tests pass.
const testLinuxCmdline = "console=ttyS0 nokaslr quiet panic=-1 mitigations=off init_on_alloc=0 pci=off cryptomgr.notests nowatchdog tsc=reliable initcall_blacklist=trace_eval_init,jent_mod_init"

// linuxBootTimeout bounds one boot to the power-off: generous, since the
// machine's two cores are shared and ring 0 is emulated.
const linuxBootTimeout = 25 * time.Minute

// linuxGuest is a Linux kernel on a Machine with the vmmtest initramfs.
type linuxGuest struct {
	t      *testing.T
	m      *Machine
	serial *syncBuffer
	vmlin  string // the vmlinux, for symbols
	start  time.Time
	cpu0   time.Duration
}

// startLinux creates the machine stopped at the kernel's entry: the
// bzImage through the Linux boot protocol (proto linux) or the vmlinux
// through PVH, with vcpus vCPUs and KVM's irqchip.
func startLinux(t *testing.T, proto boot.Protocol, vcpus int) *linuxGuest {
	t.Helper()
	vmmtest.RequireKVM(t)
	l := vmmtest.RequireLinux(t)
	initrd := vmmtest.Initramfs(t, "")
	path := l.Vmlinux
	if proto == boot.ProtoLinux {
		path = l.Vmlinuz
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := testLinuxCmdline
	if vcpus == 1 {
		cmd += " nosmp"
	}
	out := &syncBuffer{}
	var serial io.Writer = out
	if dir := os.Getenv("VMDAP_LINUX_CONSOLE"); dir != "" {
		// Follow a slow boot as it happens: the console also goes to
		// $VMDAP_LINUX_CONSOLE/<test>.log.
		f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		serial = io.MultiWriter(out, f)
	}
	g := &linuxGuest{t: t, serial: out, vmlin: l.Vmlinux, start: time.Now(), cpu0: cpuTime()}
	g.m, err = New(Config{Image: img, Protocol: proto, Memory: 256 << 20, VCPUs: vcpus, Cmdline: cmd,
		Initrd: initrd, Serial: serial, Log: testLogger(), IRQChip: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.m.Close() })
	return g
}

// wait waits for the next stop of a boot.
func (g *linuxGuest) wait() vmm.Stop {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), linuxBootTimeout)
	defer cancel()
	s, err := g.m.Wait(ctx)
	if err != nil {
		g.t.Fatalf("%v after %s; console:\n%s", err, g.elapsed(), g.serial.String())
	}
	return s
}

func (g *linuxGuest) elapsed() string {
	return time.Since(g.start).Round(time.Second).String() + " (CPU " + (cpuTime() - g.cpu0).Round(time.Second).String() + ")"
}

// cpuTime is this process's user and system CPU time: KVM's emulation of
// the guest counts as system time of the vCPU threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var (
	vmlinuxSymsOnce sync.Once
	vmlinuxSyms     map[string]uint64
	vmlinuxSymsErr  error
)

// linuxSym returns a function's address from the vmlinux's ELF symbol
// table (read with debug/elf: no DWARF needed).
func (g *linuxGuest) linuxSym(name string) uint64 {
	g.t.Helper()
	vmlinuxSymsOnce.Do(func() {
		f, err := elf.Open(g.vmlin)
		if err != nil {
			vmlinuxSymsErr = err
			return
		}
		defer f.Close()
		syms, err := f.Symbols()
		if err != nil {
			vmlinuxSymsErr = err
			return
		}
		vmlinuxSyms = map[string]uint64{}
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC {
				vmlinuxSyms[s.Name] = s.Value
			}
		}
	})
	if vmlinuxSymsErr != nil {
		g.t.Fatal(vmlinuxSymsErr)
	}
	a, ok := vmlinuxSyms[name]
	if !ok {
		g.t.Fatalf("no function %s in %s", name, g.vmlin)
	}
	return a
}

// bootLinuxToInit boots the kernel until it executes /init: a debug-
// register breakpoint on kernel_execve, taken when its file name is
// "/init" (kernel helpers it starts earlier go on). The machine is left
// stopped there, the breakpoint removed; a test can set its own
// breakpoints (ksys_write is /init's first write: the marker) and
// continue.
func bootLinuxToInit(t *testing.T, proto boot.Protocol, vcpus int) *linuxGuest {
	t.Helper()
	g := startLinux(t, proto, vcpus)
	execve := g.linuxSym("kernel_execve")
	if err := g.m.InsertHWBreakpoint(execve); err != nil {
		t.Fatal(err)
	}
	for {
		if err := g.m.Continue(); err != nil {
			t.Fatal(err)
		}
		s := g.wait()
		if s.Reason != vmm.ReasonHWBreakpoint || s.PC != execve {
			t.Fatalf("boot stopped: %v after %s; console:\n%s", s, g.elapsed(), g.serial.String())
		}
		r, err := g.m.Regs(s.VCPU)
		if err != nil {
			t.Fatal(err)
		}
		name := make([]byte, 16)
		n, _ := g.m.ReadMemory(s.VCPU, name, r.RDI)
		file := string(name[:n])
		if i := strings.IndexByte(file, 0); i >= 0 {
			file = file[:i]
		}
		t.Logf("kernel_execve(%q) on vCPU %d after %s", file, s.VCPU, g.elapsed())
		if file == "/init" {
			break
		}
	}
	if err := g.m.RemoveHWBreakpoint(execve); err != nil {
		t.Fatal(err)
	}
	return g
}

// runToPowerOff continues the guest to its end and checks that /init ran
// with every vCPU online and powered the machine off cleanly.
func (g *linuxGuest) runToPowerOff(vcpus int) {
	g.t.Helper()
	if err := g.m.Continue(); err != nil {
		g.t.Fatal(err)
	}
	s := g.wait()
	out := g.serial.String()
	if s.Reason != vmm.ReasonExited || s.ExitCode != 0 || !strings.Contains(s.Detail, "ACPI S5") {
		g.t.Fatalf("end: %v after %s, want a power-off; console:\n%s", s, g.elapsed(), out)
	}
	want := vmmtest.InitMarker + " cpus=" + string(rune('0'+vcpus))
	if !strings.Contains(out, want) {
		g.t.Fatalf("console lacks %q:\n%s", want, out)
	}
	i := strings.Index(out, vmmtest.InitMarker)
	g.t.Logf("booted to /init and powered off in %s: %s", g.elapsed(), strings.SplitN(out[i:], "\n", 2)[0])
}

func testLinuxBoot(t *testing.T, proto boot.Protocol, vcpus int) {
	if testing.Short() {
		t.Skip("skipping: a Linux boot takes minutes where ring 0 is emulated")
	}
	g := bootLinuxToInit(t, proto, vcpus)
	g.runToPowerOff(vcpus)
}

func TestLinuxPVH1(t *testing.T)     { t.Parallel(); testLinuxBoot(t, boot.ProtoPVH, 1) }
func TestLinuxPVH2(t *testing.T)     { t.Parallel(); testLinuxBoot(t, boot.ProtoPVH, 2) }
func TestLinuxBzImage1(t *testing.T) { t.Parallel(); testLinuxBoot(t, boot.ProtoLinux, 1) }
func TestLinuxBzImage2(t *testing.T) { t.Parallel(); testLinuxBoot(t, boot.ProtoLinux, 2) }
