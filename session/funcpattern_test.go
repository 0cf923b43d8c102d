package session

import (
	"strings"
	"testing"
)

// TestFunctionBreakpointPattern: a function breakpoint's name may be a
// shell pattern, as gdb's rbreak takes a regular expression: it binds at
// every function that matches (h_* is h_inc and h_dbl) and stops there;
// one that matches none, too many (more than maxPatternFuncs) or is
// malformed is refused saying so.
func TestFunctionBreakpointPattern(t *testing.T) {
	s, stops := valuesSession(t)
	defer func(n int) { maxPatternFuncs = n }(maxPatternFuncs)
	set := func(name string) BreakpointInfo {
		t.Helper()
		bi, err := s.SetFunctionBreakpoints([]FunctionBP{{Name: name}})
		if err != nil || len(bi) != 1 {
			t.Fatalf("%s: %+v %v", name, bi, err)
		}
		return bi[0]
	}
	for name, want := range map[string]string{
		"zz_*":  `no function matches "zz_*"`,
		"h_[*":  `bad pattern "h_[*"`,
		"h_[":   `no function named "h_["`, // not a pattern: no * or ?
		"*0xzz": `bad address "*0xzz"`,     // *0x… is an address, not a pattern
	} {
		if bi := set(name); bi.Verified || !strings.Contains(bi.Message, want) {
			t.Errorf("%s: %+v, want unverified: %s", name, bi, want)
		}
	}
	maxPatternFuncs = 1
	if bi := set("h_*"); bi.Verified || bi.State != BPFailed || bi.Message != `"h_*" matches 2 functions, more than 1: narrow the pattern` {
		t.Errorf("h_* with at most one function: %+v", bi)
	}
	maxPatternFuncs = 100
	for _, p := range []string{"h_d?l", "*_inc"} {
		if bi := set(p); !bi.Verified || bi.Message != "" {
			t.Errorf("%s: %+v, want verified at one function", p, bi)
		}
	}
	bi := set("h_*")
	if !bi.Verified || bi.Message != "2 locations" {
		t.Fatalf("h_*: %+v, want verified at h_inc and h_dbl", bi)
	}
	if err := s.Start(false); err != nil {
		t.Fatal(err)
	}
	if st := waitStop(t, stops, "h_inc"); st.Reason != StopFunctionBreakpoint || len(st.HitIDs) != 1 || st.HitIDs[0] != bi.ID {
		t.Fatalf("stop %+v, want breakpoint %d's", st, bi.ID)
	}
}
