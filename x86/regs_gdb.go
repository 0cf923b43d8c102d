package x86

// GDBReg describes one register in a GDB remote 'g' packet.
type GDBReg struct {
	Name string
	Size int // bytes
}

// GDBCore64 is the register block of GDB's features/i386/64bit-core.xml
// (without the x87 part), which is what stubs that serve no target.xml send
// first in a 'g' reply: rax rbx rcx rdx rsi rdi rbp rsp r8-r15 rip (8
// bytes each), eflags and the six selectors (4 bytes each). bhyve's stub
// sends exactly this; QEMU appends more (see its target.xml).
var GDBCore64 = []GDBReg{
	{"rax", 8}, {"rbx", 8}, {"rcx", 8}, {"rdx", 8}, {"rsi", 8}, {"rdi", 8}, {"rbp", 8}, {"rsp", 8},
	{"r8", 8}, {"r9", 8}, {"r10", 8}, {"r11", 8}, {"r12", 8}, {"r13", 8}, {"r14", 8}, {"r15", 8},
	{"rip", 8}, {"eflags", 4}, {"cs", 4}, {"ss", 4}, {"ds", 4}, {"es", 4}, {"fs", 4}, {"gs", 4},
}

// GDBSet stores a value a GDB register layout names into the neutral
// register types. It knows the names of 64bit-core.xml, 64bit-segments.xml
// and QEMU's i386-64bit.xml (cr0 … efer, fs_base …). It reports false for
// registers vmdap does not model (x87, SSE).
func GDBSet(name string, v uint64, r *Regs, s *SRegs) bool {
	if name == "eflags" {
		r.RFLAGS = v
		return true
	}
	if r.Set(name, v) {
		return true
	}
	if seg := s.SegmentByName(name); seg != nil {
		seg.Selector = uint16(v)
		return true
	}
	return s.Set(name, v)
}

// GDBGet is GDBSet's inverse.
func GDBGet(name string, r *Regs, s *SRegs) (uint64, bool) {
	if name == "eflags" {
		return r.RFLAGS, true
	}
	if v, ok := r.Get(name); ok {
		return v, true
	}
	return s.Get(name)
}
