package adapter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	"vmdap/session"
)

// LaunchConfig is the "launch" request's arguments: what extension/
// package.json declares under configurationAttributes.launch (a test keeps
// the two equal).
type LaunchConfig struct {
	// Program is the guest kernel: an ELF64 x86-64 executable, a
	// Multiboot/PVH kernel, or a Linux bzImage (whose vmlinux is Symbols).
	Program string `json:"program"`
	// Initrd is an initial RAM disk: a bzImage's initrd, a PVH or
	// Multiboot module; QEMU's -initrd.
	Initrd string `json:"initrd,omitempty"`
	// Symbols is an optional separate file with the DWARF debug
	// information (objcopy --only-keep-debug).
	Symbols string `json:"symbols,omitempty"`
	// DebugFileDirectories are where a stripped program's debug file is
	// looked for by build ID and debug link, as gdb's
	// debug-file-directory (default /usr/lib/debug).
	DebugFileDirectories []string `json:"debugFileDirectories,omitempty"`
	// VCPUs is the number of vCPUs (default 1).
	VCPUs int `json:"vcpus,omitempty"`
	// Memory is guest RAM in MiB (default 128).
	Memory int `json:"memory,omitempty"`
	// Args is the kernel command line (Linux, Multiboot, PVH).
	Args string `json:"args,omitempty"`
	// StopOnEntry stops before the first guest instruction.
	StopOnEntry bool `json:"stopOnEntry,omitempty"`
	// Boot forces a boot protocol: auto, elf64, multiboot, multiboot2, pvh
	// or linux.
	Boot string `json:"boot,omitempty"`
	// Hypervisor runs the guest on vmdap's own KVM VMM ("kvm", default) or
	// under QEMU ("qemu") through its GDB stub.
	Hypervisor string `json:"hypervisor,omitempty"`
	// QEMUPath is the qemu-system-x86_64 binary (hypervisor "qemu").
	QEMUPath string `json:"qemuPath,omitempty"`
	// QEMUArgs are extra QEMU arguments, passed as an argv list.
	QEMUArgs []string `json:"qemuArgs,omitempty"`
	// Accel is QEMU's accelerator: tcg (default) or kvm.
	Accel string `json:"accel,omitempty"`
	// IRQChip gives vmdap's VMM KVM's in-kernel interrupt controllers
	// (local APICs with their timers, IOAPIC, PIC) for guests that use
	// interrupts (hypervisor "kvm"; QEMU always has them). A halted vCPU
	// then waits for an interrupt instead of ending the run.
	IRQChip bool `json:"irqchip,omitempty"`
	// SourceMap maps source path prefixes in the image's debug
	// information to local folders ("/build/linux-6.12": "${workspaceFolder}").
	SourceMap map[string]string `json:"sourceMap,omitempty"`
	// KernelOffset forces the KASLR slide of a relocated kernel ("0x1e000000");
	// without it vmdap finds the slide at stops.
	KernelOffset string `json:"kernelOffset,omitempty"`
	linuxConfig         // modules, kernelLog, taskThreads (linux.go)
}

// AttachConfig is the "attach" request's arguments.
type AttachConfig struct {
	// GDBServer is the stub's "host:port" or a Unix socket path.
	GDBServer string `json:"gdbServer,omitempty"`
	// CoreFile is a core dump of the machine to open instead of a live
	// stub (post-mortem): an ELF core (QEMU's dump-guest-memory, a
	// kdump's vmcore) or a compressed kdump (makedumpfile -c).
	CoreFile string `json:"coreFile,omitempty"`
	// Program is the guest image with symbols (optional).
	Program string `json:"program,omitempty"`
	// Symbols is an optional separate debug file.
	Symbols string `json:"symbols,omitempty"`
	// DebugFileDirectories: as LaunchConfig's.
	DebugFileDirectories []string `json:"debugFileDirectories,omitempty"`
	// Stub names the stub's dialect: auto, qemu or bhyve.
	Stub string `json:"stub,omitempty"`
	// StopOnEntry stops at once after attaching (default true: the stub
	// has already stopped the guest).
	StopOnEntry *bool `json:"stopOnEntry,omitempty"`
	// SourceMap maps source path prefixes in the image's debug
	// information to local folders.
	SourceMap map[string]string `json:"sourceMap,omitempty"`
	// KernelOffset forces the KASLR slide of a relocated kernel.
	KernelOffset string `json:"kernelOffset,omitempty"`
	linuxConfig         // modules, kernelLog, taskThreads (linux.go)
}

