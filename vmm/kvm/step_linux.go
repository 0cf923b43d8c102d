//go:build linux && amd64

package kvm

import (
	"bytes"
	"encoding/binary"

	"vmdap/vmm"
	"vmdap/vmm/kvm/internal/kvmsys"
	"vmdap/x86"
	"vmdap/x86/disasm"
)

// Single-stepping, and every vendor quirk it must survive, in one place.
//
//   - Re-arm (VT-x, AMD-V): KVM hides its TF from the guest and re-adds it
//     on an RFLAGS write-back only if RIP is still where the last
//     KVM_SET_GUEST_DEBUG saw it. After a register write, an I/O or MMIO
//     exit, the next stepped KVM_RUN would run freely; vcpu.rearm forces
//     a fresh KVM_SET_GUEST_DEBUG first. Plain consecutive steps keep TF
//     and cost a single KVM_RUN.
//   - Exits to the VMM (OUT, IN, MMIO): the access is completed with
//     immediate_exit set, so no further instruction runs. PVM reports RIP
//     past an OUT and would execute one more instruction on the next entry;
//     VT-x/AMD-V report RIP at the OUT and trap after the completion.
//   - An instruction that faults (or int n): the CPU delivers the
//     exception and the step would end after the handler's first
//     instruction (PVM) or never (TF is cleared by delivery on VT-x/AMD-V).
//     For the one stepped instruction, the entry of every IDT vector 0-31
//     gets a temporary breakpoint, so the step ends exactly at the handler.
//   - TF leaking into the guest: on AMD a stepped pushf pushes vmdap's TF,
//     and an exception frame can carry it; both are cleared when the
//     guest's own TF was clear (the fix-up bhyve does for AMD).
//   - rep string instructions: PVM stops after each chunk, hardware after
//     each iteration, both with RIP unchanged; a step completes the whole
//     instruction. A stop at the same RIP with nothing changed (Bochs'
//     duplicate #DB) is stepped again, a bounded number of times.
//   - HLT: a plain step stop on PVM, KVM_EXIT_HLT elsewhere; either way the
//     vCPU is halted afterwards. With an in-kernel irqchip a HLT waits for
//     an interrupt instead, and a step over it lets the interrupt's handler
//     run (haltstep_linux.go).
//   - iret: an emulating host (PVM) runs one instruction past it, and on
//     VT-x/AMD-V the popped RFLAGS drops KVM's TF. vmdap does not step an
//     iret: it runs the vCPU to the return address read from the frame (a
//     temporary breakpoint, with the exception traps still planted).
//     After any instruction that replaces RFLAGS (popf, iret, sysret) the
//     next step re-arms.

const maxDuplicateStops = 8

// step executes one instruction on v with every other vCPU stopped. It
// runs on v's thread. overWait makes a step of a halt (with an irqchip)
// wait for the interrupt and its handler (haltstep_linux.go); resuming
// from a breakpoint steps the bare instruction.
func (v *vcpu) step(overWait bool) vmm.Stop {
	m := v.m
	start := v.regs()
	pc := v.pc() // linear; start.RIP is what the CPU saves in a frame
	mode := x86.DecodeMode(v.sregs())

	// Lift our own breakpoint under PC for this one instruction.
	lifted := m.swAt(v, pc)
	v.lift(lifted)
	skip := m.dbg.execSlot(pc)

	inst, decErr := v.decode(pc, mode)
	if target, ok := v.haltTarget(pc, inst, decErr == nil, overWait); ok {
		relift := false
		if target == pc && lifted != nil {
			// Halted: woken, the vCPU runs into the breakpoint at pc.
			v.replant(lifted)
			relift = true
		}
		if s, ok := v.runTo(target); ok {
			if !relift {
				v.replant(lifted)
			}
			return s
		}
		if relift {
			v.lift(lifted)
		}
	}

	v.markLoadedDescriptors()
	var traps []trap
	if decErr != nil || inst.MayFault {
		traps = m.plantTraps(v, pc)
	}
	single := true
	if decErr == nil && inst.Kind == disasm.KindIret {
		if t, ok := m.plantIretTarget(v, mode); ok {
			traps = append(traps, t)
			single = false
		}
	}
	kgs, kgsOK := v.kgs, v.kgsOK
	s := v.stepLoop(start, inst, decErr == nil, skip, single)
	if kgsOK && single && decErr == nil && !inst.WritesMSR {
		// One instruction ran, and not one that writes an MSR: the
		// IA32_KERNEL_GS_BASE read before it holds (no KVM_GET_MSRS at
		// every step of a session's stepping loops).
		v.kgs, v.kgsOK = kgs, true
	}
	if decErr != nil || inst.LoadsFlags {
		v.rearm = true
	}
	enteredHandler := s.Reason == vmm.ReasonStep && m.isTrapAt(v, traps, s.PC)
	m.removeTraps(traps)

	v.replant(lifted)
	if start.RFLAGS&x86.FlagTF == 0 {
		if decErr == nil && inst.Pushf && s.Reason == vmm.ReasonStep && !enteredHandler {
			v.clearPushedTF(v.kregs.RSP, inst.PushSize)
		}
		if enteredHandler {
			v.clearFrameTF(mode, start.RIP, inst)
		}
	}
	return s
}

