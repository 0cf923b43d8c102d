package adapter_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-dap"

	"vmdap/adapter"
	"vmdap/vmm/vmmtest"
)

// TestSourceMap: the image's source paths are mapped to a local folder
// for frames and Loaded Sources, and a breakpoint set in the mapped file
// binds.
func TestSourceMap(t *testing.T) {
	vmmtest.RequireKVM(t)
	g := vmmtest.BuildExample(t, "kernel")
	realDir := filepath.Dir(filepath.Join(g.Dir, "main.c"))
	e := launchExample(t, map[string]any{"sourceMap": map[string]string{realDir: "/mapped/kernel"}})
	mapped := "/mapped/kernel/main.c"
	line := e.line("puts(\"counter: \");")
	bps, err := e.c.SetBreakpoints(mapped, map[string]any{"line": line})
	e.must(err)
	if b := bps.Body.Breakpoints[0]; !b.Verified || b.Source == nil || b.Source.Path != mapped {
		t.Fatalf("breakpoint in the mapped file: %+v", b)
	}
	e.must(e.c.ConfigurationDone())
	e.stopped("breakpoint")
	f := e.top()
	if f.Source == nil || f.Source.Path != mapped || f.Line != line {
		t.Fatalf("top frame %+v, want %s:%d", f, mapped, line)
	}
	r, err := e.c.Request("loadedSources", nil)
	e.must(err)
	found := false
	for _, s := range r.(*dap.LoadedSourcesResponse).Body.Sources {
		if s.Path == mapped {
			found = true
		}
		if strings.HasPrefix(s.Path, realDir+"/") {
			t.Errorf("loaded source %s is not mapped", s.Path)
		}
	}
	if !found {
		t.Errorf("loadedSources lacks %s", mapped)
	}
}

// TestProgressEvents: a client that announced supportsProgressReporting
// sees the symbol load as progressStart, progressUpdate…, progressEnd,
// before the launch response; one that did not sees none.
func TestProgressEvents(t *testing.T) {
	vmmtest.RequireKVM(t)
	defer adapter.SetProgressAfter(0)()
	g := vmmtest.BuildExample(t, "kernel")
	for _, announce := range []bool{true, false} {
		c, _ := newClient(t)
		if _, err := c.Request("initialize", map[string]any{"adapterID": "vmdap", "linesStartAt1": true,
			"columnsStartAt1": true, "supportsProgressReporting": announce}); err != nil {
			t.Fatal(err)
		}
		if err := c.Launch(map[string]any{"program": g.Path, "memory": 64}); err != nil {
			t.Fatal(err)
		}
		var names []string
		id := ""
		for _, m := range c.Events() {
			switch ev := m.(type) {
			case *dap.ProgressStartEvent:
				names = append(names, "start")
				id = ev.Body.ProgressId
				if ev.Body.Title == "" {
					t.Errorf("progressStart without a title")
				}
			case *dap.ProgressUpdateEvent:
				names = append(names, "update")
				if ev.Body.ProgressId != id {
					t.Errorf("progressUpdate id %q, want %q", ev.Body.ProgressId, id)
				}
			case *dap.ProgressEndEvent:
				names = append(names, "end")
				if ev.Body.ProgressId != id {
					t.Errorf("progressEnd id %q, want %q", ev.Body.ProgressId, id)
				}
			}
		}
		got := strings.Join(names, " ")
		if announce && (!strings.HasPrefix(got, "start") || !strings.HasSuffix(got, "end") || strings.Count(got, "start") != 1) {
			t.Errorf("progress events %q, want start, updates, end", got)
		}
		if !announce && got != "" {
			t.Errorf("progress events %q sent to a client that did not announce supportsProgressReporting", got)
		}
		c.Disconnect()
	}
}
