package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/google/go-dap"

	"vmdap/session"
	"vmdap/vmm"
)

// A session's life: initialize, launch or attach, configurationDone,
// then exited and terminated (each exactly once, in that order) however
// it ends, and disconnect.

func (c *conn) onInitialize(m *dap.InitializeRequest, raw []byte) {
	var ext initializeArgsExt
	_ = json.Unmarshal(raw, &ext)
	a := ext.Arguments
	c.mu.Lock()
	if c.initialized {
		c.mu.Unlock()
		// Its answers (line and column bases, events) hold for the
		// session: a second one would change them under the client.
		c.sendError(m.Seq, m.Command, errBadArguments, "initialize: the session is already initialized")
		return
	}
	c.initialized = true
	c.memEvents = a.SupportsMemoryEvent
	c.invalEvents = a.SupportsInvalidatedEvent
	c.progressOn = m.Arguments.SupportsProgressReporting
	c.lines1 = a.LinesStartAt1 == nil || *a.LinesStartAt1
	c.cols1 = a.ColumnsStartAt1 == nil || *a.ColumnsStartAt1
	c.uris = m.Arguments.PathFormat == "uri"
	c.varTypes = m.Arguments.SupportsVariableType
	c.vscode = a.ClientID == "vscode"
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
	d.SupportsCancelRequest = true
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
	// The Linux filters too: VS Code reads the filters of the initialize
	// response alone (a capabilities event updates its copy of the
	// capabilities, not the Breakpoints view), so they are offered here
	// and withdrawn for an image that is not a Linux kernel.
	for _, f := range append(slices.Clone(session.ExceptionFilters), session.LinuxExceptionFilters...) {
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

// backendCapabilities narrows the capabilities to what the session can
// really do, as the target's accessors say (session.Features).
func backendCapabilities(f session.Features) capabilitiesExt {
	cp := initialCapabilities()
	d := &cp.Capabilities
	if !f.Breakpoints() {
		d.SupportsFunctionBreakpoints = false
		d.SupportsInstructionBreakpoints = false
		d.SupportsConditionalBreakpoints = false
		d.SupportsHitConditionalBreakpoints = false
		d.SupportsLogPoints = false
		d.ExceptionBreakpointFilters = nil // int3 on the IDT's handlers
	} else if !f.Linux {
		d.ExceptionBreakpointFilters = slices.DeleteFunc(d.ExceptionBreakpointFilters, func(x dap.ExceptionBreakpointsFilter) bool {
			return slices.ContainsFunc(session.LinuxExceptionFilters, func(l session.ExceptionFilter) bool { return l.ID == x.Filter })
		})
	}
	if !f.Step {
		d.SupportsSteppingGranularity = false // instruction steps
	}
	if !f.Watchpoints {
		d.SupportsDataBreakpoints = false
		cp.SupportsDataBreakpointBytes = false
	}
	if !f.RegisterWrite {
		d.SupportsGotoTargetsRequest = false // a jump writes rip
	}
	if f.PostMortem {
		d.SupportsSetVariable = false
		d.SupportsSetExpression = false
		d.SupportsWriteMemoryRequest = false
		d.SupportsRestartRequest = false
	}
	var modes []breakpointMode
	for _, m := range cp.BreakpointModes {
		if m.Mode == session.ModeHardware && f.HWBreakpoints == 0 {
			continue
		}
		if m.Mode == session.ModeSoftware && !f.SWBreakpoints {
			continue
		}
		modes = append(modes, m)
	}
	cp.BreakpointModes = modes
	return cp
}

// capabilitiesChange is the body of the capabilities event that narrows
// from to to. A client merges the event into what initialize told it, and
// go-dap omits a false bool or an empty list, which the client would read
// as unchanged: every capability from offers and to does not is sent
// explicitly, as false or [].
func capabilitiesChange(from, to capabilitiesExt) map[string]any {
	var was, now map[string]any
	b, _ := json.Marshal(from)
	_ = json.Unmarshal(b, &was)
	b, _ = json.Marshal(to)
	_ = json.Unmarshal(b, &now)
	for k, v := range was {
		if _, ok := now[k]; ok {
			continue
		}
		switch v.(type) {
		case bool:
			now[k] = false
		case []any:
			now[k] = []any{}
		}
	}
	return now
}

// configErr says what is wrong with a configuration JSON did not decode
// into: a property of the wrong type by its name and the type it takes,
// as launch.json spells them.
func configErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		want := map[reflect.Kind]string{reflect.Bool: "true or false", reflect.String: "a string", reflect.Slice: "a list",
			reflect.Map: "an object", reflect.Struct: "an object"}[te.Type.Kind()]
		if want == "" {
			want = "a number"
		}
		if k := te.Type.Kind(); k >= reflect.Int && k <= reflect.Uint64 {
			want = "a whole number"
		}
		// encoding/json names a property of an embedded struct by its Go
		// path (linuxConfig.taskThreads); launch.json knows taskThreads.
		field := strings.TrimPrefix(te.Field, "linuxConfig.")
		return fmt.Sprintf("%q must be %s, not %s", field, want, jsonKind(te.Value))
	}
	return err.Error()
}