// lift takes our breakpoint bp (if any) out of guest memory.
func (v *vcpu) lift(bp *swbp) {
	if bp == nil {
		return
	}
	m := v.m
	m.dbg.mu.Lock()
	m.mem.ram[bp.gpa] = bp.orig
	m.dbg.mu.Unlock()
}

// replant puts back a breakpoint step lifted for its one instruction.
func (v *vcpu) replant(lifted *swbp) {
	m := v.m
	if lifted != nil && m.dbg.sw[lifted.gpa] == lifted {
		m.dbg.mu.Lock()
		m.mem.ram[lifted.gpa] = m.plantByte()
		m.dbg.mu.Unlock()
	}
}

// decode decodes the instruction at pc, from a small cache keyed by PC
// and checked against the current bytes.
func (v *vcpu) decode(pc uint64, mode x86.Mode) (disasm.Inst, error) {
	var code [disasm.MaxLen]byte
	n := v.peekCode(code[:], pc)
	c := &v.insns[pc%uint64(len(v.insns))]
	if c.Len > 0 && c.PC == pc && c.Mode() == mode && c.Len <= n && bytes.Equal(c.Bytes, code[:c.Len]) {
		return *c, nil
	}
	inst, err := disasm.Decode(code[:n], mode, pc)
	if err == nil {
		*c = inst
	}
	return inst, err
}

// peekCode reads up to len(p) instruction bytes at va (shadowed).
func (v *vcpu) peekCode(p []byte, va uint64) int {
	n := 0
	for n < len(p) {
		pa, rem, err := v.m.translate(v, va+uint64(n))
		if err != nil {
			break
		}
		c := uint64(len(p) - n)
		if c > rem {
			c = rem
		}
		v.m.readPhys(p[n:n+int(c)], pa)
		n += int(c)
	}
	return n
}

// stepLoop runs stepped entries until the instruction has completed.
func (v *vcpu) stepLoop(start x86.Regs, inst disasm.Inst, decoded bool, skip int, single bool) vmm.Stop {
	m := v.m
	pc := start.RIP
	prev := start
	dups := 0
	for {
		if err := v.setGuestDebug(m.dbg.guestDebug(v, single, skip), v.rearm); err != nil {
			return v.failed(err)
		}
		v.rearm = false
		reason, err := v.enter()
		if err == errInterrupted {
			if v.paused.Load() {
				return vmm.Stop{Reason: vmm.ReasonNone, PC: v.pc()}
			}
			v.rearm = true
			continue
		}
		if err != nil {
			return v.failed(err)
		}
		s, out := v.classifyExit(reason, true)
		switch out {
		case outStop:
			return s
		case outAgain:
			continue
		}

		// A plain step stop. Same RIP: the instruction is not done yet
		// (rep string chunk, duplicate trap) unless it jumps to itself.
		now := v.regs()
		if now.RIP == pc && !(decoded && inst.SelfLoop()) {
			if decoded && inst.Rep && now != prev {
				prev = now
				continue
			}
			if now == prev && dups < maxDuplicateStops {
				dups++
				continue
			}
		}
		if decoded && inst.Kind == disasm.KindHalt && v.pc() == inst.Next() && !m.irqchip {
			v.halted = true
		}
		return s
	}
}

