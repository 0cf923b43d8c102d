package x86

import (
	"fmt"
	"sort"
	"strings"
)

// Regs holds the general-purpose registers, RIP and RFLAGS of one CPU.
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// Segment is a segment register with its hidden descriptor cache.
type Segment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	Type     uint8
	Present  bool
	DPL      uint8
	DB       bool // default operand size (D/B)
	S        bool // code/data (true) or system (false) descriptor
	L        bool // 64-bit code segment
	G        bool // granularity
	AVL      bool
	Unusable bool
}

// Attributes packs the descriptor attribute bits the way VMX and GDB's
// "*_attr" registers do (type in bits 0-3, S 4, DPL 5-6, P 7, AVL 12, L 13,
// D/B 14, G 15).
func (s Segment) Attributes() uint32 {
	a := uint32(s.Type & 0xf)
	if s.S {
		a |= 1 << 4
	}
	a |= uint32(s.DPL&3) << 5
	if s.Present {
		a |= 1 << 7
	}
	if s.AVL {
		a |= 1 << 12
	}
	if s.L {
		a |= 1 << 13
	}
	if s.DB {
		a |= 1 << 14
	}
	if s.G {
		a |= 1 << 15
	}
	if s.Unusable {
		a |= 1 << 16
	}
	return a
}

// DescriptorFlags packs the attribute bits where a segment descriptor's
// high doubleword has them (SDM Vol. 3A §3.4.5, Figure 3-8): type in
// bits 8-11, S 12, DPL 13-14, P 15, AVL 20, L 21, D/B 22, G 23 (the
// base and limit bits left 0). QEMU keeps a segment's flags so (its
// SegmentCache, and the QEMUCPUSegment of its dump-guest-memory notes).
func (s Segment) DescriptorFlags() uint32 { return (s.Attributes() & 0xffff) << 8 }

// SetDescriptorFlags sets the attribute bits from a descriptor's high
// doubleword, as DescriptorFlags packs them.
func (s *Segment) SetDescriptorFlags(f uint32) {
	s.Type = uint8(f >> 8 & 0xf)
	s.S = f&(1<<12) != 0
	s.DPL = uint8(f >> 13 & 3)
	s.Present = f&(1<<15) != 0
	s.AVL = f&(1<<20) != 0
	s.L = f&(1<<21) != 0
	s.DB = f&(1<<22) != 0
	s.G = f&(1<<23) != 0
}

// Table is a descriptor-table register (GDTR, IDTR).
type Table struct {
	Base  uint64
	Limit uint16
}

// SRegs holds the segment, descriptor-table and control registers and EFER.
type SRegs struct {
	CS, DS, ES, FS, GS, SS Segment
	TR, LDT                Segment
	GDT, IDT               Table
	CR0, CR2, CR3, CR4     uint64
	CR8                    uint64
	EFER                   uint64
	APICBase               uint64
	// KernelGSBase is IA32_KERNEL_GS_BASE, the base SWAPGS exchanges
	// with GS's: a kernel's own GS base while the CPU runs user code or
	// has just entered the kernel (0 where the backend cannot read it).
	KernelGSBase uint64
}

// DebugRegs holds DR0-DR3, DR6 and DR7.
type DebugRegs struct {
	DR  [4]uint64
	DR6 uint64
	DR7 uint64
}

// RegInfo describes one named register of the neutral register set.
type RegInfo struct {
	Name  string
	Group string // "general", "segment", "control", "debug"
	Bits  int
}

// generalNames lists Regs' fields in the order a person reads them.
var generalNames = []string{
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags",
}

// GeneralNames returns the names of the general registers (rax … rflags).
func GeneralNames() []string { return append([]string(nil), generalNames...) }

func (r *Regs) ptr(name string) *uint64 {
	switch strings.ToLower(name) {
	case "rax":
		return &r.RAX
	case "rbx":
		return &r.RBX
	case "rcx":
		return &r.RCX
	case "rdx":
		return &r.RDX
	case "rsi":
		return &r.RSI
	case "rdi":
		return &r.RDI
	case "rsp":
		return &r.RSP
	case "rbp":
		return &r.RBP
	case "r8":
		return &r.R8
	case "r9":
		return &r.R9
	case "r10":
		return &r.R10
	case "r11":
		return &r.R11
	case "r12":
		return &r.R12
	case "r13":
		return &r.R13
	case "r14":
		return &r.R14
	case "r15":
		return &r.R15
	case "rip", "pc":
		return &r.RIP
	case "rflags", "eflags":
		return &r.RFLAGS
	}
	return nil
}

// subreg describes a narrower name for part of a general register
// ("eax" is the low 32 bits of rax, "ah" bits 8-15).
type subreg struct {
	full  string
	shift uint
	bits  uint
}

var subregs = func() map[string]subreg {
	m := map[string]subreg{}
	for _, l := range []string{"a", "b", "c", "d"} {
		full := "r" + l + "x"
		m["e"+l+"x"] = subreg{full, 0, 32}
		m[l+"x"] = subreg{full, 0, 16}
		m[l+"l"] = subreg{full, 0, 8}
		m[l+"h"] = subreg{full, 8, 8}
	}
	for _, n := range []string{"si", "di", "bp", "sp"} {
		full := "r" + n
		m["e"+n] = subreg{full, 0, 32}
		m[n] = subreg{full, 0, 16}
		m[n+"l"] = subreg{full, 0, 8}
	}
	for i := 8; i <= 15; i++ {
		full := fmt.Sprintf("r%d", i)
		m[full+"d"] = subreg{full, 0, 32}
		m[full+"w"] = subreg{full, 0, 16}
		m[full+"b"] = subreg{full, 0, 8}
	}
	m["eip"] = subreg{"rip", 0, 32}
	return m
}()

