// Package daptest is a small DAP client on go-dap's codec for tests: it
// sends requests, matches responses by sequence number, and buffers events
// so none is missed between a request and the wait for its consequence.
// (`vmdap demo` has a client of its own: no test code ships.)
package daptest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-dap"
)

// Client is one DAP client connection.
type Client struct {
	w       io.Writer
	rc      io.Closer
	wmu     sync.Mutex // serialises writes to w (not held while reading)
	mu      sync.Mutex // guards the fields below
	seq     int
	pending map[int]chan dap.Message
	raw     map[int][]byte // response bodies as sent, by request seq (RequestRaw)
	events  []dap.Message
	outputs []*dap.OutputEvent // every output event, never cleared
	names   []string           // every event's name, in order, never cleared
	evCond  *sync.Cond
	err     error
	// Timeout bounds every wait (default 30 s).
	Timeout time.Duration
	// Log receives every message (raw JSON), when set.
	Log func(dir string, raw []byte)
}

// New starts a client on a connection.
func New(rw io.ReadWriteCloser) *Client { return NewLogged(rw, nil) }

// NewLogged starts a client whose Log is set from the start (so no
// message escapes it).
func NewLogged(rw io.ReadWriteCloser, log func(dir string, raw []byte)) *Client {
	c := &Client{w: rw, rc: rw, pending: map[int]chan dap.Message{}, raw: map[int][]byte{}, Timeout: 30 * time.Second, Log: log}
	c.evCond = sync.NewCond(&c.mu)
	go c.read(bufio.NewReader(rw))
	return c
}

func (c *Client) read(r *bufio.Reader) {
	for {
		raw, err := dap.ReadBaseMessage(r)
		if err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("connection closed: %w", err)
			for _, ch := range c.pending {
				close(ch)
			}
			c.pending = map[int]chan dap.Message{}
			c.evCond.Broadcast()
			c.mu.Unlock()
			return
		}
		if c.Log != nil {
			c.Log("<-", raw)
		}
		m, err := dap.DecodeProtocolMessage(raw)
		if err != nil {
			// A custom request's response (go-dap knows only the
			// spec's commands): deliver it as a plain response.
			r := &dap.Response{}
			if json.Unmarshal(raw, r) != nil || r.Type != "response" {
				continue
			}
			m = r
		}
		c.mu.Lock()
		switch mm := m.(type) {
		case dap.ResponseMessage:
			rs := mm.GetResponse().RequestSeq
			if ch, ok := c.pending[rs]; ok {
				c.raw[rs] = raw
				ch <- m
				delete(c.pending, rs)
			}
		case dap.EventMessage:
			if o, ok := m.(*dap.OutputEvent); ok {
				c.outputs = append(c.outputs, o)
			}
			c.names = append(c.names, mm.GetEvent().Event)
			c.events = append(c.events, m)
			c.evCond.Broadcast()
		}
		c.mu.Unlock()
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.rc.Close() }

// Send sends a request and returns its sequence number and a channel for
// the response.
func (c *Client) Send(command string, args any) (int, <-chan dap.Message, error) {
	c.mu.Lock()
	c.seq++
	seq := c.seq
	ch := make(chan dap.Message, 1)
	c.pending[seq] = ch
	c.mu.Unlock()
	req := map[string]any{"seq": seq, "type": "request", "command": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return 0, nil, err
	}
	if c.Log != nil {
		c.Log("->", b)
	}
	c.wmu.Lock()
	err = dap.WriteBaseMessage(c.w, b)
	c.wmu.Unlock()
	return seq, ch, err
}

// SendRaw writes bytes as one message body (for malformed-input tests).
func (c *Client) SendRaw(body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return dap.WriteBaseMessage(c.w, body)
}

// WriteRaw writes bytes to the connection as they are (for tests of
// malformed base-protocol headers).
func (c *Client) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.w.Write(b)
	return err
}

// Wait waits for the response to a request sent with Send.
func (c *Client) Wait(command string, ch <-chan dap.Message) (dap.Message, error) {
	return c.wait(command, ch)
}

// Request sends a request and waits for its response; a failed response
// is returned as an *ErrorResponse error.
func (c *Client) Request(command string, args any) (dap.Message, error) {
	m, _, err := c.RequestRaw(command, args)
	return m, err
}

// RequestRaw is Request that also returns the response's JSON as sent (for
// fields go-dap's types do not have).
func (c *Client) RequestRaw(command string, args any) (dap.Message, []byte, error) {
	seq, ch, err := c.Send(command, args)
	if err != nil {
		return nil, nil, err
	}
	m, err := c.wait(command, ch)
	c.mu.Lock()
	raw := c.raw[seq]
	delete(c.raw, seq)
	c.mu.Unlock()
	return m, raw, err
}

func (c *Client) wait(command string, ch <-chan dap.Message) (dap.Message, error) {
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: %w", command, c.connErr())
		}
		r := m.(dap.ResponseMessage).GetResponse()
		if !r.Success {
			return m, &ErrorResponse{Command: command, Message: r.Message}
		}
		return m, nil
	case <-time.After(c.Timeout):
		return nil, fmt.Errorf("%s: no response within %s", command, c.Timeout)
	}
}

func (c *Client) connErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return errors.New("connection closed")
}

// ErrorResponse is a failed response.
type ErrorResponse struct {
	Command, Message string
}

func (e *ErrorResponse) Error() string { return e.Command + " failed: " + e.Message }

// WaitEvent returns the first buffered (or next) event with that name and
// removes it, and every event before it, from the buffer.
func (c *Client) WaitEvent(name string) (dap.Message, error) { return c.WaitAnyEvent(name) }

// WaitAnyEvent is WaitEvent for the first event with one of the names
// (a stop or the guest's exit).
func (c *Client) WaitAnyEvent(names ...string) (dap.Message, error) {
	name := strings.Join(names, " or ")
	deadline := time.Now().Add(c.Timeout)
	timer := time.AfterFunc(c.Timeout, func() {
		c.mu.Lock()
		c.evCond.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for i, e := range c.events {
			if slices.Contains(names, e.(dap.EventMessage).GetEvent().Event) {
				c.events = c.events[i+1:]
				return e, nil
			}
		}
		if c.err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", name, c.err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no %s event within %s", name, c.Timeout)
		}
		c.evCond.Wait()
	}
}

// Events returns (and clears) the buffered events.
func (c *Client) Events() []dap.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := c.events
	c.events = nil
	return ev
}

// EventNames returns the names of every event received so far, in order,
// waited for or not.
func (c *Client) EventNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.names)
}

// Output returns the text of every output event received so far with a
// category ("" = all).
func (c *Client) Output(category string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := ""
	for _, o := range c.outputs {
		if category == "" || o.Body.Category == category {
			s += o.Body.Output
		}
	}
	return s
}
