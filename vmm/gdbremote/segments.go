package gdbremote

import (
	"fmt"
	"strconv"
	"strings"

	"vmdap/vmm/gdbremote/rsp"
	"vmdap/x86"
)

// Segment bases over a GDB stub.
//
// The 'g' packet carries segment selectors only, not the descriptor caches
// (QEMU's target description lists cs_base and friends only inside an XML
// comment). In 64-bit code no base but FS's and GS's matters. In real
// mode the address of the next instruction is CS.base + IP: the base is
// derived as selector << 4, except that after a reset CS.base is 0xffff0000
// with selector 0xf000 (the reset vector is 0xfffffff0, not 0xffff0). So
// when a vCPU stops in real mode, vmdap asks the stub's monitor for the
// real caches ("info registers", QEMU), and keeps the derived ones where
// the stub has no monitor (bhyve).

// realModeSegments fills the segment caches of a real-mode vCPU from the
// selectors (base = selector << 4, 64 KiB limits).
func realModeSegments(s *x86.SRegs) {
	for _, sg := range []*x86.Segment{&s.CS, &s.DS, &s.ES, &s.FS, &s.GS, &s.SS} {
		sg.Base = uint64(sg.Selector) << 4
		sg.Limit = 0xffff
		sg.Present, sg.S = true, true
		sg.Type = 3 // read/write data, accessed
	}
	s.CS.Type = 11 // execute/read code, accessed
}

// monitorSegments reads vCPU's segment caches and descriptor-table
// registers from the stub's monitor (QEMU's "info registers"). ok=false
// when the stub has none or the output is not understood; the failure of
// an unsupported monitor is remembered.
func (t *Target) monitorSegments(vcpu int, s *x86.SRegs) bool {
	if t.noMonitor {
		return false
	}
	cmd := "info registers"
	if len(t.threads) > 1 {
		cmd += " -a"
	}
	out, err := t.c.Monitor(cmd)
	if err != nil {
		if rsp.Unsupported(err) {
			t.noMonitor = true
		}
		t.log.WithError(err).Debug("reading segment caches from the monitor")
		return false
	}
	if err := parseInfoRegisters(out, vcpu, s); err != nil {
		t.log.WithError(err).Debug("reading segment caches from the monitor")
		return false
	}
	return true
}

// parseInfoRegisters takes vCPU's segment caches (selector, base, limit,
// attributes) and GDT/IDT from QEMU's "info registers" output (one CPU,
// or every CPU, each after a "CPU#n" line).
func parseInfoRegisters(out string, vcpu int, s *x86.SRegs) error {
	cpu := -1
	found := false
	segs := map[string]*x86.Segment{"ES": &s.ES, "CS": &s.CS, "SS": &s.SS, "DS": &s.DS, "FS": &s.FS, "GS": &s.GS, "LDT": &s.LDT, "TR": &s.TR}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "CPU#") {
			n, err := strconv.Atoi(strings.Fields(line[4:] + " ")[0])
			if err != nil {
				return fmt.Errorf("bad CPU line %q", line)
			}
			cpu = n
			continue
		}
		if cpu >= 0 && cpu != vcpu {
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			continue
		}
		name := strings.TrimSpace(line[:eq])
		f := strings.Fields(line[eq+1:])
		hexf := func(i int) (uint64, bool) {
			if i >= len(f) {
				return 0, false
			}
			v, err := strconv.ParseUint(f[i], 16, 64)
			return v, err == nil
		}
		switch {
		case segs[name] != nil:
			sel, ok1 := hexf(0)
			base, ok2 := hexf(1)
			limit, ok3 := hexf(2)
			flags, ok4 := hexf(3)
			if !ok1 || !ok2 || !ok3 || !ok4 {
				return fmt.Errorf("bad segment line %q", line)
			}
			sg := segs[name]
			*sg = x86.Segment{Selector: uint16(sel), Base: base, Limit: uint32(limit)}
			sg.SetDescriptorFlags(uint32(flags))
			// QEMU has no unusable bit: a segment without P is one
			// (target/i386/kvm/kvm.c set_seg), as in its dumps' notes.
			sg.Unusable = !sg.Present
			found = found || name == "CS"
		case name == "GDT" || name == "IDT":
			base, ok1 := hexf(0)
			limit, ok2 := hexf(1)
			if !ok1 || !ok2 {
				return fmt.Errorf("bad table line %q", line)
			}
			tb := x86.Table{Base: base, Limit: uint16(limit)}
			if name == "GDT" {
				s.GDT = tb
			} else {
				s.IDT = tb
			}
		}
	}
	if !found {
		return fmt.Errorf("no CS line for CPU %d in the monitor's output", vcpu)
	}
	return nil
}
