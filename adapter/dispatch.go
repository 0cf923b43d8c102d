package adapter

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/google/go-dap"

	"vmdap/adapter/dapschema"
	"vmdap/session"
)

// checkArgs checks a request against the DAP schema: a required argument
// missing, or one of the wrong type or out of range, refuses it before it
// is carried out (so no request runs on zero values).
func (c *conn) checkArgs(body []byte) error {
	s, err := dapschema.Load()
	if err != nil {
		return nil // the embedded schema is tested; never refuse for its sake
	}
	v, err := dapschema.Decode(body)
	if err != nil {
		return err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return errors.New("a request must be a JSON object")
	}
	if a, present := m["arguments"]; present && a == nil {
		delete(m, "arguments") // "arguments": null reads as none (required ones are then missing)
	}
	dropNulls(m["arguments"])
	err = s.ValidateAs(s.Definition(m), m)
	var se *dapschema.Error
	if errors.As(err, &se) {
		cmd, _ := m["command"].(string)
		if se.Path == "" {
			return fmt.Errorf("%s: %s", cmd, se.Msg)
		}
		return fmt.Errorf("%s: %s %s (DAP %s)", cmd, se.Path, se.Msg, dapschema.Version)
	}
	return err
}

// dropNulls removes the members whose value is null from the objects in
// v (a request's arguments), as if they were not given: an optional
// argument sent as null (Emacs clients serialize nil so) is absent, as
// go-dap decodes it, not a refusal of the whole request (a disconnect
// with "restart": null left the guest running). A required one is then
// missing, and refused as such.
func dropNulls(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if x == nil {
				delete(v, k)
				continue
			}
			dropNulls(x)
		}
	case []any:
		for _, x := range v {
			dropNulls(x)
		}
	}
}

// run carries out one request (on the worker), turning a panic into an
// error response.
func (c *conn) run(j *job) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Errorf("panic handling %s: %v\n%s", j.cmd, p, debug.Stack())
			c.sendError(j.seq, j.cmd, errInternal, fmt.Sprintf("internal error in vmdap while handling %s: %v", j.cmd, p))
		}
	}()
	if j.req == nil {
		c.onCustom(j)
		return
	}
	c.dispatch(j)
}

// needInitialize refuses a launch or attach that comes before initialize
// (whose answers, line bases and the events the client takes, the
// session is run by); it reports whether r may go on.
func (c *conn) needInitialize(r *dap.Request) bool {
	c.mu.Lock()
	ok := c.initialized
	c.mu.Unlock()
	if !ok {
		c.sendError(r.Seq, r.Command, errNotLaunched, r.Command+": send initialize first")
	}
	return ok
}

