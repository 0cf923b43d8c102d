package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"vmdap/vmm"
	"vmdap/x86"
)

// ErrPostMortem is what a dump answers to anything that would run or
// change the guest; it is a vmm.ErrUnsupported.
var ErrPostMortem error = postMortemError{}

type postMortemError struct{}

func (postMortemError) Error() string {
	return "this is a core dump: the machine it recorded cannot run or change"
}

func (postMortemError) Is(target error) bool { return target == vmm.ErrUnsupported }

// Target is a core dump as a vmm.Target: always stopped.
type Target struct {
	path string
	d    *dump
	f    *os.File

	mu     sync.Mutex // guards closed
	closed bool
}

var (
	_ vmm.Target     = (*Target)(nil)
	_ vmm.PostMortem = (*Target)(nil)
)

// Open reads the dump at path: an ELF core, or a compressed kdump.
func Open(path string, log logrus.FieldLogger) (*Target, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	var d *dump
	if err == nil {
		d, err = openDump(f)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("core dump %s: %w", path, err)
	}
	t := &Target{path: path, d: d, f: f}
	if log != nil {
		log.WithFields(logrus.Fields{"dump": path, "format": d.format, "cpus": len(d.cpus), "paging": d.pagingFrom,
			"kernel": infoSummary(d.info)}).Info("core dump opened")
	}
	return t, nil
}

// openDump reads a dump of any supported format from r.
func openDump(r io.ReaderAt) (*dump, error) {
	var magic [8]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil {
		return nil, fmt.Errorf("reading its first bytes: %w", err)
	}
	switch {
	case string(magic[:4]) == "\x7fELF":
		return openELF(r)
	case string(magic[:]) == diskdumpMagic:
		return openDiskdump(r)
	}
	var head [16]byte
	if _, err := r.ReadAt(head[:], 0); err == nil && string(head[:]) == flatMagic+"\x00\x00\x00\x00" {
		f, err := openFlat(r)
		if err != nil {
			return nil, err
		}
		if _, err := f.ReadAt(magic[:], 0); err != nil || string(magic[:]) != diskdumpMagic {
			return nil, errors.New("a flattened dump that holds no compressed kdump")
		}
		d, err := openDiskdump(f)
		if err == nil {
			d.format = "flattened " + d.format
			if f.truncated != 0 {
				d.format += fmt.Sprintf(", truncated: the file ends at %d bytes, before its end record; the pages past it are not in the dump", f.truncated)
			}
		}
		return d, err
	}
	return nil, errors.New("neither an ELF core nor a compressed kdump (makedumpfile's \"KDUMP   \" signature)")
}

// Capabilities names the dump.
func (t *Target) Capabilities() vmm.Capabilities {
	return vmm.Capabilities{Backend: "core", Host: t.d.format,
		Notes: []string{"a core dump: the guest cannot run, step or change; virtual addresses translate by " + t.d.pagingFrom}}
}

// VCPUs is the number of CPUs the dump holds the state of.
func (t *Target) VCPUs() int { return len(t.d.cpus) }

func (t *Target) cpu(vcpu int) (*cpu, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, vmm.ErrClosed
	}
	if vcpu < 0 || vcpu >= len(t.d.cpus) {
		return nil, vmm.ErrNoVCPU
	}
	return &t.d.cpus[vcpu], nil
}

// Regs returns a CPU's general registers at the dump.
func (t *Target) Regs(vcpu int) (x86.Regs, error) {
	c, err := t.cpu(vcpu)
	if err != nil {
		return x86.Regs{}, err
	}
	return c.regs, nil
}

// SRegs returns a CPU's segment and control registers: what the dump
// recorded, or (a kdump) the selectors and bases it has with the kernel's
// paging state.
func (t *Target) SRegs(vcpu int) (x86.SRegs, error) {
	c, err := t.cpu(vcpu)
	if err != nil {
		return x86.SRegs{}, err
	}
	return c.sregs, nil
}

