package main

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-dap"
)

// demoScript is the session `vmdap demo` runs on the example guest: a
// breakpoint at a source line, step in, step over, step out, a step over a
// long call, locals and registers, a data breakpoint, disassembly, memory,
// the guest's output and its exit status, printed as a transcript.
type demoScript struct {
	c       *demoClient
	program string // the guest ELF
	source  string // examples/kernel/main.c
	out     io.Writer
}

func (d *demoScript) say(format string, a ...any) { fmt.Fprintf(d.out, format+"\n", a...) }

// lineOf returns the 1-based line of the first line of the source that
// contains s.
func (d *demoScript) lineOf(s string) (int, error) {
	b, err := os.ReadFile(d.source)
	if err != nil {
		return 0, err
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("%s: no line contains %q", d.source, s)
}

// top returns thread 1's innermost frame.
func (d *demoScript) top() (dap.StackFrame, error) {
	m, err := d.c.call("stackTrace", map[string]any{"threadId": 1, "startFrame": 0, "levels": 1})
	if err != nil {
		return dap.StackFrame{}, err
	}
	fs := m.(*dap.StackTraceResponse).Body.StackFrames
	if len(fs) == 0 {
		return dap.StackFrame{}, errors.New("no stack frames")
	}
	return fs[0], nil
}

// where prints the top frame and returns its id.
func (d *demoScript) where(label string) (int, error) {
	f, err := d.top()
	if err != nil {
		return 0, err
	}
	src := "?"
	if f.Source != nil {
		src = f.Source.Name
	}
	d.say("   %-12s %s at %s:%d (pc %s)", label, f.Name, src, f.Line, f.InstructionPointerReference)
	return f.Id, nil
}

// stopped waits for the next stop.
func (d *demoScript) stopped() (*dap.StoppedEvent, error) {
	m, err := d.c.event("stopped")
	if err != nil {
		return nil, err
	}
	return m.(*dap.StoppedEvent), nil
}

// resume sends a continue or a step and waits for the stop.
func (d *demoScript) resume(cmd string) (*dap.StoppedEvent, error) {
	if _, err := d.c.call(cmd, map[string]any{"threadId": 1}); err != nil {
		return nil, err
	}
	return d.stopped()
}

// evaluate returns an expression's value in a frame ("" when it fails).
func (d *demoScript) evaluate(frame int, expr string) string {
	m, err := d.c.call("evaluate", map[string]any{"expression": expr, "frameId": frame, "context": "repl"})
	if err != nil {
		return ""
	}
	return m.(*dap.EvaluateResponse).Body.Result
}

// variables returns the children of a variables reference.
func (d *demoScript) variables(ref int) ([]dap.Variable, error) {
	m, err := d.c.call("variables", map[string]any{"variablesReference": ref})
	if err != nil {
		return nil, err
	}
	return m.(*dap.VariablesResponse).Body.Variables, nil
}

// scope returns the variables of a frame's scope by name.
func (d *demoScript) scope(frame int, name string) ([]dap.Variable, error) {
	m, err := d.c.call("scopes", map[string]any{"frameId": frame})
	if err != nil {
		return nil, err
	}
	for _, s := range m.(*dap.ScopesResponse).Body.Scopes {
		if s.Name == name {
			return d.variables(s.VariablesReference)
		}
	}
	return nil, fmt.Errorf("no scope %q", name)
}

// run performs the session; it returns the guest's exit status.
func (d *demoScript) run() (int, error) {
	steps := []func() error{d.start, d.stepAround, d.stepOverLongCall, d.watchCounter, d.disassembleAndRead}
	for _, f := range steps {
		if err := f(); err != nil {
			return 0, err
		}
	}
	return d.finish()
}

// start initializes, launches, sets a breakpoint and runs to it.
func (d *demoScript) start() error {
	d.say("→ initialize")
	m, err := d.c.call("initialize", map[string]any{"clientID": "vmdap-demo", "adapterID": "vmdap",
		"linesStartAt1": true, "columnsStartAt1": true, "pathFormat": "path"})
	if err != nil {
		return err
	}
	init := m.(*dap.InitializeResponse).Body
	d.say("← capabilities: data breakpoints %v, instruction breakpoints %v, disassemble %v, stepping granularity %v",
		init.SupportsDataBreakpoints, init.SupportsInstructionBreakpoints, init.SupportsDisassembleRequest, init.SupportsSteppingGranularity)
	d.say("→ launch %s", filepath.Base(d.program))
	if _, err := d.c.call("launch", map[string]any{"program": d.program, "vcpus": 1, "memory": 64}); err != nil {
		return err
	}
	if _, err := d.c.event("initialized"); err != nil {
		return err
	}
	bpLine, err := d.lineOf("int total = sum_squares(5);")
	if err != nil {
		return err
	}
	d.say("→ setBreakpoints %s:%d", filepath.Base(d.source), bpLine)
	m, err = d.c.call("setBreakpoints", map[string]any{"source": map[string]any{"path": d.source},
		"breakpoints": []map[string]any{{"line": bpLine}}})
	if err != nil {
		return err
	}
	bp := m.(*dap.SetBreakpointsResponse).Body.Breakpoints[0]
	d.say("← verified=%v line=%d", bp.Verified, bp.Line)
	d.say("→ configurationDone (the guest runs)")
	if _, err := d.c.call("configurationDone", nil); err != nil {
		return err
	}
	ev, err := d.stopped()
	if err != nil {
		return err
	}
	d.say("← stopped: %s on thread %d", ev.Body.Reason, ev.Body.ThreadId)
	fid, err := d.where("at")
	if err != nil {
		return err
	}
	if err := d.printScope(fid, "Locals"); err != nil {
		return err
	}
	return d.printRegisters(fid)
}

// stepAround steps into sum_squares, over two lines and out again.
func (d *demoScript) stepAround() error {
	d.say("→ stepIn")
	if _, err := d.resume("stepIn"); err != nil {
		return err
	}
	fid, err := d.where("in")
	if err != nil {
		return err
	}
	if err := d.printScope(fid, "Arguments"); err != nil {
		return err
	}
	for i := 0; i < 2; i++ {
		d.say("→ next")
		if _, err := d.resume("next"); err != nil {
			return err
		}
		if _, err := d.where("at"); err != nil {
			return err
		}
	}
	d.say("→ stepOut")
	if _, err := d.resume("stepOut"); err != nil {
		return err
	}
	_, err = d.where("back in")
	return err
}

// stepOverLongCall steps to the busy_work call and over it.
func (d *demoScript) stepOverLongCall() error {
	busyLine, err := d.lineOf("unsigned long work = busy_work(")
	if err != nil {
		return err
	}
	for i := 0; i < 20; i++ {
		f, err := d.top()
		if err != nil {
			return err
		}
		if f.Line == busyLine {
			break
		}
		if _, err := d.resume("next"); err != nil {
			return err
		}
	}
	if _, err := d.where("at"); err != nil {
		return err
	}
	t0 := time.Now()
	d.say("→ next (over busy_work: about a million guest instructions, by a temporary breakpoint)")
	if _, err := d.resume("next"); err != nil {
		return err
	}
	d.say("← stopped after %v", time.Since(t0).Round(time.Millisecond))
	fid, err := d.where("at")
	if err != nil {
		return err
	}
	for _, e := range []string{"work", "origin.x * 10 + origin.y"} {
		if v := d.evaluate(fid, e); v != "" {
			d.say("   evaluate %s = %s", e, v)
		}
	}
	return nil
}

// watchCounter puts a data breakpoint on the global counter, which the
// guest reads next to print it, and runs to it.
func (d *demoScript) watchCounter() error {
	f, err := d.top()
	if err != nil {
		return err
	}
	m, err := d.c.call("dataBreakpointInfo", map[string]any{"name": "counter", "frameId": f.Id})
	if err != nil {
		return nil // not every host watches reads; the demo goes on
	}
	info := m.(*dap.DataBreakpointInfoResponse).Body
	d.say("→ dataBreakpointInfo counter: %q access types %v", info.Description, info.AccessTypes)
	id, ok := info.DataId.(string)
	if !ok {
		return nil
	}
	acc := "readWrite"
	for _, a := range info.AccessTypes {
		if a == "read" {
			acc = "read"
		}
	}
	if _, err := d.c.call("setDataBreakpoints", map[string]any{"breakpoints": []map[string]any{{"dataId": id, "accessType": acc}}}); err != nil {
		return nil
	}
	d.say("→ setDataBreakpoints counter (%s); continue", acc)
	ev, err := d.resume("continue")
	if err != nil {
		return err
	}
	d.say("← stopped: %s: %s", ev.Body.Reason, ev.Body.Description)
	if _, err := d.where("at"); err != nil {
		return err
	}
	_, err = d.c.call("setDataBreakpoints", map[string]any{"breakpoints": []any{}})
	return err
}

// disassembleAndRead disassembles around the PC and reads the counter.
func (d *demoScript) disassembleAndRead() error {
	f, err := d.top()
	if err != nil {
		return err
	}
	pc := f.InstructionPointerReference
	m, err := d.c.call("disassemble", map[string]any{"memoryReference": pc, "instructionOffset": -2,
		"instructionCount": 5, "resolveSymbols": true})
	if err != nil {
		return err
	}
	d.say("→ disassemble around %s", pc)
	for _, in := range m.(*dap.DisassembleResponse).Body.Instructions {
		mark := "  "
		if in.Address == pc {
			mark = "=>"
		}
		d.say("   %s %s  %-30s %s", mark, in.Address, in.Instruction, in.Symbol)
	}
	addr := d.evaluate(f.Id, "&counter")
	if addr == "" {
		return nil
	}
	m, err = d.c.call("readMemory", map[string]any{"memoryReference": addr, "offset": 0, "count": 8})
	if err != nil {
		return nil
	}
	mem := m.(*dap.ReadMemoryResponse).Body
	if b, _ := base64.StdEncoding.DecodeString(mem.Data); len(b) == 8 {
		d.say("→ readMemory %s (counter): % x = %d", mem.Address, b, binary.LittleEndian.Uint64(b))
	}
	return nil
}

// finish runs the guest to its end and disconnects.
func (d *demoScript) finish() (int, error) {
	d.say("→ continue")
	if _, err := d.c.call("continue", map[string]any{"threadId": 1}); err != nil {
		return 0, err
	}
	ex, err := d.c.event("exited")
	if err != nil {
		return 0, err
	}
	code := ex.(*dap.ExitedEvent).Body.ExitCode
	if _, err := d.c.event("terminated"); err != nil {
		return 0, err
	}
	d.say("← guest output:")
	for _, l := range strings.Split(strings.TrimRight(d.c.stdout.String(), "\n"), "\n") {
		d.say("   | %s", l)
	}
	d.say("← exited with status %d (the guest wrote %d to the debug-exit port)", code, code>>1)
	d.say("→ disconnect")
	if _, err := d.c.call("disconnect", map[string]any{"terminateDebuggee": true}); err != nil {
		return code, err
	}
	return code, nil
}

func (d *demoScript) printScope(frame int, scope string) error {
	vars, err := d.scope(frame, scope)
	if err != nil {
		return err
	}
	var parts []string
	for _, v := range vars {
		parts = append(parts, v.Name+" = "+v.Value)
	}
	d.say("   %s: %s", strings.ToLower(scope), strings.Join(parts, ", "))
	return nil
}

func (d *demoScript) printRegisters(frame int) error {
	groups, err := d.scope(frame, "Registers")
	if err != nil {
		return err
	}
	for _, g := range groups {
		if g.Name != "General" {
			continue
		}
		regs, err := d.variables(g.VariablesReference)
		if err != nil {
			return err
		}
		var parts []string
		for _, r := range regs {
			switch r.Name {
			case "rip", "rsp", "rbp", "rflags":
				parts = append(parts, r.Name+"="+r.Value)
			}
		}
		d.say("   registers: %s", strings.Join(parts, " "))
	}
	return nil
}