// dispatch routes one request.
func (c *conn) dispatch(j *job) {
	req := j.req
	r := req.GetRequest()
	// Requests allowed before launch/attach.
	switch m := req.(type) {
	case *dap.InitializeRequest: // Required
		c.onInitialize(m, j.raw)
		return
	case *dap.LaunchRequest: // Required
		if c.needInitialize(r) {
			c.onLaunch(j, m)
		}
		return
	case *dap.AttachRequest: // Required
		if c.needInitialize(r) {
			c.onAttach(j, m)
		}
		return
	case *dap.TerminateRequest: // Optional (supportsTerminateRequest)
		c.onTerminate(m)
		return
	}
	s := c.session()
	if s == nil {
		c.mu.Lock()
		ended := c.sentTerm
		c.mu.Unlock()
		if ended {
			// A client's request that crossed the end (VS Code asks for
			// scopes as it tears down): failed, not shown to the user.
			c.sendErrorShown(r.Seq, r.Command, errExited, fmt.Sprintf("%s: the debug session has ended", r.Command), false)
		} else {
			c.sendError(r.Seq, r.Command, errNotLaunched, fmt.Sprintf("%s: no guest yet: send launch or attach first", r.Command))
		}
		return
	}
	if t, ok := threadOf(req); ok {
		if err := s.CheckThread(t); err != nil {
			c.sendError(r.Seq, r.Command, errBadArguments, fmt.Sprintf("%s: %v", r.Command, err))
			return
		}
	}
	if _, pause := req.(*dap.PauseRequest); runs(req) || pause {
		c.mu.Lock()
		configured := c.configured
		c.mu.Unlock()
		if !configured {
			// The guest starts (or shows its entry stop) at
			// configurationDone: run before it, and that stop would
			// come after, and be false.
			c.sendError(r.Seq, r.Command, errNotConfigured, fmt.Sprintf("%s: the guest has not started: send configurationDone first", r.Command))
			return
		}
	}
	if c.onNoDebugBreakpoints(req, s) {
		return
	}
	switch req.(type) {
	case *dap.SetBreakpointsRequest, *dap.SetFunctionBreakpointsRequest, *dap.SetInstructionBreakpointsRequest,
		*dap.SetExceptionBreakpointsRequest, *dap.SetDataBreakpointsRequest:
		// Set while the guest runs, a breakpoint can be hit before its
		// response is out: the stop (hitBreakpointIds) follows the
		// response that tells the client the ids.
		c.hold()
		defer c.release()
	}
	switch m := req.(type) {
	case *dap.ConfigurationDoneRequest: // Optional (supportsConfigurationDoneRequest)
		c.onConfigurationDone(m, s)
	case *dap.SetBreakpointsRequest: // Required
		c.onSetBreakpoints(m, s, j.raw)
	case *dap.SetFunctionBreakpointsRequest: // Optional (supportsFunctionBreakpoints)
		c.onSetFunctionBreakpoints(m, s, j.raw)
	case *dap.SetInstructionBreakpointsRequest: // Optional (supportsInstructionBreakpoints)
		c.onSetInstructionBreakpoints(m, s, j.raw)
	case *dap.SetExceptionBreakpointsRequest: // Optional (exceptionBreakpointFilters)
		c.onSetExceptionBreakpoints(m, s)
	case *dap.DataBreakpointInfoRequest: // Optional (supportsDataBreakpoints)
		c.onDataBreakpointInfo(m, s, j.raw)
	case *dap.SetDataBreakpointsRequest: // Optional (supportsDataBreakpoints)
		c.onSetDataBreakpoints(m, s)
	case *dap.BreakpointLocationsRequest: // Optional (supportsBreakpointLocationsRequest)
		c.onBreakpointLocations(m, s)
	case *dap.LoadedSourcesRequest: // Optional (supportsLoadedSourcesRequest)
		c.onLoadedSources(m, s)
	case *dap.ThreadsRequest: // Required
		c.onThreads(m, s)
	case *dap.ContinueRequest: // Required
		c.onContinue(m, s)
	case *dap.NextRequest: // Required
		c.onStep(&m.Request, s, m.Arguments.ThreadId, session.StepOver, m.Arguments.Granularity)
	case *dap.StepInRequest: // Required
		if m.Arguments.TargetId != 0 { // Optional (supportsStepInTargetsRequest)
			c.onStepInTarget(m, s)
			break
		}
		c.onStep(&m.Request, s, m.Arguments.ThreadId, session.StepIn, m.Arguments.Granularity)
	case *dap.StepInTargetsRequest: // Optional (supportsStepInTargetsRequest)
		c.onStepInTargets(m, s)
	case *dap.StepOutRequest: // Required
		c.onStep(&m.Request, s, m.Arguments.ThreadId, session.StepOut, m.Arguments.Granularity)
	case *dap.PauseRequest: // Required
		c.onPause(m, s)
	case *dap.StackTraceRequest: // Required
		c.onStackTrace(m, s)
	case *dap.ScopesRequest: // Required
		c.onScopes(m, s)
	case *dap.VariablesRequest: // Required
		c.onVariables(m, s)
	case *dap.SetVariableRequest: // Optional (supportsSetVariable)
		c.onSetVariable(m, s)
	case *dap.EvaluateRequest: // Required
		c.onEvaluate(j, m, s)
	case *dap.SetExpressionRequest: // Optional (supportsSetExpression)
		c.onSetExpression(m, s)
	case *dap.CompletionsRequest: // Optional (supportsCompletionsRequest)
		c.onCompletions(m, s)
	case *dap.ReadMemoryRequest: // Optional (supportsReadMemoryRequest)
		c.onReadMemory(m, s)
	case *dap.WriteMemoryRequest: // Optional (supportsWriteMemoryRequest)
		c.onWriteMemory(m, s)
	case *dap.DisassembleRequest: // Optional (supportsDisassembleRequest)
		c.onDisassemble(j, m, s)
	case *dap.ModulesRequest: // Optional (supportsModulesRequest)
		c.onModules(m, s)
	case *dap.ExceptionInfoRequest: // Optional (supportsExceptionInfoRequest)
		c.onExceptionInfo(m, s)
	case *dap.GotoTargetsRequest: // Optional (supportsGotoTargetsRequest)
		c.onGotoTargets(m, s)
	case *dap.GotoRequest: // Optional (supportsGotoTargetsRequest)
		c.onGoto(m, s)
	case *dap.SourceRequest: // Required (sources are on disk; no sourceReference)
		c.sendError(r.Seq, r.Command, errUnsupported, "vmdap serves no sources: they are read from disk by path")
	default:
		c.sendError(r.Seq, r.Command, errUnsupported, fmt.Sprintf("vmdap does not support the %q request", r.Command))
	}
}

