package adapter_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-dap"
	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/adapter"
	"vmdap/adapter/dapschema"
)

// FuzzServe feeds arbitrary bytes to a DAP session as its client's stream
// (the read loop, the base-protocol reader, validation and dispatch) and
// checks what comes back: the session ends when the input does, every
// message it sends is valid DAP, and no request meets an internal error.
// Seed corpus: testdata/fuzz/FuzzServe.
func FuzzServe(f *testing.F) {
	msg := func(body string) string { return fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body) }
	for _, s := range []string{
		msg(`{"seq":1,"type":"request","command":"initialize","arguments":{"adapterID":"vmdap"}}`),
		msg(`{"seq":1,"type":"request","command":"initialize","arguments":{"adapterID":"vmdap","linesStartAt1":false}}`) +
			msg(`{"seq":2,"type":"request","command":"threads"}`) + msg(`{"seq":3,"type":"request","command":"disconnect"}`),
		msg(`{"seq":1,"type":"request","command":"launch","arguments":{"program":"/nonexistent"}}`),
		msg(`{"seq":1,"type":"request","command":"launch","arguments":{"program":"/dev/zero"}}`),
		msg(`{"seq":1,"type":"request","command":"attach","arguments":{"gdbServer":"no port"}}`),
		msg(`{"seq":1,"type":"request","command":"cancel","arguments":{"requestId":1}}`),
		msg(`{"seq":4,"type":"request","command":"continue","arguments":{"threadId":-3}}`),
		msg(`{"seq":5,"type":"request","command":"stackTrace","arguments":{"threadId":1,"startFrame":-1}}`),
		msg(`{"seq":6,"type":"request","command":"vmdap.hexDisplay","arguments":{"hex":true}}`),
		msg(`{"seq":7,"type":"request","command":"evaluate","arguments":{"expression":"1+"}}`),
		msg(`{"seq":8,"type":"event","event":"output","body":{}}`),
		msg(`{"seq":9,"type":"request","command":"frobnicate"}`),
		"Content-Length: 99999999999999999999999\r\n\r\n{}" + msg(`{"seq":2,"type":"request","command":"threads"}`),
		"Content-Length: 5\r\nContent-Type: x\r\n\r\n12345",
		strings.Repeat("A", 3000),
		"\r\n\r\nContent-Length: 2\n\n{}",
	} {
		f.Add([]byte(s))
	}
	schema, err := dapschema.Load()
	if err != nil {
		f.Fatal(err)
	}
	log, _ := test.NewNullLogger()
	srv := &adapter.Server{Backends: kvmBackends{}, Log: log}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if err := srv.ServeConn(&fuzzConn{r: bytes.NewReader(in), w: &out}); err != nil {
			t.Fatalf("ServeConn: %v", err)
		}
		r := bufio.NewReader(&out)
		for {
			body, err := dap.ReadBaseMessage(r)
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("the adapter wrote a malformed message: %v", err)
			}
			if err := schema.Validate(body); err != nil {
				t.Fatalf("the adapter sent an invalid message: %v\n%s", err, body)
			}
			if bytes.Contains(body, []byte("internal error")) {
				t.Fatalf("internal error: %s", body)
			}
		}
	})
}

// fuzzConn is a client stream: input from r, the adapter's output to w.
type fuzzConn struct {
	r io.Reader
	w *bytes.Buffer
}

func (c *fuzzConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *fuzzConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *fuzzConn) Close() error                { return nil }
