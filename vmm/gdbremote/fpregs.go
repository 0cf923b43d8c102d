package gdbremote

import (
	"fmt"
	"strings"

	"vmdap/vmm"
	"vmdap/x86"
)

// FPRegisters implements vmm.Target: a stub whose target description
// has the x87 or SSE registers (QEMU's 64bit-core.xml and 64bit-sse.xml)
// can read them; bhyve's core-only layout cannot.
func (t *Target) FPRegisters() (vmm.FPRegisters, bool) {
	for _, r := range t.layout() {
		if n := strings.ToLower(r.Name); n == "st0" || n == "xmm0" {
			return t, true
		}
	}
	return nil, false
}

// FPRegs implements vmm.FPRegisters from the 'g' block, by the target
// description's names (gdb's: st0-st7, fctrl … fop, xmm0-xmm15, mxcsr).
func (t *Target) FPRegs(vcpu int) (x86.FPRegs, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var f x86.FPRegs
	if err := t.stoppedLocked(); err != nil {
		return f, err
	}
	b, err := t.readBlock(vcpu)
	if err != nil {
		return f, err
	}
	found := false
	for _, r := range t.layout() {
		n := r.Bits / 8
		if n <= 0 || r.Offset+n > len(b.raw) {
			continue
		}
		if f.Set(strings.ToLower(r.Name), b.raw[r.Offset:r.Offset+n]) {
			found = true
		}
	}
	if !found {
		return f, fmt.Errorf("reading x87 and SSE registers: the %s stub's 'g' reply holds none of them: %w", t.stubName, vmm.ErrUnsupported)
	}
	if t.stPhysical { // R(TOP+i) is ST(i)
		phys, top := f.ST, int(f.FSW>>11)&7
		for i := range f.ST {
			f.ST[i] = phys[(top+i)&7]
		}
	}
	return f, nil
}
