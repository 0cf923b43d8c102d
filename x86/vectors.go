package x86

import "fmt"

// Exception vectors (SDM Vol. 3A §6.3.1, Table 6-1).
const (
	VecDE  = 0 // divide error
	VecDB  = 1 // debug
	VecNMI = 2
	VecBP  = 3 // breakpoint (int3)
	VecOF  = 4
	VecBR  = 5
	VecUD  = 6 // invalid opcode
	VecNM  = 7
	VecDF  = 8 // double fault
	VecTS  = 10
	VecNP  = 11
	VecSS  = 12
	VecGP  = 13 // general protection
	VecPF  = 14 // page fault
	VecMF  = 16
	VecAC  = 17
	VecMC  = 18
	VecXM  = 19
	VecVE  = 20
	VecCP  = 21
)

// Vector describes one exception vector.
type Vector struct {
	Num       int
	Mnemonic  string
	Name      string
	ErrorCode bool // the CPU pushes an error code
}

// Vectors lists the architectural exceptions 0-21.
var Vectors = []Vector{
	{0, "#DE", "Divide Error", false},
	{1, "#DB", "Debug", false},
	{2, "NMI", "Non-Maskable Interrupt", false},
	{3, "#BP", "Breakpoint", false},
	{4, "#OF", "Overflow", false},
	{5, "#BR", "BOUND Range Exceeded", false},
	{6, "#UD", "Invalid Opcode", false},
	{7, "#NM", "Device Not Available", false},
	{8, "#DF", "Double Fault", true},
	{10, "#TS", "Invalid TSS", true},
	{11, "#NP", "Segment Not Present", true},
	{12, "#SS", "Stack-Segment Fault", true},
	{13, "#GP", "General Protection", true},
	{14, "#PF", "Page Fault", true},
	{16, "#MF", "x87 Floating-Point Error", false},
	{17, "#AC", "Alignment Check", true},
	{18, "#MC", "Machine Check", false},
	{19, "#XM", "SIMD Floating-Point Exception", false},
	{20, "#VE", "Virtualization Exception", false},
	{21, "#CP", "Control Protection Exception", true},
}

// VectorInfo returns the description of an exception vector.
func VectorInfo(n int) Vector {
	for _, v := range Vectors {
		if v.Num == n {
			return v
		}
	}
	return Vector{Num: n, Mnemonic: fmt.Sprintf("#%d", n), Name: fmt.Sprintf("vector %d", n)}
}

// PageFaultReason decodes a #PF error code (SDM Vol. 3A §4.7, Figure 4-12).
func PageFaultReason(code uint64) string {
	s := "not present"
	if code&1 != 0 {
		s = "protection violation"
	}
	if code&2 != 0 {
		s += ", write"
	} else {
		s += ", read"
	}
	if code&4 != 0 {
		s += ", user mode"
	}
	if code&16 != 0 {
		s += ", instruction fetch"
	}
	return s
}
