package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/google/go-dap"

	"vmdap/session"
	"vmdap/session/symbols"
	"vmdap/vmm"
)

// dispatch routes one request. It returns true when the session is over
// (disconnect).
func (c *conn) dispatch(req dap.RequestMessage, raw []byte) bool {
	r := req.GetRequest()
	// Requests allowed before launch/attach.
	switch m := req.(type) {
	case *dap.InitializeRequest: // Required
		c.onInitialize(m, raw)
		return false
	case *dap.LaunchRequest: // Required
		c.onLaunch(m)
		return false
	case *dap.AttachRequest: // Required
		c.onAttach(m)
		return false
	case *dap.DisconnectRequest: // Required
		c.onDisconnect(m, raw)
		return true
	case *dap.TerminateRequest: // Optional (supportsTerminateRequest)
		c.onTerminate(m)
		return false
	}
	s := c.session()
	if s == nil {
		c.sendError(r.Seq, r.Command, errNotLaunched, fmt.Sprintf("%s: no guest yet: send launch or attach first", r.Command))
		return false
	}
	switch m := req.(type) {
	case *dap.ConfigurationDoneRequest: // Optional (supportsConfigurationDoneRequest)
		c.onConfigurationDone(m, s)
	case *dap.SetBreakpointsRequest: // Required
		c.onSetBreakpoints(m, s, raw)
	case *dap.SetFunctionBreakpointsRequest: // Optional (supportsFunctionBreakpoints)
		c.onSetFunctionBreakpoints(m, s, raw)
	case *dap.SetInstructionBreakpointsRequest: // Optional (supportsInstructionBreakpoints)
		c.onSetInstructionBreakpoints(m, s, raw)
	case *dap.SetExceptionBreakpointsRequest: // Optional (exceptionBreakpointFilters)
		c.onSetExceptionBreakpoints(m, s)
	case *dap.DataBreakpointInfoRequest: // Optional (supportsDataBreakpoints)
		c.onDataBreakpointInfo(m, s, raw)
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
		c.onStep(&m.Request, s, m.Arguments.ThreadId, session.StepOver, string(m.Arguments.Granularity))
	case *dap.StepInRequest: // Required
		if m.Arguments.TargetId != 0 { // Optional (supportsStepInTargetsRequest)
			c.onStepInTarget(m, s)
			break
		}
		c.onStep(&m.Request, s, m.Arguments.ThreadId, session.StepIn, string(m.Arguments.Granularity))
	case *dap.StepInTargetsRequest: // Optional (supportsStepInTargetsRequest)
		c.onStepInTargets(m, s)
	case *dap.StepOutRequest: // Required
		c.onStep(&m.Request, s, m.Arguments.ThreadId, session.StepOut, string(m.Arguments.Granularity))
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
		c.onEvaluate(m, s)
	case *dap.SetExpressionRequest: // Optional (supportsSetExpression)
		c.onSetExpression(m, s)
	case *dap.CompletionsRequest: // Optional (supportsCompletionsRequest)
		c.onCompletions(m, s)
	case *dap.ReadMemoryRequest: // Optional (supportsReadMemoryRequest)
		c.onReadMemory(m, s)
	case *dap.WriteMemoryRequest: // Optional (supportsWriteMemoryRequest)
		c.onWriteMemory(m, s)
	case *dap.DisassembleRequest: // Optional (supportsDisassembleRequest)
		c.onDisassemble(m, s)
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
	return false
}

func (c *conn) onInitialize(m *dap.InitializeRequest, raw []byte) {
	var ext initializeArgsExt
	_ = json.Unmarshal(raw, &ext)
	c.mu.Lock()
	c.memEvents = ext.Arguments.SupportsMemoryEvent
	c.invalEvents = ext.Arguments.SupportsInvalidatedEvent
	c.progressOn = m.Arguments.SupportsProgressReporting
	c.mu.Unlock()
	resp := &initializeResponseExt{Response: newResponse(&m.Request)}
	resp.Body = initialCapabilities()
	c.send(resp)
}

// initialCapabilities is the superset vmdap can offer; the capabilities
// event after launch/attach narrows it to what the backend has.
func initialCapabilities() capabilitiesExt {
	var cp capabilitiesExt
	d := &cp.Capabilities
	d.SupportsConfigurationDoneRequest = true
	d.SupportsFunctionBreakpoints = true
	d.SupportsConditionalBreakpoints = true
	d.SupportsHitConditionalBreakpoints = true
	d.SupportsEvaluateForHovers = true
	d.SupportsSetVariable = true
	d.SupportsSetExpression = true
	d.SupportsCompletionsRequest = true
	d.CompletionTriggerCharacters = []string{".", ">", "$"}
	d.SupportsExceptionInfoRequest = true
	d.SupportTerminateDebuggee = true
	d.SupportSuspendDebuggee = true
	d.SupportsTerminateRequest = true
	d.SupportsLogPoints = true
	d.SupportsDataBreakpoints = true
	d.SupportsReadMemoryRequest = true
	d.SupportsWriteMemoryRequest = true
	d.SupportsDisassembleRequest = true
	d.SupportsBreakpointLocationsRequest = true
	d.SupportsSteppingGranularity = true
	d.SupportsInstructionBreakpoints = true
	d.SupportsGotoTargetsRequest = true
	d.SupportsStepInTargetsRequest = true
	d.SupportsLoadedSourcesRequest = true
	d.SupportsModulesRequest = true
	for _, f := range session.ExceptionFilters {
		d.ExceptionBreakpointFilters = append(d.ExceptionBreakpointFilters, dap.ExceptionBreakpointsFilter{
			Filter: f.ID, Label: f.Label, Description: f.Description, Default: f.Default})
	}
	cp.SupportsDataBreakpointBytes = true
	cp.BreakpointModes = []breakpointMode{
		{Mode: session.ModeSoftware, Label: "Software", Description: "int3 in guest memory (unlimited)", AppliesTo: []string{"source", "instruction"}},
		{Mode: session.ModeHardware, Label: "Hardware", Description: "debug registers DR0-DR3 (four at most, shared with data breakpoints)", AppliesTo: []string{"source", "instruction"}},
	}
	return cp
}

// backendCapabilities narrows the capabilities to the target's facts.
func backendCapabilities(vc vmm.Capabilities, wp bool) capabilitiesExt {
	cp := initialCapabilities()
	if !wp {
		cp.SupportsDataBreakpoints = false
		cp.SupportsDataBreakpointBytes = false
	}
	if !vc.RegisterWrite {
		cp.SupportsGotoTargetsRequest = false // a jump writes rip
	}
	var modes []breakpointMode
	for _, m := range cp.BreakpointModes {
		if m.Mode == session.ModeHardware && vc.HWBreakpointSlots == 0 {
			continue
		}
		if m.Mode == session.ModeSoftware && !vc.SWBreakpoints {
			continue
		}
		modes = append(modes, m)
	}
	cp.BreakpointModes = modes
	return cp
}

func (c *conn) onLaunch(m *dap.LaunchRequest) {
	var cfg LaunchConfig
	if err := json.Unmarshal(m.Arguments, &cfg); err != nil {
		c.sendError(m.Seq, m.Command, errBadConfig, "launch configuration: "+err.Error())
		return
	}
	if c.session() != nil {
		c.sendError(m.Seq, m.Command, errLaunch, "a guest is already running in this session")
		return
	}
	if err := cfg.validate(); err != nil {
		c.sendError(m.Seq, m.Command, errBadConfig, err.Error())
		return
	}
	for _, p := range unknownProps(m.Arguments, cfg) {
		c.output("console", fmt.Sprintf("vmdap: ignoring unknown launch property %q\n", p))
	}
	sym, err := c.loadSymbols(m.Seq, cfg.Program, cfg.Symbols, cfg.SourceMap)
	if err != nil {
		c.sendError(m.Seq, m.Command, errLaunch, err.Error())
		return
	}
	c.serial = newSerialSink(c)
	t, err := c.srv.Backends.Launch(context.Background(), cfg, c.serial, c.srv.Log)
	if err != nil {
		c.sendError(m.Seq, m.Command, errLaunch, "cannot start the guest: "+err.Error())
		return
	}
	off, _ := kernelOffset(cfg.KernelOffset)
	c.start(t, sym, cfg.StopOnEntry, off)
	c.session().SetLinuxOptions(cfg.options())
	c.send(&dap.LaunchResponse{Response: newResponse(&m.Request)})
	c.send(&dap.InitializedEvent{Event: newEvent("initialized")})
}

func (c *conn) onAttach(m *dap.AttachRequest) {
	var cfg AttachConfig
	if err := json.Unmarshal(m.Arguments, &cfg); err != nil {
		c.sendError(m.Seq, m.Command, errBadConfig, "attach configuration: "+err.Error())
		return
	}
	if c.session() != nil {
		c.sendError(m.Seq, m.Command, errAttach, "already attached")
		return
	}
	if err := cfg.validate(); err != nil {
		c.sendError(m.Seq, m.Command, errBadConfig, err.Error())
		return
	}
	for _, p := range unknownProps(m.Arguments, cfg) {
		c.output("console", fmt.Sprintf("vmdap: ignoring unknown attach property %q\n", p))
	}
	sym, err := c.loadSymbols(m.Seq, cfg.Program, cfg.Symbols, cfg.SourceMap)
	if err != nil {
		c.sendError(m.Seq, m.Command, errAttach, err.Error())
		return
	}
	t, err := c.srv.Backends.Attach(context.Background(), cfg, c.srv.Log)
	if err != nil {
		c.sendError(m.Seq, m.Command, errAttach, "cannot attach: "+err.Error())
		return
	}
	stop := cfg.StopOnEntry == nil || *cfg.StopOnEntry
	off, _ := kernelOffset(cfg.KernelOffset)
	c.start(t, sym, stop, off)
	c.session().SetLinuxOptions(cfg.options())
	c.mu.Lock()
	c.attached = true
	c.mu.Unlock()
	c.send(&dap.AttachResponse{Response: newResponse(&m.Request)})
	c.send(&dap.InitializedEvent{Event: newEvent("initialized")})
}

// start makes the session over a fresh target and tells the client what
// the backend really offers.
func (c *conn) start(t vmm.Target, sym *symbols.Table, stopOnEntry bool, kernelOffset *uint64) {
	s := session.New(session.Config{Target: t, Symbols: sym, Log: c.srv.Log, Emit: c.onEvent, KernelOffset: kernelOffset})
	c.mu.Lock()
	c.sess = s
	c.stopOnEntry = stopOnEntry
	c.launched = true
	c.mu.Unlock()
	vc := t.Capabilities()
	_, wp := t.Watchpoints()
	ev := &capabilitiesEventExt{Event: newEvent("capabilities")}
	ev.Body.Capabilities = backendCapabilities(vc, wp)
	c.send(ev)
	c.output("console", fmt.Sprintf("vmdap: %s backend on %s; %d vCPU(s)\n", vc.Backend, vc.Host, t.VCPUs()))
	for _, n := range vc.Notes {
		c.output("console", "vmdap: note: "+n+"\n")
	}
	if sym != nil && !sym.HasDWARF() {
		c.output("important", "vmdap: the guest image has no DWARF line information: source breakpoints and variables are unavailable (build with -g)\n")
	}
}

func (c *conn) onConfigurationDone(m *dap.ConfigurationDoneRequest, s *session.Session) {
	c.mu.Lock()
	already := c.configured
	c.configured = true
	entry := c.stopOnEntry
	c.mu.Unlock()
	c.send(&dap.ConfigurationDoneResponse{Response: newResponse(&m.Request)})
	if already {
		return
	}
	if err := s.Start(entry); err != nil {
		c.output("stderr", "vmdap: cannot start the guest: "+err.Error()+"\n")
	}
}

// onDisconnect ends the session as the client asks: terminateDebuggee
// (default: true after launch, false after attach) and suspendDebuggee
// (default false: a guest let go runs on).
func (c *conn) onDisconnect(m *dap.DisconnectRequest, raw []byte) {
	var args struct {
		Arguments struct {
			TerminateDebuggee *bool `json:"terminateDebuggee"`
			SuspendDebuggee   bool  `json:"suspendDebuggee"`
		} `json:"arguments"`
	}
	_ = json.Unmarshal(raw, &args)
	c.mu.Lock()
	attached := c.attached
	c.mu.Unlock()
	a := args.Arguments
	how := session.EndDefault
	switch terminate := a.TerminateDebuggee; {
	case terminate != nil && *terminate:
		how = session.EndTerminate
	case terminate != nil || attached:
		how = session.EndDetach
		if a.SuspendDebuggee {
			how = session.EndSuspend
		}
	}
	if err := c.end(how); err != nil {
		c.output("important", "vmdap: "+err.Error()+"\n")
	}
	c.send(&dap.DisconnectResponse{Response: newResponse(&m.Request)})
}

func (c *conn) onTerminate(m *dap.TerminateRequest) {
	s := c.session()
	c.send(&dap.TerminateResponse{Response: newResponse(&m.Request)})
	if s != nil {
		c.shutdown()
		c.send(&dap.TerminatedEvent{Event: newEvent("terminated")})
	}
}

func (c *conn) onThreads(m *dap.ThreadsRequest, s *session.Session) {
	resp := &dap.ThreadsResponse{Response: newResponse(&m.Request)}
	for _, th := range s.ThreadList() { // vCPUs, then Linux tasks with taskThreads
		resp.Body.Threads = append(resp.Body.Threads, dap.Thread{Id: th.ID, Name: th.Name})
	}
	c.send(resp)
}

func (c *conn) onContinue(m *dap.ContinueRequest, s *session.Session) {
	c.handles.reset()
	resp := &dap.ContinueResponse{Response: newResponse(&m.Request)}
	resp.Body.AllThreadsContinued = true
	if err := s.Continue(max(m.Arguments.ThreadId, 1)); err != nil {
		c.fail(&m.Request, errContinue, err)
		return
	}
	c.send(resp)
}

func (c *conn) onStep(r *dap.Request, s *session.Session, thread int, kind session.StepKind, gran string) {
	if err := s.Ended(); err != nil {
		c.fail(r, errStep, err) // the guest is gone (say why), no step to pretend
		return
	}
	start, err := s.PrepareStep(thread, kind, gran)
	if err != nil {
		// Refused before anything ran (a stepOut of the outermost frame).
		c.fail(r, errStep, err)
		return
	}
	c.onRun(r, stepResponse(r), thread, start)
}

// onRun answers a step request and starts the step; a step that cannot
// start still ends in a stop, as the client believes the thread runs.
func (c *conn) onRun(r *dap.Request, resp dap.Message, thread int, start func() error) {
	c.handles.reset()
	// Respond first (the spec wants the response before the stopped event).
	c.send(resp)
	if err := start(); err != nil {
		c.output("stderr", fmt.Sprintf("vmdap: %s: %v\n", r.Command, err))
		if errors.Is(err, session.ErrRunning) {
			return
		}
		// Keep the client consistent: it now believes the thread runs.
		c.onEvent(session.Stopped{Reason: session.StopPause, Thread: thread, Description: err.Error()})
	}
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
	if err := s.Pause(); err != nil {
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

// fileExists is used to decide whether a frame's source can be shown.
func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
