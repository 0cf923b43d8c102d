package gdbremote

import (
	"encoding/binary"
	"fmt"
	"strings"

	"vmdap/vmm"
	"vmdap/vmm/gdbremote/rsp"
	"vmdap/x86"
)

// layout returns the register layout of the 'g' packet: the target
// description when the stub serves one, else GDB's 64bit-core order
// (what bhyve sends).
func (t *Target) layout() []rsp.Reg {
	if t.desc != nil && len(t.desc.Regs) > 0 {
		return t.desc.Regs
	}
	var regs []rsp.Reg
	off := 0
	for i, r := range x86.GDBCore64 {
		regs = append(regs, rsp.Reg{Name: r.Name, Bits: r.Size * 8, Num: i, Offset: off})
		off += r.Size
	}
	return regs
}

// regBlock is one thread's 'g' data at the current stop.
type regBlock struct {
	raw []byte
	// segs: the segment caches of a real-mode stop (segments.go), read
	// once per stop.
	segs *x86.SRegs
}

func (t *Target) readBlock(vcpu int) (*regBlock, error) {
	if b, ok := t.cache[vcpu]; ok {
		return b, nil
	}
	if err := t.selectThread('g', vcpu); err != nil {
		return nil, err
	}
	r, err := t.x("reading registers", "g")
	if err != nil {
		return nil, err
	}
	raw, err := rsp.HexBytes(r)
	if err != nil {
		return nil, fmt.Errorf("reading registers: %w", err)
	}
	b := &regBlock{raw: raw}
	t.cache[vcpu] = b
	return b, nil
}

func (t *Target) selectThread(op byte, vcpu int) error {
	if vcpu < 0 || vcpu >= len(t.threads) {
		return fmt.Errorf("%w: %d", vmm.ErrNoVCPU, vcpu)
	}
	if t.curThread[op] == t.threads[vcpu] {
		return nil
	}
	if _, err := t.x("selecting a thread", fmt.Sprintf("H%c%s", op, t.threads[vcpu])); err != nil {
		return err
	}
	t.curThread[op] = t.threads[vcpu]
	return nil
}

func (b *regBlock) get(r rsp.Reg) (uint64, bool) {
	n := r.Bits / 8
	if n > 8 || r.Offset+n > len(b.raw) {
		return 0, false
	}
	var buf [8]byte
	copy(buf[:], b.raw[r.Offset:r.Offset+n])
	return binary.LittleEndian.Uint64(buf[:]), true
}

func (b *regBlock) set(r rsp.Reg, v uint64) bool {
	n := r.Bits / 8
	if n > 8 || r.Offset+n > len(b.raw) {
		return false
	}
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], v)
	copy(b.raw[r.Offset:r.Offset+n], buf[:n])
	return true
}

// decode fills the neutral register types from a block.
func (t *Target) decode(b *regBlock) (x86.Regs, x86.SRegs) {
	var r x86.Regs
	var s x86.SRegs
	for _, reg := range t.layout() {
		v, ok := b.get(reg)
		if !ok {
			continue
		}
		x86.GDBSet(strings.ToLower(reg.Name), v, &r, &s)
	}
	// Stubs give selectors, not descriptor caches: infer what the decoding
	// mode needs from CR0/EFER, and real mode's bases from the selectors.
	if s.CR0&x86.CR0PE == 0 && t.desc != nil {
		realModeSegments(&s)
	}
	if s.CR0&x86.CR0PE != 0 || t.desc == nil {
		if s.EFER&x86.EFERLMA != 0 || t.desc == nil {
			s.CS.L = true
			if t.desc == nil { // bhyve: no control registers at all; assume long mode
				s.CR0 |= x86.CR0PE | x86.CR0PG
				s.EFER |= x86.EFERLMA
			}
		} else {
			s.CS.DB = true
		}
	}
	return r, s
}

// encode writes neutral registers back into a block.
func (t *Target) encode(b *regBlock, r *x86.Regs, s *x86.SRegs) {
	for _, reg := range t.layout() {
		if v, ok := x86.GDBGet(strings.ToLower(reg.Name), r, s); ok {
			b.set(reg, v)
		}
	}
}
