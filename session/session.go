package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"vmdap/session/symbols"
	"vmdap/vmm"
	"vmdap/x86"
)

// State is the session's run state.
type State uint8

const (
	StateStopped State = iota
	StateRunning
	StateExited
)

// Errors a client sees as request failures.
var (
	ErrRunning = errors.New("the guest is running: pause it first")
	ErrExited  = errors.New("the guest has exited")
	ErrNoFrame = errors.New("no such stack frame")
)

// Config builds a session.
type Config struct {
	Target vmm.Target
	Image  *Image // may be nil (no image symbols)
	Log    logrus.FieldLogger
	// Emit receives events; it must not block for long (the adapter
	// queues them for its writer).
	Emit func(Event)
	// KernelOffset, when set, is the slide a relocated (KASLR) kernel
	// runs at; otherwise vmdap finds it at stops.
	KernelOffset *uint64
	// Attached: the target is a hypervisor's that may have run the
	// guest already (its first stop is where the guest was, unless that
	// is the reset vector), not one launched for the session.
	Attached bool
}

// Session is one debugging session over one target.
type Session struct {
	t      vmm.Target
	sym    *symbols.Set      // the image's symbols with the modules' (nil: none)
	srcMap map[string]string // the sourceMap of the launch or attach (for modules' symbols too)
	log    logrus.FieldLogger
	emit   func(Event)
	caps   vmm.Capabilities

	// mu guards the session's state and every use of the target while
	// it is stopped: the fields below, the breakpoint tables (bps) and
	// the per-stop caches. The run goroutine takes it between target
	// operations, never while waiting for the guest; the emit callback
	// may be called with it held (it only queues).
	mu       sync.Mutex
	state    State
	bps      *bpTable
	curVCPU  int // the vCPU the last stop was on
	lastStop vmm.Stop
	frames   map[int][]Frame // per-stop cache by vCPU
	pti      ptiState        // per-stop: PTI kernel halves checked (pti.go)
	// types converts DWARF types for every scope of a stop (see
	// stopTypes); nil: none yet since the guest last ran.
	types    *typeCache
	exitCode int
	excInfo  *ExceptionInfo
	ret      *returned // what the function the last stepOut left returned (nil: no such stop)
	// hidden counts, per vCPU, the inlined calls whose first instruction
	// a step stopped at: their frames are not shown yet (the stop is at
	// the call, in the caller, as gdb shows it); a step in enters them
	// one by one without running, a next runs over them (inline.go).
	hidden    map[int]int
	hex       bool            // integers in hex in variables, watch and hover (the IDE's toggle)
	kaslr     kaslrState      // the search for a relocated kernel's slide
	linux     linuxState      // Linux awareness (linux.go)
	fatalStop bool            // the last stop ended the guest (triple fault, hypervisor error) but was shown as a stop
	written   []MemoryChanged // guest memory written by expressions since the last take
	runDone   chan struct{}   // closed when the current (or last) run goroutine ends
	userPause bool
	pauseVCPU int // the vCPU the user's pause named (-1: none)
	// announce is the thread of a step that has not yet run the whole
	// guest: the first time it does (over a call, out of a function),
	// a Continued event says every vCPU runs (0: none to announce).
	announce  int
	attached  bool          // Config.Attached
	dump      *vmm.DumpInfo // a core dump's, when the target is one (postmortem.go); set at New
	closed    bool
	endDetail string        // how the target ended, when not by the guest's own exit
	quit      chan struct{} // closed by End: stops watchEnd

	interrupt context.CancelFunc // ends the run goroutine's current Wait (nil when it is not waiting)

	// Requests that must run while the target is halted inside a run:
	// halted() queues them on reqs and interrupts the run goroutine's
	// wait; it serves them with mu held.
	reqs chan haltedReq

	// life ends when the session ends: every wait for the guest ends
	// with it.
	life    context.Context
	endLife context.CancelFunc
}

