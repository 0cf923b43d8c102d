package daptest

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-dap"
)

// LineOf returns the 1-based line of the first source line containing s.
func LineOf(path, s string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.Contains(sc.Text(), s) {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s: no line contains %q", path, s)
}

// Typed helpers for the requests a session uses.

func (c *Client) Initialize() (*dap.InitializeResponse, error) {
	m, err := c.Request("initialize", map[string]any{"clientID": "vmdap-daptest", "adapterID": "vmdap",
		"linesStartAt1": true, "columnsStartAt1": true, "pathFormat": "path",
		"supportsMemoryEvent": true, "supportsInvalidatedEvent": true, "supportsVariableType": true})
	if err != nil {
		return nil, err
	}
	return m.(*dap.InitializeResponse), nil
}

func (c *Client) Launch(cfg map[string]any) error {
	_, err := c.Request("launch", cfg)
	return err
}

// OpenCore attaches to a core dump with program's symbols, ends the
// configuration and returns the stop the session starts at.
func (c *Client) OpenCore(core, program string) (*dap.StoppedEvent, error) {
	if _, err := c.Request("attach", map[string]any{"coreFile": core, "program": program}); err != nil {
		return nil, fmt.Errorf("attach to the core: %w", err)
	}
	if _, err := c.WaitEvent("initialized"); err != nil {
		return nil, err
	}
	if err := c.ConfigurationDone(); err != nil {
		return nil, err
	}
	return c.Stopped()
}

func (c *Client) ConfigurationDone() error {
	_, err := c.Request("configurationDone", nil)
	return err
}

func (c *Client) SetBreakpoints(path string, bps ...map[string]any) (*dap.SetBreakpointsResponse, error) {
	if bps == nil {
		bps = []map[string]any{}
	}
	m, err := c.Request("setBreakpoints", map[string]any{"source": map[string]any{"path": path}, "breakpoints": bps})
	if err != nil {
		return nil, err
	}
	return m.(*dap.SetBreakpointsResponse), nil
}

// Line is a source breakpoint at a line.
func Line(l int) map[string]any { return map[string]any{"line": l} }

func (c *Client) Continue(thread int) error {
	_, err := c.Request("continue", map[string]any{"threadId": thread})
	return err
}

func (c *Client) Step(command string, thread int, granularity string) error {
	args := map[string]any{"threadId": thread}
	if granularity != "" {
		args["granularity"] = granularity
	}
	_, err := c.Request(command, args)
	return err
}

// Stopped waits for the next stopped event.
func (c *Client) Stopped() (*dap.StoppedEvent, error) {
	m, err := c.WaitEvent("stopped")
	if err != nil {
		return nil, err
	}
	return m.(*dap.StoppedEvent), nil
}

func (c *Client) StackTrace(thread int) (*dap.StackTraceResponse, error) {
	m, err := c.Request("stackTrace", map[string]any{"threadId": thread, "startFrame": 0, "levels": 20})
	if err != nil {
		return nil, err
	}
	return m.(*dap.StackTraceResponse), nil
}

func (c *Client) Scopes(frameID int) (*dap.ScopesResponse, error) {
	m, err := c.Request("scopes", map[string]any{"frameId": frameID})
	if err != nil {
		return nil, err
	}
	return m.(*dap.ScopesResponse), nil
}

func (c *Client) Variables(ref int) (*dap.VariablesResponse, error) {
	m, err := c.Request("variables", map[string]any{"variablesReference": ref})
	if err != nil {
		return nil, err
	}
	return m.(*dap.VariablesResponse), nil
}

// ScopeVars returns the variables of a named scope of a frame.
func (c *Client) ScopeVars(frameID int, scope string) ([]dap.Variable, error) {
	sc, err := c.Scopes(frameID)
	if err != nil {
		return nil, err
	}
	for _, s := range sc.Body.Scopes {
		if s.Name == scope {
			v, err := c.Variables(s.VariablesReference)
			if err != nil {
				return nil, err
			}
			return v.Body.Variables, nil
		}
	}
	return nil, fmt.Errorf("no scope %q", scope)
}

func (c *Client) Evaluate(frameID int, expr string) (*dap.EvaluateResponse, error) {
	m, err := c.Request("evaluate", map[string]any{"expression": expr, "frameId": frameID, "context": "repl"})
	if err != nil {
		return nil, err
	}
	return m.(*dap.EvaluateResponse), nil
}

func (c *Client) Disassemble(ref string, insnOffset, count int) (*dap.DisassembleResponse, error) {
	m, err := c.Request("disassemble", map[string]any{"memoryReference": ref, "instructionOffset": insnOffset,
		"instructionCount": count, "resolveSymbols": true})
	if err != nil {
		return nil, err
	}
	return m.(*dap.DisassembleResponse), nil
}

func (c *Client) ReadMemory(ref string, offset, count int) (*dap.ReadMemoryResponse, error) {
	m, err := c.Request("readMemory", map[string]any{"memoryReference": ref, "offset": offset, "count": count})
	if err != nil {
		return nil, err
	}
	return m.(*dap.ReadMemoryResponse), nil
}

func (c *Client) Disconnect() error {
	_, err := c.Request("disconnect", map[string]any{"terminateDebuggee": true})
	return err
}
