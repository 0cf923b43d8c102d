package adapter_test

import (
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-dap"
	"github.com/sirupsen/logrus/hooks/test"

	"vmdap/adapter"
	"vmdap/adapter/dapschema"
	"vmdap/adapter/daptest"
	"vmdap/vmm/vmmtest"
)

// liveCommands are the requests FuzzStoppedSession sends: those that read
// the stopped guest, its registers and its DWARF (none resumes it or
// ends the session).
var liveCommands = []string{"stackTrace", "scopes", "variables", "evaluate", "disassemble", "readMemory",
	"completions", "dataBreakpointInfo", "gotoTargets", "stepInTargets", "source", "loadedSources",
	"modules", "threads", "exceptionInfo", "breakpointLocations"}

// FuzzStoppedSession sends requests with arbitrary arguments to one
// session stopped in the example guest on KVM (the session lives as long
// as the fuzzing process): every answer must come, be valid DAP and meet
// no internal error (a recovered panic), and the session must answer
// afterwards. In the arguments $frame, $ref and $pc stand for the top
// frame's id, its first scope's variables reference and its instruction
// pointer reference at that moment, so the fuzzer reaches past the
// handlers' id checks.
func FuzzStoppedSession(f *testing.F) {
	vmmtest.RequireKVM(f)
	for cmd, args := range map[string]string{
		"stackTrace":          `{"threadId":1,"startFrame":0,"levels":20}`,
		"scopes":              `{"frameId":$frame}`,
		"variables":           `{"variablesReference":$ref,"start":0,"count":5,"filter":"indexed","format":{"hex":true}}`,
		"evaluate":            `{"expression":"squares[i] * (total + 1)","frameId":$frame,"context":"watch"}`,
		"disassemble":         `{"memoryReference":"$pc","instructionOffset":-4,"instructionCount":8,"resolveSymbols":true}`,
		"readMemory":          `{"memoryReference":"$pc","offset":-16,"count":64}`,
		"completions":         `{"text":"squ","column":4,"frameId":$frame}`,
		"dataBreakpointInfo":  `{"name":"total","variablesReference":$ref}`,
		"gotoTargets":         `{"source":{"path":"main.c"},"line":34}`,
		"stepInTargets":       `{"frameId":$frame}`,
		"breakpointLocations": `{"source":{"path":"main.c"},"line":30,"endLine":40}`,
	} {
		for i, c := range liveCommands {
			if c == cmd {
				f.Add(uint8(i), []byte(args))
			}
		}
	}
	f.Add(uint8(3), []byte(`{"expression":"x/8xb $pc","frameId":$frame,"context":"repl"}`))
	f.Add(uint8(3), []byte(`{"expression":"$cs","context":"hover"}`))

	live := startStopped(f)
	f.Fuzz(func(t *testing.T, cmd uint8, in []byte) {
		args := live.fill(t, string(in))
		if !json.Valid([]byte(args)) {
			return
		}
		name := liveCommands[int(cmd)%len(liveCommands)]
		_, err := live.c.Request(name, json.RawMessage(args))
		var er *daptest.ErrorResponse
		switch {
		case err == nil:
		case !errors.As(err, &er):
			t.Fatalf("%s %s: no answer: %v", name, args, err)
		case strings.Contains(er.Message, "internal error"):
			t.Fatalf("%s %s: %v", name, args, err)
		}
		if bad := live.schemaErrors(); bad != "" {
			t.Fatalf("%s %s: the adapter sent an invalid message: %s", name, args, bad)
		}
		if _, err := live.c.Request("threads", nil); err != nil {
			t.Fatalf("after %s %s the session does not answer: %v", name, args, err)
		}
	})
}

// liveSession is a session stopped at a breakpoint in the example guest.
type liveSession struct {
	c   *daptest.Client
	mu  sync.Mutex
	bad []string
}

func startStopped(f *testing.F) *liveSession {
	schema, err := dapschema.Load()
	if err != nil {
		f.Fatal(err)
	}
	program := vmmtest.BuildExample(f, "kernel").Path
	src := exampleSource(f)
	log, _ := test.NewNullLogger()
	srv := &adapter.Server{Backends: kvmBackends{}, Log: log}
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(a) }()
	live := &liveSession{}
	live.c = daptest.NewLogged(b, func(dir string, raw []byte) {
		if dir != "<-" {
			return
		}
		if err := schema.Validate(raw); err != nil {
			live.mu.Lock()
			live.bad = append(live.bad, err.Error()+": "+string(raw[:min(len(raw), 300)]))
			live.mu.Unlock()
		}
	})
	live.c.Timeout = 20 * time.Second
	f.Cleanup(func() {
		live.c.Close()
		<-done
	})
	must := func(err error) {
		if err != nil {
			f.Fatal(err)
		}
	}
	_, err = live.c.Initialize()
	must(err)
	must(live.c.Launch(map[string]any{"program": program, "memory": 64}))
	_, err = live.c.WaitEvent("initialized")
	must(err)
	line, err := daptest.LineOf(src, "total += squares[i];")
	must(err)
	_, err = live.c.SetBreakpoints(src, daptest.Line(line))
	must(err)
	must(live.c.ConfigurationDone())
	_, err = live.c.Stopped()
	must(err)
	_, err = live.c.SetBreakpoints(src)
	must(err)
	return live
}

// fill puts the top frame's ids in place of $frame, $ref and $pc.
func (l *liveSession) fill(t *testing.T, args string) string {
	if !strings.Contains(args, "$") {
		return args
	}
	st, err := l.c.StackTrace(1)
	if err != nil || len(st.Body.StackFrames) == 0 {
		t.Fatalf("stackTrace: %v", err)
	}
	top := st.Body.StackFrames[0]
	ref := 0
	if r, err := l.c.Request("scopes", map[string]any{"frameId": top.Id}); err == nil {
		if sc := r.(*dap.ScopesResponse).Body.Scopes; len(sc) > 0 {
			ref = sc[0].VariablesReference
		}
	}
	return strings.NewReplacer("$frame", strconv.Itoa(top.Id), "$ref", strconv.Itoa(ref), "$pc", top.InstructionPointerReference).Replace(args)
}

func (l *liveSession) schemaErrors() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.bad, "\n")
	l.bad = nil
	return s
}