// runs says whether a request resumes the guest (or moves it).
func runs(req dap.RequestMessage) bool {
	switch req.(type) {
	case *dap.ContinueRequest, *dap.NextRequest, *dap.StepInRequest, *dap.StepOutRequest, *dap.GotoRequest:
		return true
	}
	return false
}

// threadOf returns the thread a request names, for the requests whose
// threadId the spec requires.
func threadOf(req dap.RequestMessage) (int, bool) {
	switch m := req.(type) {
	case *dap.ContinueRequest:
		return m.Arguments.ThreadId, true
	case *dap.NextRequest:
		return m.Arguments.ThreadId, true
	case *dap.StepInRequest:
		return m.Arguments.ThreadId, true
	case *dap.StepOutRequest:
		return m.Arguments.ThreadId, true
	case *dap.PauseRequest:
		return m.Arguments.ThreadId, true
	case *dap.StackTraceRequest:
		return m.Arguments.ThreadId, true
	case *dap.GotoRequest:
		return m.Arguments.ThreadId, true
	case *dap.ExceptionInfoRequest:
		return m.Arguments.ThreadId, true
	}
	return 0, false
}

func (c *conn) onThreads(m *dap.ThreadsRequest, s *session.Session) {
	resp := &dap.ThreadsResponse{Response: newResponse(&m.Request)}
	for _, th := range s.ThreadList() { // vCPUs, then Linux tasks with taskThreads
		resp.Body.Threads = append(resp.Body.Threads, dap.Thread{Id: th.ID, Name: th.Name})
	}
	c.send(resp)
}

// onRun carries out a request that starts the guest (continue, a step,
// goto): its response goes out before any event the run causes, and a
// run that cannot start fails the request.
func (c *conn) onRun(r *dap.Request, resp dap.Message, start func() error) {
	c.hold()
	defer c.release()
	if err := start(); err != nil {
		c.fail(r, errStep, err)
		return
	}
	c.handles.reset()
	c.send(resp)
}

func (c *conn) onContinue(m *dap.ContinueRequest, s *session.Session) {
	resp := &dap.ContinueResponse{Response: newResponse(&m.Request)}
	resp.Body.AllThreadsContinued = true
	c.onRun(&m.Request, resp, func() error { return s.Continue(m.Arguments.ThreadId) })
}

func (c *conn) onStep(r *dap.Request, s *session.Session, thread int, kind session.StepKind, g dap.SteppingGranularity) {
	gran := session.GranularityLine // "statement" and "line": vmdap's lines are statements
	if g == "instruction" {
		gran = session.GranularityInstruction
	}
	c.onRun(r, stepResponse(r), func() error { return s.Step(thread, kind, gran) })
}

func stepResponse(r *dap.Request) dap.Message {
	switch r.Command {
	case "next":
		return &dap.NextResponse{Response: newResponse(r)}
	case "stepIn":
		return &dap.StepInResponse{Response: newResponse(r)}
	}
	return &dap.StepOutResponse{Response: newResponse(r)}
}

func (c *conn) onPause(m *dap.PauseRequest, s *session.Session) {
	c.hold()
	defer c.release()
	if err := s.Pause(m.Arguments.ThreadId); err != nil {
		c.fail(&m.Request, errPause, err)
		return
	}
	c.send(&dap.PauseResponse{Response: newResponse(&m.Request)})
}