// ReadMemory reads guest-virtual memory as vcpu saw it.
func (t *Target) ReadMemory(vcpu int, p []byte, addr uint64) (int, error) {
	c, err := t.cpu(vcpu)
	if err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		va := addr + uint64(n)
		pa, remain, err := t.d.translate(c, va)
		if err != nil {
			return n, &vmm.FaultError{Addr: va, Reason: err.Error()}
		}
		chunk := min(uint64(len(p)-n), remain)
		m, err := t.d.phys.ReadAt(p[n:n+int(chunk)], int64(pa))
		n += m
		if err != nil {
			return n, &vmm.FaultError{Addr: addr + uint64(n), Reason: err.Error()}
		}
	}
	return n, nil
}

// WriteMemory refuses: a dump is a record.
func (t *Target) WriteMemory(int, []byte, uint64) (int, error) { return 0, ErrPostMortem }

// Continue refuses: a dump cannot run.
func (t *Target) Continue() error { return ErrPostMortem }

// Wait returns the dump's stop at once.
func (t *Target) Wait(ctx context.Context) (vmm.Stop, error) {
	if _, err := t.cpu(0); err != nil {
		return vmm.Stop{}, err
	}
	r := t.d.cpus[0].regs
	return vmm.Stop{VCPU: 0, Reason: vmm.ReasonPause, PC: r.RIP, Detail: "core dump"}, nil
}

// Pause does nothing: a dump never runs.
func (t *Target) Pause() error { return nil }

// Close releases the file.
func (t *Target) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	return t.f.Close()
}

// DumpInfo says what the dump is and what its kernel recorded of itself.
func (t *Target) DumpInfo() vmm.DumpInfo {
	di := vmm.DumpInfo{Path: t.path, Format: t.d.format}
	if t.d.info != nil {
		di.Kernel = map[string]string{}
		for k, v := range t.d.info {
			di.Kernel[k] = v
		}
		if off, ok := infoNumber(t.d.info, "KERNELOFFSET", 16); ok {
			di.KernelOffset = &off
		}
	}
	return di
}

// Keys of a dump's VMCOREINFO worth a line in a log.
func infoSummary(info map[string]string) string {
	var l []string
	for _, k := range []string{"OSRELEASE", "KERNELOFFSET", "CRASHTIME"} {
		if v, ok := info[k]; ok {
			l = append(l, k+"="+v)
		}
	}
	sort.Strings(l)
	return strings.Join(l, " ")
}

// Optional capabilities: a dump offers none but physical reads.
func (t *Target) Stepper() (vmm.Stepper, bool)               { return nil, false }
func (t *Target) SWBreakpoints() (vmm.Breakpoints, bool)     { return nil, false }
func (t *Target) HWBreakpoints() (vmm.HWBreakpoints, bool)   { return nil, false }
func (t *Target) Watchpoints() (vmm.Watchpoints, bool)       { return nil, false }
func (t *Target) RegisterWriter() (vmm.RegisterWriter, bool) { return nil, false }
func (t *Target) DebugRegisters() (vmm.DebugRegisters, bool) { return nil, false }
func (t *Target) FPRegisters() (vmm.FPRegisters, bool)       { return nil, false }
func (t *Target) PhysicalMemory() (vmm.PhysicalMemory, bool) { return physical{t}, true }

// physical is the dump's guest-physical memory, read-only.
type physical struct{ t *Target }

func (p physical) ReadPhysical(b []byte, addr uint64) (int, error) {
	if _, err := p.t.cpu(0); err != nil {
		return 0, err
	}
	n, err := p.t.d.phys.ReadAt(b, int64(addr))
	if err != nil {
		return n, &vmm.FaultError{Addr: addr + uint64(n), Reason: err.Error()}
	}
	return n, nil
}

func (physical) WritePhysical([]byte, uint64) (int, error) { return 0, ErrPostMortem }
