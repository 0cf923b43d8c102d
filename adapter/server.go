package adapter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime/debug"
	"sync"

	"github.com/google/go-dap"
	"github.com/sirupsen/logrus"

	"vmdap/session"
	"vmdap/vmm"
)

// Backends creates targets; main supplies the concrete backends.
type Backends interface {
	// Launch starts a guest. serial receives the guest's console output.
	Launch(ctx context.Context, cfg LaunchConfig, serial io.Writer, log logrus.FieldLogger) (vmm.Target, error)
	// Attach connects to a running hypervisor's debug stub.
	Attach(ctx context.Context, cfg AttachConfig, log logrus.FieldLogger) (vmm.Target, error)
}

// Server serves DAP sessions.
type Server struct {
	Backends Backends
	Log      logrus.FieldLogger
	// Trace logs every DAP message (truncated) at debug level.
	Trace bool
}

// Serve accepts clients one after another until the listener closes.
func (srv *Server) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		srv.Log.WithField("client", c.RemoteAddr().String()).Info("DAP client connected")
		if err := srv.ServeConn(c); err != nil {
			srv.Log.WithError(err).Warn("DAP session ended with an error")
		}
		srv.Log.Info("DAP client disconnected")
	}
}

// ServeConn runs one DAP session on rw until the client disconnects (or
// the stream ends). Everything the session created is released before it
// returns.
func (srv *Server) ServeConn(rw io.ReadWriteCloser) error {
	c := &conn{
		srv:     srv,
		rw:      rw,
		r:       bufio.NewReader(rw),
		out:     make(chan dap.Message, 4096),
		log:     srv.Log.WithField("layer", "dap"),
		handles: newHandles(),
		wdone:   make(chan struct{}),
	}
	go c.writer()
	err := c.readLoop()
	c.shutdown()
	close(c.out)
	<-c.wdone
	rw.Close()
	return err
}

type conn struct {
	srv *Server
	rw  io.ReadWriteCloser
	r   *bufio.Reader
	out chan dap.Message
	log logrus.FieldLogger

	mu          sync.Mutex
	sess        *session.Session
	serial      *serialSink
	stopOnEntry bool
	launched    bool
	attached    bool // the session attached to a running hypervisor (else launched it)
	configured  bool
	memEvents   bool
	invalEvents bool
	progressOn  bool // the client announced supportsProgressReporting
	handles     *handles
	gotos       []session.GotoTarget   // the last gotoTargets answer; a target's id is its index + 1
	stepIns     []session.StepInTarget // the last stepInTargets answer, the same way
	closing     bool
	seq         int
	wdone       chan struct{}
}

// send queues a message for the writer.
func (c *conn) send(m dap.Message) {
	defer func() { recover() }() // the writer is gone: drop
	c.out <- m
}

// writer is the only goroutine that writes to the client; it numbers
// messages as it writes them.
func (c *conn) writer() {
	defer close(c.wdone)
	w := bufio.NewWriter(c.rw)
	broken := false
	for m := range c.out {
		if broken {
			continue
		}
		c.seq++
		setSeq(m, c.seq)
		if c.srv.Trace {
			b, _ := json.Marshal(m)
			c.log.Debugf("→ %s", truncate(b, 240))
		}
		if err := dap.WriteProtocolMessage(w, m); err != nil || w.Flush() != nil {
			c.log.WithError(err).Info("writing to the DAP client failed; dropping further output")
			broken = true
		}
	}
}

