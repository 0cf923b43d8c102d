package x86

// DWARF register numbers for x86-64 (System V psABI AMD64, Figure 3.36
// "DWARF Register Number Mapping"). Note the order differs from both KVM's
// kvm_regs (rax rbx rcx rdx …) and GDB's core set: 1 is rdx, 2 is rcx.
var dwarfNames = map[int]string{
	0: "rax", 1: "rdx", 2: "rcx", 3: "rbx", 4: "rsi", 5: "rdi", 6: "rbp", 7: "rsp",
	8: "r8", 9: "r9", 10: "r10", 11: "r11", 12: "r12", 13: "r13", 14: "r14", 15: "r15",
	16: "rip", // the return address column
	49: "rflags", 50: "es", 51: "cs", 52: "ss", 53: "ds", 54: "fs", 55: "gs",
	58: "fs_base", 59: "gs_base", 62: "tr", 63: "ldtr",
	64: "mxcsr", 65: "fctrl", 66: "fstat",
}

// The vector and x87 registers' numbers: 17-32 are xmm0-xmm15, 33-40
// st0-st7 (x86-64); 11-18 st0-st7, 21-28 xmm0-xmm7 (i386).
func init() {
	for i := 0; i < 16; i++ {
		dwarfNames[17+i] = "xmm" + itoa(uint64(i))
	}
	for i := 0; i < 8; i++ {
		dwarfNames[33+i] = "st" + itoa(uint64(i))
		dwarf32Names[11+i] = "st" + itoa(uint64(i))
		dwarf32Names[21+i] = "xmm" + itoa(uint64(i))
	}
}

// DWARFRegName returns the register a DWARF register number names.
func DWARFRegName(n int) (string, bool) {
	s, ok := dwarfNames[n]
	return s, ok
}

// DWARFRegNum returns the DWARF number of a register name.
func DWARFRegNum(name string) (int, bool) {
	for n, s := range dwarfNames {
		if s == name {
			return n, true
		}
	}
	return 0, false
}

// DWARFReg returns the value of DWARF register n from regs (general
// registers and rip only; others report false).
func DWARFReg(r *Regs, n int) (uint64, bool) {
	name, ok := dwarfNames[n]
	if !ok {
		return 0, false
	}
	return r.Get(name)
}

// DWARF register numbers for i386 (System V psABI i386, Table 2.14
// "DWARF Register Number Mapping"): 1 is ecx and 2 edx, unlike x86-64's
// rdx and rcx; 8 is the return address (eip).
var dwarf32Names = map[int]string{
	0: "eax", 1: "ecx", 2: "edx", 3: "ebx", 4: "esp", 5: "ebp", 6: "esi", 7: "edi",
	8: "eip", 9: "eflags", 37: "fctrl", 38: "fstat", 39: "mxcsr",
	40: "es", 41: "cs", 42: "ss", 43: "ds", 44: "fs", 45: "gs",
}

// DWARF32RegName returns the register an i386 DWARF register number names.
func DWARF32RegName(n int) (string, bool) {
	s, ok := dwarf32Names[n]
	return s, ok
}
