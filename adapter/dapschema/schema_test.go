package dapschema

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		msg  string
		want string // "" = valid; else a substring of the error
	}{
		{`{"seq":1,"type":"request","command":"continue","arguments":{"threadId":1}}`, ""},
		{`{"seq":1,"type":"request","command":"continue","arguments":{}}`, "arguments.threadId: is required"},
		{`{"seq":1,"type":"request","command":"continue"}`, "arguments: is required"},
		{`{"seq":1,"type":"request","command":"continue","arguments":{"threadId":"one"}}`, "is a string, want integer"},
		{`{"seq":1,"type":"request","command":"continue","arguments":{"threadId":1.5}}`, "want integer"},
		{`{"seq":1,"type":"request","command":"continue","arguments":{"threadId":4294967296}}`, "above its maximum"},
		{`{"seq":1,"type":"request","command":"variables","arguments":{"variablesReference":1,"start":-1}}`, "below its minimum 0"},
		{`{"seq":1,"type":"request","command":"variables","arguments":{"variablesReference":1,"filter":"both"}}`, `"both" is not one of`},
		{`{"seq":1,"type":"request","command":"next","arguments":{"threadId":1,"granularity":"bytes"}}`, "not one of"},
		{`{"seq":1,"type":"request","command":"vmdap.hexDisplay","arguments":{"hex":true}}`, ""},
		{`{"seq":0,"type":"request","command":"threads"}`, "seq: is 0, below its minimum 1"},
		{`{"seq":3,"type":"response","request_seq":0,"command":"initialize","success":false,"message":"x","body":{}}`, "request_seq: is 0"},
		{`{"seq":3,"type":"response","request_seq":2,"command":"next","success":true}`, ""},
		{`{"seq":3,"type":"response","request_seq":2,"command":"continue","success":true}`, "body: is required"},
		{`{"seq":3,"type":"response","request_seq":2,"command":"next","success":false,"message":"no"}`, "body: is required"},
		{`{"seq":3,"type":"response","request_seq":2,"command":"next","success":false,"message":"no","body":{"error":{"id":1,"format":"no"}}}`, ""},
		{`{"seq":4,"type":"event","event":"stopped","body":{"reason":"my own reason","threadId":1}}`, ""},
		{`{"seq":4,"type":"event","event":"stopped","body":{}}`, "body.reason: is required"},
		{`{"seq":4,"type":"event","event":"exited","body":{"exitCode":0}}`, ""},
		{`{"seq":4,"type":"event","event":"output","body":{"category":"important","output":"x"}}`, ""},
		{`{"seq":5,"type":"response","request_seq":2,"command":"stackTrace","success":true,"body":{"stackFrames":[{"id":1,"name":"f","line":-1,"column":0}]}}`, "below its minimum 0"},
		{`[1]`, "not a JSON object"},
		{`{"seq":1`, "not JSON"},
	} {
		err := s.Validate([]byte(c.msg))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", c.msg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error containing %q", c.msg, err, c.want)
		}
	}
}
