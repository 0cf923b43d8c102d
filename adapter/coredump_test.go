package adapter_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter"
	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// dumpExample runs the example guest on vmdap's VMM to square (called by
// sum_squares from kmain), writes the machine to a core file with the
// console's dump and ends the session.
func dumpExample(t *testing.T) (core, program string) {
	t.Helper()
	e := launchExample(t, nil)
	if _, err := e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "square"}}}); err != nil {
		t.Fatal(err)
	}
	e.must(e.c.ConfigurationDone())
	e.stopped("function breakpoint")
	core = filepath.Join(t.TempDir(), "example.core")
	// Refusals first: no name, a directory, a folder that does not exist.
	for line, want := range map[string]string{
		`dump ""`:                      "a file name is needed",
		"dump " + t.TempDir():          "is a directory",
		"dump /nonexistent/dir/x.core": "creating the file",
		`dump "unterminated`:           "well-formed quoted string",
	} {
		if _, err := e.c.Request("evaluate", map[string]any{"expression": line, "context": "repl"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error about %q", line, err, want)
		}
	}
	r, err := e.c.Request("evaluate", map[string]any{"expression": "dump " + core, "context": "repl"})
	if err != nil || !strings.Contains(r.(*dap.EvaluateResponse).Body.Result, "wrote "+core) {
		t.Fatalf("dump: %+v %v", r, err)
	}
	if _, err := e.c.Request("evaluate", map[string]any{"expression": "info dump", "context": "repl"}); err == nil || !strings.Contains(err.Error(), "not a core dump") {
		t.Errorf("info dump in a live session: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(core), ".*tmp"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left beside the dump: %v", leftovers)
	}
	// A dump while the guest runs is refused: busy_work made long, the
	// guest runs in it until paused.
	e.eval(0, "busy_iterations = 1000000000")
	_, err = e.c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{}})
	e.must(err)
	e.must(e.c.Continue(1))
	if _, err := e.c.Request("evaluate", map[string]any{"expression": "dump " + core + ".running", "context": "repl"}); err == nil || !strings.Contains(err.Error(), "running") {
		t.Errorf("dump of a running guest: %v", err)
	}
	if _, err := os.Stat(core + ".running"); err == nil {
		t.Error("a dump of a running guest was written")
	}
	e.must(e.c.Disconnect())
	return core, vmmtest.BuildExample(t, "kernel").Path
}

// openCoreSession attaches a session to a core file and waits for its
// stop.
func openCoreSession(t *testing.T, core, program string) (*daptest.Client, chan error) {
	t.Helper()
	c, done := newClient(t)
	if _, err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenCore(core, program); err != nil {
		t.Fatal(err)
	}
	return c, done
}

// TestCoreSessionRefusesToRun: a core dump's session answers what cannot
// be done with a record (run, step, breakpoints, writes) with a clear
// message and stays usable; it ends cleanly on disconnect and leaves no
// goroutine or file descriptor behind.
func TestCoreSessionRefusesToRun(t *testing.T) {
	core, program := dumpExample(t)
	c, done := openCoreSession(t, core, program)
	st, err := c.StackTrace(1)
	if err != nil || len(st.Body.StackFrames) < 3 || st.Body.StackFrames[0].Name != "square" {
		t.Fatalf("the core's stack: %+v %v", st, err)
	}
	fid := st.Body.StackFrames[0].Id
	usable := func(after string) {
		t.Helper()
		st, err := c.StackTrace(1)
		if err != nil || st.Body.StackFrames[0].Name != "square" {
			t.Fatalf("after %s the stack is %+v %v", after, st, err)
		}
		if r, err := c.Evaluate(st.Body.StackFrames[0].Id, "x"); err != nil || r.Body.Result == "" {
			t.Fatalf("after %s x = %+v %v", after, r, err)
		}
	}
	for _, req := range []struct {
		cmd  string
		args map[string]any
	}{
		{"continue", map[string]any{"threadId": 1}},
		{"next", map[string]any{"threadId": 1}},
		{"stepIn", map[string]any{"threadId": 1}},
		{"stepOut", map[string]any{"threadId": 1}},
		{"stepBack", map[string]any{"threadId": 1}},
		{"setVariable", map[string]any{"variablesReference": 0, "name": "x", "value": "3"}},
		{"setExpression", map[string]any{"expression": "x", "value": "3", "frameId": fid}},
		{"writeMemory", map[string]any{"memoryReference": "0x100000", "data": "AQ=="}},
		{"evaluate", map[string]any{"expression": "x = 3", "frameId": fid, "context": "repl"}},
		{"evaluate", map[string]any{"expression": "dump " + core + ".again", "context": "repl"}},
		{"evaluate", map[string]any{"expression": "monitor info registers", "context": "repl"}},
	} {
		if req.cmd == "setVariable" {
			sc, err := c.Scopes(fid)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sc.Body.Scopes {
				if s.Name == "Arguments" {
					req.args["variablesReference"] = s.VariablesReference
				}
			}
		}
		_, err := c.Request(req.cmd, req.args)
		switch {
		case err == nil:
			t.Errorf("%s %v on a core dump: no error", req.cmd, req.args)
		case req.cmd == "stepBack": // refused whatever the target
		case !strings.Contains(err.Error(), "core dump"):
			t.Errorf("%s %v on a core dump: %v, want an error that says it is one", req.cmd, req.args, err)
		}
		usable(req.cmd)
	}
	if _, err := os.Stat(core + ".again"); err == nil {
		t.Error("a core session wrote a dump of itself")
	}
	r, err := c.Request("evaluate", map[string]any{"expression": "info dump", "context": "repl"})
	if err != nil || !strings.Contains(r.(*dap.EvaluateResponse).Body.Result, "core dump "+core+" (QEMU dump-guest-memory ELF core)") {
		t.Errorf("info dump: %+v %v", r, err)
	}
	bps, err := c.SetBreakpoints(exampleSource(t), daptest.Line(50))
	if err != nil || len(bps.Body.Breakpoints) != 1 || bps.Body.Breakpoints[0].Verified || !strings.Contains(bps.Body.Breakpoints[0].Message, "core dump") {
		t.Errorf("setBreakpoints on a core dump: %+v %v", bps, err)
	}
	usable("setBreakpoints")
	di, err := c.Request("dataBreakpointInfo", map[string]any{"name": "x", "frameId": fid})
	if err != nil || di.(*dap.DataBreakpointInfoResponse).Body.DataId != nil || !strings.Contains(di.(*dap.DataBreakpointInfoResponse).Body.Description, "core dump") {
		t.Errorf("dataBreakpointInfo on a core dump: %+v %v", di, err)
	}
	if err := c.Disconnect(); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Errorf("the session ended with %v", err)
	}
}

