package adapter

import (
	"bytes"
	"sync"
	"time"

	"github.com/google/go-dap"

	"vmdap/session"
)

// stopReasons are the DAP words for the session's stop reasons.
var stopReasons = map[session.StopReason]string{
	session.StopStep: "step", session.StopBreakpoint: "breakpoint", session.StopFunctionBreakpoint: "function breakpoint",
	session.StopInstructionBreakpoint: "instruction breakpoint", session.StopDataBreakpoint: "data breakpoint",
	session.StopException: "exception", session.StopPause: "pause", session.StopEntry: "entry", session.StopGoto: "goto",
}

// outputCategories are the DAP output categories of the session's
// output kinds.
var outputCategories = map[session.OutputKind]string{
	session.OutNote: "console", session.OutImportant: "important", session.OutError: "stderr",
}

// moduleReasons are the DAP module event reasons of the session's
// module changes.
var moduleReasons = map[session.ModuleChange]string{
	session.ModuleLoaded: "new", session.ModuleUpdated: "changed", session.ModuleUnloaded: "removed",
}

// onEvent translates a session event into DAP (called from session
// goroutines, and from the worker inside session calls; it only queues).
func (c *conn) onEvent(e session.Event) {
	c.mu.Lock()
	serial, memEvents, invalEvents := c.serial, c.memEvents, c.invalEvents
	c.mu.Unlock()
	switch ev := e.(type) {
	case session.Stopped:
		c.handles.reset()
		if serial != nil {
			serial.flush()
		}
		reason, ok := stopReasons[ev.Reason]
		if !ok {
			reason = "pause"
		}
		m := &dap.StoppedEvent{Event: newEvent("stopped")}
		m.Body = dap.StoppedEventBody{Reason: reason, ThreadId: ev.Thread, Description: ev.Description,
			Text: ev.Text, AllThreadsStopped: true, HitBreakpointIds: ev.HitIDs}
		c.send(m)
	case session.Continued:
		c.handles.reset()
		m := &dap.ContinuedEvent{Event: newEvent("continued")}
		m.Body = dap.ContinuedEventBody{ThreadId: ev.Thread, AllThreadsContinued: true}
		c.send(m)
	case session.Output:
		c.output(outputCategories[ev.Kind], ev.Text)
	case session.Exited:
		c.exited(ev.Code)
	case session.Terminated:
		c.terminated(true)
	case session.Invalidated:
		// A write changed what the expanded variables show: their lists
		// are made again when asked for, so that a client that does not
		// take invalidated events reads the new values at the same
		// references too.
		c.handles.dropLists()
		if invalEvents {
			m := &dap.InvalidatedEvent{Event: newEvent("invalidated")}
			m.Body.Areas = []dap.InvalidatedAreas{"variables"}
			if ev.Stacks {
				m.Body.Areas = append(m.Body.Areas, "stacks")
			}
			c.send(m)
		}
	case session.MemoryChanged:
		if memEvents {
			m := &dap.MemoryEvent{Event: newEvent("memory")}
			m.Body = dap.MemoryEventBody{MemoryReference: memRef(ev.Addr), Offset: 0, Count: ev.Count}
			c.send(m)
		}
	case session.ModuleChanged:
		c.moduleEvent(ev)
	case session.BreakpointChanged:
		m := &breakpointEventExt{Event: newEvent("breakpoint")}
		m.Body.Reason = "changed"
		m.Body.Breakpoint = c.toBreakpoint(ev.BP)
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
	mu    sync.Mutex // guards buf, timer and done (written by vCPU threads, flushed by a timer and the adapter)
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
	if i := bytes.LastIndexByte(s.buf, '\n'); i >= 0 {
		s.c.output("stdout", string(s.buf[:i+1]))
		s.buf = append(s.buf[:0], s.buf[i+1:]...)
	}
	if len(s.buf) > 0 && s.timer == nil {
		s.timer = time.AfterFunc(serialFlushDelay, s.flush)
	}
	return len(p), nil
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
