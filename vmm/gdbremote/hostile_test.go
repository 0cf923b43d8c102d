package gdbremote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/vmm/gdbremote/rsp"
)

// Stubs that misbehave. No real stub does any of this on demand, so these
// tests script the peer, over a real TCP socket: what it sends is what a
// broken or hostile stub could send, and vmdap must end with a clear error
// (or carry on without the part it refused), never grow without bound or
// wait for ever.

// scriptedStub serves one connection on a loopback port: answer maps a
// request to its reply ("" is the empty, unsupported reply; ok=false
// sends nothing), or takes the connection over with raw. It returns the
// address and a counter of the requests seen by name.
type scriptedStub struct {
	addr   string
	counts map[string]*atomic.Int64
	done   chan struct{}
}

func newScriptedStub(t *testing.T, answer func(req string, w net.Conn) (string, bool)) *scriptedStub {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedStub{addr: l.Addr().String(), counts: map[string]*atomic.Int64{}, done: make(chan struct{})}
	for _, n := range []string{"qSupported", "qXfer", "qfThreadInfo", "qsThreadInfo", "g", "?"} {
		s.counts[n] = new(atomic.Int64)
	}
	go func() {
		defer close(s.done)
		c, err := l.Accept()
		l.Close()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			req, err := rsp.ReadPacket(r, c)
			if err != nil {
				return
			}
			if n, ok := s.counts[rsp.Name(req)]; ok {
				n.Add(1)
			}
			reply, ok := answer(req, c)
			if !ok {
				continue
			}
			if _, err := c.Write(rsp.Frame([]byte(reply))); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-s.done
	})
	return s
}

func (s *scriptedStub) count(name string) int64 { return s.counts[name].Load() }

// wellBehaved answers the handshake as a minimal stub without a target
// description (bhyve-like registers) would.
func wellBehaved(req string) string {
	switch {
	case strings.HasPrefix(req, "qSupported"):
		return "PacketSize=1000;qXfer:features:read+;vContSupported+"
	case req == "?":
		return "T05thread:01;"
	case req == "qfThreadInfo":
		return "m01"
	case req == "qsThreadInfo":
		return "l"
	case req == "vCont?":
		return "vCont;c;s"
	case req == "g":
		return strings.Repeat("00", 164)
	case strings.HasPrefix(req, "qXfer:features:read:target.xml:"):
		return "l<target><architecture>i386:x86-64</architecture></target>"
	}
	return ""
}

func attachTo(t *testing.T, addr string, cfg Config) (*Target, error) {
	t.Helper()
	l, _ := test.NewNullLogger()
	cfg.Addr, cfg.Log = addr, l
	tg, err := Attach(context.Background(), cfg)
	if err == nil {
		t.Cleanup(func() { tg.Close() })
	}
	return tg, err
}

// A qXfer answered "m…" (more to come) for ever: the description is
// refused at its size bound and the attach goes on with the core layout.
func TestStubEndlessTargetDescription(t *testing.T) {
	chunk := "m" + strings.Repeat("<!-- x -->", 400)
	s := newScriptedStub(t, func(req string, _ net.Conn) (string, bool) {
		if strings.HasPrefix(req, "qXfer:") {
			return chunk, true
		}
		return wellBehaved(req), true
	})
	tg, err := attachTo(t, s.addr, Config{})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if tg.desc != nil {
		t.Fatal("an endless target description was accepted")
	}
	max := int64(maxDescBytes/(len(chunk)-1) + 1)
	if n := s.count("qXfer"); n > max {
		t.Fatalf("%d qXfer requests; the size bound allows %d", n, max)
	}
	t.Logf("refused after %d qXfer requests", s.count("qXfer"))
}

// A qXfer answered "m" with no data would loop without growing.
func TestStubEmptyTargetDescriptionChunk(t *testing.T) {
	s := newScriptedStub(t, func(req string, _ net.Conn) (string, bool) {
		if strings.HasPrefix(req, "qXfer:") {
			return "m", true
		}
		return wellBehaved(req), true
	})
	tg, err := attachTo(t, s.addr, Config{})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if tg.desc != nil || s.count("qXfer") != 1 {
		t.Fatalf("desc %v after %d qXfer requests", tg.desc, s.count("qXfer"))
	}
}

// A target description that includes itself, or too many documents.
func TestStubSelfIncludingTargetDescription(t *testing.T) {
	s := newScriptedStub(t, func(req string, _ net.Conn) (string, bool) {
		if strings.HasPrefix(req, "qXfer:") {
			return `l<target><xi:include href="target.xml"/><xi:include href="target.xml"/></target>`, true
		}
		return wellBehaved(req), true
	})
	tg, err := attachTo(t, s.addr, Config{})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if tg.desc != nil || s.count("qXfer") > maxDescDocs {
		t.Fatalf("desc %v after %d qXfer requests", tg.desc, s.count("qXfer"))
	}
}

