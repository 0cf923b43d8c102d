package rsp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Fuzz tests of everything that reads what a stub sends: the framing of
// rsp.Conn, stop replies, qSupported features, thread lists and target
// descriptions. Their seed corpora are in testdata/fuzz/<FuzzName> (real
// QEMU traffic, and the malformed inputs the hostile-stub tests use);
// `go test -fuzz FuzzName` grows them.

// FuzzConnFraming feeds bytes to a Conn as if a stub sent them: whatever
// they are, the Conn hands over packets no longer than its bounds, acks
// or naks each, and ends (Done) when the stream does, without panicking
// or hanging.
func FuzzConnFraming(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte) {
		a, b := net.Pipe()
		c := New(a, nil)
		c.MaxPacket = 256
		go io.Copy(io.Discard, b) // the stub reads the acks
		go func() {
			b.Write(stream)
			b.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			p, err := c.Recv(ctx)
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatal("the Conn did not end with the stream")
				}
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("error %v does not wrap ErrClosed", err)
				}
				break
			}
			if len(p) > 4*c.MaxPacket {
				t.Fatalf("a packet of %d bytes passed a bound of %d", len(p), c.MaxPacket)
			}
		}
		<-c.Done()
		c.Close()
		if st := c.Stats(); st.Received > bytes.Count(stream, []byte("$")) {
			t.Fatalf("%d packets from %d '$'", st.Received, bytes.Count(stream, []byte("$")))
		}
	})
}

// FuzzStopReply: a parsed stop reply is one of the four kinds, and a
// watch address, thread and registers come from the text.
func FuzzStopReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseStopReply(s)
		if err != nil {
			return
		}
		if !strings.ContainsRune("TSWX", rune(r.Kind)) || r.Signal < 0 || r.Signal > 255 {
			t.Fatalf("%q parsed as %+v", s, r)
		}
		if r.Thread != "" && !strings.Contains(s, "thread:"+r.Thread) {
			t.Fatalf("%q: thread %q", s, r.Thread)
		}
		if r.Watch != "" && !strings.Contains(s, r.Watch+":") {
			t.Fatalf("%q: watch kind %q", s, r.Watch)
		}
		ThreadNum(r.Thread)
	})
}

// FuzzFeatures: qSupported replies; the packet size is always usable.
func FuzzFeatures(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		ft := ParseFeatures(s)
		if n := ft.PacketSize(); n <= 16 {
			t.Fatalf("%q: packet size %d", s, n)
		}
		for k, v := range ft {
			if !strings.Contains(s, k) || !strings.Contains(s, v) && v != "+" {
				t.Fatalf("%q: feature %q=%q", s, k, v)
			}
		}
	})
}

// FuzzThreadList: qfThreadInfo/qsThreadInfo replies and thread ids.
func FuzzThreadList(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		ids, more, err := ParseThreadList(s)
		if err != nil {
			return
		}
		if !more && len(ids) > 0 {
			t.Fatalf("%q: ids after the end", s)
		}
		for _, id := range ids {
			if id == "" || strings.Contains(id, ",") {
				t.Fatalf("%q: id %q", s, id)
			}
			ThreadNum(id)
		}
		HexBytes(s)
	})
}

// FuzzTargetDesc: a target description and the documents it includes
// (the input's NUL-separated parts: target.xml, then 1.xml, 2.xml …).
// A parsed layout has registers at increasing, contiguous offsets.
func FuzzTargetDesc(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		parts := bytes.Split(in, []byte{0})
		fetches := 0
		fetch := func(name string) ([]byte, error) {
			if fetches++; fetches > 64 {
				return nil, errors.New("too many includes")
			}
			for i, p := range parts[1:] {
				if name == string(rune('1'+i))+".xml" {
					return p, nil
				}
			}
			return nil, errors.New("no such document")
		}
		d, err := ParseTargetDesc(parts[0], fetch)
		if err != nil {
			return
		}
		off := 0
		for _, r := range d.Regs {
			if r.Offset != off || r.Bits <= 0 || r.Bits%8 != 0 {
				t.Fatalf("register %+v at offset %d", r, off)
			}
			off += r.Bits / 8
		}
		if d.Size() != off {
			t.Fatalf("size %d, registers end at %d", d.Size(), off)
		}
	})
}
