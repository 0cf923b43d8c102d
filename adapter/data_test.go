package adapter_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
	"vmdap/vmm/vmmtest/guests"
)

func launchWatch(t *testing.T, cfg map[string]any) *env {
	t.Helper()
	return launchGuest(t, "watch", "watch.c", cfg)
}

// launchGuest starts a session on testdata/guests/<name> (src: its C
// file with the line markers) with cfg added to the launch arguments.
func launchGuest(t *testing.T, name, src string, cfg map[string]any) *env {
	t.Helper()
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildGuest(t, name)
	root, _ := guests.RepoRoot()
	e := &env{t: t, g: g, src: filepath.Join(root, "testdata", "guests", name, src)}
	e.c, e.done = newClient(t)
	if _, err := e.c.Initialize(); err != nil {
		t.Fatal(err)
	}
	args := map[string]any{"program": g.Path, "memory": 64}
	for k, v := range cfg {
		args[k] = v
	}
	e.must(e.c.Launch(args))
	if _, err := e.c.WaitEvent("initialized"); err != nil {
		t.Fatal(err)
	}
	return e
}

type dataInfo = dap.DataBreakpointInfoResponseBody

func (e *env) dataInfo(args map[string]any) dataInfo {
	e.t.Helper()
	r, err := e.c.Request("dataBreakpointInfo", args)
	e.must(err)
	return r.(*dap.DataBreakpointInfoResponse).Body
}

func (e *env) setData(bps ...map[string]any) []dap.Breakpoint {
	e.t.Helper()
	if bps == nil {
		bps = []map[string]any{}
	}
	r, err := e.c.Request("setDataBreakpoints", map[string]any{"breakpoints": bps})
	e.must(err)
	return r.(*dap.SetDataBreakpointsResponse).Body.Breakpoints
}

func accessTypes(d dataInfo) string {
	var s []string
	for _, a := range d.AccessTypes {
		s = append(s, string(a))
	}
	return strings.Join(s, ",")
}

func (e *env) runToLine(marker string) dap.StackFrame {
	e.t.Helper()
	line := e.line(marker)
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(line))
	e.must(err)
	e.must(e.c.Continue(1))
	e.stopped("breakpoint")
	_, err = e.c.SetBreakpoints(e.src)
	e.must(err)
	return e.top()
}

