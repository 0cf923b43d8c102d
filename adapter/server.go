package adapter

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/google/go-dap"
	"github.com/sirupsen/logrus"

	"vmdap/vmm"
)

// Backends creates targets; main supplies the concrete backends.
type Backends interface {
	// Launch starts a guest. serial receives the guest's console output.
	// It returns early with ctx's error when ctx ends (the request was
	// cancelled, or the client went away).
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
	// IndexCache is the folder large images' symbol indexes are kept in
	// (see session.ImageOptions); "" keeps none.
	IndexCache string
}

// Serve accepts clients until the listener closes, serving each on its
// own goroutine (a client that connects and says nothing keeps no one
// else waiting). When the listener closes, every open session is ended
// (its guest torn down) before Serve returns.
func (srv *Server) Serve(l net.Listener) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards open
		open = map[net.Conn]bool{}
	)
	defer func() {
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		mu.Lock()
		open[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := srv.Log.WithField("client", c.RemoteAddr().String())
			log.Info("DAP client connected")
			if err := srv.ServeConn(c); err != nil {
				log.WithError(err).Warn("DAP session ended with an error")
			}
			log.Info("DAP client disconnected")
			mu.Lock()
			delete(open, c)
			mu.Unlock()
		}()
	}
}

// ServeConn runs one DAP session on rw until the client disconnects or
// the stream ends, which ends the session at once: requests still running
// are cancelled (a launch or attach that cannot be interrupted is
// abandoned, and its guest torn down when it arrives) and the guest is
// torn down before ServeConn returns.
func (srv *Server) ServeConn(rw io.ReadWriteCloser) error {
	c := newConn(srv, rw)
	go c.writer()
	go c.work()
	err := c.readLoop()
	c.end()
	rw.Close()
	return err
}

// readLoop reads requests and queues them for the worker; it answers
// cancel and disconnect itself, so neither waits behind a slow request.
func (c *conn) readLoop() error {
	for {
		body, err := c.in.read()
		if err != nil {
			var he *headerError
			if errors.As(err, &he) {
				c.log.WithError(err).Warn("skipping to the next message")
				c.output("important", "vmdap: "+he.Error()+"; skipping to the next message\n")
				if err := c.in.resync(); err != nil {
					return ignoreEOF(err)
				}
				continue
			}
			return ignoreEOF(err)
		}
		if c.srv.Trace {
			c.log.Debugf("← %s", truncate(body, 240))
		}
		if done := c.accept(body); done {
			return nil
		}
	}
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) {
		return nil
	}
	return err
}

// accept decodes one message and queues (or answers) it. It returns true
// after a disconnect.
func (c *conn) accept(body []byte) bool {
	head, err := peekHead(body)
	if err != nil || head.Type != "request" {
		if err == nil && (head.Type == "response" || head.Type == "event") {
			return false // a reverse request's response; vmdap sends none
		}
		c.unanswerable("a message that is not a DAP request", err)
		return false
	}
	if head.Seq < 1 {
		c.unanswerable("a request without a sequence number", nil)
		return false
	}
	if err := c.checkArgs(body); err != nil {
		c.sendError(head.Seq, head.Command, errBadArguments, err.Error())
		return false
	}
	if head.Command == cmdHexDisplay {
		c.enqueue(&job{seq: head.Seq, cmd: head.Command, raw: body})
		return false
	}
	msg, err := dap.DecodeProtocolMessage(body)
	if err != nil {
		var fe *dap.DecodeProtocolMessageFieldError
		if errors.As(err, &fe) {
			c.sendError(head.Seq, head.Command, errUnsupported, "vmdap does not support the "+quote(head.Command)+" request")
		} else {
			c.sendError(head.Seq, head.Command, errBadArguments, head.Command+": "+err.Error())
		}
		return false
	}
	req, ok := msg.(dap.RequestMessage)
	if !ok {
		return false
	}
	switch m := req.(type) {
	case *dap.CancelRequest: // Optional (supportsCancelRequest)
		c.onCancel(m)
		return false
	case *dap.DisconnectRequest: // Required
		c.onDisconnect(m, body)
		return true
	}
	c.enqueue(&job{seq: head.Seq, cmd: head.Command, req: req, raw: body})
	return false
}

// unanswerable reports a message that has no request to answer: an
// important output event (a response needs the request's seq).
func (c *conn) unanswerable(what string, err error) {
	msg := "vmdap: ignored " + what
	if err != nil {
		msg += ": " + err.Error()
	}
	c.log.Warn(msg)
	c.output("important", msg+"\n")
}
