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
	"sync/atomic"
	"syscall"
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

// ErrClosed is returned once the connection has ended: the stub closed
// it, or vmdap did (Close, or a stub that broke the protocol). The error a
// Conn returns wraps it with the reason.
var ErrClosed = errors.New("rsp: connection closed")

// ErrHangup is the end of a connection the stub closed (a hypervisor
// that exited or was killed; QEMU also closes it, without a W packet,
// when its guest exits).
var ErrHangup = errors.New("the stub closed the connection")

// ErrTooLong wraps the error of a stub that sent a packet longer than the
// Conn accepts (MaxPacket).
var ErrTooLong = errors.New("rsp: packet too long")

// ErrNoReply is the error of a request the stub did not answer in time.
var ErrNoReply = errors.New("no reply")

// ErrNotStub is the error of a connection whose peer does not speak the
// GDB remote protocol.
var ErrNotStub = errors.New("not a GDB stub")

// DefaultMaxPacket bounds one packet from the stub, as it travels (before
// run-length expansion; after it, four times that). QEMU's and bhyve's
// PacketSize is 4 KiB; vmdap never asks for more than that in one reply.
const DefaultMaxPacket = 64 << 10

// Conn is a connection to a stub. One goroutine reads the stub's bytes
// and hands packets over; requests and their replies are serialised.
type Conn struct {
	c   net.Conn
	log logrus.FieldLogger

	wmu   sync.Mutex // one writer: a frame or an ack goes out whole
	reqMu sync.Mutex // one request/reply exchange at a time

	pkts chan string
	done chan struct{} // closed when the connection has ended; err is set first

	errMu sync.Mutex // guards err
	err   error

	statMu sync.Mutex // guards stats
	stats  Stats

	noAck    atomic.Bool  // no-ack mode (set once, read by the reader)
	skipAcks atomic.Int32 // replies of a batch, not to be acked (see ExchangeThen)

	// Set right after New, before the first request (the reader reads
	// MaxPacket at every packet).

	// Timeout bounds the wait for a reply. A stub that does not answer
	// in time has stopped speaking the protocol (or is wedged): the
	// connection is closed, as a late reply would be taken for the next
	// request's.
	Timeout time.Duration
	// MaxPacket bounds a packet from the stub (DefaultMaxPacket when 0):
	// a longer one ends the connection with ErrTooLong.
	MaxPacket int

	outMu   sync.Mutex       // guards capture and output (the reader hands 'O' packets to them)
	capture *strings.Builder // a Monitor command's output, while one runs
	output  func(string)     // console output otherwise (SetOutput)
}

// Stats counts the traffic of a connection: packets sent by name (the
// command letters: "g", "m", "vCont", "Z1", "qXfer"…), packets received,
// interrupts sent.
type Stats struct {
	Sent       map[string]int
	Received   int
	Interrupts int
}

// Total returns the number of packets sent.
func (s Stats) Total() int {
	n := 0
	for _, v := range s.Sent {
		n += v
	}
	return n
}

// Sub returns the traffic between an earlier snapshot o and s.
func (s Stats) Sub(o Stats) Stats {
	d := Stats{Sent: map[string]int{}, Received: s.Received - o.Received, Interrupts: s.Interrupts - o.Interrupts}
	for k, v := range s.Sent {
		if n := v - o.Sent[k]; n != 0 {
			d.Sent[k] = n
		}
	}
	return d
}

// Name returns a packet's command name for Stats: the letters of a
// v/q/Q packet up to its first separator, else its first letter (with
// the type digit of Z/z).
func Name(pkt string) string {
	if pkt == "" {
		return ""
	}
	switch pkt[0] {
	case 'v', 'q', 'Q':
		if i := strings.IndexAny(pkt, ":;,?="); i > 0 {
			return pkt[:i]
		}
		return pkt
	case 'Z', 'z':
		if len(pkt) > 1 {
			return pkt[:2]
		}
	}
	return pkt[:1]
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
	cn := &Conn{c: c, log: log.WithField("layer", "gdbwire"), pkts: make(chan string, 64), done: make(chan struct{}),
		Timeout: 10 * time.Second, stats: Stats{Sent: map[string]int{}}}
	go cn.read()
	return cn
}

