package adapter_test

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// TestEnumeratorsAndFunctionsOverDAP: enumeration constants are values of
// their enumeration (evaluate, setVariable, setExpression, breakpoint
// conditions, completions) and a function's name is the function, at
// its address, as in gdb, with or without DWARF.
func TestEnumeratorsAndFunctionsOverDAP(t *testing.T) {
	e := launchExample(t, nil)
	kmainAt := vmmtest.BuildExample(t, "kernel").Symbols["kmain"]
	call := e.line("int total = sum_squares(5);")
	first := e.line("int total = 0;")
	loop := e.line("squares[i] = square(i);")
	bps, err := e.c.SetBreakpoints(e.src, daptest.Line(call),
		map[string]any{"line": first, "condition": "favourite == GREEN"},
		map[string]any{"line": loop, "condition": "favourite == BLUE && i == 2"})
	e.must(err)
	for _, b := range bps.Body.Breakpoints {
		if !b.Verified {
			t.Fatalf("breakpoint %+v", b)
		}
	}
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	f := e.at("kmain", call)

	evaluate := func(expr string) (string, string, string) {
		t.Helper()
		r, err := e.c.Evaluate(f.Id, expr)
		if err != nil {
			t.Fatalf("evaluate %q: %v", expr, err)
		}
		return r.Body.Result, r.Body.Type, r.Body.MemoryReference
	}
	for _, c := range []struct{ expr, val, typ string }{
		{"BLUE", "BLUE (2)", "enum color"},
		{"favourite == GREEN", "1", "int"},
		{"favourite == RED", "0", "int"},
		{"(enum color)2 == BLUE", "1", "int"},
		{"kmain", fmt.Sprintf("{void (void)} %#x <kmain>", kmainAt), "void (void)"},
		{"&kmain", fmt.Sprintf("%#x <kmain>", kmainAt), "void (*)(void)"},
		{"sum_squares", "", "int (int)"},
		{"$rip > kmain && $rip < kmain + 0x1000", "1", "int"},
		{"$rip == kmain", "0", "int"},
		{"(unsigned long)kmain", strconv.FormatUint(kmainAt, 10), "unsigned long"},
	} {
		val, typ, _ := evaluate(c.expr)
		if (c.val != "" && val != c.val) || typ != c.typ {
			t.Errorf("evaluate %q = %q (%s), want %q (%s)", c.expr, val, typ, c.val, c.typ)
		}
	}
	// *(char *)kmain reads the function's first byte of code.
	_, _, ref := evaluate("kmain")
	if ref == "" {
		t.Fatal("kmain has no memory reference")
	}
	mem, err := e.c.ReadMemory(ref, 0, 1)
	e.must(err)
	code, _ := base64.StdEncoding.DecodeString(mem.Body.Data)
	if got, _, _ := evaluate("*(unsigned char *)kmain"); len(code) != 1 || !regexp.MustCompile(fmt.Sprintf(`^%d '`, code[0])).MatchString(got) {
		t.Errorf("*(unsigned char *)kmain = %q, code %x", got, code)
	}

	// Enumeration constants as the new values of variables.
	sc, err := e.c.Scopes(f.Id)
	e.must(err)
	globals := 0
	for _, s := range sc.Body.Scopes {
		if s.Name == "Globals" {
			globals = s.VariablesReference
		}
	}
	r, err := e.c.Request("setVariable", map[string]any{"variablesReference": globals, "name": "favourite", "value": "BLUE"})
	e.must(err)
	if v := r.(*dap.SetVariableResponse).Body.Value; v != "BLUE (2)" {
		t.Fatalf("setVariable favourite = BLUE: %s", v)
	}
	for _, v := range []string{"RED", "BLUE"} {
		r, err = e.c.Request("setExpression", map[string]any{"expression": "favourite", "value": v, "frameId": f.Id})
		e.must(err)
		if got := r.(*dap.SetExpressionResponse).Body.Value; got != e.eval(f.Id, v) || e.eval(f.Id, "favourite == "+v) != "1" {
			t.Fatalf("setExpression favourite = %s: %s", v, got)
		}
	}
	// Completions offer them.
	cr, err := e.c.Request("completions", map[string]any{"frameId": f.Id, "text": "favourite == BL", "column": 16})
	e.must(err)
	found := false
	for _, it := range cr.(*dap.CompletionsResponse).Body.Targets {
		found = found || it.Label == "BLUE" && it.Type == "enum"
	}
	if !found {
		t.Errorf("completions of BL: %+v", cr.(*dap.CompletionsResponse).Body.Targets)
	}

	// The conditions: favourite is BLUE now, so the first is false and
	// the loop's stops at i == 2.
	e.must(e.c.Continue(1))
	e.stopped("breakpoint")
	f = e.at("sum_squares", loop)
	if i := e.eval(f.Id, "i"); i != "2" {
		t.Fatalf("stopped at i = %s, want 2", i)
	}

	// A function known only by its ELF symbol is one too, of gdb's type
	// for it.
	e2 := launchProgram(t, strippedExample(t), map[string]any{"stopOnEntry": true})
	e2.must(e2.c.ConfigurationDone())
	e2.stopped("entry")
	f = e2.top()
	for _, c := range []struct{ expr, val, typ string }{
		{"kmain", fmt.Sprintf("{<text variable, no debug info>} %#x <kmain>", kmainAt), "<text variable, no debug info>"},
		{"&kmain", fmt.Sprintf("%#x <kmain>", kmainAt), "<text variable, no debug info> *"},
		{"(unsigned long)kmain", strconv.FormatUint(kmainAt, 10), "unsigned long"},
	} {
		r, err := e2.c.Evaluate(f.Id, c.expr)
		if err != nil || r.Body.Result != c.val || r.Body.Type != c.typ {
			t.Errorf("stripped: evaluate %q = %+v %v, want %q (%s)", c.expr, r, err, c.val, c.typ)
		}
	}
}