func setSeq(m dap.Message, seq int) {
	v := reflect.ValueOf(m)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if f := v.FieldByName("Seq"); f.IsValid() && f.CanSet() {
		f.SetInt(int64(seq))
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// readLoop reads and dispatches requests until the client goes away or
// disconnects.
func (c *conn) readLoop() error {
	for {
		content, err := dap.ReadBaseMessage(c.r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var bpe *dap.BaseProtocolError
			if errors.As(err, &bpe) {
				c.log.WithError(err).Warn("malformed DAP header; skipping to the next message")
				c.sendError(0, "", errMalformed, "malformed message header: "+err.Error())
				if !c.resync() {
					return nil
				}
				continue
			}
			return err
		}
		if c.srv.Trace {
			c.log.Debugf("← %s", truncate(content, 240))
		}
		msg, err := dap.DecodeProtocolMessage(content)
		if err != nil {
			var fe *dap.DecodeProtocolMessageFieldError
			if errors.As(err, &fe) && c.customSafe(fe.Seq, fe.FieldValue, content) {
				continue
			}
			if errors.As(err, &fe) {
				c.sendError(fe.Seq, fe.FieldValue, errUnsupported, fmt.Sprintf("vmdap does not support %q (%v)", fe.FieldValue, err))
			} else {
				seq, cmd := peekSeq(content)
				c.sendError(seq, cmd, errMalformed, "malformed message: "+err.Error())
			}
			continue
		}
		req, ok := msg.(dap.RequestMessage)
		if !ok {
			continue // responses to reverse requests, events: ignored
		}
		if done := c.dispatchSafe(req, content); done {
			return nil
		}
	}
}

// resync skips input up to the next "Content-Length:" header.
func (c *conn) resync() bool {
	const hdr = "Content-Length:"
	matched := 0
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return false
		}
		if b == hdr[matched] {
			matched++
			if matched == len(hdr) {
				// put the header back for ReadBaseMessage
				rest, _ := c.r.Peek(c.r.Buffered())
				nr := io.MultiReader(stringsReader(hdr), bytesReader(rest), c.rw)
				c.r = bufio.NewReader(nr)
				return true
			}
		} else {
			matched = 0
			if b == hdr[0] {
				matched = 1
			}
		}
	}
}

func peekSeq(content []byte) (int, string) {
	var m struct {
		Seq     int    `json:"seq"`
		Command string `json:"command"`
	}
	_ = json.Unmarshal(content, &m)
	return m.Seq, m.Command
}

// dispatchSafe runs one request, turning a panic into an error response.
func (c *conn) dispatchSafe(req dap.RequestMessage, raw []byte) (done bool) {
	r := req.GetRequest()
	defer func() {
		if p := recover(); p != nil {
			c.log.Errorf("panic handling %s: %v\n%s", r.Command, p, debug.Stack())
			c.sendError(r.Seq, r.Command, errInternal, fmt.Sprintf("internal error in vmdap while handling %s: %v", r.Command, p))
		}
	}()
	return c.dispatch(req, raw)
}

// shutdown releases the session (client gone or disconnected) with the
// target's default ending.
func (c *conn) shutdown() {
	if err := c.end(session.EndDefault); err != nil {
		c.log.WithError(err).Debug("closing the target")
	}
}

// end releases the session, letting the guest go as how says.
func (c *conn) end(how session.Ending) error {
	c.mu.Lock()
	s := c.sess
	c.sess = nil
	c.closing = true
	c.mu.Unlock()
	var err error
	if s != nil {
		err = s.End(how)
	}
	if c.serial != nil {
		c.serial.close()
	}
	return err
}

func (c *conn) session() *session.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// response builders

func newResponse(req *dap.Request) dap.Response {
	return dap.Response{ProtocolMessage: dap.ProtocolMessage{Type: "response"}, Command: req.Command, RequestSeq: req.Seq, Success: true}
}

func newEvent(name string) dap.Event {
	return dap.Event{ProtocolMessage: dap.ProtocolMessage{Type: "event"}, Event: name}
}

func (c *conn) sendError(seq int, cmd string, id int, msg string) {
	er := &dap.ErrorResponse{Response: dap.Response{ProtocolMessage: dap.ProtocolMessage{Type: "response"},
		Command: cmd, RequestSeq: seq, Success: false, Message: msg}}
	er.Body.Error = &dap.ErrorMessage{Id: id, Format: msg, ShowUser: true}
	c.send(er)
}

func (c *conn) fail(req *dap.Request, id int, err error) {
	msg := err.Error()
	switch {
	case errors.Is(err, session.ErrRunning):
		id = errRunning
	}
	c.sendError(req.Seq, req.Command, id, msg)
}
