package adapter

import (
	"fmt"

	"github.com/google/go-dap"

	"vmdap/session"
)

// gotoTargets and goto: VS Code's "Jump to Cursor" (gdb's jump);
// stepInTargets and stepIn with a target: "Step Into Target". Target ids
// come from the session-wide id counter (handles): never reused.

func (c *conn) onGotoTargets(m *dap.GotoTargetsRequest, s *session.Session) {
	line := c.lineIn(m.Arguments.Line)
	ts, err := s.GotoTargets(c.pathIn(m.Arguments.Source.Path), line)
	if err != nil {
		c.fail(&m.Request, errGoto, err)
		return
	}
	resp := &dap.GotoTargetsResponse{Response: newResponse(&m.Request)}
	resp.Body.Targets = make([]dap.GotoTarget, 0, len(ts))
	for _, t := range ts {
		label := fmt.Sprintf("line %d", t.Line)
		if t.Function != "" {
			label += " in " + t.Function
		}
		resp.Body.Targets = append(resp.Body.Targets, dap.GotoTarget{Id: c.handles.addGoto(t), Label: label,
			Line: c.lineOut(t.Line), InstructionPointerReference: memRef(t.Addr)})
	}
	c.send(resp)
}

func (c *conn) onGoto(m *dap.GotoRequest, s *session.Session) {
	id := m.Arguments.TargetId
	t, ok := c.handles.gotoTarget(id)
	if !ok {
		c.sendError(m.Seq, m.Command, errGoto, fmt.Sprintf("goto: no target %d (ask gotoTargets first; targets are valid until the guest runs)", id))
		return
	}
	// The response first, then the stop (the spec's order).
	c.onRun(&m.Request, &dap.GotoResponse{Response: newResponse(&m.Request)}, func() error {
		return s.Goto(m.Arguments.ThreadId, t.Addr)
	})
}

func (c *conn) onStepInTargets(m *dap.StepInTargetsRequest, s *session.Session) {
	f, ok := c.handles.frame(m.Arguments.FrameId)
	if !ok {
		c.sendError(m.Seq, m.Command, errStep, fmt.Sprintf("stepInTargets: unknown frameId %d (frame ids are valid until the guest runs again)", m.Arguments.FrameId))
		return
	}
	ts, err := s.StepInTargets(f.thread, f.index)
	if err != nil {
		c.fail(&m.Request, errStep, err)
		return
	}
	resp := &stepInTargetsResponseExt{Response: newResponse(&m.Request)}
	resp.Body.Targets = make([]stepInTargetExt, 0, len(ts))
	for _, t := range ts {
		resp.Body.Targets = append(resp.Body.Targets, stepInTargetExt{StepInTarget: dap.StepInTarget{Id: c.handles.addStepIn(t), Label: t.Label}, Line: c.lineOutPtr(t.Line)})
	}
	c.send(resp)
}

func (c *conn) onStepInTarget(m *dap.StepInRequest, s *session.Session) {
	id := m.Arguments.TargetId
	t, ok := c.handles.stepInTarget(id)
	if !ok {
		c.sendError(m.Seq, m.Command, errStep, fmt.Sprintf("stepIn: no target %d (ask stepInTargets first; targets are valid until the guest runs)", id))
		return
	}
	c.onRun(&m.Request, stepResponse(&m.Request), func() error { return s.StepInto(m.Arguments.ThreadId, t.Call) })
}
