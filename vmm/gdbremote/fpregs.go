package gdbremote

import (
	"encoding/hex"
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

// SetFPReg implements vmm.FPRegisterWriter: the register by its name in
// the target description, written with P (else the whole block with G).
func (t *Target) SetFPReg(vcpu int, name string, b []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.stoppedLocked(); err != nil {
		return err
	}
	blk, err := t.readBlock(vcpu)
	if err != nil {
		return err
	}
	stub := name
	if i, isST := strings.CutPrefix(name, "st"); isST && t.stPhysical {
		// ST(i) is the stub's physical register R(TOP+i).
		var n int
		if _, err := fmt.Sscanf(i, "%d", &n); err != nil || n < 0 || n > 7 {
			return fmt.Errorf("no register %s", name)
		}
		var top int
		for _, r := range t.layout() {
			if strings.ToLower(r.Name) == "fstat" {
				v, _ := blk.get(r)
				top = int(v>>11) & 7
			}
		}
		stub = fmt.Sprintf("st%d", (top+n)&7)
	}
	reg, ok := t.regNamed(stub)
	if !ok || reg.Bits <= 0 || reg.Offset+reg.Bits/8 > len(blk.raw) {
		return fmt.Errorf("writing %s: the %s stub's registers have no %s: %w", name, t.stubName, stub, vmm.ErrUnsupported)
	}
	val := make([]byte, reg.Bits/8)
	copy(val, b)
	nb := &regBlock{raw: append([]byte(nil), blk.raw...)}
	copy(nb.raw[reg.Offset:], val)
	if err := t.selectThread('g', vcpu); err != nil {
		return err
	}
	switch {
	case t.pWrite:
		_, err = t.x("writing a register", fmt.Sprintf("P%x=%s", reg.Num, hex.EncodeToString(val)))
	case t.gWrite:
		_, err = t.x("writing registers", "G"+hex.EncodeToString(nb.raw))
	default:
		err = fmt.Errorf("the %s stub cannot write registers (it has neither G nor P): %w", t.stubName, vmm.ErrUnsupported)
	}
	if err != nil {
		return err
	}
	t.cache[vcpu] = nb
	return nil
}
