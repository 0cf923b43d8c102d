//go:build unix

package symbols

import (
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// TestSearchedFilesNotFIFOs: a path vmdap finds by searching (a debug
// file by build ID in debugFileDirectories or by debug link, dwz's
// supplementary file, a .dwo, a module's debug file) is opened only
// when it is a regular file. A FIFO there made the open wait for a
// writer, and the launch with it, for ever.
func TestSearchedFilesNotFIFOs(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "x.debug")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	for name, f := range map[string]func(){
		"matchesBuildID": func() { matchesBuildID(fifo, []byte{1, 2, 3, 4}) },
		"matchesLink":    func() { matchesLink(fifo, 0, nil) },
		"FindDebugFile":  func() { FindDebugFile(fifo, nil) },
		"findSup":        func() { findSup("/nonexistent/image", fifo, nil, nil) },
		"openImage":      func() { openImage(fifo) },
		"LoadRelocated":  func() { LoadRelocated(fifo, nil) },
	} {
		done := make(chan struct{})
		go func() { f(); close(done) }()
		for opened := false; !opened; {
			select {
			case <-done:
				opened = true // returned without opening it
				continue
			default:
			}
			// A writer's non-blocking open succeeds only when a reader
			// has the FIFO open (or waits in open): then f opened it.
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close() // (f reads EOF and returns)
				<-done
				t.Errorf("%s opened a FIFO (it waits there for a writer)", name)
				break
			}
			runtime.Gosched()
		}
	}
}
