package session

import (
	"slices"

	"vmdap/vmm"
	"vmdap/x86/disasm"
)

// loopSteps is how many single steps a line step takes in one line's range
// before it runs the guest to the range's exits instead: a line that
// loops (a wait for another vCPU, while (!flag);, or a long one-line
// loop) would otherwise be stepped forever with every other vCPU stopped,
// where gdb's next (scheduler-locking off) and Delve's let them run.
const loopSteps = 256

// rangeExits are the addresses where the code of [lo, hi) can leave it:
// the targets of its direct jumps that lie outside it, and the address
// after its last instruction. ok is false where they cannot all be known
// by decoding (an indirect jump, a return, an interrupt or system call, an
// undecodable byte) or where the range holds the entry of an inlined
// call (a next stops at one made from another line). calls says whether
// the range calls out.
func (s *Session) rangeExits(v int, lo, hi uint64) (exits []uint64, calls, ok bool) {
	pc := lo
	for pc < hi {
		in, err := s.decodeAt(v, pc)
		if err != nil || in.Len == 0 || s.inlineEntries(pc) > 0 && pc != lo {
			return nil, false, false
		}
		switch in.Kind {
		case disasm.KindRet, disasm.KindIret, disasm.KindSyscall, disasm.KindInt:
			return nil, false, false
		case disasm.KindCall:
			calls = true
		case disasm.KindJump, disasm.KindCondJump:
			if !in.HasTarget {
				return nil, false, false
			}
			if in.Target < lo || in.Target >= hi {
				exits = append(exits, in.Target)
			}
		}
		next := in.Next()
		if next >= hi && in.Kind != disasm.KindJump {
			exits = append(exits, next)
		}
		pc = next
	}
	slices.Sort(exits)
	return slices.Compact(exits), calls, len(exits) > 0
}

// runOutOfRange runs the guest, every vCPU, until vCPU v leaves [lo, hi)
// by one of its exits, with temporary breakpoints there, in the frame
// whose stack pointer is sp or above. tried is false where it did not run
// (the exits are not all known, a breakpoint could not be placed, or the
// range calls out and the step is a step in, which enters the calls): the
// caller single-steps on.
func (s *Session) runOutOfRange(v int, lo, hi, sp uint64, stepIn bool) (r result, ok, tried bool) {
	exits, calls, known := s.rangeExits(v, lo, hi)
	if !known || calls && stepIn {
		return result{}, false, false
	}
	s.mu.Lock()
	hw, err := s.bps.useHW("")
	var placed []physKey
	for _, a := range exits {
		if err != nil {
			break
		}
		k := physKey{a, hw}
		if err = s.bps.insert(k, runToLet); err == nil {
			placed = append(placed, k)
		}
	}
	if err != nil {
		for _, k := range placed {
			s.bps.remove(k, runToLet)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return result{}, false, false
	}
	defer func() {
		s.mu.Lock()
		for _, k := range placed {
			s.bps.remove(k, runToLet)
		}
		s.mu.Unlock()
	}()
	r = s.cont(func(st vmm.Stop) bool {
		if st.VCPU != v || !slices.Contains(exits, st.PC) {
			return false
		}
		regs, err := s.t.Regs(v)
		return err == nil && regs.RSP >= sp
	})
	return r, r.reached, true
}