// New makes a session over a stopped target.
func New(c Config) *Session {
	log := c.Log
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		log = l
	}
	var sym *symbols.Table
	var srcMap map[string]string
	if c.Image != nil {
		sym, srcMap = c.Image.t, c.Image.srcMap
	}
	s := &Session{
		log: log.WithField("layer", "session"), emit: c.Emit,
		caps: c.Target.Capabilities(), attached: c.Attached,
		frames: map[int][]Frame{},
		reqs:   make(chan haltedReq, 16),
		srcMap: srcMap,
	}
	s.log.Info("target: " + strings.Join(vmm.Describe(c.Target), "; "))
	s.life, s.endLife = context.WithCancel(context.Background())
	s.t = &taskTarget{Target: c.Target, s: s} // the tasks as threads (linux_threads.go)
	if s.emit == nil {
		s.emit = func(Event) {}
	}
	if sym != nil {
		s.sym = symbols.NewSet(sym)
	}
	s.bps = newBPTable(s)
	if c.KernelOffset != nil {
		s.forceSlide(*c.KernelOffset)
	}
	s.setDump(c.Target, c.KernelOffset != nil)
	s.quit = make(chan struct{})
	if e, ok := c.Target.(vmm.Ender); ok {
		go s.watchEnd(e.Ended())
	}
	return s
}

// watchEnd reports a target that ends while the session is stopped (a
// GDB stub or its hypervisor that dies): at once, with the target's
// reason, rather than at the next request. A target that ends while it
// runs reports it as the run's stop.
func (s *Session) watchEnd(ended <-chan struct{}) {
	select {
	case <-ended:
	case <-s.quit:
		return
	}
	s.mu.Lock()
	if s.state != StateStopped || s.closed {
		s.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the final stop is queued already: take it, do not wait
	st, err := s.t.Wait(ctx)
	s.state = StateRunning // finish takes it from here, as a run's end
	s.mu.Unlock()
	if err == nil && !st.Reason.Final() {
		err = fmt.Errorf("unexpected stop %v", st)
	}
	if err != nil {
		s.finish(result{err: fmt.Errorf("the target ended: %w", err)})
		return
	}
	s.finish(result{stop: st, final: true})
}

// Ended returns why the guest cannot run any more, or nil while it can.
func (s *Session) Ended() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateExited {
		return nil
	}
	return s.exitedErr()
}

// exitedErr is the error for a request that needs a guest that is gone
// (s.mu held).
func (s *Session) exitedErr() error {
	if s.endDetail != "" {
		return fmt.Errorf("%w: %s", ErrExited, s.endDetail)
	}
	return ErrExited
}

// Symbols returns the image symbols with those of the guest's loaded
// modules (may be nil).
func (s *Session) Symbols() *symbols.Set { return s.sym }

// State returns the run state.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Threads returns the vCPU count (threads are 1..n).
func (s *Session) Threads() int { return s.t.VCPUs() }

// CheckThread fails for a thread id that names no vCPU.
func (s *Session) CheckThread(thread int) error {
	_, err := s.vcpuOf(thread)
	return err
}

// vcpuOf converts a thread id (1-based) to a vCPU index.
func (s *Session) vcpuOf(thread int) (int, error) {
	if isTaskThread(thread) {
		return s.taskThreadVCPU(thread) // linux_threads.go
	}
	if thread < 1 || thread > s.t.VCPUs() {
		return 0, fmt.Errorf("no thread %d (threads are 1..%d, one per vCPU)", thread, s.t.VCPUs())
	}
	return thread - 1, nil
}

// SetHexDisplay shows integers in hex (on) or decimal in variables,
// watch and hover values (registers are always hex), and asks the client
// to fetch them again.
func (s *Session) SetHexDisplay(on bool) {
	s.mu.Lock()
	s.hex = on
	s.mu.Unlock()
	s.emit(Invalidated{})
}

