package adapter_test

import (
	"path/filepath"
	"strings"
	"testing"

	"vmdap/adapter/daptest"
)

// TestMissingSourcesFoldOnlyBesideShownOnes: a frame whose source is not
// on this disk is deemphasized, which VS Code folds into "Show N More
// Stack Frames", only where another frame's source is on disk: with
// start.S mapped to a folder that does not exist, its frame is; with the
// whole tree mapped away (a kernel debugged without its sources), no
// frame is, and the stack stays in view.
func TestMissingSourcesFoldOnlyBesideShownOnes(t *testing.T) {
	dir := filepath.Dir(exampleSource(t))
	for _, c := range []struct {
		what   string
		from   string
		folded func(file string) bool
	}{
		{"start.S away", filepath.Join(dir, "start.S"), func(file string) bool { return strings.HasSuffix(file, ".S") }},
		{"the tree away", dir, func(string) bool { return false }},
	} {
		e := launchExample(t, map[string]any{"sourceMap": map[string]string{c.from: "/nonexistent/vmdap-sources" + filepath.Ext(c.from)}})
		// The breakpoint by the path VS Code would send: the mapped one.
		src := filepath.Join("/nonexistent/vmdap-sources", "main.c")
		if c.from != dir {
			src = e.src
		}
		_, err := e.c.SetBreakpoints(src, daptest.Line(e.line("squares[i] = square(i);")))
		e.must(err)
		e.must(e.c.ConfigurationDone())
		e.stopped("breakpoint")
		st, err := e.c.StackTrace(1)
		e.must(err)
		sawAsm := false
		for _, f := range st.Body.StackFrames {
			if f.Source == nil {
				continue
			}
			sawAsm = sawAsm || strings.HasSuffix(f.Source.Path, ".S")
			if got, want := f.Source.PresentationHint == "deemphasize", c.folded(f.Source.Path); got != want {
				t.Errorf("%s: frame %s in %s deemphasized %v, want %v", c.what, f.Name, f.Source.Path, got, want)
			}
		}
		if !sawAsm {
			t.Fatalf("%s: no frame in start.S: %+v", c.what, st.Body.StackFrames)
		}
		e.must(e.c.Disconnect())
	}
}