// jsonKind is a JSON value as a user reads it, from what encoding/json
// reports ("string", "number", "number 1.5").
func jsonKind(v string) string {
	if k, ok := map[string]string{"object": "an object", "array": "a list", "string": "a string", "bool": "true or false", "number": "a number"}[v]; ok {
		return k
	}
	return strings.TrimPrefix(v, "number ")
}

func (c *conn) onLaunch(j *job, m *dap.LaunchRequest) {
	var cfg LaunchConfig
	if err := json.Unmarshal(m.Arguments, &cfg); err != nil {
		c.sendError(m.Seq, m.Command, errBadConfig, "launch configuration: "+configErr(err))
		return
	}
	if k := zeroGiven(m.Arguments, "vcpus", "memory"); k != "" {
		c.sendError(m.Seq, m.Command, errBadConfig, fmt.Sprintf("launch configuration: %q is 0: leave it out for the default, or give a positive number", k))
		return
	}
	// noDebug (VS Code's Run Without Debugging) runs the guest with no
	// entry stop and no breakpoints (onNoDebugBreakpoints).
	var nd struct {
		NoDebug bool `json:"noDebug"`
	}
	_ = json.Unmarshal(m.Arguments, &nd)
	c.mu.Lock()
	c.noDebug = nd.NoDebug
	c.mu.Unlock()
	c.begin(j, &m.Request, &dap.LaunchResponse{Response: newResponse(&m.Request)}, beginArgs{
		kind: "launch", raw: m.Arguments, cfg: &cfg, validate: cfg.validate, errID: errLaunch,
		program:     func() (string, string) { return cfg.Program, cfg.Symbols },
		sourceMap:   func() map[string]string { return cfg.SourceMap },
		debugDirs:   func() []string { return cfg.DebugFileDirectories },
		kernelOff:   func() string { return launchSlide(cfg) },
		stopOnEntry: func() bool { return cfg.StopOnEntry && !nd.NoDebug },
		open: func(ctx context.Context, serial io.Writer) (vmm.Target, error) {
			return c.srv.Backends.Launch(ctx, cfg, serial, c.srv.Log)
		},
		openFailed: "cannot start the guest",
	})
}

func (c *conn) onAttach(j *job, m *dap.AttachRequest) {
	var cfg AttachConfig
	if err := json.Unmarshal(m.Arguments, &cfg); err != nil {
		c.sendError(m.Seq, m.Command, errBadConfig, "attach configuration: "+configErr(err))
		return
	}
	c.mu.Lock()
	c.noDebug = false // (a launch that failed may have set it)
	c.mu.Unlock()
	c.begin(j, &m.Request, &dap.AttachResponse{Response: newResponse(&m.Request)}, beginArgs{
		kind: "attach", raw: m.Arguments, cfg: &cfg, validate: cfg.validate, errID: errAttach,
		program:     func() (string, string) { return cfg.Program, cfg.Symbols },
		sourceMap:   func() map[string]string { return cfg.SourceMap },
		debugDirs:   func() []string { return cfg.DebugFileDirectories },
		kernelOff:   func() string { return cfg.KernelOffset },
		stopOnEntry: func() bool { return cfg.StopOnEntry == nil || *cfg.StopOnEntry },
		open: func(ctx context.Context, _ io.Writer) (vmm.Target, error) {
			return c.srv.Backends.Attach(ctx, cfg, c.srv.Log)
		},
		openFailed: "cannot attach",
	})
}

// beginArgs is what differs between launch and attach.
type beginArgs struct {
	kind        string // "launch" or "attach"
	raw         json.RawMessage
	cfg         any
	validate    func() error
	errID       int
	program     func() (program, symbols string)
	sourceMap   func() map[string]string
	debugDirs   func() []string // the debugFileDirectories setting
	kernelOff   func() string   // the kernelOffset setting
	stopOnEntry func() bool
	open        func(ctx context.Context, serial io.Writer) (vmm.Target, error)
	openFailed  string
}

