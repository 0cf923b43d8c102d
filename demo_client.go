package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-dap"
)

// demoClient is the DAP client `vmdap demo` talks to the adapter with. The
// demo is a script, one request at a time, so the client is synchronous:
// it sends a request and reads until its response, keeping the events that
// arrive on the way for the waits that follow.
type demoClient struct {
	r        *bufio.Reader
	deadline interface{ SetReadDeadline(time.Time) error } // r's source, when it has deadlines (a pipe)
	w        io.Writer
	seq      int
	events   []dap.EventMessage // received, not waited for yet
	stdout   strings.Builder    // the guest's output (output events, category stdout)
}

// demoWait bounds each wait for a message from the adapter.
const demoWait = time.Minute

func newDemoClient(r io.Reader, w io.Writer) *demoClient {
	c := &demoClient{r: bufio.NewReader(r), w: w}
	c.deadline, _ = r.(interface{ SetReadDeadline(time.Time) error })
	return c
}

// call sends a request and returns its response; a failed one is an error.
func (c *demoClient) call(command string, args any) (dap.Message, error) {
	c.seq++
	req := map[string]any{"seq": c.seq, "type": "request", "command": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if err := dap.WriteBaseMessage(c.w, b); err != nil {
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	for {
		m, err := c.next()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", command, err)
		}
		r, ok := m.(dap.ResponseMessage)
		if !ok || r.GetResponse().RequestSeq != c.seq {
			continue
		}
		if resp := r.GetResponse(); !resp.Success {
			return nil, fmt.Errorf("%s failed: %s", command, resp.Message)
		}
		return m, nil
	}
}

// event returns the first event with that name, received already or
// next, and forgets it and every event before it.
func (c *demoClient) event(name string) (dap.Message, error) {
	for {
		for i, e := range c.events {
			if e.GetEvent().Event == name {
				c.events = c.events[i+1:]
				return e, nil
			}
		}
		if _, err := c.next(); err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", name, err)
		}
	}
}

// next reads one message, each within demoWait; events are kept (and the
// guest's output collected), responses returned.
func (c *demoClient) next() (dap.Message, error) {
	if c.deadline != nil {
		_ = c.deadline.SetReadDeadline(time.Now().Add(demoWait))
	}
	m, err := dap.ReadProtocolMessage(c.r)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("the adapter sent nothing for %s", demoWait)
		}
		return nil, err
	}
	if e, ok := m.(dap.EventMessage); ok {
		if o, ok := m.(*dap.OutputEvent); ok && o.Body.Category == "stdout" {
			c.stdout.WriteString(o.Body.Output)
		}
		c.events = append(c.events, e)
	}
	return m, nil
}