// Defaults.
var (
	DefaultVCPUs     = 1
	DefaultMemoryMiB = 128
	MaxVCPUs         = 64
	MaxMemoryMiB     = 64 << 10
)

// ConfigError is a launch/attach configuration problem, worded for the
// user.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func cfgErr(format string, a ...any) error { return &ConfigError{Msg: fmt.Sprintf(format, a...)} }

// properties VS Code (and other clients) add to every configuration.
var clientProps = map[string]bool{"type": true, "request": true, "name": true, "preLaunchTask": true,
	"postDebugTask": true, "internalConsoleOptions": true, "debugServer": true, "presentation": true,
	"noDebug": true, "cwd": true, "env": true, "console": true, "linux": true, "osx": true, "windows": true,
	"port": true, "trace": true, "suppressMultipleSessionWarning": true, "serverReadyAction": true}

// unknownProps lists properties in raw that cfg's JSON tags do not name
// (likely typos), for a warning.
func unknownProps(raw json.RawMessage, cfg any) []string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	known := map[string]bool{}
	for _, k := range jsonFields(cfg) {
		known[k] = true
	}
	var out []string
	for k := range m {
		if !known[k] && !clientProps[k] && !strings.HasPrefix(k, "__") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// zeroGiven returns the first of keys that raw gives as the number 0
// (which the decoded configuration cannot tell from "not given", its
// default), or "".
func zeroGiven(raw json.RawMessage, keys ...string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	for _, k := range keys {
		var n float64
		// null is "not given", as for every other property (and as
		// encoding/json reads it): only a number 0 is refused.
		if v, ok := m[k]; ok && string(bytes.TrimSpace(v)) != "null" && json.Unmarshal(v, &n) == nil && n == 0 {
			return k
		}
	}
	return ""
}

// launchSlide is the KASLR slide of a launch: kernelOffset when given,
// else 0 where the kernel cannot relocate itself (an ELF image, which
// vmdap or QEMU boots past the decompressor that chooses the slide; a
// bzImage told nokaslr), else unknown ("": found at the first stop in
// the kernel).
func launchSlide(cfg LaunchConfig) string {
	if cfg.KernelOffset != "" {
		return cfg.KernelOffset
	}
	if cfg.Program != "" && isELF(cfg.Program) || slices.Contains(strings.Fields(cfg.Args), "nokaslr") {
		return "0"
	}
	return ""
}

// kernelOffset parses a kernelOffset setting (nil: not set).
func kernelOffset(s string) (*uint64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 64)
	if err != nil || v%4096 != 0 {
		return nil, cfgErr(`"kernelOffset" must be a page-aligned number such as "0x1e000000" (the KASLR slide), not %q`, s)
	}
	return &v, nil
}

