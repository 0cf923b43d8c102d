package adapter

import (
	"fmt"

	"github.com/google/go-dap"

	"vmdap/session"
)

// gotoTargets and goto: VS Code's "Jump to Cursor" (gdb's jump).

func (c *conn) onGotoTargets(m *dap.GotoTargetsRequest, s *session.Session) {
	ts, err := s.GotoTargets(m.Arguments.Source.Path, m.Arguments.Line)
	if err != nil {
		c.fail(&m.Request, errGoto, err)
		return
	}
	c.mu.Lock()
	c.gotos = ts
	c.mu.Unlock()
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
	c.mu.Lock()
	var t session.GotoTarget
	id := m.Arguments.TargetId
	ok := id >= 1 && id <= len(c.gotos)
	if ok {
		t = c.gotos[id-1]
	}
	c.mu.Unlock()
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
