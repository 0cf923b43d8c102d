package adapter_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-dap"
)

// TestReturnValueAfterStepOut (vmdap's VMM): a stepOut that returns from
// a function shows what it returned, as gdb's finish prints it and lldb
// shows it: the first row of the caller's Locals ("square returned") and
// $_retval in expressions, the value the caller then stores; the next
// run takes it away. An unsigned long comes back whole (busy_work's,
// beside the variable it lands in after a step), and a void function or
// a stop that is no return has none.
func TestReturnValueAfterStepOut(t *testing.T) {
	e := launchExample(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	if _, err := e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{
		{"name": "square", "condition": "x == 3"}, {"name": "busy_work"}}}); err != nil {
		t.Fatal(err)
	}
	e.must(e.c.Continue(1))
	e.stopped("function breakpoint")
	e.must(e.c.Step("stepOut", 1, ""))
	e.stopped("step")
	fid := e.top().Id
	if f := e.top(); f.Name != "sum_squares" {
		t.Fatalf("stepOut from square ended in %s", f.Name)
	}
	vs, err := e.c.ScopeVars(fid, "Locals")
	e.must(err)
	if len(vs) == 0 || vs[0].Name != "square returned" || vs[0].Value != "9" || vs[0].Type != "int" {
		t.Fatalf("Locals after stepOut from square(3): %+v", vs)
	}
	if vs[0].EvaluateName != "$_retval" || vs[0].PresentationHint == nil || !slices.Contains(vs[0].PresentationHint.Attributes, "readOnly") {
		t.Errorf("the return value's evaluateName is %q, its presentation %+v", vs[0].EvaluateName, vs[0].PresentationHint)
	}
	if cs, err := e.c.Request("completions", map[string]any{"text": "$_r", "column": 4, "frameId": fid}); err != nil ||
		len(cs.(*dap.CompletionsResponse).Body.Targets) != 1 || cs.(*dap.CompletionsResponse).Body.Targets[0].Label != "_retval" {
		t.Errorf("completions of $_r: %+v %v", cs, err)
	}
	if r := e.eval(fid, "$_retval * 2"); r != "18" {
		t.Errorf("$_retval * 2 = %q", r)
	}
	if _, err := e.c.Request("setVariable", map[string]any{"variablesReference": localsRef(t, e, fid), "name": "square returned", "value": "5"}); err == nil {
		t.Errorf("the return value was set")
	}
	// Over the store: squares[3] holds what square returned.
	e.must(e.c.Step("next", 1, ""))
	e.stopped("step")
	fid = e.top().Id
	if r := e.eval(fid, "squares[3]"); r != "9" {
		t.Errorf("squares[3] = %q after the store", r)
	}
	if _, err := e.c.Evaluate(fid, "$_retval"); err == nil || !strings.Contains(err.Error(), "no return value here") {
		t.Errorf("$_retval after a next: %v", err)
	}
	vs, err = e.c.ScopeVars(fid, "Locals")
	e.must(err)
	for _, v := range vs {
		if strings.HasSuffix(v.Name, " returned") {
			t.Errorf("after a next, Locals still has %s = %s", v.Name, v.Value)
		}
	}
	// An unsigned long, checked against where kmain stores it.
	e.must(e.c.Continue(1))
	e.stopped("function breakpoint")
	e.must(e.c.Step("stepOut", 1, ""))
	e.stopped("step")
	fid = e.top().Id
	got := e.eval(fid, "$_retval")
	if vs, err := e.c.ScopeVars(fid, "Locals"); err != nil || len(vs) == 0 || vs[0].Name != "busy_work returned" || vs[0].Value != got || vs[0].Type != "unsigned long" {
		t.Fatalf("Locals after stepOut from busy_work: %+v %v ($_retval %s)", vs, err, got)
	}
	e.must(e.c.Step("next", 1, ""))
	e.stopped("step")
	if w := e.eval(e.top().Id, "work"); w != got {
		t.Errorf("busy_work returned %s, and kmain's work is %s", got, w)
	}
	e.must(e.c.Disconnect())
}

func localsRef(t *testing.T, e *env, frameID int) int {
	t.Helper()
	sc, err := e.c.Scopes(frameID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sc.Body.Scopes {
		if s.Name == "Locals" {
			return s.VariablesReference
		}
	}
	t.Fatalf("no Locals scope: %+v", sc.Body.Scopes)
	return 0
}
