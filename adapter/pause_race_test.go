package adapter_test

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"vmdap/adapter"
	"vmdap/vmm"
	"vmdap/vmm/vmmtest"
)

// gatedBackends launches vmdap's VMM as kvmBackends does, behind a gate
// that can hold the next Continue before the guest runs: the window in
// which a run has begun for the session but not yet for the target.
type gatedBackends struct {
	kvmBackends
	entered chan struct{} // receives once a held Continue waits
	release chan struct{} // closed to let it go on
	target  *gatedTarget  // the launched target
}

func (b *gatedBackends) Launch(ctx context.Context, cfg adapter.LaunchConfig, serial io.Writer, log logrus.FieldLogger) (vmm.Target, error) {
	t, err := b.kvmBackends.Launch(ctx, cfg, serial, log)
	if err != nil {
		return nil, err
	}
	b.target = &gatedTarget{Target: t, b: b}
	return b.target, nil
}

type gatedTarget struct {
	vmm.Target
	b     *gatedBackends
	armed atomic.Bool // set by the test while the guest is stopped
}

func (t *gatedTarget) Continue() error {
	if t.armed.CompareAndSwap(true, false) {
		t.b.entered <- struct{}{}
		<-t.b.release
	}
	return t.Target.Continue()
}

// TestPauseBeforeTheGuestRuns: a pause that arrives after a continue was
// accepted but before the target runs (the session is still deciding how
// to go; the target, not running, has nothing to interrupt) still stops
// the run it then starts, here an endless loop that would never stop by
// itself.
func TestPauseBeforeTheGuestRuns(t *testing.T) {
	vmmtest.RequireKVM(t)
	b := &gatedBackends{entered: make(chan struct{}), release: make(chan struct{})}
	e := &env{t: t, src: exampleSource(t)}
	e.c, e.done = newClientWith(t, b)
	_, err := e.c.Initialize()
	e.must(err)
	e.must(e.c.Launch(map[string]any{"program": vmmtest.BuildExample(t, "kernel").Path, "memory": 64, "stopOnEntry": true}))
	_, err = e.c.WaitEvent("initialized")
	e.must(err)
	e.must(e.c.ConfigurationDone())
	e.stopped("entry")
	_, err = e.c.Request("setExpression", map[string]any{"expression": "busy_iterations", "value": "0x7fffffffffffffff"})
	e.must(err)

	b.target.armed.Store(true)
	e.must(e.c.Continue(1))
	select {
	case <-b.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the continue never reached the target")
	}
	_, err = e.c.Request("pause", map[string]any{"threadId": 1})
	e.must(err)
	close(b.release)
	ev := e.stopped("pause")
	t.Logf("stopped: %+v", ev.Body)
}
