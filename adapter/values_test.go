package adapter_test

import (
	"fmt"
	"regexp"
	"testing"

	"vmdap/vmm/vmmtest"
)

// enumSuffix is the value vmdap adds after an enumerator's name, or a
// flag enumeration's bits: P_W (2), (P_R | P_X) (5).
var enumSuffix = regexp.MustCompile(` \(-?\d+\)$`)

// TestValuesMatchGDBOverDAP: the values guest stopped in main64 on
// vmdap's VMM, its globals evaluated over DAP (the watch view's and the
// debug console's path) and their elements expanded (the variables
// view's) show gdb 13's types and values for the same ELF file:
// _Atomic, __int128, long double, flag enums, char arrays with NULs,
// qualified and typedef'd pointers, pointers into data objects.
func TestValuesMatchGDBOverDAP(t *testing.T) {
	g := vmmtest.BuildGuest(t, "values")
	exprs := []string{"atomic_ctr", "i128", "u128", "ld_g", "f128", "fl_arr", "db_g", "perms", "perms_odd", "sgn",
		"ubytes", "sbytes", "grid", "cube", "greeting", "vp_const", "cfp", "cvpp", "handlers", "ppt", "ppt_bytes",
		"in_name", "nowhere", "past_points"}
	kids := map[string]int{"handlers": 3, "grid": 2, "fl_arr": 2}
	for e, n := range kids {
		for i := range n {
			exprs = append(exprs, fmt.Sprintf("%s[%d]", e, i))
		}
	}
	want := vmmtest.GDBPrint(t, g.Path, exprs)
	e := launchProgram(t, g.Path, nil)
	_, err := e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "main64"}}})
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("function breakpoint")
	fid := e.top().Id
	same := func(what, got, gotType string, w vmmtest.Shown) {
		t.Helper()
		if gotType != w.Type {
			t.Errorf("%s: type %q, gdb %q", what, gotType, w.Type)
		}
		if got != w.Text && enumSuffix.ReplaceAllString(got, "") != w.Text {
			t.Errorf("%s = %s, gdb %s", what, got, w.Text)
		}
	}
	for _, x := range exprs {
		if _, ok := want[x]; !ok || regexp.MustCompile(`\[\d+\]$`).MatchString(x) {
			continue
		}
		r, err := e.c.Evaluate(fid, x)
		if err != nil {
			t.Errorf("evaluate %s: %v", x, err)
			continue
		}
		same(x, r.Body.Result, r.Body.Type, want[x])
		if n, ok := kids[x]; ok {
			vs, err := e.c.Variables(r.Body.VariablesReference)
			if err != nil || len(vs.Body.Variables) != n {
				t.Fatalf("elements of %s: %+v %v", x, vs, err)
			}
			for i, v := range vs.Body.Variables {
				el := fmt.Sprintf("%s[%d]", x, i)
				same(el+" (expanded)", v.Value, v.Type, want[el])
			}
		}
	}
}
