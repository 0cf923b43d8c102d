package x86

import "bytes"

// FrameSetupLen is the length of the frame setup at the start of code, as
// gdb's x86 prologue analysers read it, or 0 when there is none: an
// optional endbr, push %rbp and mov %rsp,%rbp (either encoding); in 32-bit
// code then a sub of %esp and pushes of registers.
func FrameSetupLen(code []byte, mode Mode) int {
	i := 0
	endbr := []byte{0xf3, 0x0f, 0x1e, 0xfa}
	if mode != 64 {
		endbr = []byte{0xf3, 0x0f, 0x1e, 0xfb}
	}
	if bytes.HasPrefix(code, endbr) {
		i = len(endbr)
	}
	if i >= len(code) || code[i] != 0x55 { // push %rbp
		return 0
	}
	i++
	movs := [][]byte{{0x48, 0x89, 0xe5}, {0x48, 0x8b, 0xec}} // mov %rsp,%rbp
	if mode != 64 {
		movs = [][]byte{{0x89, 0xe5}, {0x8b, 0xec}} // mov %esp,%ebp
		// GCC moves some scratch-register loads in between, which
		// i386_analyze_frame_setup steps over (serial_putc's
		// mov $0x3f8,%eax at -m32 -O2).
		for {
			n := frameSetupSkip(code[i:])
			if n == 0 {
				break
			}
			i += n
		}
	}
	found := false
	for _, m := range movs {
		if bytes.HasPrefix(code[i:], m) {
			i += len(m)
			found = true
			break
		}
	}
	if !found {
		return 0 // push %rbp alone: frameless, gdb stops at the entry
	}
	if mode == 64 {
		return i
	}
	switch {
	case bytes.HasPrefix(code[i:], []byte{0x83, 0xec}) && len(code) >= i+3: // sub $imm8,%esp
		i += 3
	case bytes.HasPrefix(code[i:], []byte{0x81, 0xec}) && len(code) >= i+6: // sub $imm32,%esp
		i += 6
	}
	for i < len(code) && code[i] >= 0x50 && code[i] <= 0x57 { // push %reg
		i++
	}
	return i
}

// frameSetupSkips are the instructions gdb's i386 prologue analyser skips
// between push %ebp and mov %esp,%ebp (i386_frame_setup_skip_insns):
// loads of immediates and memory into %eax, %ecx and %edx and stores of
// them, and clearing a register: the length, and the bytes after a mask.
var frameSetupSkips = []struct {
	n          int
	insn, mask []byte
}{
	{2, []byte{0xb0, 0x00}, []byte{0xfa, 0x00}}, // movb $imm8,%al/%cl/%ah/%ch
	{2, []byte{0xb2, 0x00}, []byte{0xfb, 0x00}}, // movb $imm8,%dl/%dh
	{5, []byte{0xb8}, []byte{0xfe}},             // movl $imm32,%eax/%ecx
	{5, []byte{0xba}, []byte{0xff}},             // movl $imm32,%edx
	{5, []byte{0xa1}, []byte{0xff}},             // movl m32,%eax
	{6, []byte{0x89, 0x05}, []byte{0xff, 0xf7}}, // movl %eax/%ecx,m32
	{6, []byte{0x89, 0x15}, []byte{0xff, 0xff}}, // movl %edx,m32
	{6, []byte{0x8b, 0x05}, []byte{0xff, 0xf7}}, // movl m32,%eax/%ecx
	{6, []byte{0x8b, 0x15}, []byte{0xff, 0xff}}, // movl m32,%edx
	{2, []byte{0x29, 0xc0}, []byte{0xfd, 0xc0}}, // subl r32,r32
	{2, []byte{0x31, 0xc0}, []byte{0xfd, 0xc0}}, // xorl r32,r32
}

// frameSetupSkip is the length of a frameSetupSkips instruction at the
// start of code, or 0.
func frameSetupSkip(code []byte) int {
next:
	for _, k := range frameSetupSkips {
		if len(code) < k.n {
			continue
		}
		for j, b := range k.insn {
			if code[j]&k.mask[j] != b {
				continue next
			}
		}
		return k.n
	}
	return 0
}