func (c *conn) onExceptionInfo(m *dap.ExceptionInfoRequest, s *session.Session) {
	info, ok := s.ExceptionInfo()
	if !ok {
		c.sendError(m.Seq, m.Command, errExceptionInfo, "the last stop was not an exception")
		return
	}
	resp := &dap.ExceptionInfoResponse{Response: newResponse(&m.Request)}
	resp.Body = dap.ExceptionInfoResponseBody{ExceptionId: info.ID, Description: info.Description, BreakMode: "always",
		Details: &dap.ExceptionDetails{Message: info.Details, TypeName: info.ID}}
	c.send(resp)
}

// response builders

func newResponse(req *dap.Request) dap.Response {
	return dap.Response{ProtocolMessage: dap.ProtocolMessage{Type: "response"}, Command: req.Command, RequestSeq: req.Seq, Success: true}
}

func newEvent(name string) dap.Event {
	return dap.Event{ProtocolMessage: dap.ProtocolMessage{Type: "event"}, Event: name}
}

func (c *conn) sendError(seq int, cmd string, id int, msg string) {
	c.sendErrorShown(seq, cmd, id, msg, true)
}

// sendErrorShown is sendError, with the client told whether to show the
// message to the user (VS Code pops up those it is to show).
func (c *conn) sendErrorShown(seq int, cmd string, id int, msg string, show bool) {
	er := &dap.ErrorResponse{Response: dap.Response{ProtocolMessage: dap.ProtocolMessage{Type: "response"},
		Command: cmd, RequestSeq: seq, Success: false, Message: msg}}
	er.Body.Error = &dap.ErrorMessage{Id: id, Format: escapeFormat(msg), ShowUser: show}
	c.send(er)
}

// escapeFormat makes a message safe as a DAP format string, whose
// {name} are variables.
func escapeFormat(s string) string {
	if !strings.ContainsAny(s, "{}") {
		return s
	}
	return strings.NewReplacer("{", "(", "}", ")").Replace(s)
}

func (c *conn) fail(req *dap.Request, id int, err error) {
	switch {
	case errors.Is(err, session.ErrRunning):
		id = errRunning
	case errors.Is(err, session.ErrExited):
		id = errExited
	}
	c.sendError(req.Seq, req.Command, id, err.Error())
}

// onNoDebugBreakpoints answers the breakpoint requests of a guest
// launched with noDebug (the spec: launched "without enabling
// debugging"), setting none: every breakpoint is unverified, saying why,
// and no exception stops.
// It reports whether req was one of them.
func (c *conn) onNoDebugBreakpoints(req dap.RequestMessage, s *session.Session) bool {
	c.mu.Lock()
	noDebug := c.noDebug
	c.mu.Unlock()
	if !noDebug {
		return false
	}
	const why = "not set: the guest was launched without debugging (noDebug)"
	r := req.GetRequest()
	n := 0
	switch m := req.(type) {
	case *dap.SetBreakpointsRequest:
		n = len(m.Arguments.Breakpoints)
		if n == 0 {
			n = len(m.Arguments.Lines)
		}
	case *dap.SetFunctionBreakpointsRequest:
		n = len(m.Arguments.Breakpoints)
	case *dap.SetInstructionBreakpointsRequest:
		n = len(m.Arguments.Breakpoints)
	case *dap.SetDataBreakpointsRequest:
		n = len(m.Arguments.Breakpoints)
	case *dap.SetExceptionBreakpointsRequest:
		n = len(m.Arguments.Filters) + len(m.Arguments.FilterOptions)
		// No exception stops either, the default ones (a triple fault)
		// included: the guest's end is its exit.
		if _, err := s.SetExceptionFilters(nil); err != nil {
			c.fail(r, errBreakpoints, err)
			return true
		}
	default:
		return false
	}
	resp := &setBreakpointsResponseExt{Response: newResponse(r)}
	resp.Body.Breakpoints = make([]breakpointExt, n)
	for i := range resp.Body.Breakpoints {
		resp.Body.Breakpoints[i] = breakpointExt{Breakpoint: dap.Breakpoint{Verified: false, Message: why}, Reason: "failed"}
	}
	c.send(resp)
	return true
}