// completeStep finishes an I/O or MMIO access inside a step; ok=false
// means the completion itself failed or stopped for another reason.
func (v *vcpu) completeStep() (vmm.Stop, bool) {
	reason, err := v.complete()
	v.rearm = true
	if err != nil {
		return v.failed(err), false
	}
	if reason == kvmsys.KVM_EXIT_DEBUG {
		if s, ok := v.m.dbg.classifyDebug(v, true); ok && s.Reason == vmm.ReasonWatchpoint {
			return s, false
		}
	}
	return vmm.Stop{}, true
}

// trapOrBreakpoint: the stepped instruction led to one of our breakpoint
// bytes at va (an exception handler's entry, or a user breakpoint there).
// The step ends there, before that instruction.
func (v *vcpu) trapOrBreakpoint(va uint64) (vmm.Stop, bool) {
	m := v.m
	pa, _, err := m.translate(v, va)
	if err != nil {
		return vmm.Stop{}, false
	}
	if _, ok := m.dbg.traps[pa]; ok || m.dbg.sw[pa] != nil {
		return vmm.Stop{Reason: vmm.ReasonStep, PC: va}, true
	}
	return vmm.Stop{}, false
}

// trap is one temporary breakpoint on an exception handler.
type trap struct {
	va, gpa uint64
}

// trapCache remembers the handler addresses of the last IDT seen, keyed by
// everything that decides them: the IDT register, the paging state and
// the IDT's bytes (compared on every use, so a guest that rewrites a gate
// is noticed). Like the CPU's TLB, it assumes a mapping does not change
// under an unchanged CR3 between two steps.
type trapCache struct {
	key   [6]uint64
	idt   []byte
	traps []trap
}

// plantTraps puts a temporary breakpoint on the handler of each present
// IDT vector 0-31 (except at pc itself).
func (m *Machine) plantTraps(v *vcpu, pc uint64) []trap {
	if m.host.SWBreakpoint == swbpNone {
		return nil
	}
	k := &v.ksregs
	if k.CR0&x86.CR0PE == 0 || k.IDT.Limit == 0 {
		return nil
	}
	long := k.EFER&x86.EFERLMA != 0
	gate := 8
	if long {
		gate = 16
	}
	count := (int(k.IDT.Limit) + 1) / gate
	if count > 32 {
		count = 32
	}
	if count == 0 {
		return nil
	}
	c := &v.traps
	if cap(c.idt) < count*gate {
		c.idt = make([]byte, count*gate)
	}
	var buf [32 * 16]byte
	idt := buf[:count*gate]
	if n := v.peekCode(idt, k.IDT.Base); n < len(idt) {
		idt = idt[:n-n%gate]
	}
	key := [6]uint64{k.IDT.Base, uint64(k.IDT.Limit), k.CR0, k.CR3, k.CR4, k.EFER}
	if key != c.key || !bytes.Equal(idt, c.idt) {
		c.key = key
		c.idt = append(c.idt[:0], idt...)
		c.traps = c.traps[:0]
		for i := 0; i+gate <= len(idt); i += gate {
			g := idt[i:]
			if g[5]&0x80 == 0 || g[5]&0x0f == 5 { // not present, or task gate
				continue
			}
			off := uint64(binary.LittleEndian.Uint16(g[0:])) | uint64(binary.LittleEndian.Uint16(g[6:]))<<16
			if long {
				off |= uint64(binary.LittleEndian.Uint32(g[8:])) << 32
			}
			pa, _, err := m.translate(v, off)
			if err != nil {
				continue
			}
			c.traps = append(c.traps, trap{va: off, gpa: pa})
		}
	}
	out := v.trapBuf[:0]
	plant := m.plantByte()
	m.dbg.mu.Lock()
	defer m.dbg.mu.Unlock()
	for _, t := range c.traps {
		if t.va == pc {
			continue
		}
		if _, dup := m.dbg.traps[t.gpa]; dup || m.dbg.sw[t.gpa] != nil {
			continue
		}
		m.dbg.traps[t.gpa] = m.mem.ram[t.gpa]
		m.mem.ram[t.gpa] = plant
		out = append(out, t)
	}
	v.trapBuf = out
	return out
}

