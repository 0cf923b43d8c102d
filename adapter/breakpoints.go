package adapter

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/google/go-dap"

	"vmdap/session"
)

func (c *conn) toBreakpoint(b session.BreakpointInfo) breakpointExt {
	bp := breakpointExt{Breakpoint: dap.Breakpoint{Id: b.ID, Verified: b.Verified, Message: b.Message}, Line: c.lineOutPtr(b.Line)}
	if !b.Verified {
		bp.Reason = "failed"
		if b.State == session.BPPending {
			bp.Reason = "pending"
		}
	}
	if b.File != "" {
		bp.Source = c.source(b.File)
	}
	if b.HasAddr {
		bp.InstructionReference = memRef(b.Addr)
	}
	return bp
}

func (c *conn) onSetBreakpoints(m *dap.SetBreakpointsRequest, s *session.Session, raw []byte) {
	var ext setBreakpointsArgsExt
	_ = json.Unmarshal(raw, &ext)
	args := m.Arguments
	path := c.pathIn(args.Source.Path)
	if path == "" {
		c.sendError(m.Seq, m.Command, errBreakpoints, "setBreakpoints: source.path is required (vmdap reads sources from disk by path; it has no sourceReference sources)")
		return
	}
	req := make([]session.SourceBP, len(args.Breakpoints))
	for i, b := range args.Breakpoints {
		req[i] = session.SourceBP{Line: c.lineIn(b.Line), Condition: b.Condition, HitCondition: b.HitCondition, LogMessage: b.LogMessage}
		if i < len(ext.Arguments.Breakpoints) {
			req[i].Mode = ext.Arguments.Breakpoints[i].Mode
		}
	}
	if len(args.Breakpoints) == 0 && len(args.Lines) > 0 {
		for _, l := range args.Lines {
			req = append(req, session.SourceBP{Line: c.lineIn(l)})
		}
	}
	infos, err := s.SetSourceBreakpoints(path, req)
	if err != nil {
		c.fail(&m.Request, errBreakpoints, err)
		return
	}
	resp := &setBreakpointsResponseExt{Response: newResponse(&m.Request)}
	resp.Body.Breakpoints = make([]breakpointExt, 0, len(infos))
	for _, b := range infos {
		bp := c.toBreakpoint(b)
		bp.Source = c.source(path)
		resp.Body.Breakpoints = append(resp.Body.Breakpoints, bp)
	}
	c.send(resp)
}

func (c *conn) onSetFunctionBreakpoints(m *dap.SetFunctionBreakpointsRequest, s *session.Session, raw []byte) {
	var ext setFunctionBreakpointsArgsExt
	_ = json.Unmarshal(raw, &ext)
	var req []session.FunctionBP
	for i, b := range m.Arguments.Breakpoints {
		r := session.FunctionBP{Name: b.Name, Condition: b.Condition, HitCondition: b.HitCondition}
		if i < len(ext.Arguments.Breakpoints) {
			r.Mode = ext.Arguments.Breakpoints[i].Mode
		}
		req = append(req, r)
	}
	infos, err := s.SetFunctionBreakpoints(req)
	if err != nil {
		c.fail(&m.Request, errBreakpoints, err)
		return
	}
	resp := &setBreakpointsResponseExt{Response: newResponse(&m.Request)}
	resp.Command = m.Command
	resp.Body.Breakpoints = make([]breakpointExt, 0, len(infos))
	for _, b := range infos {
		resp.Body.Breakpoints = append(resp.Body.Breakpoints, c.toBreakpoint(b))
	}
	c.send(resp)
}

func (c *conn) onSetInstructionBreakpoints(m *dap.SetInstructionBreakpointsRequest, s *session.Session, raw []byte) {
	var ext setInstructionBreakpointsArgsExt
	_ = json.Unmarshal(raw, &ext)
	// A reference that is no address is answered failed, and not
	// given to the session (where it would be a breakpoint at 0).
	var req []session.InstructionBP
	bad := map[int]string{}
	for i, b := range m.Arguments.Breakpoints {
		base, err := parseMemRef(b.InstructionReference)
		if err != nil {
			bad[i] = fmt.Sprintf("instructionReference %s is not an address (0x…): %v", quote(b.InstructionReference), err)
			continue
		}
		addr, err := offsetAddr(base, b.Offset) // as readMemory and disassemble move by offset
		if err != nil {
			bad[i] = err.Error()
			continue
		}
		r := session.InstructionBP{Addr: addr, Condition: b.Condition, HitCondition: b.HitCondition}
		if i < len(ext.Arguments.Breakpoints) {
			r.Mode = ext.Arguments.Breakpoints[i].Mode
		}
		req = append(req, r)
	}
	infos, err := s.SetInstructionBreakpoints(req)
	if err != nil {
		c.fail(&m.Request, errBreakpoints, err)
		return
	}
	resp := &setBreakpointsResponseExt{Response: newResponse(&m.Request)}
	resp.Body.Breakpoints = make([]breakpointExt, 0, len(m.Arguments.Breakpoints))
	for i := range m.Arguments.Breakpoints {
		if msg, ok := bad[i]; ok {
			resp.Body.Breakpoints = append(resp.Body.Breakpoints, breakpointExt{Breakpoint: dap.Breakpoint{Verified: false, Message: msg}, Reason: "failed"})
			continue
		}
		resp.Body.Breakpoints = append(resp.Body.Breakpoints, c.toBreakpoint(infos[0]))
		infos = infos[1:]
	}
	c.send(resp)
}

