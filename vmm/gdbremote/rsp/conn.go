package rsp

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// ProtocolError is a stub's error or refusal. Code is the NN of an "ENN"
// reply; an empty Code means the stub does not support the packet.
type ProtocolError struct {
	Context string // what vmdap was doing
	Packet  string // the request (truncated)
	Code    string
}

func (e *ProtocolError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s: the stub does not support %q", e.Context, e.Packet)
	}
	return fmt.Sprintf("%s: the stub answered %q with error E%s", e.Context, e.Packet, e.Code)
}

// Unsupported reports whether err is an empty ("unsupported") reply.
func Unsupported(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe) && pe.Code == ""
}

// ErrClosed is returned once the stub has closed the connection.
var ErrClosed = errors.New("rsp: connection closed by the stub")

// Conn is a connection to a stub.
type Conn struct {
	c       net.Conn
	log     logrus.FieldLogger
	wmu     sync.Mutex // one writer
	reqMu   sync.Mutex // one request/reply exchange at a time
	pkts    chan string
	done    chan struct{}
	err     error
	noAck   bool
	Timeout time.Duration
	// Output receives 'O' console-output packets (decoded), when set.
	Output func(string)

	capMu   sync.Mutex       // guards capture
	capture *strings.Builder // a Monitor command's output, while one runs
}

// Dial connects to "host:port" or a Unix socket path.
func Dial(ctx context.Context, addr string, log logrus.FieldLogger) (*Conn, error) {
	network := "tcp"
	if strings.Contains(addr, "/") {
		network = "unix"
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to the GDB stub at %s: %w", addr, err)
	}
	return New(c, log), nil
}

// New starts a client on an established connection.
func New(c net.Conn, log logrus.FieldLogger) *Conn {
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	cn := &Conn{c: c, log: log.WithField("layer", "gdbwire"), pkts: make(chan string, 64), done: make(chan struct{}), Timeout: 10 * time.Second}
	go cn.read()
	return cn
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Done is closed when the connection ends.
func (c *Conn) Done() <-chan struct{} { return c.done }

func trunc(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func (c *Conn) read() {
	defer close(c.done)
	r := bufio.NewReaderSize(c.c, 64<<10)
	for {
		b, err := r.ReadByte()
		if err != nil {
			c.err = ErrClosed
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.err = fmt.Errorf("%w: %v", ErrClosed, err)
			}
			return
		}
		switch b {
		case '+', '-':
			continue // acks: we never resend (reliable transports)
		case '%': // notification: skip to its end
			_, _ = r.ReadString('#')
			_, _ = r.Discard(2)
			continue
		case '$':
		default:
			continue
		}
		raw, err := r.ReadBytes('#')
		if err != nil {
			c.err = ErrClosed
			return
		}
		cs := make([]byte, 2)
		if _, err := io.ReadFull(r, cs); err != nil {
			c.err = ErrClosed
			return
		}
		data, err := Decode(raw[:len(raw)-1], cs)
		if err != nil {
			c.log.WithError(err).Warn("bad packet from the stub")
			if !c.noAck {
				c.writeRaw([]byte{'-'})
			}
			continue
		}
		if !c.noAck {
			c.writeRaw([]byte{'+'})
		}
		s := string(data)
		c.log.Debugf("← %s", trunc(s))
		if len(s) > 1 && s[0] == 'O' && s != "OK" {
			if out, err := HexBytes(s[1:]); err == nil {
				c.capMu.Lock()
				capture := c.capture
				if capture != nil {
					capture.Write(out)
				}
				c.capMu.Unlock()
				if capture != nil {
					continue
				}
				if c.Output != nil {
					c.Output(string(out))
					continue
				}
			}
		}
		select {
		case c.pkts <- s:
		case <-time.After(time.Minute):
			c.log.Warn("dropping a packet nobody waits for")
		}
	}
}

func (c *Conn) writeRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.c.Write(b)
	return err
}

// Send writes one packet without waiting for a reply (for c, s, vCont,
// whose reply is a later stop).
func (c *Conn) Send(pkt string) error {
	c.log.Debugf("→ %s", trunc(pkt))
	if err := c.writeRaw(Frame([]byte(pkt))); err != nil {
		return fmt.Errorf("sending %q: %w", trunc(pkt), err)
	}
	return nil
}

// Interrupt sends the 0x03 break byte.
func (c *Conn) Interrupt() error {
	c.log.Debug("→ ^C")
	return c.writeRaw([]byte{0x03})
}

// Recv waits for the next packet (a stop reply).
func (c *Conn) Recv(ctx context.Context) (string, error) {
	select {
	case p := <-c.pkts:
		return p, nil
	case <-c.done:
		select {
		case p := <-c.pkts:
			return p, nil
		default:
		}
		return "", c.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Exchange sends a request and returns its reply. An "Exx" reply or an
// empty one (unsupported) becomes a *ProtocolError naming ctxName.
func (c *Conn) Exchange(ctxName, pkt string) (string, error) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	if err := c.Send(pkt); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	r, err := c.Recv(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("%s: no reply to %q within %s", ctxName, trunc(pkt), c.Timeout)
		}
		return "", err
	}
	if r == "" {
		return "", &ProtocolError{Context: ctxName, Packet: trunc(pkt)}
	}
	if len(r) == 3 && r[0] == 'E' {
		return "", &ProtocolError{Context: ctxName, Packet: trunc(pkt), Code: r[1:]}
	}
	return r, nil
}

// StartNoAck asks for no-ack mode; stubs without it (QEMU, bhyve) keep
// acks.
func (c *Conn) StartNoAck() bool {
	if r, err := c.Exchange("no-ack mode", "QStartNoAckMode"); err == nil && r == "OK" {
		c.noAck = true
	}
	return c.noAck
}

// Monitor runs a monitor command (qRcmd, gdb's "monitor") and returns its
// output, which the stub sends as 'O' packets before "OK" (or, with some
// stubs, hex-encoded in the reply itself).
func (c *Conn) Monitor(cmd string) (string, error) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	var buf strings.Builder
	c.capMu.Lock()
	c.capture = &buf
	c.capMu.Unlock()
	defer func() {
		c.capMu.Lock()
		c.capture = nil
		c.capMu.Unlock()
	}()
	pkt := "qRcmd," + hex.EncodeToString([]byte(cmd))
	if err := c.Send(pkt); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	r, err := c.Recv(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("monitor command %q: no reply within %s", cmd, c.Timeout)
		}
		return "", err
	}
	switch {
	case r == "":
		return "", &ProtocolError{Context: "monitor command " + cmd, Packet: trunc(pkt)}
	case len(r) == 3 && r[0] == 'E':
		return "", &ProtocolError{Context: "monitor command " + cmd, Packet: trunc(pkt), Code: r[1:]}
	case r != "OK":
		out, err := HexBytes(r)
		if err != nil {
			return "", fmt.Errorf("monitor command %q: unexpected reply %q", cmd, trunc(r))
		}
		c.capMu.Lock()
		buf.Write(out)
		c.capMu.Unlock()
	}
	c.capMu.Lock()
	defer c.capMu.Unlock()
	return buf.String(), nil
}