// begin is launch and attach: validate the configuration, load the
// image's symbols, open the target, start the session. Loading and
// opening run on their own goroutine so that a cancel (or the client
// leaving) answers at once; what they produce after that is torn down.
func (c *conn) begin(j *job, r *dap.Request, resp dap.Message, a beginArgs) {
	c.mu.Lock()
	busy := c.sess != nil || c.launching != nil
	ended := c.ending || c.sentTerm
	c.mu.Unlock()
	switch {
	case busy:
		c.sendError(r.Seq, r.Command, a.errID, "a guest is already being debugged in this session")
		return
	case ended:
		c.sendError(r.Seq, r.Command, a.errID, "this debug session has ended: start a new one")
		return
	}
	if err := a.validate(); err != nil {
		c.sendError(r.Seq, r.Command, errBadConfig, err.Error())
		return
	}
	for _, p := range unknownProps(a.raw, a.cfg) {
		c.output("console", fmt.Sprintf("vmdap: ignoring unknown %s property %q\n", a.kind, p))
	}
	var serial *serialSink
	if a.kind == "launch" {
		serial = newSerialSink(c)
	}
	ctx, cancel := context.WithCancel(j.ctx)
	c.mu.Lock()
	c.launching = cancel
	c.serial = serial
	c.mu.Unlock()
	type opened struct {
		img *session.Image
		t   vmm.Target
		err error
	}
	res := make(chan opened, 1)
	go func() {
		// The symbols load while the target opens (a GDB stub's handshake,
		// QEMU's start, the VMM's loading of the image): the answer waits
		// for the slower of the two, not for their sum. When either fails,
		// the other is stopped (a stub not listening yet is known at once:
		// the symbols are not loaded for nothing) and what it made is torn
		// down.
		lctx, stopLoad := context.WithCancel(ctx)
		octx, stopOpen := context.WithCancel(ctx)
		defer stopLoad()
		defer stopOpen()
		type target struct {
			t   vmm.Target
			err error
		}
		tc := make(chan target, 1)
		go func() {
			var w io.Writer
			if serial != nil {
				w = serial
			}
			t, err := a.open(octx, w)
			if err != nil {
				t = nil // a backend may return a typed nil with its error
				stopLoad()
			}
			tc <- target{t, err}
		}()
		var o opened
		prog, syms := a.program()
		img, ierr := c.loadImage(lctx, r.Seq, prog, syms, a.sourceMap(), a.debugDirs())
		badImage := ierr != nil && lctx.Err() == nil // the image's own fault
		if badImage {
			stopOpen()
		}
		tg := <-tc
		switch {
		case badImage:
			if tg.t != nil {
				tg.t.Close()
			}
			o.err = ierr
		case tg.err != nil:
			o.err = fmt.Errorf("%s: %w", a.openFailed, tg.err)
		case ierr != nil: // the request was cancelled
			tg.t.Close()
			o.err = ierr
		default:
			o.img, o.t = img, tg.t
		}
		res <- o
	}()
	var o opened
	select {
	case o = <-res:
	case <-ctx.Done():
		go func() { // abandoned: tear down what arrives
			if o := <-res; o.t != nil {
				o.t.Close()
			}
		}()
		o.err = fmt.Errorf("%s: cancelled", a.kind)
	}
	cancel()
	c.mu.Lock()
	c.launching = nil
	c.mu.Unlock()
	if o.err == nil {
		off, _ := kernelOffset(a.kernelOff()) // validated above
		o.err = c.start(o.t, o.img, a.stopOnEntry(), off, a.kind == "attach")
		if lc, ok := a.cfg.(interface{ options() session.LinuxOptions }); ok && o.err == nil {
			c.session().SetLinuxOptions(lc.options()) // modules, kernelLog, taskThreads (linux.go)
		}
	}
	if o.err == nil && o.img == nil && a.kind == "launch" {
		c.output("console", "vmdap: the program is not an ELF file and no \"symbols\" file is named: no symbols (name the kernel's vmlinux in \"symbols\")\n")
	}
	if o.err == nil && a.kind == "attach" {
		c.mu.Lock()
		c.attached = true
		c.mu.Unlock()
	}
	if o.err != nil {
		if serial != nil {
			serial.close()
			c.mu.Lock()
			c.serial = nil
			c.mu.Unlock()
		}
		c.sendError(r.Seq, r.Command, a.errID, o.err.Error())
		return
	}
	c.send(resp)
	c.send(&dap.InitializedEvent{Event: newEvent("initialized")})
}