func (c *conn) onSetExceptionBreakpoints(m *dap.SetExceptionBreakpointsRequest, s *session.Session) {
	filters := append([]string(nil), m.Arguments.Filters...)
	for _, o := range m.Arguments.FilterOptions {
		filters = append(filters, o.FilterId)
	}
	res, err := s.SetExceptionFilters(filters)
	if err != nil {
		c.fail(&m.Request, errBreakpoints, err)
		return
	}
	resp := &dap.SetExceptionBreakpointsResponse{Response: newResponse(&m.Request)}
	resp.Body.Breakpoints = []dap.Breakpoint{}
	for _, e := range res {
		b := dap.Breakpoint{Verified: e == nil}
		if e != nil {
			b.Message = e.Error()
		}
		resp.Body.Breakpoints = append(resp.Body.Breakpoints, b)
	}
	c.send(resp)
}

func (c *conn) onDataBreakpointInfo(m *dap.DataBreakpointInfoRequest, s *session.Session, raw []byte) {
	var ext dataBreakpointInfoArgsExt
	_ = json.Unmarshal(raw, &ext)
	a := m.Arguments
	var info session.DataInfo
	thread, frame, err := c.frameArg(a.FrameId)
	if err != nil {
		c.fail(&m.Request, errDataBreakpoint, err)
		return
	}
	switch {
	case ext.Arguments.AsAddress:
		info, err = s.DataInfoForAddress(thread, a.Name, ext.Arguments.Bytes)
	case a.VariablesReference != 0:
		var v session.Var
		if v, err = c.childVar(a.VariablesReference, a.Name); err == nil {
			info = s.DataInfoForVar(v)
		}
	default:
		info, err = s.DataInfoForExpr(thread, frame, a.Name)
	}
	resp := &dap.DataBreakpointInfoResponse{Response: newResponse(&m.Request)}
	if err != nil {
		resp.Body = dap.DataBreakpointInfoResponseBody{DataId: nil, Description: err.Error()}
		c.send(resp)
		return
	}
	resp.Body.Description = info.Description
	if info.DataID != "" {
		resp.Body.DataId = info.DataID
		for _, t := range info.AccessTypes {
			resp.Body.AccessTypes = append(resp.Body.AccessTypes, dap.DataBreakpointAccessType(t))
		}
		resp.Body.CanPersist = info.CanPersist
	}
	c.send(resp)
}

func (c *conn) onSetDataBreakpoints(m *dap.SetDataBreakpointsRequest, s *session.Session) {
	var req []session.DataBP
	for _, b := range m.Arguments.Breakpoints {
		req = append(req, session.DataBP{DataID: b.DataId, Access: string(b.AccessType), Condition: b.Condition, HitCondition: b.HitCondition})
	}
	infos, err := s.SetDataBreakpoints(req)
	if err != nil {
		c.fail(&m.Request, errDataBreakpoint, err)
		return
	}
	resp := &setBreakpointsResponseExt{Response: newResponse(&m.Request)}
	resp.Body.Breakpoints = make([]breakpointExt, 0, len(infos))
	for _, b := range infos {
		resp.Body.Breakpoints = append(resp.Body.Breakpoints, c.toBreakpoint(b))
	}
	c.send(resp)
}

func (c *conn) onBreakpointLocations(m *dap.BreakpointLocationsRequest, s *session.Session) {
	a := m.Arguments
	line := c.lineIn(a.Line)
	end := line
	if a.EndLine != 0 {
		end = c.lineIn(a.EndLine)
	}
	resp := &dap.BreakpointLocationsResponse{Response: newResponse(&m.Request)}
	resp.Body.Breakpoints = []dap.BreakpointLocation{}
	for _, l := range s.BreakpointLines(c.pathIn(a.Source.Path), line, end) {
		resp.Body.Breakpoints = append(resp.Body.Breakpoints, dap.BreakpointLocation{Line: c.lineOut(l)})
	}
	c.send(resp)
}

func (c *conn) onLoadedSources(m *dap.LoadedSourcesRequest, s *session.Session) {
	resp := &dap.LoadedSourcesResponse{Response: newResponse(&m.Request)}
	resp.Body.Sources = []dap.Source{}
	for _, f := range s.Sources() {
		src := *c.source(f)
		if _, err := os.Stat(f); err != nil {
			src.PresentationHint = "deemphasize" // built elsewhere: not on this disk
		}
		resp.Body.Sources = append(resp.Body.Sources, src)
	}
	c.send(resp)
}
