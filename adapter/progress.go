package adapter

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-dap"
	"github.com/sirupsen/logrus"

	"vmdap/session"
)

// progressAfter is how long work runs before the client is shown a
// progress bar (shorter work would only flicker).
var progressAfter = 500 * time.Millisecond

// progress reports one long piece of work to a client that announced
// supportsProgressReporting: progressStart once it has run for
// progressAfter, progressUpdate as it advances, progressEnd when done.
// The work is a request's, which stops when the request is cancelled: the
// bar is cancellable, and a cancel of its progressId cancels the request
// (progressID, onCancel).
type progress struct {
	c     *conn
	id    string
	title string
	msg   string
	timer *time.Timer

	mu      sync.Mutex // guards started, ended, pct
	started bool
	ended   bool
	pct     int
}

func (c *conn) newProgress(reqSeq int, title, msg string) *progress {
	c.mu.Lock()
	on := c.progressOn
	c.mu.Unlock()
	p := &progress{c: c, id: progressID(reqSeq), title: title, msg: msg}
	if on {
		p.timer = time.AfterFunc(progressAfter, p.start)
		if progressAfter <= 0 {
			p.start()
		}
	}
	return p
}

func (p *progress) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.ended {
		return
	}
	p.started = true
	ev := &dap.ProgressStartEvent{Event: newEvent("progressStart")}
	ev.Body = dap.ProgressStartEventBody{ProgressId: p.id, Title: p.title, Message: p.msg, Percentage: p.pct, Cancellable: true}
	p.c.send(ev)
}

// progressID names the progress of request seq; progressRequest reads the
// request back from it (0: not one of vmdap's).
func progressID(seq int) string { return fmt.Sprintf("vmdap-%d", seq) }

func progressRequest(id string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(id, "vmdap-"))
	if err != nil || n <= 0 || progressID(n) != id {
		return 0
	}
	return n
}

// update records done of total; it sends an update when the percentage
// moves and the bar is shown.
func (p *progress) update(done, total int64) {
	if p.timer == nil || total <= 0 {
		return
	}
	pct := int(done * 100 / total)
	p.mu.Lock()
	defer p.mu.Unlock()
	if pct == p.pct {
		return
	}
	p.pct = pct
	if p.started && !p.ended {
		ev := &dap.ProgressUpdateEvent{Event: newEvent("progressUpdate")}
		ev.Body = dap.ProgressUpdateEventBody{ProgressId: p.id, Percentage: pct, Message: fmt.Sprintf("%s: %d%%", p.msg, pct)}
		p.c.send(ev)
	}
}

func (p *progress) end(msg string) {
	if p.timer == nil {
		return
	}
	p.timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	p.ended = true
	if p.started {
		ev := &dap.ProgressEndEvent{Event: newEvent("progressEnd")}
		ev.Body = dap.ProgressEndEventBody{ProgressId: p.id, Message: msg}
		p.c.send(ev)
	}
}

// loadImage reads the guest image's symbols (none without a program),
// maps its source paths, and shows progress when it takes a while.
func (c *conn) loadImage(ctx context.Context, reqSeq int, program, debugFile string, sourceMap map[string]string, debugDirs []string) (*session.Image, error) {
	program, debugFile = symbolFiles(program, debugFile)
	if program == "" {
		return nil, nil
	}
	name := filepath.Base(program)
	if debugFile != "" {
		name = filepath.Base(debugFile)
	}
	p := c.newProgress(reqSeq, "Loading symbols", name)
	start := time.Now()
	wd, _ := os.Getwd() // relative compile directories are found from here, as gdb's $cwd
	img, err := session.LoadImage(program, debugFile, session.ImageOptions{SourceMap: sourceMap, Progress: p.update, Context: ctx, IndexCache: c.srv.IndexCache,
		DebugDirs: debugDirs, BaseDir: wd})
	if err != nil {
		p.end("failed")
		return nil, err
	}
	p.end(fmt.Sprintf("%s in %v", img.Summary(), time.Since(start).Round(time.Millisecond)))
	if found, looked := img.DebugFound(); found != "" {
		// (a stripped program whose DWARF is apart: say which file the
		// source view comes from, as gdb's "Reading symbols from")
		c.log.WithField("looked", looked).Infof("%s has no DWARF: read its separate debug file %s", name, found)
		c.output("console", fmt.Sprintf("vmdap: %s has no debug information of its own: reading symbols from %s\n", name, found))
	} else if len(looked) > 0 {
		c.log.WithField("looked", looked).Infof("%s has no DWARF and no separate debug file was found", name)
	}
	for _, n := range img.Notes() {
		c.log.Infof("symbols of %s: %s", name, n)
		c.output("console", "vmdap: "+n+"\n")
	}
	c.log.WithFields(logrus.Fields{"ms": time.Since(start).Milliseconds(), "indexCached": img.IndexCached()}).Debugf("symbols of %s loaded", name)
	return img, nil
}

// symbolFiles says which files hold the guest's symbols: the program and
// its debug file, or, for a program that is not an ELF file (a Linux
// bzImage), the debug file alone (its vmlinux), or none ("").
func symbolFiles(program, debugFile string) (string, string) {
	if program == "" || isELF(program) {
		return program, debugFile
	}
	return debugFile, ""
}

// isELF reports whether the file starts with the ELF magic (a file that
// cannot be read counts as one: the loader reports the error).
func isELF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	var m [4]byte
	_, err = io.ReadFull(f, m[:])
	return err != nil || string(m[:]) == "\x7fELF"
}
