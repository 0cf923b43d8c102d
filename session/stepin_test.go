package session

import (
	"testing"

	"vmdap/x86"
)

// TestFrameSetupLen: the frame setups gdb's amd64 and i386 prologue
// analysers skip on a step in, and the code they do not.
func TestFrameSetupLen(t *testing.T) {
	for _, c := range []struct {
		name string
		code []byte
		mode x86.Mode
		want int
	}{
		{"push rbp; mov rsp,rbp", []byte{0x55, 0x48, 0x89, 0xe5, 0xe8}, 64, 4},
		{"push rbp; mov rsp,rbp (8b ec)", []byte{0x55, 0x48, 0x8b, 0xec, 0x90}, 64, 4},
		{"endbr64; push rbp; mov rsp,rbp", []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5}, 64, 8},
		{"push rbp alone (frameless)", []byte{0x55, 0x0f, 0xaf, 0xff, 0x48, 0x89, 0xe5}, 64, 0},
		{"no push", []byte{0x89, 0x3d, 0x3e, 0x9e, 0x00, 0x00}, 64, 0},
		{"push ebp; mov esp,ebp", []byte{0x55, 0x89, 0xe5, 0x8b, 0x45, 0x08}, 32, 3},
		{"push ebp; mov esp,ebp; sub $0x18,esp; push ebx; push esi", []byte{0x55, 0x89, 0xe5, 0x83, 0xec, 0x18, 0x53, 0x56, 0x8b}, 32, 8},
		{"push ebp; mov esp,ebp; push edi", []byte{0x55, 0x8b, 0xec, 0x57, 0xc3}, 32, 4},
		{"push ebp; mov $0x3f8,eax; mov esp,ebp", []byte{0x55, 0xb8, 0xf8, 0x03, 0x00, 0x00, 0x89, 0xe5, 0x0f}, 32, 8},
		{"push ebp; xor eax,eax; mov esp,ebp", []byte{0x55, 0x31, 0xc0, 0x89, 0xe5}, 32, 5},
		{"push ebp; mov $1,eax; no mov esp,ebp", []byte{0x55, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3}, 32, 0},
		{"32-bit bytes of a 64-bit mov are not one", []byte{0x55, 0x89, 0xe5}, 64, 0},
		{"empty", nil, 64, 0},
	} {
		if got := frameSetupLen(c.code, c.mode); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