// SetOutput makes f receive the stub's 'O' console-output packets
// (decoded) from now on, except a Monitor command's own output.
func (c *Conn) SetOutput(f func(string)) {
	c.outMu.Lock()
	c.output = f
	c.outMu.Unlock()
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Fail ends the connection for reason, which Err (and every later
// request) then reports.
func (c *Conn) Fail(reason error) {
	c.setErr(reason)
	c.c.Close()
}

// Done is closed when the connection ends.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection ended (nil while it lasts). It wraps
// ErrClosed.
func (c *Conn) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	return c.endErr()
}

func (c *Conn) endErr() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.err == nil {
		return ErrClosed
	}
	return c.err
}

// setErr records the first reason the connection ended.
func (c *Conn) setErr(err error) {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.err == nil {
		if !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		c.err = err
	}
}

// Stats returns a snapshot of the traffic counters.
func (c *Conn) Stats() Stats {
	c.statMu.Lock()
	defer c.statMu.Unlock()
	s := Stats{Sent: make(map[string]int, len(c.stats.Sent)), Received: c.stats.Received, Interrupts: c.stats.Interrupts}
	for k, v := range c.stats.Sent {
		s.Sent[k] = v
	}
	return s
}

func (c *Conn) count(sent []string, received, interrupts int) {
	c.statMu.Lock()
	for _, p := range sent {
		c.stats.Sent[Name(p)]++
	}
	c.stats.Received += received
	c.stats.Interrupts += interrupts
	c.statMu.Unlock()
}

func trunc(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func (c *Conn) maxPacket() int {
	if c.MaxPacket > 0 {
		return c.MaxPacket
	}
	return DefaultMaxPacket
}

// notStubAfter is how many malformed packets, and notStubBytes how many
// bytes outside packets and acks, before any good packet, end the
// connection: the peer is no GDB stub (a port of some other server).
const (
	notStubAfter = 16
	notStubBytes = 64
)

func (c *Conn) read() {
	defer close(c.done)
	r := bufio.NewReaderSize(c.c, 16<<10)
	good, bad := false, 0
	var noise []byte // the first bytes of noise before a good packet
	nNoise := 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			c.readFailed(err)
			return
		}
		switch b {
		case '$', '%': // a packet, or a notification (skipped)
		case '+', '-':
			// Acks: vmdap never resends on a reliable transport (in
			// noise already begun, shown with it).
			if !good && len(noise) > 0 && len(noise) < 40 {
				noise = append(noise, b)
			}
			continue
		default:
			// Noise. Before any good packet, much of it is another
			// protocol talking (an HTTP server's 400 to vmdap's first
			// packet): the peer is said to be no stub at once, not after
			// the reply's timeout.
			if !good {
				if len(noise) < 40 {
					noise = append(noise, b)
				}
				if nNoise++; nNoise >= notStubBytes {
					c.setErr(fmt.Errorf("%w: it sent %d bytes outside any packet, starting %q", ErrNotStub, nNoise, noise))
					c.c.Close()
					return
				}
			}
			continue
		}
		raw, cs, err := readFrame(r, c.maxPacket())
		if err != nil {
			c.readFailed(err)
			return
		}
		if b == '%' {
			continue
		}
		data, err := Decode(raw, cs)
		if err == nil && len(data) > 4*c.maxPacket() {
			err = fmt.Errorf("%w: %d bytes once expanded", ErrTooLong, len(data))
		}
		if err != nil {
			bad++
			if !good && bad >= notStubAfter {
				c.setErr(fmt.Errorf("%w: %d malformed packets and no good one (%v)", ErrNotStub, bad, err))
				c.c.Close()
				return
			}
			if bad <= 3 || bad%1000 == 0 { // a noisy line is said, not logged a thousand times a second
				c.log.WithError(err).WithField("bad", bad).Warn("bad packet from the stub")
			}
			if !c.noAck.Load() {
				c.writeRaw([]byte{'-'})
			}
			continue
		}
		good = true
		if c.skipAcks.Load() > 0 {
			c.skipAcks.Add(-1)
		} else if !c.noAck.Load() {
			c.writeRaw([]byte{'+'})
		}
		c.count(nil, 1, 0)
		s := string(data)
		c.log.Debugf("← %s", trunc(s))
		if len(s) > 1 && s[0] == 'O' && s != "OK" {
			if out, err := HexBytes(s[1:]); err == nil {
				c.outMu.Lock()
				capture, output := c.capture, c.output
				if capture != nil {
					capture.Write(out)
				}
				c.outMu.Unlock()
				if capture != nil {
					continue
				}
				if output != nil {
					output(string(out))
					continue
				}
			}
		}
		select {
		case c.pkts <- s:
		default:
			select {
			case c.pkts <- s:
			case <-time.After(time.Minute):
				c.log.Warn("dropping a packet nobody waits for")
			}
		}
	}
}