func (c *LaunchConfig) validate() error {
	if _, err := kernelOffset(c.KernelOffset); err != nil {
		return err
	}
	if err := c.linuxConfig.validate(); err != nil {
		return err
	}
	if c.Program == "" {
		return cfgErr(`launch configuration: "program" is required: the path of the guest kernel ELF file`)
	}
	if err := fileReadable(c.Program, "program"); err != nil {
		return err
	}
	if c.Symbols != "" {
		if err := fileReadable(c.Symbols, "symbols"); err != nil {
			return err
		}
	}
	if c.Initrd != "" {
		if err := fileReadable(c.Initrd, "initrd"); err != nil {
			return err
		}
	}
	if c.VCPUs == 0 {
		c.VCPUs = DefaultVCPUs
	}
	if c.VCPUs < 1 || c.VCPUs > MaxVCPUs {
		return cfgErr(`launch configuration: "vcpus" must be between 1 and %d, got %d`, MaxVCPUs, c.VCPUs)
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemoryMiB
	}
	if c.Memory < 4 || c.Memory > MaxMemoryMiB {
		return cfgErr(`launch configuration: "memory" is in MiB and must be between 4 and %d, got %d`, MaxMemoryMiB, c.Memory)
	}
	switch c.Boot {
	case "", "auto", "elf64", "multiboot", "multiboot2", "pvh", "linux":
	default:
		return cfgErr(`launch configuration: "boot" must be auto, elf64, multiboot, multiboot2, pvh or linux, got %q`, c.Boot)
	}
	switch c.Hypervisor {
	case "", "kvm", "qemu":
	default:
		return cfgErr(`launch configuration: "hypervisor" must be "kvm" (vmdap's own VMM) or "qemu", got %q`, c.Hypervisor)
	}
	switch c.Accel {
	case "", "tcg", "kvm":
	default:
		return cfgErr(`launch configuration: "accel" must be "tcg" or "kvm", got %q`, c.Accel)
	}
	if c.Hypervisor != "qemu" && (c.QEMUPath != "" || len(c.QEMUArgs) > 0 || c.Accel != "") {
		return cfgErr(`launch configuration: "qemuPath", "qemuArgs" and "accel" need "hypervisor": "qemu"`)
	}
	if c.Hypervisor == "qemu" && c.IRQChip {
		return cfgErr(`launch configuration: "irqchip" is for "hypervisor": "kvm" (QEMU always emulates the interrupt controllers)`)
	}
	return nil
}

func (c *AttachConfig) validate() error {
	if _, err := kernelOffset(c.KernelOffset); err != nil {
		return err
	}
	if err := c.linuxConfig.validate(); err != nil {
		return err
	}
	switch {
	case c.GDBServer != "" && c.CoreFile != "":
		return cfgErr(`attach configuration: give "gdbServer" (a live guest) or "coreFile" (a core dump), not both`)
	case c.CoreFile != "":
		return c.validateCore()
	case c.GDBServer == "":
		return cfgErr(`attach configuration: "gdbServer" is required: "host:port" of the stub (QEMU -gdb, bhyve -G) or a Unix socket path; or "coreFile": a core dump`)
	}
	if !strings.Contains(c.GDBServer, "/") {
		if _, _, err := net.SplitHostPort(c.GDBServer); err != nil {
			return cfgErr(`attach configuration: "gdbServer" %q is neither host:port nor a socket path`, c.GDBServer)
		}
	}
	if c.Program != "" {
		if err := fileReadable(c.Program, "program"); err != nil {
			return err
		}
	}
	if c.Symbols != "" {
		if err := fileReadable(c.Symbols, "symbols"); err != nil {
			return err
		}
	}
	switch c.Stub {
	case "", "auto", "qemu", "bhyve":
	default:
		return cfgErr(`attach configuration: "stub" must be auto, qemu or bhyve, got %q`, c.Stub)
	}
	return nil
}

// validateCore checks a post-mortem attach: a dump (which may be many
// gigabytes: it is read as asked, never whole) and the image's symbols.
func (c *AttachConfig) validateCore() error {
	if c.Stub != "" {
		return cfgErr(`attach configuration: "stub" is for "gdbServer", not a "coreFile"`)
	}
	if err := session.CheckDumpFile(c.CoreFile); err != nil {
		return cfgErr("configuration: %v", err)
	}
	for _, f := range []struct{ path, what string }{{c.Program, "program"}, {c.Symbols, "symbols"}} {
		if f.path != "" {
			if err := fileReadable(f.path, f.what); err != nil {
				return err
			}
		}
	}
	return nil
}

// fileReadable refuses an image path that is missing, a directory, not
// a regular file (a FIFO would block the launch, a device never ends) or
// too large; it never opens the file.
func fileReadable(path, what string) error {
	if err := session.CheckImageFile(path, what); err != nil {
		return cfgErr("configuration: %v", err)
	}
	return nil
}
