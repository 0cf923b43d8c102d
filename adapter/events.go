package adapter

import (
	"sync"
	"time"

	"github.com/google/go-dap"

	"vmdap/session"
)

// onEvent translates a session event into DAP (called from session
// goroutines; it only queues).
func (c *conn) onEvent(e session.Event) {
	switch ev := e.(type) {
	case session.Stopped:
		c.handles.reset()
		if c.serial != nil {
			c.serial.flush()
		}
		m := &dap.StoppedEvent{Event: newEvent("stopped")}
		m.Body = dap.StoppedEventBody{Reason: string(ev.Reason), ThreadId: ev.Thread, Description: ev.Description,
			Text: ev.Text, AllThreadsStopped: true, HitBreakpointIds: ev.HitIDs}
		c.send(m)
	case session.Continued:
		c.handles.reset()
		m := &dap.ContinuedEvent{Event: newEvent("continued")}
		m.Body = dap.ContinuedEventBody{ThreadId: ev.Thread, AllThreadsContinued: true}
		c.send(m)
	case session.Output:
		c.output(ev.Category, ev.Text)
	case session.Exited:
		if c.serial != nil {
			c.serial.flush()
		}
		m := &dap.ExitedEvent{Event: newEvent("exited")}
		m.Body.ExitCode = ev.Code
		c.send(m)
	case session.Terminated:
		c.send(&dap.TerminatedEvent{Event: newEvent("terminated")})
	case session.Invalidated:
		if c.invalEvents {
			m := &dap.InvalidatedEvent{Event: newEvent("invalidated")}
			for _, a := range ev.Areas {
				m.Body.Areas = append(m.Body.Areas, dap.InvalidatedAreas(a))
			}
			c.send(m)
		}
	case session.MemoryChanged:
		if c.memEvents {
			m := &dap.MemoryEvent{Event: newEvent("memory")}
			m.Body = dap.MemoryEventBody{MemoryReference: memRef(ev.Addr), Offset: 0, Count: ev.Count}
			c.send(m)
		}
	case session.ModuleChanged:
		c.moduleEvent(ev)
	case session.BreakpointChanged:
		m := &breakpointEventExt{Event: newEvent("breakpoint")}
		m.Body.Reason = "changed"
		m.Body.Breakpoint = toBreakpoint(ev.BP)
		c.send(m)
	}
}

func (c *conn) output(category, text string) {
	m := &dap.OutputEvent{Event: newEvent("output")}
	m.Body = dap.OutputEventBody{Category: category, Output: text}
	c.send(m)
}

// serialSink forwards guest console output as output events, a line at a
// time or after a short quiet period, so partial lines still appear.
type serialSink struct {
	mu    sync.Mutex
	c     *conn
	buf   []byte
	timer *time.Timer
	done  bool
}

const serialFlushDelay = 20 * time.Millisecond

func newSerialSink(c *conn) *serialSink { return &serialSink{c: c} }

func (s *serialSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return len(p), nil
	}
	s.buf = append(s.buf, p...)
	if i := lastNewline(s.buf); i >= 0 {
		s.c.output("stdout", string(s.buf[:i+1]))
		s.buf = append(s.buf[:0], s.buf[i+1:]...)
	}
	if len(s.buf) > 0 && s.timer == nil {
		s.timer = time.AfterFunc(serialFlushDelay, s.flush)
	}
	return len(p), nil
}

func lastNewline(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			return i
		}
	}
	return -1
}

func (s *serialSink) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if len(s.buf) > 0 && !s.done {
		s.c.output("stdout", string(s.buf))
		s.buf = s.buf[:0]
	}
}

func (s *serialSink) close() {
	s.flush()
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
}