// readFailed records why the read loop ends.
func (c *Conn) readFailed(err error) {
	switch {
	case errors.Is(err, net.ErrClosed):
		c.setErr(errors.New("closed by vmdap"))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		c.setErr(ErrHangup)
	case errors.Is(err, ErrTooLong):
		c.setErr(err)
		c.c.Close()
	default:
		c.setErr(err)
	}
}

// readFrame reads the rest of a packet after its '$' (or '%'): the data
// up to '#' and the two checksum digits, refusing more than max bytes.
func readFrame(r *bufio.Reader, max int) (raw, cs []byte, err error) {
	for {
		chunk, err := r.ReadSlice('#')
		if len(raw)+len(chunk) > max+1 {
			return nil, nil, fmt.Errorf("%w: the stub sent more than %d bytes without ending the packet ('#')", ErrTooLong, max)
		}
		raw = append(raw, chunk...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, nil, err
		}
	}
	cs = make([]byte, 2)
	if _, err := io.ReadFull(r, cs); err != nil {
		return nil, nil, err
	}
	return raw[:len(raw)-1], cs, nil
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
	return c.send(pkt)
}

// send writes packets in one write (a batch the stub reads in order).
func (c *Conn) send(pkts ...string) error {
	var b []byte
	for _, p := range pkts {
		c.log.Debugf("→ %s", trunc(p))
		b = append(b, Frame([]byte(p))...)
	}
	c.count(pkts, 0, 0)
	if err := c.writeRaw(b); err != nil {
		if e := c.Err(); e != nil {
			return e
		}
		return fmt.Errorf("sending %q: %w", trunc(pkts[0]), err)
	}
	return nil
}

// Interrupt sends the 0x03 break byte.
func (c *Conn) Interrupt() error {
	c.log.Debug("→ ^C")
	c.count(nil, 0, 1)
	if err := c.writeRaw([]byte{0x03}); err != nil {
		if e := c.Err(); e != nil {
			return e // why the connection ended, not the write's "use of closed network connection"
		}
		return fmt.Errorf("sending ^C: %w", err)
	}
	return nil
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
		return "", c.endErr()
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Exchange sends a request and returns its reply. An "Exx" reply or an
// empty one (unsupported) becomes a *ProtocolError naming ctxName.
func (c *Conn) Exchange(ctxName, pkt string) (string, error) {
	return c.ExchangeContext(context.Background(), ctxName, pkt)
}

// ExchangeContext is Exchange bounded by ctx as well as Timeout. A reply
// that does not come ends the connection (it would answer a later
// request).
func (c *Conn) ExchangeContext(ctx context.Context, ctxName, pkt string) (string, error) {
	return c.exchange(ctx, ctxName, pkt)
}

// ExchangeThen sends the requests reqs and then resume (c, s, vCont…,
// whose reply is a stop, for Recv) in one write, and waits for the
// requests' replies. It returns the first failure among them: the resume
// has been sent all the same, unless the connection failed. A stub must
// read its input in order, as QEMU's does; the batch saves a round trip
// per request.
//
// The requests' replies are not acked: QEMU takes any byte that reaches
// it while the guest runs for an interrupt, and the acks would arrive
// after the resume (it needs none: its system-mode stub never waits for
// an ack, and the resume's '$' ends its wait for one).
func (c *Conn) ExchangeThen(ctxName string, reqs []string, resume string) error {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	if !c.noAck.Load() {
		c.skipAcks.Add(int32(len(reqs)))
	}
	if err := c.send(append(append([]string(nil), reqs...), resume)...); err != nil {
		return err
	}
	var first error
	for _, pkt := range reqs {
		if _, err := c.reply(context.Background(), ctxName, pkt); err != nil {
			if c.Err() != nil {
				return err
			}
			if first == nil {
				first = err
			}
		}
	}
	return first
}

func (c *Conn) exchange(ctx context.Context, ctxName string, pkt string) (string, error) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	if err := c.send(pkt); err != nil {
		return "", err
	}
	return c.reply(ctx, ctxName, pkt)
}

