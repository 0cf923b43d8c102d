package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// fpuSession starts the fpu guest (testdata/guests/fpu) stopped at run,
// after main64 has turned SSE on and loaded xmm7 and x87's state.
func fpuSession(t *testing.T, qemu bool) *daptest.Client {
	t.Helper()
	var cfg map[string]any
	if qemu {
		vmmtest.RequireQEMU(t)
		cfg = map[string]any{"program": vmmtest.BuildGuest(t, "fpu", vmmtest.ELF32).Path, "hypervisor": "qemu", "memory": 64}
	} else {
		vmmtest.RequireKVM(t)
		cfg = map[string]any{"program": vmmtest.BuildGuest(t, "fpu").Path, "memory": 64}
	}
	c := stdioClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitEvent("initialized"); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "run"}}}); err != nil ||
		!r.(*dap.SetFunctionBreakpointsResponse).Body.Breakpoints[0].Verified {
		t.Fatalf("function breakpoint on run: %+v %v", r, err)
	}
	if err := c.ConfigurationDone(); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "function breakpoint" {
		t.Fatalf("stop at run: %+v %v", ev, err)
	}
	return c
}

// registerGroup returns the variables of one group of the Registers scope.
func registerGroup(t *testing.T, c *daptest.Client, frame int, group string) map[string]dap.Variable {
	t.Helper()
	groups, err := c.ScopeVars(frame, "Registers")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Name != group {
			continue
		}
		vs, err := c.Variables(g.VariablesReference)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]dap.Variable{}
		for _, v := range vs.Body.Variables {
			m[v.Name] = v
		}
		return m
	}
	t.Fatalf("no %s group in Registers: %+v", group, groups)
	return nil
}

// TestFloatRegisters (vmdap's VMM and QEMU): the x87 and SSE registers
// are in the Registers scope (gdb's float and vector groups) and in
// expressions: after main64's fninit the x87 words are its defaults
// (fctrl 0x37f, every register empty: ftag 0xffff), MXCSR is its reset
// value 0x1f80, and xmm7 holds the four ints main64 loaded into it
// (movdqu, which this host's KVM emulates at ring 0 too), lane by lane.
func TestFloatRegisters(t *testing.T) {
	for _, qemu := range []bool{false, true} {
		name := "kvm"
		if qemu {
			name = "qemu"
		}
		t.Run(name, func(t *testing.T) {
			c := fpuSession(t, qemu)
			fid := topFrame(t, c).Id
			fl := registerGroup(t, c, fid, "Float")
			if v := fl["fctrl"].Value; !strings.HasPrefix(v, "0x37f ") {
				t.Errorf("fctrl = %q after fninit, want 0x37f", v)
			}
			// QEMU's stub sends ftag as 0 whatever the registers hold
			// (gdb shows that too); KVM gives the abridged tag, which
			// vmdap expands.
			if v := fl["ftag"].Value; !qemu && v != "0xffff" {
				t.Errorf("ftag = %q after fninit, want 0xffff (all empty)", v)
			}
			if len(fl) != 16 || fl["st0"].Type != "long double" {
				t.Errorf("Float group: %d registers, st0 %+v", len(fl), fl["st0"])
			}
			vec := registerGroup(t, c, fid, "Vector")
			if v := vec["mxcsr"].Value; !strings.HasPrefix(v, "0x1f80 [ IM DM ZM OM UM PM ]") {
				t.Errorf("mxcsr = %q, want 0x1f80 with every exception masked", v)
			}
			x7, ok := vec["xmm7"]
			if !ok || len(vec) != 17 || x7.VariablesReference == 0 || x7.Type != "vec128" {
				t.Fatalf("Vector group: %d registers, xmm7 %+v", len(vec), x7)
			}
			lanes, err := c.Variables(x7.VariablesReference)
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]string{}
			for _, v := range lanes.Body.Variables {
				byName[v.Name] = v.Value
			}
			if byName["v4_int32"] != "{305419896, -559038737, 1, -2}" || byName["v2_int64"] != "{-2401053092306725256, -8589934591}" {
				t.Errorf("xmm7's lanes: %v", byName)
			}
			if got := evalIn(t, c, fid, "$xmm7.v4_int32[1]"); got != "-559038737" {
				t.Errorf("$xmm7.v4_int32[1] = %s", got)
			}
			if got := evalIn(t, c, fid, "/x $xmm7.v16_int8[0]"); got != "0x78" {
				t.Errorf("/x $xmm7.v16_int8[0] = %s", got)
			}
			if got := evalIn(t, c, fid, "$mxcsr"); got != "8064" {
				t.Errorf("$mxcsr = %s", got)
			}
			if _, err := c.Evaluate(fid, "$xmm16"); err == nil {
				t.Errorf("$xmm16 evaluated")
			}

			// Each is written as gdb's set var writes it: a lane of an
			// xmm (its others kept), MXCSR and st0 in the Registers view,
			// an x87 word in the console.
			if _, err := c.Request("setExpression", map[string]any{"expression": "$xmm7.v4_int32[1]", "value": "7", "frameId": fid}); err != nil {
				t.Fatal(err)
			}
			if got := evalIn(t, c, fid, "$xmm7.v4_int32"); got != "{305419896, 7, 1, -2}" {
				t.Errorf("$xmm7.v4_int32 after its lane 1 was set to 7: %s", got)
			}
			groups, err := c.ScopeVars(fid, "Registers")
			if err != nil {
				t.Fatal(err)
			}
			ref := map[string]int{}
			for _, g := range groups {
				ref[g.Name] = g.VariablesReference
			}
			for _, w := range []struct{ group, name, value, expr, want string }{
				{"Vector", "mxcsr", "0x1fc0", "$mxcsr", "8128"},
				{"Float", "st0", "2.5", "$st0", "2.5"},
			} {
				if h := registerGroup(t, c, fid, w.group)[w.name].PresentationHint; h != nil && slices.Contains(h.Attributes, "readOnly") {
					t.Errorf("%s is shown read-only", w.name)
				}
				if _, err := c.Request("setVariable", map[string]any{"variablesReference": ref[w.group], "name": w.name, "value": w.value}); err != nil {
					t.Fatalf("setVariable %s = %s: %v", w.name, w.value, err)
				}
				if got := evalIn(t, c, fid, w.expr); got != w.want {
					t.Errorf("%s after setVariable %s = %s: %s, want %s", w.expr, w.name, w.value, got, w.want)
				}
			}
			if _, err := c.Request("evaluate", map[string]any{"expression": "$fctrl = 0x27f", "context": "repl", "frameId": fid}); err != nil {
				t.Fatal(err)
			}
			if v := registerGroup(t, c, fid, "Float")["fctrl"].Value; !strings.HasPrefix(v, "0x27f ") {
				t.Errorf("fctrl after $fctrl = 0x27f: %q", v)
			}
			c.Disconnect()
		})
	}
}

