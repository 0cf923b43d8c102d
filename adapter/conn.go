package adapter

import (
	"bufio"
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"sync"

	"github.com/google/go-dap"
	"github.com/sirupsen/logrus"

	"vmdap/session"
)

// One DAP session. Three goroutines of the adapter's own: the reader
// (readLoop: reads, validates, queues; answers cancel and disconnect),
// the worker (work: carries out queued requests one at a time, in order)
// and the writer (writer: the only one writing to the client). Session
// goroutines call onEvent, which only queues.
type conn struct {
	srv *Server
	in  *wireReader
	out chan dap.Message
	log logrus.FieldLogger
	w   interface{ Write([]byte) (int, error) }

	handles *handles // own lock

	// mu guards the session's state below. It is never held while
	// calling into the session or waiting on a channel.
	mu          sync.Mutex
	sess        *session.Session
	serial      *serialSink
	stopOnEntry bool
	noDebug     bool // launched with noDebug (Run Without Debugging): no breakpoints, no entry stop
	initialized bool // initialize was answered (once per session)
	configured  bool
	memEvents   bool               // the client takes memory events
	invalEvents bool               // the client takes invalidated events
	progressOn  bool               // the client announced supportsProgressReporting
	lines1      bool               // the client counts lines from 1
	cols1       bool               // the client counts columns from 1
	uris        bool               // the client's paths are file:// URIs (pathFormat "uri")
	varTypes    bool               // the client shows variables' types (supportsVariableType)
	vscode      bool               // the client is VS Code (clientID "vscode")
	ending      bool               // the session is over: nothing new starts
	attached    bool               // the session attached to a running hypervisor (else launched it)
	launching   context.CancelFunc // cancels a launch or attach under way
	sentExited  bool               // the exited event went out
	sentTerm    bool               // the terminated event went out

	// sendMu guards what send decides: which responses may still go out
	// (answered), whether events are held back (hold/held) and whether
	// the session's last message has gone (final).
	sendMu   sync.Mutex
	answered map[int]bool // request seq -> answered (present while queued or running)
	holding  bool
	held     []dap.Message
	final    bool

	// qmu guards the request queue.
	qmu     sync.Mutex
	qcond   *sync.Cond
	queue   []*job
	qbytes  int
	current *job
	qclosed bool

	seq      int // the writer's alone
	wdone    chan struct{}
	workDone chan struct{}
}

// job is one queued request.
type job struct {
	seq    int
	cmd    string
	req    dap.RequestMessage // nil for vmdap's custom requests
	raw    []byte
	ctx    context.Context
	cancel context.CancelFunc
}

// Queue bounds: beyond them a request is refused at once ("busy").
const (
	maxQueued      = 256
	maxQueuedBytes = 64 << 20
)

func newConn(srv *Server, rw interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
}) *conn {
	c := &conn{
		srv: srv, in: newWireReader(rw), w: rw,
		out:      make(chan dap.Message, 1024),
		log:      srv.Log.WithField("layer", "dap"),
		handles:  newHandles(),
		lines1:   true,
		cols1:    true,
		answered: map[int]bool{},
		wdone:    make(chan struct{}),
		workDone: make(chan struct{}),
	}
	c.qcond = sync.NewCond(&c.qmu)
	return c
}

// head is what every request has.
type head struct {
	Seq     int    `json:"seq"`
	Type    string `json:"type"`
	Command string `json:"command"`
}

func peekHead(body []byte) (head, error) {
	var h head
	err := json.Unmarshal(body, &h)
	return h, err
}

func quote(s string) string { return strconv.Quote(clip(s, 60)) }

// enqueue queues a request for the worker, or refuses it when the queue
// is full.
func (c *conn) enqueue(j *job) {
	c.qmu.Lock()
	if c.qclosed || len(c.queue) >= maxQueued || c.qbytes+len(j.raw) > maxQueuedBytes {
		closed := c.qclosed
		c.qmu.Unlock()
		if !closed {
			c.sendError(j.seq, j.cmd, errBusy, "vmdap is busy: too many requests are waiting; try again")
		}
		return
	}
	j.ctx, j.cancel = context.WithCancel(context.Background())
	c.sendMu.Lock() // before the worker can see it (and answer)
	c.answered[j.seq] = false
	c.sendMu.Unlock()
	c.queue = append(c.queue, j)
	c.qbytes += len(j.raw)
	c.qcond.Signal()
	c.qmu.Unlock()
}

// work carries out queued requests in order until the queue closes.
func (c *conn) work() {
	defer close(c.workDone)
	for {
		c.qmu.Lock()
		for len(c.queue) == 0 && !c.qclosed {
			c.qcond.Wait()
		}
		if c.qclosed {
			c.current = nil
			c.qmu.Unlock()
			return
		}
		j := c.queue[0]
		c.queue = c.queue[1:]
		c.qbytes -= len(j.raw)
		c.current = j
		c.qmu.Unlock()
		if j.ctx.Err() == nil {
			c.run(j)
		}
		j.cancel()
		c.qmu.Lock()
		c.current = nil
		c.qmu.Unlock()
		c.sendMu.Lock()
		delete(c.answered, j.seq)
		c.sendMu.Unlock()
	}
}

