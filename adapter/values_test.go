package adapter_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/session"
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
		"in_name", "nowhere", "past_points", "lds_word"}
	kids := map[string]int{"handlers": 3, "grid": 2, "fl_arr": 2}
	for e, n := range kids {
		for i := range n {
			exprs = append(exprs, fmt.Sprintf("%s[%d]", e, i))
		}
	}
	want := vmmtest.GDBPrint(t, g.Path, exprs)
	e := launchProgram(t, g.Path, nil)
	fid := e.startAt("main64")
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

// TestLargeArrayPaging: an array of 8192 elements says so
// (indexedVariables), and a variables request carries the elements it
// asks for (start, count) wherever they are, at most MaxElements of them:
// all of it asked for at once gives the first MaxElements and a note of
// how many more there are. An element past the first MaxElements can be
// set through its reference.
func TestLargeArrayPaging(t *testing.T) {
	g := vmmtest.BuildGuest(t, "values")
	e := launchProgram(t, g.Path, nil)
	fid := e.startAt("main64")
	r, err := e.c.Evaluate(fid, "big_arr")
	e.must(err)
	if r.Body.IndexedVariables != 8192 || r.Body.NamedVariables != 0 || r.Body.VariablesReference == 0 {
		t.Fatalf("big_arr: indexed %d, named %d, ref %d; want 8192 indexed elements", r.Body.IndexedVariables, r.Body.NamedVariables, r.Body.VariablesReference)
	}
	ref := r.Body.VariablesReference
	page := func(args map[string]any) []dap.Variable {
		t.Helper()
		args["variablesReference"] = ref
		m, err := e.c.Request("variables", args)
		e.must(err)
		return m.(*dap.VariablesResponse).Body.Variables
	}
	last := page(map[string]any{"filter": "indexed", "start": 8190, "count": 5})
	if len(last) != 2 || last[0].Name != "[8190]" || last[0].Value != "0" || last[1].Name != "[8191]" || last[1].Value != "8192" ||
		last[1].EvaluateName != "(big_arr)[8191]" {
		t.Fatalf("elements from 8190: %+v, want [8190] = 0 and [8191] = 8192", last)
	}
	mid := page(map[string]any{"start": 999, "count": 2})
	if len(mid) != 2 || mid[0].Value != "1000" || mid[1].Value != "1001" {
		t.Fatalf("elements 999 and 1000: %+v", mid)
	}
	if named := page(map[string]any{"filter": "named"}); len(named) != 0 {
		t.Fatalf("named children of an array: %+v", named)
	}
	all := page(map[string]any{})
	if len(all) != session.MaxElements+1 || all[0].Value != "1" || all[session.MaxElements-1].Name != fmt.Sprintf("[%d]", session.MaxElements-1) {
		t.Fatalf("all of big_arr: %d variables, want the first %d and a note", len(all), session.MaxElements)
	}
	if n := all[session.MaxElements]; !strings.Contains(n.Value, fmt.Sprint(8192-session.MaxElements, " more")) || n.VariablesReference != 0 {
		t.Fatalf("the note after the first %d elements: %+v", session.MaxElements, n)
	}
	big := page(map[string]any{"start": 100, "count": 5000})
	if len(big) != session.MaxElements+1 || big[0].Name != "[100]" {
		t.Fatalf("5000 elements from 100: %d variables (first %+v), want %d and a note", len(big), big[0], session.MaxElements)
	}
	m, err := e.c.Request("setVariable", map[string]any{"variablesReference": ref, "name": "[8191]", "value": "77"})
	e.must(err)
	if v := m.(*dap.SetVariableResponse).Body.Value; v != "77" {
		t.Fatalf("set big_arr[8191] = 77: %q", v)
	}
	if r, err := e.c.Evaluate(fid, "big_arr[8191]"); err != nil || r.Body.Result != "77" {
		t.Fatalf("big_arr[8191] after the set: %+v %v", r, err)
	}
}

// TestAnonymousMembers: an anonymous union or struct member is a row
// named as gdb's MI names it, with no expression of its own; its
// members' expressions reach them through the struct that holds them,
// as C does (anon_h.i), and evaluate to what the rows show.
func TestAnonymousMembers(t *testing.T) {
	g := vmmtest.BuildGuest(t, "values")
	e := launchProgram(t, g.Path, nil)
	fid := e.startAt("main64")
	r, err := e.c.Evaluate(fid, "anon_h")
	e.must(err)
	if r.Body.Result != `{kind: 3, {i: 16909060, b: "\004\003\002\001"}, {lo: -1, hi: 2}}` {
		t.Errorf("anon_h = %s", r.Body.Result)
	}
	kids, err := e.c.Variables(r.Body.VariablesReference)
	e.must(err)
	var names []string
	for _, k := range kids.Body.Variables {
		names = append(names, k.Name+"|"+k.EvaluateName)
	}
	if got := fmt.Sprint(names); got != "[kind|(anon_h).kind <anonymous union>| <anonymous struct>|]" {
		t.Fatalf("anon_h's rows: %s", got)
	}
	inner, err := e.c.Variables(kids.Body.Variables[2].VariablesReference)
	e.must(err)
	for _, k := range inner.Body.Variables {
		if got := e.eval(fid, k.EvaluateName); k.EvaluateName != "(anon_h)."+k.Name || got != k.Value {
			t.Errorf("%s: evaluateName %q gives %s", k.Name, k.EvaluateName, got)
		}
	}
	e.must(e.c.Disconnect())
}

// TestSetBitfields: a bitfield member is assigned as gdb assigns it,
// through the Variables view (setVariable), setExpression and an
// assignment in the console, its neighbours in the same bytes kept:
// late_bits is {…, c: 3 bits, d: 5 bits, e: signed 4 bits, f: 40 bits}.
func TestSetBitfields(t *testing.T) {
	g := vmmtest.BuildGuest(t, "values")
	e := launchProgram(t, g.Path, nil)
	fid := e.startAt("main64")
	r, err := e.c.Evaluate(fid, "late_bits")
	e.must(err)
	kids, err := e.c.Variables(r.Body.VariablesReference)
	e.must(err)
	set, err := e.c.Request("setVariable", map[string]any{"variablesReference": r.Body.VariablesReference, "name": "d", "value": "30"})
	e.must(err)
	if v := set.(*dap.SetVariableResponse).Body.Value; v != "30" {
		t.Errorf("setVariable d = 30 answered %s (rows %v)", v, kids.Body.Variables)
	}
	_, err = e.c.Request("setExpression", map[string]any{"expression": "late_bits.e", "value": "-8", "frameId": fid})
	e.must(err)
	_, err = e.c.Request("evaluate", map[string]any{"expression": "late_bits.f = 0xfedcba9876", "frameId": fid, "context": "repl"})
	e.must(err)
	if got, want := e.eval(fid, "late_bits"), `{a: 1, b: 2, c: 5, d: 30, e: -8 '\370', f: 1094624909430}`; got != want {
		t.Errorf("late_bits after the writes = %s, want %s", got, want)
	}
	if _, err := e.c.Request("setExpression", map[string]any{"expression": "late_bits.c", "value": "9", "frameId": fid}); err != nil {
		t.Fatal(err)
	}
	if got := e.eval(fid, "late_bits.c"); got != "1" { // 9 in 3 bits, as C truncates it
		t.Errorf("late_bits.c = 9 reads back %s, want 1", got)
	}
	if got := e.eval(fid, "late_bits.d"); got != "30" {
		t.Errorf("late_bits.d = %s after c was set, want 30", got)
	}
	e.must(e.c.Disconnect())
}