// TestFloatArgumentsAndReturns (vmdap's VMM where the host runs SSE at
// guest ring 0, and QEMU): arguments -O2 keeps in XMM registers read as
// gdb reads them, and a stepOut shows what a function returned in XMM0,
// XMM1 beside RAX, or st(0), the same value the caller then stores.
func TestFloatArgumentsAndReturns(t *testing.T) {
	t.Run("kvm", func(t *testing.T) {
		vmmtest.RequireKVM(t)
		requireRing0(t, "pxor", "the fpu guest's SSE arithmetic cannot run on vmdap's VMM")
		floatArgumentsAndReturns(t, false)
	})
	t.Run("qemu", func(t *testing.T) { floatArgumentsAndReturns(t, true) })
}

func floatArgumentsAndReturns(t *testing.T, qemu bool) {
	c := fpuSession(t, qemu)
	defer c.Disconnect()
	if _, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{
		{"name": "scale_d"}, {"name": "neg_f"}, {"name": "third"}, {"name": "mk_dl"}, {"name": "mk_f3"}, {"name": "mk_dd"}}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		fn, args, global, want string
	}{
		{"scale_d", "x=2.5 k=3", "got_d", "7.5"},
		{"neg_f", "v=1.25", "got_f", "-1.25"},
		{"third", "v=1", "got_ld", "0.333333333333333333342"},
		{"mk_dl", "d=0.75 l=41", "got_dl", "{d: 1.5, l: 42}"},
		{"mk_f3", "a=0.5", "got_f3", "{a: 0.5, b: 1.5, c: 2.5}"},
		{"mk_dd", "x=1.5", "got_dd", "{x: 1.5, y: -1.5}"},
	}
	// stored checks, at the next stop, that run stored what the previous
	// function returned (run stores each result before the next call).
	var rets []string
	stored := func(i int) {
		t.Helper()
		tc := cases[i]
		got := evalIn(t, c, topFrame(t, c).Id, tc.global)
		if rets[i] != got || got != tc.want {
			t.Errorf("%s returned %s; run stored %s in %s; want %s", tc.fn, rets[i], got, tc.global, tc.want)
		}
	}
	for i, tc := range cases {
		if err := c.Continue(1); err != nil {
			t.Fatal(err)
		}
		if ev, err := c.Stopped(); err != nil || ev.Body.Reason != "function breakpoint" {
			t.Fatalf("%s: %+v %v", tc.fn, ev, err)
		}
		f := topFrame(t, c)
		if f.Name != tc.fn {
			t.Fatalf("stopped in %s, want %s", f.Name, tc.fn)
		}
		if i > 0 {
			stored(i - 1)
		}
		var args []string
		vs, err := c.ScopeVars(f.Id, "Arguments")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			args = append(args, v.Name+"="+v.Value)
		}
		if got := strings.Join(args, " "); got != tc.args {
			t.Errorf("%s's arguments: %s, want %s", tc.fn, got, tc.args)
		}
		if err := c.Step("stepOut", 1, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stopped(); err != nil {
			t.Fatal(err)
		}
		f = topFrame(t, c)
		ret := evalIn(t, c, f.Id, "$_retval")
		locals, err := c.ScopeVars(f.Id, "Locals")
		if err != nil || len(locals) == 0 || locals[0].Name != tc.fn+" returned" || locals[0].Value != ret {
			t.Errorf("Locals after stepOut from %s: %+v %v ($_retval %s)", tc.fn, locals, err, ret)
		}
		rets = append(rets, ret)
	}
	// Out of run: the last result is stored too.
	if err := c.Step("stepOut", 1, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stopped(); err != nil {
		t.Fatal(err)
	}
	stored(len(cases) - 1)
}