// vcpuOrCurrent is vcpuOf, with thread 0 (a request without a frame)
// meaning the vCPU of the last stop.
func (s *Session) vcpuOrCurrent(thread int) (int, error) {
	if thread <= 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.curVCPU, nil
	}
	return s.vcpuOf(thread)
}

// stopped runs fn with the session stopped, or returns an error.
func (s *Session) stopped(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case StateRunning:
		return ErrRunning
	case StateExited:
		if !s.stateKept() {
			return s.exitedErr()
		}
	}
	return fn()
}

// stateKept says whether a guest that has ended keeps its state readable:
// after a triple fault or a hypervisor error the vCPUs are stopped where
// it happened, and the stop is shown as one (an exception stop) whose
// stack, variables and registers can be inspected (mu held).
func (s *Session) stateKept() bool {
	return s.lastStop.Reason == vmm.ReasonShutdown || s.lastStop.Reason == vmm.ReasonInternalError
}

// halted runs fn with the target stopped: at once when the session is
// stopped, else by halting the running guest, running fn and resuming it
// (invisible to the user). A run that ends without serving fn (a step,
// which does not serve requests, or a target that went away) leaves it
// to be served here, the guest then stopped; a guest that has exited
// fails it.
func (s *Session) halted(fn func() error) error {
	r := haltedReq{fn: fn, errc: make(chan error, 1)}
	for {
		s.mu.Lock()
		switch s.state {
		case StateExited:
			defer s.mu.Unlock()
			return s.exitedErr()
		case StateStopped:
			defer s.mu.Unlock()
			return fn()
		}
		done := s.runDone
		s.mu.Unlock()
		select {
		case s.reqs <- r:
		default:
			return errors.New("too many requests queued while the guest runs")
		}
		s.mu.Lock()
		if s.interrupt != nil {
			s.interrupt() // the run goroutine halts the guest and serves the queue
		}
		s.mu.Unlock()
		select {
		case err := <-r.errc:
			return err
		case <-done:
		}
		// The run ended: serve what it left queued (ours among them,
		// unless it was served on the way out).
		s.mu.Lock()
		if s.state != StateRunning {
			s.serveRequestsLocked()
		}
		s.mu.Unlock()
		select {
		case err := <-r.errc:
			return err
		default: // a new run took the guest: queue again
		}
	}
}

// haltedReq is one request queued by halted.
type haltedReq struct {
	fn   func() error
	errc chan error // buffered: serving never blocks
}

// serveRequests runs queued halted() requests (target stopped).
func (s *Session) serveRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serveRequestsLocked()
}

// serveRequestsLocked runs the queued requests, or fails them once the
// guest has exited (mu held).
func (s *Session) serveRequestsLocked() {
	s.forgetPTI() // the guest ran since the last stop
	for {
		select {
		case r := <-s.reqs:
			if s.state == StateExited && !s.stateKept() {
				r.errc <- s.exitedErr()
				continue
			}
			r.errc <- r.fn()
		default:
			return
		}
	}
}

// waitInterruptible waits for the running target to stop, serving halted()
// requests on the way: it halts the target, serves them, and resumes it
// when the halt was only for them. Every wait ends when the session
// closes, whether or not the backend's Wait notices its own Close.
func (s *Session) waitInterruptible() (vmm.Stop, error) {
	for {
		ctx, cancel := context.WithCancel(s.life)
		s.mu.Lock()
		s.interrupt = cancel
		if len(s.reqs) > 0 {
			cancel() // queued before the interrupt was in place
		}
		s.mu.Unlock()
		st, err := s.t.Wait(ctx)
		s.mu.Lock()
		s.interrupt = nil
		s.mu.Unlock()
		cancel()
		if !errors.Is(err, context.Canceled) || s.life.Err() != nil {
			s.serveRequests()
			return st, err
		}
		if err := s.t.Pause(); err != nil {
			return vmm.Stop{}, err
		}
		st, err = s.t.Wait(s.life)
		if err != nil {
			return st, err
		}
		s.serveRequests()
		if st.Reason == vmm.ReasonPause && !s.pauseRequested() {
			if err := s.t.Continue(); err != nil {
				return vmm.Stop{}, err
			}
			if err := s.repause(); err != nil {
				return vmm.Stop{}, err
			}
			continue
		}
		return st, nil
	}
}

