package adapter

import (
	"fmt"

	"github.com/google/go-dap"

	"vmdap/session"
)

// gotoTargets and goto: VS Code's "Jump to Cursor" (gdb's jump);
// stepInTargets and stepIn with a target: "Step Into Target".

func (c *conn) onGotoTargets(m *dap.GotoTargetsRequest, s *session.Session) {
	ts, err := s.GotoTargets(m.Arguments.Source.Path, m.Arguments.Line)
	if err != nil {
		c.fail(&m.Request, errGoto, err)
		return
	}
	keep(c, &c.gotos, ts)
	resp := &dap.GotoTargetsResponse{Response: newResponse(&m.Request)}
	resp.Body.Targets = make([]dap.GotoTarget, 0, len(ts))
	for i, t := range ts {
		label := fmt.Sprintf("line %d", t.Line)
		if t.Function != "" {
			label += " in " + t.Function
		}
		resp.Body.Targets = append(resp.Body.Targets, dap.GotoTarget{Id: i + 1, Label: label, Line: t.Line,
			InstructionPointerReference: memRef(t.Addr)})
	}
	c.send(resp)
}

func (c *conn) onGoto(m *dap.GotoRequest, s *session.Session) {
	id := m.Arguments.TargetId
	t, ok := pick(c, &c.gotos, id)
	if !ok {
		c.sendError(m.Seq, m.Command, errGoto, fmt.Sprintf("goto: no target %d (ask gotoTargets first)", id))
		return
	}
	if err := s.Goto(m.Arguments.ThreadId, t.Addr); err != nil {
		c.fail(&m.Request, errGoto, err)
		return
	}
	// The response first, then the stop (the spec's order).
	c.send(&dap.GotoResponse{Response: newResponse(&m.Request)})
	c.onEvent(session.Stopped{Reason: session.StopGoto, Thread: m.Arguments.ThreadId,
		Description: fmt.Sprintf("jumped to line %d", t.Line)})
}

func (c *conn) onStepInTargets(m *dap.StepInTargetsRequest, s *session.Session) {
	thread, frame := 0, 0
	if f, ok := c.handles.frame(m.Arguments.FrameId); ok {
		thread, frame = f.thread, f.index
	} else {
		c.sendError(m.Seq, m.Command, errStep, fmt.Sprintf("stepInTargets: no frame %d at this stop", m.Arguments.FrameId))
		return
	}
	ts, err := s.StepInTargets(thread, frame)
	if err != nil {
		c.fail(&m.Request, errStep, err)
		return
	}
	keep(c, &c.stepIns, ts)
	resp := &dap.StepInTargetsResponse{Response: newResponse(&m.Request)}
	resp.Body.Targets = make([]dap.StepInTarget, 0, len(ts))
	for i, t := range ts {
		resp.Body.Targets = append(resp.Body.Targets, dap.StepInTarget{Id: i + 1, Label: t.Label, Line: t.Line})
	}
	c.send(resp)
}

func (c *conn) onStepInTarget(m *dap.StepInRequest, s *session.Session) {
	id := m.Arguments.TargetId
	t, ok := pick(c, &c.stepIns, id)
	if !ok {
		c.sendError(m.Seq, m.Command, errStep, fmt.Sprintf("stepIn: no target %d (ask stepInTargets first)", id))
		return
	}
	c.onRun(&m.Request, stepResponse(&m.Request), m.Arguments.ThreadId, func() error { return s.StepInto(m.Arguments.ThreadId, t.Call) })
}

// keep records an answer's targets (their ids are index + 1) for the
// request that names one.
func keep[T any](c *conn, list *[]T, ts []T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	*list = ts
}

// pick returns the target with a 1-based id from the last answer listed.
func pick[T any](c *conn, list *[]T, id int) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t T
	if id < 1 || id > len(*list) {
		return t, false
	}
	return (*list)[id-1], true
}
