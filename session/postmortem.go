package session

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"vmdap/vmm"
)

// ErrPostMortem refuses what would run or change a core dump's machine.
var ErrPostMortem = errors.New("this is a core dump: the machine it recorded cannot run, step or change")

// errNoWatchpoints is why a data breakpoint cannot be placed: a core
// dump's machine never changes, another target has none.
func (s *Session) errNoWatchpoints() error {
	if s.dump != nil {
		return errors.New("this is a core dump: nothing in it changes, so no data breakpoint can be hit")
	}
	return errors.New("this target has no watchpoints")
}

// setDump notes a post-mortem target at New: its kernel's recorded KASLR
// slide is the slide, unless the configuration forces one.
func (s *Session) setDump(t vmm.Target, forced bool) {
	pm, ok := t.(vmm.PostMortem)
	if !ok {
		return
	}
	di := pm.DumpInfo()
	s.dump = &di
	if !forced && di.KernelOffset != nil {
		s.forceSlide(*di.KernelOffset)
	}
}

// PostMortem reports whether the session shows a core dump.
func (s *Session) PostMortem() bool { return s.dump != nil }

// dumpStop is the stop a core dump's session starts at: on the CPU a
// Linux kernel panicked on (its panic_cpu), else the first. Session.mu
// held.
func (s *Session) dumpStop() Stopped {
	d := s.dump
	what := fmt.Sprintf("core dump %s (%s)", d.Path, d.Format)
	if rel := d.Kernel["OSRELEASE"]; rel != "" {
		what += ", Linux " + rel
	}
	if v, cpu, ok := s.panicVCPU(); ok {
		s.curVCPU = v
		desc := fmt.Sprintf("%s: the kernel panicked on CPU %d (%s)", what, cpu, s.pcWhere(v))
		msg := s.panicMessage(v)
		if msg == "" {
			msg = "Kernel panic (its message is not in the log)"
		}
		s.excInfo = &ExceptionInfo{ID: "Kernel panic", Description: msg, Details: desc}
		return Stopped{Reason: StopException, Thread: v + 1, Text: "Kernel panic", Description: desc}
	}
	return Stopped{Reason: StopPause, Thread: s.curVCPU + 1, Description: what + ": " + s.pcWhere(s.curVCPU)}
}

// pcWhere names where a vCPU's PC is. Session.mu held.
func (s *Session) pcWhere(v int) string {
	_, pc, err := s.regsPC(v)
	if err != nil {
		return err.Error()
	}
	return s.where(pc)
}

// panicVCPU finds the vCPU whose Linux CPU is panic_cpu (set by panic()
// and by a kdump's crash path; -1 while no CPU panicked). Session.mu held.
func (s *Session) panicVCPU() (v, cpu int, ok bool) {
	if !s.isLinux() {
		return 0, 0, false
	}
	k := s.kview(s.curVCPU)
	a, err := k.sym("panic_cpu")
	if err != nil {
		return 0, 0, false
	}
	b, err := k.read(a, 4)
	if err != nil {
		return 0, 0, false
	}
	cpu = int(int32(binary.LittleEndian.Uint32(b)))
	if cpu < 0 {
		return 0, 0, false
	}
	for v := 0; v < s.t.VCPUs(); v++ {
		if c, err := k.cpuOf(v); err == nil && c == cpu {
			return v, cpu, true
		}
	}
	if cpu < s.t.VCPUs() {
		return cpu, cpu, true // the dump's CPUs are in the kernel's order
	}
	return 0, 0, false
}

// dumpLines describe a core dump, for the console when the session starts.
func (s *Session) dumpLines() []string {
	d := s.dump
	l := []string{"core dump " + d.Path + " (" + d.Format + ")"}
	for _, k := range []string{"OSRELEASE", "BUILD-ID", "CRASHTIME", "KERNELOFFSET"} {
		v := strings.TrimSpace(d.Kernel[k])
		if v == "" {
			continue
		}
		if k == "CRASHTIME" { // seconds since the epoch
			if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
				v = time.Unix(sec, 0).UTC().Format(time.RFC3339) + " (" + v + ")"
			}
		}
		l = append(l, "  "+strings.ToLower(k)+": "+v)
	}
	if w := s.buildIDMismatch(); w != "" {
		l = append(l, w)
	}
	return l
}

// buildIDMismatch is a warning when the dumped kernel's build ID (its
// VMCOREINFO's BUILD-ID) is not the program's: the symbols are another
// kernel's, and what they show of the dump is wrong ("" when they match
// or either is unknown). crash refuses such a pair ("vmlinux and vmcore
// do not match"). Session.mu held.
func (s *Session) buildIDMismatch() string {
	dumped := strings.ToLower(strings.TrimSpace(s.dump.Kernel["BUILD-ID"]))
	if dumped == "" || s.sym == nil || s.sym.Kernel() == nil {
		return ""
	}
	id := s.sym.Kernel().BuildID()
	if len(id) == 0 {
		return ""
	}
	if prog := hex.EncodeToString(id); prog != dumped {
		return "WARNING: the dump's kernel (build ID " + dumped + ") is not the program's (build ID " + prog +
			"): its symbols, types and stacks do not describe this dump; point program at the dumped kernel's vmlinux"
	}
	return ""
}

// panicMessage is the newest "Kernel panic - not syncing: …" line of the
// kernel log, as panic() printed it ("" when the log has none).
// Session.mu held.
func (s *Session) panicMessage(v int) string {
	r, err := s.kview(v).openLog()
	if err != nil {
		return ""
	}
	recs, _, _ := r.records(0, 64, 0)
	for i := len(recs) - 1; i >= 0; i-- {
		if t := strings.TrimSpace(recs[i].text); strings.HasPrefix(t, "Kernel panic - not syncing") {
			return t
		}
	}
	return ""
}
