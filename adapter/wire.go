package adapter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DAP's base protocol: header fields ("Name: value\r\n"), an empty line,
// then Content-Length bytes of JSON. go-dap's reader trusts its input (an
// endless header line grows without bound; a length beyond int64 is an
// error it does not classify), so the adapter reads messages itself,
// with every piece bounded.

const (
	maxHeaderLine  = 1 << 10  // one header field
	maxHeaderLines = 16       // fields before the empty line
	maxContent     = 16 << 20 // one message body (a readMemory/writeMemory of 12 MiB fits)
)

// headerError is a header the reader cannot use; the stream resyncs at
// the next "Content-Length:".
type headerError struct{ msg string }

func (e *headerError) Error() string { return "malformed DAP message header: " + e.msg }

// wireReader reads base-protocol messages.
type wireReader struct {
	r *bufio.Reader
}

func newWireReader(r io.Reader) *wireReader { return &wireReader{r: bufio.NewReaderSize(r, 64<<10)} }

// read returns the next message body. A *headerError means the header
// was unusable: call resync, then read again. Other errors end the
// stream.
func (w *wireReader) read() ([]byte, error) {
	length := -1
	for n := 0; ; n++ {
		line, err := w.line()
		if err != nil {
			return nil, err
		}
		if line == "" {
			if n == 0 {
				continue // a stray CRLF between messages
			}
			break
		}
		if n >= maxHeaderLines {
			return nil, &headerError{fmt.Sprintf("more than %d header fields", maxHeaderLines)}
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, &headerError{fmt.Sprintf("%q is not a header field", clip(line, 40))}
		}
		if !strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			continue // other fields (Content-Type) carry nothing DAP uses
		}
		v := strings.TrimSpace(value)
		l, err := strconv.ParseUint(v, 10, 63)
		switch {
		case err != nil && errors.Is(err, strconv.ErrRange):
			return nil, &headerError{fmt.Sprintf("Content-Length %s is too large (at most %d bytes)", clip(v, 40), maxContent)}
		case err != nil:
			return nil, &headerError{fmt.Sprintf("Content-Length %q is not a number", clip(v, 40))}
		case l > maxContent:
			return nil, &headerError{fmt.Sprintf("Content-Length %d is too large (at most %d bytes)", l, maxContent)}
		}
		length = int(l)
	}
	if length < 0 {
		return nil, &headerError{"no Content-Length field"}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(w.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// line reads one header line without its CRLF (a bare LF is accepted),
// refusing one longer than maxHeaderLine before reading further.
func (w *wireReader) line() (string, error) {
	var b []byte
	for {
		c, err := w.r.ReadByte()
		if err != nil {
			return "", err
		}
		if c == '\n' {
			return string(bytes.TrimSuffix(b, []byte{'\r'})), nil
		}
		if len(b) >= maxHeaderLine {
			return "", &headerError{fmt.Sprintf("a header line longer than %d bytes", maxHeaderLine)}
		}
		b = append(b, c)
	}
}

// resync skips input up to the next "Content-Length:" in any case, as
// the header is parsed (it stays unread). It reads byte by byte, keeping
// nothing.
func (w *wireReader) resync() error {
	const hdr = "Content-Length:"
	for {
		p, err := w.r.Peek(len(hdr))
		if err != nil && len(p) < len(hdr) {
			if err == bufio.ErrBufferFull {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if strings.EqualFold(string(p), hdr) {
			return nil
		}
		if _, err := w.r.ReadByte(); err != nil {
			return err
		}
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