// qsThreadInfo answered "m<new id>" for ever: the attach fails at the
// thread bound.
func TestStubEndlessThreadList(t *testing.T) {
	var next atomic.Int64
	s := newScriptedStub(t, func(req string, _ net.Conn) (string, bool) {
		if req == "qsThreadInfo" {
			return fmt.Sprintf("m%x", next.Add(1)+1), true
		}
		return wellBehaved(req), true
	})
	_, err := attachTo(t, s.addr, Config{})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d threads", maxThreads)) {
		t.Fatalf("attach: %v", err)
	}
	if n := s.count("qsThreadInfo"); n > maxThreads+1 {
		t.Fatalf("%d qsThreadInfo requests", n)
	}
}

// The same id for ever ("m01"): no growth, and the loop still ends.
func TestStubRepeatingThreadList(t *testing.T) {
	s := newScriptedStub(t, func(req string, _ net.Conn) (string, bool) {
		if req == "qsThreadInfo" {
			return "m01", true
		}
		return wellBehaved(req), true
	})
	_, err := attachTo(t, s.addr, Config{})
	if err == nil || !strings.Contains(err.Error(), "threads") {
		t.Fatalf("attach: %v", err)
	}
}

// A packet with no end ('#'): vmdap stops reading at the packet bound
// and closes the connection (the stub's next write fails).
func TestStubPacketWithoutEnd(t *testing.T) {
	var wrote atomic.Int64
	s := newScriptedStub(t, func(req string, w net.Conn) (string, bool) {
		if !strings.HasPrefix(req, "qSupported") {
			return wellBehaved(req), true
		}
		w.Write([]byte("$"))
		buf := []byte(strings.Repeat("A", 32<<10))
		for {
			n, err := w.Write(buf)
			wrote.Add(int64(n))
			if err != nil {
				return "", false
			}
			if wrote.Load() > 1<<30 {
				panic("vmdap read 1 GiB of one packet")
			}
		}
	})
	_, err := attachTo(t, s.addr, Config{})
	if !errors.Is(err, rsp.ErrTooLong) {
		t.Fatalf("attach: %v", err)
	}
	<-s.done // the stub's write failed: vmdap closed the connection
	t.Logf("%v (the stub wrote %d bytes before the connection closed)", err, wrote.Load())
}

// A reply that expands without bound ("0*~" repeats 97 bytes per 3) is
// refused (a nak); the stub's resend is taken.
func TestStubRunLengthBomb(t *testing.T) {
	bomb := "0" + strings.Repeat("*~0", 15000) // 45 KB on the wire, 1.4 MB expanded
	s := newScriptedStub(t, func(req string, w net.Conn) (string, bool) {
		if strings.HasPrefix(req, "qSupported") {
			// The bomb, then (after vmdap's nak) the real reply.
			fmt.Fprintf(w, "$%s#%02x", bomb, rsp.Checksum([]byte(bomb))) // unescaped: run-length encoded
			return "PacketSize=800;vContSupported+", true
		}
		return wellBehaved(req), true
	})
	tg, err := attachTo(t, s.addr, Config{})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if tg.pktSize != 0x800 {
		t.Fatalf("features from the bomb? packet size %d", tg.pktSize)
	}
}

// A stub that accepts the connection and never answers: the handshake is
// bounded.
func TestStubSilent(t *testing.T) {
	s := newScriptedStub(t, func(req string, _ net.Conn) (string, bool) { return "", false })
	_, err := attachTo(t, s.addr, Config{HandshakeTimeout: 300 * time.Millisecond})
	if !errors.Is(err, errHandshake) {
		t.Fatalf("attach: %v", err)
	}
}

// A port that is not a GDB stub: an HTTP server (its 400 to vmdap's first
// packet), or a peer that sends nothing but malformed packets. The attach
// says so as soon as it has seen enough, not after the reply's timeout
// (a handshake of a minute: ending by it would say "no reply").
func TestNotAStub(t *testing.T) {
	for name, serve := range map[string]func(net.Conn){
		"http": func(c net.Conn) {
			// What an HTTP/1.1 server answers a request line it cannot parse.
			bufio.NewReader(c).ReadString('#')
			fmt.Fprint(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request")
			time.Sleep(time.Minute)
		},
		"garbage packets": func(c net.Conn) {
			for range 1000 {
				if _, err := fmt.Fprint(c, "$x#00"); err != nil {
					return
				}
			}
			time.Sleep(time.Minute)
		},
	} {
		t.Run(name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				serve(c)
			}()
			_, err = attachTo(t, l.Addr().String(), Config{HandshakeTimeout: time.Minute})
			if !errors.Is(err, rsp.ErrNotStub) || errors.Is(err, errHandshake) {
				t.Fatalf("attach to a %s peer: %v, want it named no GDB stub", name, err)
			}
			t.Log(err)
		})
	}
}