// start makes the session over a fresh target and tells the client what
// it really offers. A session that ended meanwhile tears the target down.
func (c *conn) start(t vmm.Target, img *session.Image, stopOnEntry bool, kernelOffset *uint64, attached bool) error {
	s := session.New(session.Config{Target: t, Image: img, Log: c.srv.Log, Emit: c.onEvent, KernelOffset: kernelOffset, Attached: attached})
	c.mu.Lock()
	if c.ending {
		c.mu.Unlock()
		s.Close()
		return fmt.Errorf("the client went away")
	}
	c.sess = s
	c.stopOnEntry = stopOnEntry
	c.mu.Unlock()
	f := s.Features()
	ev := &capabilitiesEventExt{Event: newEvent("capabilities")}
	ev.Body.Capabilities = capabilitiesChange(initialCapabilities(), backendCapabilities(f))
	c.send(ev)
	c.output("console", fmt.Sprintf("vmdap: %s backend on %s; %d vCPU(s)\n", f.Backend, f.Host, f.VCPUs))
	for _, n := range f.Notes {
		c.output("console", "vmdap: note: "+n+"\n")
	}
	if img != nil && !f.LineInfo {
		msg := "vmdap: the guest image has no DWARF line information: source breakpoints and variables are unavailable (build with -g)"
		if _, looked := img.DebugFound(); len(looked) > 0 {
			// A stripped image names its debug file: say where it was not.
			msg += "; its separate debug file is not in " + strings.Join(looked, ", ") + " (set \"symbols\" to it)"
		}
		c.output("important", msg+"\n")
	}
	return nil
}

func (c *conn) onConfigurationDone(m *dap.ConfigurationDoneRequest, s *session.Session) {
	c.mu.Lock()
	already := c.configured
	c.configured = true
	entry := c.stopOnEntry
	c.mu.Unlock()
	c.hold()
	defer c.release()
	c.send(&dap.ConfigurationDoneResponse{Response: newResponse(&m.Request)})
	if already {
		return
	}
	if err := s.Start(entry); err != nil {
		c.output("stderr", "vmdap: cannot start the guest: "+err.Error()+"\n")
	}
}

// onDisconnect (on the reader) ends the session as the client asks:
// terminateDebuggee (default: true after launch, false after attach) and
// suspendDebuggee (default false: a guest let go runs on). Requests still
// queued are answered "cancelled"; a guest that ended is reported with
// exited and terminated, one let go with terminated alone; the response
// is the last message.
func (c *conn) onDisconnect(m *dap.DisconnectRequest, raw []byte) {
	var args struct {
		Arguments struct {
			TerminateDebuggee *bool `json:"terminateDebuggee"`
			SuspendDebuggee   bool  `json:"suspendDebuggee"`
		} `json:"arguments"`
	}
	_ = json.Unmarshal(raw, &args)
	a := args.Arguments
	c.closeQueue(true)
	c.mu.Lock()
	attached := c.attached
	c.mu.Unlock()
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
	launched := c.session() != nil
	err := c.letGo(how)
	if err != nil {
		c.output("important", "vmdap: "+err.Error()+"\n")
	}
	if launched {
		if (how == session.EndDetach || how == session.EndSuspend) && !errors.Is(err, session.ErrEndsWithSession) {
			c.terminated(false) // the guest lives on: no exit to report
		} else {
			c.ended(0)
		}
	}
	c.finish(&dap.DisconnectResponse{Response: newResponse(&m.Request)})
}

// onTerminate ends the guest (attached or launched); the session stays
// for disconnect.
func (c *conn) onTerminate(m *dap.TerminateRequest) {
	launched := c.session() != nil
	if err := c.letGo(session.EndTerminate); err != nil {
		c.output("important", "vmdap: "+err.Error()+"\n")
	}
	c.send(&dap.TerminateResponse{Response: newResponse(&m.Request)})
	if launched {
		c.ended(0)
	}
}

// ended sends whichever of exited (with code, unless the guest reported
// its own) and terminated have not gone out yet.
func (c *conn) ended(code int) {
	c.exited(code)
	c.terminated(true)
}

// exited sends the exited event, once.
func (c *conn) exited(code int) {
	c.mu.Lock()
	if c.sentExited {
		c.mu.Unlock()
		return
	}
	c.sentExited = true
	serial := c.serial
	c.mu.Unlock()
	if serial != nil {
		serial.flush()
	}
	m := &dap.ExitedEvent{Event: newEvent("exited")}
	m.Body.ExitCode = code
	c.send(m)
}

// terminated sends the terminated event, once; after an exited event
// unless the guest outlives the session (exit false).
func (c *conn) terminated(exit bool) {
	if exit {
		c.exited(255) // a session that ends without the guest's word ended abnormally
	}
	c.mu.Lock()
	if c.sentTerm {
		c.mu.Unlock()
		return
	}
	c.sentTerm = true
	c.mu.Unlock()
	c.send(&dap.TerminatedEvent{Event: newEvent("terminated")})
}