// TestCoreSessionsLeaveNothingBehind: sessions over a core file, opened
// and disconnected one after another, leave no goroutine or file
// descriptor (the dump's file) behind.
func TestCoreSessionsLeaveNothingBehind(t *testing.T) {
	core, program := dumpExample(t)
	runOne := func() {
		c, done := openCoreSession(t, core, program)
		if _, err := c.StackTrace(1); err != nil {
			t.Fatal(err)
		}
		if err := c.Disconnect(); err != nil {
			t.Fatal(err)
		}
		c.Close()
		<-done
	}
	checkNoLeaks(t, runOne)
}

// progressClientAtSquare launches the example guest with memory MiB of
// RAM for a client that announced supportsProgressReporting, and stops
// it at square.
func progressClientAtSquare(t *testing.T, memory int) *daptest.Client {
	t.Helper()
	c, _ := newClient(t)
	if _, err := c.Request("initialize", map[string]any{"adapterID": "vmdap", "linesStartAt1": true,
		"columnsStartAt1": true, "supportsProgressReporting": true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(map[string]any{"program": vmmtest.BuildExample(t, "kernel").Path, "memory": memory}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitEvent("initialized"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request("setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "square"}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigurationDone(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stopped(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDumpProgress: the console's dump shows a progress bar (to a client
// that announced supportsProgressReporting): progressStart titled for the
// dump, with the file's name, updates up to 100 %, then progressEnd,
// before the evaluate's response.
func TestDumpProgress(t *testing.T) {
	vmmtest.RequireKVM(t)
	defer adapter.SetProgressAfter(0)()
	c := progressClientAtSquare(t, 64)
	c.Events() // the launch's
	core := filepath.Join(t.TempDir(), "progress.core")
	if _, err := c.Request("evaluate", map[string]any{"expression": "dump " + core, "context": "repl"}); err != nil {
		t.Fatal(err)
	}
	var seq []string
	last := -1
	for _, m := range c.Events() {
		switch ev := m.(type) {
		case *dap.ProgressStartEvent:
			seq = append(seq, "start")
			if ev.Body.Title != "Writing core dump" || ev.Body.Message != "progress.core" {
				t.Errorf("progressStart %+v", ev.Body)
			}
		case *dap.ProgressUpdateEvent:
			if ev.Body.Percentage < last {
				t.Errorf("progress went back from %d to %d %%", last, ev.Body.Percentage)
			}
			last = ev.Body.Percentage
		case *dap.ProgressEndEvent:
			seq = append(seq, "end")
		}
	}
	if strings.Join(seq, " ") != "start end" || last != 100 {
		t.Errorf("progress events %v, last update at %d %%: want start, updates to 100 %%, end", seq, last)
	}
	c.Disconnect()
}

// TestDumpCancel: a dump's progress bar is cancellable, and cancelling it
// (a cancel of its progressId, as VS Code's Cancel button sends) stops
// the dump: the evaluate fails "cancelled", no file is left (not the
// dump, nor its temporary), and the session goes on.
func TestDumpCancel(t *testing.T) {
	vmmtest.RequireKVM(t)
	defer adapter.SetProgressAfter(0)()
	// RAM the dump takes a while to go through (mostly never touched:
	// it reads as zeros and costs the host nothing).
	c := progressClientAtSquare(t, 1024)
	c.Events()
	dir := t.TempDir()
	core := filepath.Join(dir, "cancelled.core")
	_, ch, err := c.Send("evaluate", map[string]any{"expression": "dump " + core, "context": "repl"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.WaitEvent("progressStart")
	if err != nil {
		t.Fatal(err)
	}
	start := m.(*dap.ProgressStartEvent).Body
	if !start.Cancellable {
		t.Fatalf("progressStart %+v: not cancellable", start)
	}
	if _, err := c.Request("cancel", map[string]any{"progressId": start.ProgressId}); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Wait("evaluate", ch)
	if err == nil {
		t.Fatalf("the cancelled dump answered %+v", resp)
	}
	if !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("the cancelled dump: %v", err)
	}
	if _, err := c.WaitEvent("progressEnd"); err != nil { // (sent once the dump has stopped)
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		t.Errorf("left behind by the cancelled dump: %s", e.Name())
	}
	if _, err := c.Evaluate(0, "counter"); err != nil {
		t.Fatalf("after the cancelled dump: %v", err)
	}
	c.Disconnect()
}