// Get returns the value of a general register by name, including the
// 32/16/8-bit views ("eax", "ax", "al", "ah", "r8d" …).
func (r *Regs) Get(name string) (uint64, bool) {
	if p := r.ptr(name); p != nil {
		return *p, true
	}
	s, ok := subregs[strings.ToLower(name)]
	if !ok {
		return 0, false
	}
	v := *r.ptr(s.full)
	return (v >> s.shift) & (1<<s.bits - 1), true
}

// Set stores v into the named general register or its narrower view. As on
// hardware in 64-bit mode, writing a 32-bit view zero-extends into the full
// register; 16- and 8-bit views keep the other bits.
func (r *Regs) Set(name string, v uint64) bool {
	if p := r.ptr(name); p != nil {
		*p = v
		return true
	}
	s, ok := subregs[strings.ToLower(name)]
	if !ok {
		return false
	}
	p := r.ptr(s.full)
	if s.bits == 32 {
		*p = v & 0xffffffff
		return true
	}
	mask := uint64(1<<s.bits-1) << s.shift
	*p = (*p &^ mask) | ((v << s.shift) & mask)
	return true
}

// SegmentByName returns a pointer to the named segment register of s.
func (s *SRegs) SegmentByName(name string) *Segment {
	switch strings.ToLower(name) {
	case "cs":
		return &s.CS
	case "ds":
		return &s.DS
	case "es":
		return &s.ES
	case "fs":
		return &s.FS
	case "gs":
		return &s.GS
	case "ss":
		return &s.SS
	case "tr":
		return &s.TR
	case "ldtr", "ldt":
		return &s.LDT
	}
	return nil
}

// SegmentNames lists the segment registers in display order.
func SegmentNames() []string { return []string{"cs", "ds", "es", "fs", "gs", "ss", "tr", "ldtr"} }

// ControlNames lists the control registers and MSR-backed values of SRegs.
func ControlNames() []string {
	return []string{"cr0", "cr2", "cr3", "cr4", "cr8", "efer", "fs_base", "gs_base", "k_gs_base"}
}

// Get returns a control register or segment base by name ("cr3", "efer",
// "fs_base", "gdtr", "cs" for the selector, …).
func (s *SRegs) Get(name string) (uint64, bool) {
	n := strings.ToLower(name)
	switch n {
	case "cr0":
		return s.CR0, true
	case "cr2":
		return s.CR2, true
	case "cr3":
		return s.CR3, true
	case "cr4":
		return s.CR4, true
	case "cr8":
		return s.CR8, true
	case "efer":
		return s.EFER, true
	case "fs_base":
		return s.FS.Base, true
	case "gs_base":
		return s.GS.Base, true
	case "k_gs_base":
		return s.KernelGSBase, true
	case "gdtr", "gdt_base":
		return s.GDT.Base, true
	case "idtr", "idt_base":
		return s.IDT.Base, true
	}
	if seg := s.SegmentByName(n); seg != nil {
		return uint64(seg.Selector), true
	}
	return 0, false
}

// Set writes a control register or a segment base by name.
func (s *SRegs) Set(name string, v uint64) bool {
	switch strings.ToLower(name) {
	case "cr0":
		s.CR0 = v
	case "cr2":
		s.CR2 = v
	case "cr3":
		s.CR3 = v
	case "cr4":
		s.CR4 = v
	case "cr8":
		s.CR8 = v
	case "efer":
		s.EFER = v
	case "fs_base":
		s.FS.Base = v
	case "gs_base":
		s.GS.Base = v
	case "k_gs_base":
		s.KernelGSBase = v
	default:
		return false
	}
	return true
}

// Get returns a debug register by name ("dr0" … "dr3", "dr6", "dr7").
func (d *DebugRegs) Get(name string) (uint64, bool) {
	switch strings.ToLower(name) {
	case "dr0":
		return d.DR[0], true
	case "dr1":
		return d.DR[1], true
	case "dr2":
		return d.DR[2], true
	case "dr3":
		return d.DR[3], true
	case "dr6":
		return d.DR6, true
	case "dr7":
		return d.DR7, true
	}
	return 0, false
}

// Set writes a debug register by name.
func (d *DebugRegs) Set(name string, v uint64) bool {
	switch strings.ToLower(name) {
	case "dr0":
		d.DR[0] = v
	case "dr1":
		d.DR[1] = v
	case "dr2":
		d.DR[2] = v
	case "dr3":
		d.DR[3] = v
	case "dr6":
		d.DR6 = v
	case "dr7":
		d.DR7 = v
	default:
		return false
	}
	return true
}

// DebugNames lists the debug registers in display order.
func DebugNames() []string { return []string{"dr0", "dr1", "dr2", "dr3", "dr6", "dr7"} }

// IsRegisterName reports whether name is any register vmdap knows, in any
// group, including narrower views of the general registers.
func IsRegisterName(name string) bool {
	var r Regs
	var s SRegs
	var d DebugRegs
	if _, ok := r.Get(name); ok {
		return true
	}
	if _, ok := s.Get(name); ok {
		return true
	}
	_, ok := d.Get(name)
	return ok
}

// AllRegisterNames returns every register name, sorted, for completion.
func AllRegisterNames() []string {
	names := append(GeneralNames(), SegmentNames()...)
	names = append(names, ControlNames()...)
	names = append(names, DebugNames()...)
	names = append(names, FPRegNames...)
	for n := range subregs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