// repause passes on, once the target runs, a pause that came while a run
// was still deciding how to go: the target was not running then, so its
// Pause did nothing, and the run it has just begun (a continue to a hlt
// with interrupts off, say) might never stop by itself. A target asked
// twice stops once.
func (s *Session) repause() error {
	if !s.pauseRequested() {
		return nil
	}
	return s.t.Pause()
}

func (s *Session) pauseRequested() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userPause
}

// Pause asks the running guest to stop; a Stopped event with reason pause
// follows.
func (s *Session) Pause(thread int) error {
	v, err := s.vcpuOf(thread)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case StateExited:
		return s.exitedErr() // no stop can follow
	case StateStopped:
		return nil // stopped already
	}
	s.userPause = true
	s.pauseVCPU = -1
	if err == nil {
		s.pauseVCPU = v // every vCPU stops; the stop is reported on the one asked for
	}
	return s.t.Pause()
}

// ErrEndsWithSession: End was asked to let the guest go on, and it could
// not: it ended (it runs inside vmdap's own VMM).
var ErrEndsWithSession = errors.New("the guest runs inside vmdap's own VMM: it ends with the session")

// Ending says what becomes of the guest when the session ends (DAP's
// terminateDebuggee and suspendDebuggee).
type Ending uint8

const (
	// EndDefault: the target's own ending (a launched guest ends, an
	// attached one runs on).
	EndDefault Ending = iota
	// EndTerminate: the guest ends, attached or not.
	EndTerminate
	// EndDetach: the guest runs on, without vmdap's breakpoints.
	EndDetach
	// EndSuspend: the guest stays stopped, without vmdap's breakpoints.
	EndSuspend
)

// endWait bounds the wait for a running guest to stop before the session
// lets it go (the target's own pause timeout ends it sooner).
const endWait = 15 * time.Second

// Close ends the session with the target's default ending.
func (s *Session) Close() error { return s.End(EndDefault) }

// End ends the session: a running guest is stopped first (its breakpoints
// must come out), then the target is let go as how says, where it can be
// (a GDB stub's guest can outlive the session; vmdap's own VMM's cannot).
// It waits for the run goroutine to finish. The error says what could
// not be done as asked.
func (s *Session) End(how Ending) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	running := s.state == StateRunning
	if running {
		s.userPause = true // the pause's stop ends the run, not resumed
	}
	done := s.runDone
	s.mu.Unlock()
	if running {
		_ = s.t.Pause()
		if done != nil {
			select {
			case <-done:
			case <-time.After(endWait):
				s.log.Warn("the guest did not stop for the end of the session")
			}
		}
	}
	s.endLife() // a wait still going (a pause never answered) ends now
	d, detacher := s.t.(*taskTarget).unwrap().(vmm.Detacher)
	var err error
	switch {
	case detacher && how == EndTerminate:
		err = d.Terminate()
	case detacher && (how == EndDetach || how == EndSuspend):
		err = d.Detach(how == EndSuspend)
	default:
		err = s.t.Close()
		if how == EndDetach || how == EndSuspend {
			err = errors.Join(err, ErrEndsWithSession)
		}
	}
	if done != nil {
		<-done
	}
	return err
}

// Regs returns the registers of a thread at the current stop.
func (s *Session) Regs(thread int) (x86.Regs, error) {
	v, err := s.vcpuOf(thread)
	if err != nil {
		return x86.Regs{}, err
	}
	var r x86.Regs
	err = s.stopped(func() (e error) { r, e = s.t.Regs(v); return })
	return r, err
}

// LastStop returns the target's last stop.
func (s *Session) LastStop() vmm.Stop {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastStop
}