// plantIretTarget puts a temporary breakpoint at the address an iret at
// RIP returns to (the first slot of its frame).
func (m *Machine) plantIretTarget(v *vcpu, mode x86.Mode) (trap, bool) {
	w := 8
	if mode != 64 {
		w = 4
	}
	var b [8]byte
	if v.peekCode(b[:w], v.kregs.RSP) < w {
		return trap{}, false
	}
	target := binary.LittleEndian.Uint64(b[:])
	if w == 4 {
		target &= 0xffffffff
	}
	return m.plantTrapAt(v, target)
}

// plantTrapAt puts a temporary breakpoint at target (unless one of ours is
// there already).
func (m *Machine) plantTrapAt(v *vcpu, target uint64) (trap, bool) {
	pa, _, err := m.translate(v, target)
	if err != nil {
		return trap{}, false
	}
	m.dbg.mu.Lock()
	defer m.dbg.mu.Unlock()
	if _, dup := m.dbg.traps[pa]; dup || m.dbg.sw[pa] != nil {
		return trap{va: target, gpa: pa}, true
	}
	m.dbg.traps[pa] = m.mem.ram[pa]
	m.mem.ram[pa] = m.plantByte()
	return trap{va: target, gpa: pa}, true
}

func (m *Machine) removeTraps(ts []trap) {
	m.dbg.mu.Lock()
	defer m.dbg.mu.Unlock()
	for _, t := range ts {
		if orig, ok := m.dbg.traps[t.gpa]; ok {
			m.mem.ram[t.gpa] = orig
			delete(m.dbg.traps, t.gpa)
		}
	}
}

func (m *Machine) isTrapAt(v *vcpu, ts []trap, va uint64) bool {
	for _, t := range ts {
		if t.va == va {
			return true
		}
	}
	return false
}

// clearPushedTF clears TF in an RFLAGS image the guest pushed (size bytes
// at the stack pointer).
func (v *vcpu) clearPushedTF(sp uint64, size int) {
	var b [8]byte
	if size < 2 || size > 8 || v.peekCode(b[:size], sp) < size {
		return
	}
	if b[1]&1 == 0 { // bit 8
		return
	}
	b[1] &^= 1
	v.pokeData(b[:size], sp)
}

// clearFrameTF clears TF in the RFLAGS slot of the exception frame the
// step just created, located by the return address it holds.
func (v *vcpu) clearFrameTF(mode x86.Mode, rip uint64, inst disasm.Inst) {
	w := 8
	if mode != 64 {
		w = 4
	}
	sp := v.kregs.RSP
	var b [3 * 8]byte
	if v.peekCode(b[:3*w], sp) < 3*w {
		return
	}
	word := func(i int) uint64 {
		if w == 8 {
			return binary.LittleEndian.Uint64(b[i*8:])
		}
		return uint64(binary.LittleEndian.Uint32(b[i*4:]))
	}
	ret := func(x uint64) bool { return x == rip || (inst.Len > 0 && x == rip+uint64(inst.Len)) }
	var flagsAt uint64
	switch {
	case ret(word(0)):
		flagsAt = sp + uint64(2*w)
	case ret(word(1)):
		flagsAt = sp + uint64(3*w) // an error code sits below RIP
	default:
		return
	}
	v.clearPushedTF(flagsAt, w)
}

// pokeData writes p at guest-virtual va (through the breakpoint shadow).
func (v *vcpu) pokeData(p []byte, va uint64) {
	for n := 0; n < len(p); {
		pa, rem, err := v.m.translate(v, va+uint64(n))
		if err != nil {
			return
		}
		c := uint64(len(p) - n)
		if c > rem {
			c = rem
		}
		v.m.writePhys(p[n:n+int(c)], pa)
		n += int(c)
	}
}

func (m *Machine) isClosed() bool {
	select {
	case <-m.closed:
		return true
	default:
		return false
	}
}