// reply waits for the reply to pkt (reqMu held).
func (c *Conn) reply(ctx context.Context, ctxName, pkt string) (string, error) {
	tctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	r, err := c.Recv(tctx)
	if err != nil {
		if tctx.Err() != nil {
			why := fmt.Errorf("%s: %w to %q within %s", ctxName, ErrNoReply, trunc(pkt), c.Timeout)
			if ctx.Err() != nil {
				why = fmt.Errorf("%s: no reply to %q: %w", ctxName, trunc(pkt), context.Cause(ctx))
			}
			c.Fail(why)
			return "", c.endErr()
		}
		return "", fmt.Errorf("%s: %w", ctxName, err)
	}
	if r == "" {
		return "", &ProtocolError{Context: ctxName, Packet: trunc(pkt)}
	}
	if len(r) == 3 && r[0] == 'E' {
		return "", &ProtocolError{Context: ctxName, Packet: trunc(pkt), Code: r[1:]}
	}
	return r, nil
}

// SkipAcks stops acking the stub's packets, for a stub that never waits
// for an ack and takes its next request as one (QEMU's system-mode stub:
// an ack costs a write here and a wakeup of its main loop there).
func (c *Conn) SkipAcks() { c.noAck.Store(true) }

// StartNoAck asks for no-ack mode; stubs without it (QEMU, bhyve) keep
// acks.
func (c *Conn) StartNoAck(ctx context.Context) (bool, error) {
	r, err := c.ExchangeContext(ctx, "no-ack mode", "QStartNoAckMode")
	if err == nil && r == "OK" {
		c.noAck.Store(true)
	}
	if err != nil && c.Err() != nil {
		return false, err
	}
	return c.noAck.Load(), nil
}

// Monitor runs a monitor command (qRcmd, gdb's "monitor") and returns its
// output, which the stub sends as 'O' packets before "OK" (or, with some
// stubs, hex-encoded in the reply itself).
func (c *Conn) Monitor(cmd string) (string, error) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	var buf strings.Builder
	c.outMu.Lock()
	c.capture = &buf
	c.outMu.Unlock()
	defer func() {
		c.outMu.Lock()
		c.capture = nil
		c.outMu.Unlock()
	}()
	pkt := "qRcmd," + hex.EncodeToString([]byte(cmd))
	if err := c.send(pkt); err != nil {
		return "", err
	}
	// A reply that does not come ends the connection, as for any request.
	r, err := c.reply(context.Background(), "monitor command "+cmd, pkt)
	if err != nil {
		return "", err
	}
	switch {
	case r != "OK":
		out, err := HexBytes(r)
		if err != nil {
			return "", fmt.Errorf("monitor command %q: unexpected reply %q", cmd, trunc(r))
		}
		c.outMu.Lock()
		buf.Write(out)
		c.outMu.Unlock()
	}
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return buf.String(), nil
}
