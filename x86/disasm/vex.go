package disasm

import (
	"fmt"
	"strings"

	"vmdap/x86"
)

// VEX-encoded instructions (AVX; SDM Vol. 2 §2.3), which x86asm does not
// decode: vmdap works out their length so that disassembly and stepping
// stay aligned after them, and names the few it knows. In 16- and 32-bit
// code C4/C5 are VEX only when the next byte's top bits are 11 (else LES
// or LDS).

// vexImm8 lists the opcodes of map 0F that take an 8-bit immediate (map
// 0F3A always does; map 0F38 never).
var vexImm8 = map[byte]bool{0x70: true, 0x71: true, 0x72: true, 0x73: true, 0xc2: true, 0xc4: true, 0xc5: true, 0xc6: true}

// decodeVEX returns the instruction at code when it is VEX-encoded; ok is
// false when it is not (or is malformed: x86asm then says why).
func decodeVEX(code []byte, mode x86.Mode, pc uint64) (Inst, bool) {
	i := 0
	// Legacy prefixes before VEX make it #UD; accept none.
	if len(code) < 3 || (code[0] != 0xc4 && code[0] != 0xc5) {
		return Inst{}, false
	}
	if mode != 64 && code[1]&0xc0 != 0xc0 {
		return Inst{}, false // LES/LDS
	}
	vmap := byte(1)
	switch code[0] {
	case 0xc5:
		i = 2
	case 0xc4:
		vmap = code[1] & 0x1f
		i = 3
	}
	if i >= len(code) || vmap < 1 || vmap > 3 {
		return Inst{}, false
	}
	op := code[i]
	i++
	name := ""
	if vmap == 1 && op == 0x77 {
		// vzeroupper (L=0) / vzeroall (L=1): no ModRM.
		l := code[i-2] & 0x04
		if code[0] == 0xc4 {
			l = code[2] & 0x04
		}
		name = "vzeroupper"
		if l != 0 {
			name = "vzeroall"
		}
	} else {
		n, ok := modrmLen(code[i:], mode)
		if !ok {
			return Inst{}, false
		}
		i += n
		if vmap == 3 || vmap == 1 && vexImm8[op] {
			i++
		}
	}
	if i > len(code) || i > MaxLen {
		return Inst{}, false
	}
	d := Inst{PC: pc, Len: i, Bytes: append([]byte(nil), code[:i]...), mode: mode, MayFault: true, vex: name}
	if name == "" {
		var hexs []string
		for _, b := range code[:i] {
			hexs = append(hexs, fmt.Sprintf("%02x", b))
		}
		d.vex = "(vex) " + strings.Join(hexs, " ")
	}
	return d, true
}

// modrmLen is the length of a ModRM byte with its SIB and displacement
// (32- and 64-bit addressing; 16-bit addressing in 16-bit code).
func modrmLen(b []byte, mode x86.Mode) (int, bool) {
	if len(b) < 1 {
		return 0, false
	}
	m := b[0]
	mod, rm := m>>6, m&7
	n := 1
	if mode == 16 {
		switch {
		case mod == 0 && rm == 6:
			n += 2
		case mod == 1:
			n++
		case mod == 2:
			n += 2
		}
		return n, n <= len(b)
	}
	if mod != 3 && rm == 4 {
		if len(b) < 2 {
			return 0, false
		}
		sib := b[1]
		n++
		if mod == 0 && sib&7 == 5 {
			n += 4
		}
	}
	switch {
	case mod == 0 && rm == 5:
		n += 4
	case mod == 1:
		n++
	case mod == 2:
		n += 4
	}
	return n, n <= len(b)
}