// onCancel answers cancel: a queued or running request is answered
// "cancelled" at once and its work stopped (the work's own answer, when
// it comes, is dropped). A progress bar's cancel (its progressId) is its
// request's.
func (c *conn) onCancel(m *dap.CancelRequest) {
	var ids []int
	if m.Arguments != nil { // its arguments are optional
		ids = append(ids, m.Arguments.RequestId, progressRequest(m.Arguments.ProgressId))
	}
	for _, id := range ids {
		if id == 0 {
			continue
		}
		c.qmu.Lock()
		var hit *job
		if c.current != nil && c.current.seq == id {
			hit = c.current
		}
		for _, j := range c.queue {
			if j.seq == id {
				hit = j
			}
		}
		c.qmu.Unlock()
		if hit != nil {
			hit.cancel()
			c.sendCancelled(hit.seq, hit.cmd)
		}
	}
	c.send(&dap.CancelResponse{Response: newResponse(&m.Request)})
}

func (c *conn) sendCancelled(seq int, cmd string) {
	er := &dap.ErrorResponse{Response: dap.Response{ProtocolMessage: dap.ProtocolMessage{Type: "response"},
		Command: cmd, RequestSeq: seq, Success: false, Message: "cancelled"}}
	er.Body.Error = &dap.ErrorMessage{Id: errCancelled, Format: cmd + ": cancelled"}
	c.send(er)
}

// closeQueue stops the worker: queued requests are dropped (answered
// "cancelled" when answer is set) and the running one is cancelled.
func (c *conn) closeQueue(answer bool) {
	c.qmu.Lock()
	q := c.queue
	cur := c.current
	c.queue, c.qbytes, c.qclosed = nil, 0, true
	c.qcond.Broadcast()
	c.qmu.Unlock()
	for _, j := range q {
		j.cancel()
		if answer {
			c.sendCancelled(j.seq, j.cmd)
		}
	}
	if cur != nil {
		cur.cancel()
		if answer {
			c.sendCancelled(cur.seq, cur.cmd)
		}
	}
}

// send queues a message for the writer. A response to a request already
// answered (cancelled) is dropped; events are held back while a run
// request waits for its own response (hold), so the response to
// continue, next or goto always comes before the stop it causes.
func (c *conn) send(m dap.Message) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.final {
		return
	}
	if r, ok := m.(dap.ResponseMessage); ok {
		seq := r.GetResponse().RequestSeq
		if done, known := c.answered[seq]; known {
			if done {
				return
			}
			c.answered[seq] = true
		}
	} else if c.holding {
		c.held = append(c.held, m)
		return
	}
	select {
	case c.out <- m:
	case <-c.wdone: // the writer is gone
	}
}

// hold holds events back until release.
func (c *conn) hold() {
	c.sendMu.Lock()
	c.holding = true
	c.sendMu.Unlock()
}

// release sends the events held back.
func (c *conn) release() {
	c.sendMu.Lock()
	held := c.held
	c.held, c.holding = nil, false
	c.sendMu.Unlock()
	for _, m := range held {
		c.send(m)
	}
}

// finish sends the session's last message; nothing goes out after it.
func (c *conn) finish(m dap.Message) {
	c.send(m)
	c.sendMu.Lock()
	c.final = true
	c.sendMu.Unlock()
}

// writer is the only goroutine that writes to the client; it numbers
// messages as it writes them.
func (c *conn) writer() {
	defer close(c.wdone)
	w := bufio.NewWriter(c.w)
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

// end ends the session after the reader stopped: the worker is stopped,
// the guest torn down, and the writer drained.
func (c *conn) end() {
	c.closeQueue(false)
	c.shutdown()
	<-c.workDone
	c.sendMu.Lock()
	c.final = true
	c.sendMu.Unlock()
	close(c.out)
	<-c.wdone
}

// shutdown releases the session (the client went away) with the
// target's default ending.
func (c *conn) shutdown() {
	if err := c.letGo(session.EndDefault); err != nil {
		c.log.WithError(err).Debug("closing the target")
	}
}

// letGo releases the session, letting the guest go as how says. A launch
// still under way is cancelled; its guest is torn down when it arrives
// (start sees ending).
func (c *conn) letGo(how session.Ending) error {
	c.mu.Lock()
	s := c.sess
	c.sess = nil
	c.ending = true
	cancel := c.launching
	serial := c.serial
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	var err error
	if s != nil {
		err = s.End(how)
	}
	if serial != nil {
		serial.close()
	}
	return err
}

func (c *conn) session() *session.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}
