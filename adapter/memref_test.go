package adapter

import "testing"

// TestParseMemRef: a memory reference is an address; one written as
// vmdap shows a pointer (its target named after it) is that address.
func TestParseMemRef(t *testing.T) {
	for in, want := range map[string]uint64{
		"0x104000": 0x104000, " 0x10 ": 0x10, "4096": 4096,
		"0x104000 <counter>": 0x104000, "0x102054 <points+4>": 0x102054,
	} {
		if got, err := parseMemRef(in); err != nil || got != want {
			t.Errorf("parseMemRef(%q) = %#x, %v; want %#x", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "counter", "<counter>", "0x10 <", "0xzz <a>"} {
		if _, err := parseMemRef(bad); err == nil {
			t.Errorf("parseMemRef(%q) took it", bad)
		}
	}
}
