//go:build linux && amd64

package kvm

import (
	"context"
	"debug/elf"
	"encoding/binary"
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
	t          *testing.T
	m          *Machine
	serial     *syncBuffer
	vmlin      string // the vmlinux, for symbols
	cmdline    string // as given (vmdap may add to it)
	initrdSize int
	start      time.Time
	cpu0       time.Duration
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
	if a := os.Getenv("VMDAP_LINUX_ARGS"); a != "" {
		cmd += " " + a // e.g. ignore_loglevel, to follow a boot on the console
	}
	out := &syncBuffer{}
	var serial io.Writer = out
	switch dir := os.Getenv("VMDAP_LINUX_CONSOLE"); dir {
	case "":
	case "-":
		// Follow a slow boot as it happens, on stderr (the lanes).
		serial = io.MultiWriter(out, os.Stderr)
	default:
		// Follow a slow boot as it happens, in
		// $VMDAP_LINUX_CONSOLE/<test>.log.
		f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		serial = io.MultiWriter(out, f)
	}
	g := &linuxGuest{t: t, serial: out, vmlin: l.Vmlinux, cmdline: cmd, initrdSize: len(initrd), start: time.Now(), cpu0: cpuTime()}
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
			if t := elf.ST_TYPE(s.Info); t == elf.STT_FUNC || t == elf.STT_OBJECT {
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

// linuxData returns a variable's address from the vmlinux's symbols.
func (g *linuxGuest) linuxData(name string) uint64 { return g.linuxSym(name) }

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
// with every vCPU online, wrote to its tty, and powered the machine off
// cleanly.
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
	if !strings.Contains(out, vmmtest.TTYMarker) {
		// The kernel log reached the console, the tty write did not: the
		// UART driver found no interrupt (IRQ 4) or no polling.
		g.t.Fatalf("console lacks /init's tty write %q:\n%s", vmmtest.TTYMarker, out)
	}
	i := strings.Index(out, vmmtest.InitMarker)
	g.t.Logf("booted to /init and powered off in %s: %s", g.elapsed(), strings.SplitN(out[i:], "\n", 2)[0])
}

// testLinuxBoot boots to /init and on to the power-off. Where KVM emulates
// ring 0 (the probe sees int3 come back as an emulation failure: PVM) a
// boot to /init costs about 14 CPU-minutes (measured: Debian's 6.12 cloud
// kernel, PVH, one vCPU), so it runs there only when asked for with
// VMDAP_LINUX_BOOT=1; the start_kernel tests above cover the boot protocol
// on such a host, and the AMD-V lane runs these at hardware speed. Where a
// system call from ring 3 does not reach ring 0 (the probe), the boot ends
// at kernel_execve("/init") and its subtest init is skipped, with the
// reason.
func testLinuxBoot(t *testing.T, proto boot.Protocol, vcpus int) {
	if testing.Short() {
		t.Skip("skipping: a Linux boot to /init is long in -short mode")
	}
	h := skipWhereRing0Emulated(t, "a Linux boot to /init costs about 14 CPU-minutes (TestLinuxStartKernelPVH checks the boot protocol here)")
	g := bootLinuxToInit(t, proto, vcpus)
	// /init's run is a test of its own: the boot to it passes on every
	// host, and what this host cannot run past it is skipped by name.
	t.Run("init", func(t *testing.T) {
		if !h.SyscallWorks {
			t.Skipf("skipping: the kernel reached kernel_execve(\"/init\") after %s, but a system call from ring 3 does not reach ring 0 on this host (%s)", g.elapsed(), h.SyscallWhy)
		}
		g.t = t
		g.breakOnMarkerWrite()
		g.runToPowerOff(vcpus)
	})
}

// breakOnMarkerWrite breaks on ksys_write, the write system call's body,
// until /init writes its marker, reading each call's arguments from the
// System V registers (fd in rdi, buf in rsi, count in rdx) and the buffer
// from /init's user memory; then removes the breakpoint.
func (g *linuxGuest) breakOnMarkerWrite() {
	g.t.Helper()
	write := g.linuxSym("ksys_write")
	if err := g.m.InsertHWBreakpoint(write); err != nil {
		g.t.Fatal(err)
	}
	for calls := 1; ; calls++ {
		if err := g.m.Continue(); err != nil {
			g.t.Fatal(err)
		}
		s := g.wait()
		if s.Reason != vmm.ReasonHWBreakpoint || s.PC != write {
			g.t.Fatalf("waiting for /init's write: %v after %s; console:\n%s", s, g.elapsed(), g.serial.String())
		}
		r, err := g.m.Regs(s.VCPU)
		if err != nil {
			g.t.Fatal(err)
		}
		fd, count := int(int32(r.RDI)), r.RDX
		buf := make([]byte, min(count, 256))
		n, err := g.m.ReadMemory(s.VCPU, buf, r.RSI)
		if err != nil || n != len(buf) {
			g.t.Fatalf("ksys_write(%d, %#x, %d): reading its buffer from user memory: %d bytes, %v", fd, r.RSI, count, n, err)
		}
		g.t.Logf("ksys_write(%d, %#x, %d) = %q on vCPU %d", fd, r.RSI, count, buf, s.VCPU)
		if strings.Contains(string(buf), vmmtest.InitMarker) {
			if fd < 0 || buf[len(buf)-1] != '\n' { // echo writes its line, newline included, at once
				g.t.Fatalf("ksys_write's arguments: fd %d, count %d, buffer %q: want a descriptor and the whole line", fd, count, buf)
			}
			break
		}
		if calls == 50 {
			g.t.Fatalf("50 writes and none of them the marker; console:\n%s", g.serial.String())
		}
	}
	if err := g.m.RemoveHWBreakpoint(write); err != nil {
		g.t.Fatal(err)
	}
}

func TestLinuxPVH1(t *testing.T)     { t.Parallel(); testLinuxBoot(t, boot.ProtoPVH, 1) }
func TestLinuxPVH2(t *testing.T)     { t.Parallel(); testLinuxBoot(t, boot.ProtoPVH, 2) }
func TestLinuxBzImage1(t *testing.T) { t.Parallel(); testLinuxBoot(t, boot.ProtoLinux, 1) }
func TestLinuxBzImage2(t *testing.T) { t.Parallel(); testLinuxBoot(t, boot.ProtoLinux, 2) }

// linuxStartKernel boots the kernel to start_kernel (a debug-register
// breakpoint) and checks what the kernel copied from what vmdap handed it:
// the command line (with vmdap's clearcpuid= where the host needs it),
// the e820 map, the initrd and the ACPI RSDP. Through PVH it is cheap
// everywhere (start_kernel comes before nearly all of the boot's ring-0
// work: 2 CPU-seconds where ring 0 is emulated); a bzImage first
// decompresses itself, which takes more than 8 CPU-minutes where ring 0
// is emulated, so there it runs only with VMDAP_LINUX_BOOT=1.
func linuxStartKernel(t *testing.T, proto boot.Protocol) {
	if testing.Short() {
		t.Skip("skipping: a Linux boot (340 MB of vmlinux read for its symbols) in -short mode")
	}
	if proto == boot.ProtoLinux {
		skipWhereRing0Emulated(t, "a bzImage decompresses itself for more than 8 CPU-minutes")
	}
	g := startLinux(t, proto, 2)
	at := g.linuxSym("start_kernel")
	if err := g.m.InsertHWBreakpoint(at); err != nil {
		t.Fatal(err)
	}
	if err := g.m.Continue(); err != nil {
		t.Fatal(err)
	}
	s := g.wait()
	if s.Reason != vmm.ReasonHWBreakpoint || s.PC != at || s.VCPU != 0 {
		t.Fatalf("%v, want the breakpoint on start_kernel (%#x) on vCPU 0; console:\n%s", s, at, g.serial.String())
	}
	t.Logf("start_kernel reached after %s", g.elapsed())
	read := func(sym string, n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := g.m.ReadMemory(0, b, g.linuxData(sym)); err != nil {
			t.Fatalf("reading %s: %v", sym, err)
		}
		return b
	}
	le := binary.LittleEndian
	bp := read("boot_params", 0x1000)
	if proto == boot.ProtoPVH {
		// Linux keeps PVH's RSDP in its copy of hvm_start_info.
		si := read("pvh_start_info", 56)
		if got := le.Uint64(si[32:]); got != 0xe0000 || le.Uint32(si[12:]) != 1 {
			t.Errorf("pvh_start_info: rsdp_paddr %#x, %d modules; want the RSDP at 0xe0000 and the initrd", got, le.Uint32(si[12:]))
		}
	} else if got := le.Uint64(bp[0x070:]); got != 0xe0000 {
		t.Errorf("boot_params.acpi_rsdp_addr = %#x, want the RSDP at 0xe0000", got)
	}
	if got := le.Uint32(bp[0x21c:]); got != uint32(g.initrdSize) {
		t.Errorf("boot_params.hdr.ramdisk_size = %d, want the initrd's %d", got, g.initrdSize)
	}
	ram := false
	for i := 0; i < int(bp[0x1e8]) && i < 128; i++ {
		e := bp[0x2d0+20*i:]
		ram = ram || le.Uint64(e[0:]) == 0x100000 && le.Uint64(e[8:]) == 255<<20 && le.Uint32(e[16:]) == 1
	}
	if !ram {
		t.Errorf("boot_params e820 (%d entries) lacks RAM [1 MiB, 256 MiB)", bp[0x1e8])
	}
	cmd := string(read("boot_command_line", 2048))
	if i := strings.IndexByte(cmd, 0); i >= 0 {
		cmd = cmd[:i]
	}
	if !strings.HasPrefix(cmd, g.cmdline) {
		t.Errorf("boot_command_line %q, want it to start with %q", cmd, g.cmdline)
	}
	h, _ := Probe(nil)
	if cl := h.LinuxClearCPUID(); len(cl) > 0 && !strings.Contains(cmd, "clearcpuid="+strings.Join(cl, ",")) {
		t.Errorf("boot_command_line %q lacks clearcpuid=%s", cmd, strings.Join(cl, ","))
	}
}

func TestLinuxStartKernelPVH(t *testing.T)     { t.Parallel(); linuxStartKernel(t, boot.ProtoPVH) }
func TestLinuxStartKernelBzImage(t *testing.T) { t.Parallel(); linuxStartKernel(t, boot.ProtoLinux) }

// skipWhereRing0Emulated skips the test where the host's KVM emulates
// ring 0 (the probe saw int3 come back as an emulation failure: PVM),
// unless VMDAP_LINUX_BOOT is set, saying why it is too slow there.
func skipWhereRing0Emulated(t *testing.T, why string) *HostInfo {
	t.Helper()
	vmmtest.RequireKVM(t)
	h, err := Probe(testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if h.SWBreakpoint == swbpEmulation && os.Getenv("VMDAP_LINUX_BOOT") == "" {
		t.Skipf("skipping: this host's KVM emulates ring 0, where %s; set VMDAP_LINUX_BOOT=1 to run it", why)
	}
	return h
}