func TestDataBreakpointInfoShapes(t *testing.T) {
	e := launchWatch(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.runToLine("W:bump")
	// a global: persistable, stable id
	g1 := e.dataInfo(map[string]any{"name": "counter", "frameId": f.Id})
	g2 := e.dataInfo(map[string]any{"name": "counter", "frameId": f.Id})
	if g1.DataId == nil || g1.DataId != g2.DataId || !g1.CanPersist || !strings.Contains(accessTypes(g1), "write") {
		t.Fatalf("global: %+v vs %+v", g1, g2)
	}
	// an argument's pointee, through an expression
	p := e.dataInfo(map[string]any{"name": "*p", "frameId": f.Id})
	if p.DataId == nil || p.CanPersist || !strings.Contains(p.Description, "8 bytes") {
		t.Fatalf("*p: %+v", p)
	}
	// the argument itself lives on the stack at -O0
	a := e.dataInfo(map[string]any{"name": "p", "frameId": f.Id})
	if a.DataId == nil {
		t.Fatalf("argument p: %+v", a)
	}
	// struct field, array element
	for _, expr := range []string{"pair.b", "arr[3]", "pair"} {
		if d := e.dataInfo(map[string]any{"name": expr, "frameId": f.Id}); d.DataId == nil {
			t.Fatalf("%s: %+v", expr, d)
		}
	}
	// a variable from a scope (variablesReference + name)
	sc, _ := e.c.Scopes(f.Id)
	for _, s := range sc.Body.Scopes {
		if s.Name == "Globals" {
			if d := e.dataInfo(map[string]any{"variablesReference": s.VariablesReference, "name": "hot"}); d.DataId == nil || !d.CanPersist {
				t.Fatalf("hot from the Globals scope: %+v", d)
			}
		}
	}
	// a raw address and length
	addr := e.eval(f.Id, "(unsigned long)&results")
	d := e.dataInfo(map[string]any{"name": addr, "asAddress": true, "bytes": 32})
	if d.DataId == nil || !strings.Contains(d.Description, "32 bytes") {
		t.Fatalf("asAddress: %+v", d)
	}
	// a range past the end of the address space: no id, and why
	if d := e.dataInfo(map[string]any{"name": "0xfffffffffffffffc", "asAddress": true, "bytes": 8}); d.DataId != nil || !strings.Contains(d.Description, "past the end of the address space") {
		t.Fatalf("asAddress, 8 bytes from 0xfffffffffffffffc: %+v", d)
	}
	// a register has no address: a clear refusal
	if d := e.dataInfo(map[string]any{"name": "$rax", "frameId": f.Id}); d.DataId != nil || d.Description == "" {
		t.Fatalf("register: %+v", d)
	}
}

func TestDataBreakpointStops(t *testing.T) {
	e := launchWatch(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.top()
	id := e.dataInfo(map[string]any{"name": "counter", "frameId": f.Id}).DataId.(string)
	bps := e.setData(map[string]any{"dataId": id, "accessType": "write"})
	if !bps[0].Verified {
		t.Fatalf("not verified: %+v", bps[0])
	}
	e.must(e.c.Continue(1))
	ev := e.stopped("data breakpoint")
	if ev.Body.HitBreakpointIds[0] != bps[0].Id || !strings.Contains(ev.Body.Description, "counter changed 0 → 41") {
		t.Fatalf("first write: %+v", ev.Body)
	}
	// PC after the access: still on the c41 line or at the start of c42.
	if l := e.top().Line; l != e.line("W:c41") && l != e.line("W:c42") {
		t.Fatalf("stopped at line %d", l)
	}
	e.must(e.c.Continue(1))
	ev = e.stopped("data breakpoint")
	if !strings.Contains(ev.Body.Description, "counter changed 41 → 42 at kmain+0x") || !strings.Contains(ev.Body.Description, "(watch.c:") {
		t.Fatalf("second write: %q", ev.Body.Description)
	}
	e.must(e.c.Continue(1))
	ev = e.stopped("data breakpoint")
	if !strings.Contains(ev.Body.Description, "same value 42") {
		t.Fatalf("same-value write: %q", ev.Body.Description)
	}
	// stepping over the access reports the data breakpoint
	_, err := e.c.SetBreakpoints(e.src, daptest.Line(e.line("W:callbump")))
	e.must(err)
	e.must(e.c.Continue(1))
	e.stopped("breakpoint")
	_, _ = e.c.SetBreakpoints(e.src)
	e.must(e.c.Step("stepIn", 1, ""))
	e.stopped("step") // in bump
	e.must(e.c.Step("next", 1, ""))
	ev = e.stopped("data breakpoint")
	if !strings.Contains(ev.Body.Description, "42 → 43") {
		t.Fatalf("step over the write: %q", ev.Body.Description)
	}
	// condition and hit condition
	e.setData(map[string]any{"dataId": id, "accessType": "write", "condition": "counter == 1000"})
	e.setData() // none
	e.runToExitOrStop(t)
}

func (e *env) runToExitOrStop(t *testing.T) {
	code := e.runToExit()
	if code != 1 {
		t.Fatalf("exit %d (the guest checks counter == 43)", code)
	}
}

func TestManyWatchpointsStructReadAndRepMovs(t *testing.T) {
	e := launchWatch(t, map[string]any{"stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.top()
	id := func(expr string) string {
		d := e.dataInfo(map[string]any{"name": expr, "frameId": f.Id})
		if d.DataId == nil {
			t.Fatalf("%s: %+v", expr, d)
		}
		return d.DataId.(string)
	}
	// Six at once (more than the four debug registers): a 16-byte struct,
	// an array element, a read-only watch, the rep movs target and two
	// more; the hot variable next to counter is not watched.
	bps := e.setData(
		map[string]any{"dataId": id("pair"), "accessType": "write"},
		map[string]any{"dataId": id("arr[3]"), "accessType": "write", "hitCondition": "2"},
		map[string]any{"dataId": id("counter"), "accessType": "read"},
		map[string]any{"dataId": id("results[2]"), "accessType": "write"},
		map[string]any{"dataId": id("results[3]"), "accessType": "write"},
		map[string]any{"dataId": id("shared"), "accessType": "write"},
	)
	for _, b := range bps {
		if !b.Verified {
			t.Fatalf("not verified: %+v", b)
		}
	}
	e.must(e.c.Continue(1))
	ev := e.stopped("data breakpoint")
	if !strings.Contains(ev.Body.Description, "pair changed {a: 0, b: 0} → {a: 1, b: 0}") {
		t.Fatalf("struct: %q", ev.Body.Description)
	}
	e.must(e.c.Continue(1))
	ev = e.stopped("data breakpoint")
	if !strings.Contains(ev.Body.Description, "{a: 1, b: 2}") {
		t.Fatalf("struct second field: %q", ev.Body.Description)
	}
	// arr[3] = 7 is the first hit of a ">= 2" hit condition: no stop.
	e.must(e.c.Continue(1))
	ev = e.stopped("data breakpoint")
	if !strings.Contains(ev.Body.Description, "counter read (value 42)") || e.top().Name != "bump" {
		t.Fatalf("read watch in bump: %q", ev.Body.Description)
	}
	e.must(e.c.Continue(1))
	ev = e.stopped("data breakpoint")
	if !strings.Contains(ev.Body.Description, "counter read (value 43)") || e.top().Line != e.line("W:readc") {
		t.Fatalf("read watch at readc: %q line %d", ev.Body.Description, e.top().Line)
	}
	// the hot loop on counter's page runs through; rep movsb then writes
	// arr[3] a second time (hit 2).
	e.must(e.c.Continue(1))
	ev = e.stopped("data breakpoint")
	if !strings.Contains(ev.Body.Description, "arr[3] changed 7 → ") {
		t.Fatalf("rep movs: %q", ev.Body.Description)
	}
	if got := e.eval(e.top().Id, "hot"); got != "1999000" {
		t.Fatalf("hot = %s: the unwatched neighbour lost writes", got)
	}
	// rep movsb writes arr[3] a byte at a time: each byte is a hit.
	for n := 0; strings.Contains(ev.Body.Description, "arr[3]"); n++ {
		if n > 4 {
			t.Fatalf("too many arr[3] hits: %q", ev.Body.Description)
		}
		e.must(e.c.Continue(1))
		ev = e.stopped("data breakpoint")
	}
	if got := e.eval(e.top().Id, "arr[3]"); got != "1717920867" { // "cdef"
		t.Fatalf("arr[3] after the copy = %s", got)
	}
	if !strings.Contains(ev.Body.Description, "results[2] changed 0 → 16") {
		t.Fatalf("results[2]: %q", ev.Body.Description)
	}
	e.setData()
	e.runToExitOrStop(t)
}

func TestWatchLocalAndStackPush(t *testing.T) {
	e := launchWatch(t, nil)
	e.startAtLine("W:local_mul")
	f := e.top()
	d := e.dataInfo(map[string]any{"name": "local", "frameId": f.Id})
	if d.DataId == nil {
		t.Fatalf("local: %+v", d)
	}
	_, _ = e.c.SetBreakpoints(e.src)
	e.setData(map[string]any{"dataId": d.DataId, "accessType": "write"})
	e.must(e.c.Continue(1))
	ev := e.stopped("data breakpoint")
	if !strings.Contains(ev.Body.Description, "local changed 5 → 15") {
		t.Fatalf("local: %q", ev.Body.Description)
	}
	e.setData()
	e.runToExitOrStop(t)
}

func TestWatchpointOnEveryVCPU(t *testing.T) {
	e := launchWatch(t, map[string]any{"vcpus": 2, "stopOnEntry": true})
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	f := e.top()
	d := e.dataInfo(map[string]any{"name": "shared", "frameId": f.Id})
	e.setData(map[string]any{"dataId": d.DataId, "accessType": "write"})
	e.must(e.c.Continue(1))
	ev := e.stopped("data breakpoint")
	if ev.Body.ThreadId != 2 || !strings.Contains(ev.Body.Description, "shared changed 0 → 101") {
		t.Fatalf("stop %+v", ev.Body)
	}
	st, err := e.c.StackTrace(2)
	e.must(err)
	if st.Body.StackFrames[0].Name != "secondary" {
		t.Fatalf("vCPU 1 at %s", st.Body.StackFrames[0].Name)
	}
	e.setData()
	e.runToExitOrStop(t)
}

func TestWatchStackPushAndCondition(t *testing.T) {
	e := launchWatch(t, nil)
	e.startAtLine("W:calllocal")
	_, _ = e.c.SetBreakpoints(e.src)
	f := e.top()
	// The call to with_local pushes its return address just below RSP.
	slot := e.eval(f.Id, "$rsp - 8")
	d := e.dataInfo(map[string]any{"name": slot, "asAddress": true, "bytes": 8})
	if d.DataId == nil {
		t.Fatalf("stack slot: %+v", d)
	}
	// ... and a watch on results[2] whose condition is false at first
	// write: only the matching write stops.
	r2 := e.dataInfo(map[string]any{"name": "results[2]", "frameId": f.Id})
	bps := e.setData(map[string]any{"dataId": d.DataId, "accessType": "write"},
		map[string]any{"dataId": r2.DataId, "accessType": "write", "condition": "results[2] == 999"})
	e.must(e.c.Continue(1))
	ev := e.stopped("data breakpoint")
	if ev.Body.HitBreakpointIds[0] != bps[0].Id || e.top().Name != "with_local" {
		t.Fatalf("push onto the watched slot: %+v in %s", ev.Body, e.top().Name)
	}
	// results[2] = 16 does not satisfy the condition: the guest runs to the
	// end with no further stop.
	e.setData(map[string]any{"dataId": r2.DataId, "accessType": "write", "condition": "results[2] == 999"})
	e.runToExitOrStop(t)
}

// TestNextOverAWaitForAnotherVCPU: a next over a line that waits for
// another vCPU (kmain's while (ncpus > 1 && shared == 0);, which vCPU 1
// ends once it sees go_ahead) ends at the next line, as gdb's next and
// step and Delve's do: the other vCPUs run meanwhile. Single-stepping
// vCPU 0 alone never left the line.
func TestNextOverAWaitForAnotherVCPU(t *testing.T) {
	for _, cmd := range []string{"next", "stepIn"} {
		t.Run(cmd, func(t *testing.T) {
			e := launchWatch(t, map[string]any{"vcpus": 2, "stopOnEntry": true})
			e.must(e.c.ConfigurationDone())
			e.stopped("entry")
			e.runToLine("W:go")
			e.step("next")
			e.at("kmain", e.line("while (ncpus > 1 && shared == 0)"))
			e.step(cmd)
			e.at("kmain", e.line("W:exit"))
			if v := e.eval(e.top().Id, "shared"); v != "101" {
				t.Fatalf("shared = %s after the wait, want 101 (vCPU 1's)", v)
			}
			e.runToExitOrStop(t)
		})
	}
}
