package session

import (
	"context"
	"errors"
	"fmt"
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
	Target  vmm.Target
	Symbols *symbols.Table // may be nil (no image symbols)
	Log     logrus.FieldLogger
	// Emit receives events; it must not block for long (the adapter
	// queues them for its writer).
	Emit func(Event)
	// KernelOffset, when set, is the slide a relocated (KASLR) kernel
	// runs at; otherwise vmdap finds it at stops.
	KernelOffset *uint64
}

// Session is one debugging session over one target.
type Session struct {
	t    vmm.Target
	sym  *symbols.Set // the image's symbols with the modules' (nil: none)
	log  logrus.FieldLogger
	emit func(Event)
	caps vmm.Capabilities

	mu       sync.Mutex
	state    State
	bps      *bpTable
	curVCPU  int // the vCPU the last stop was on
	lastStop vmm.Stop
	frames   map[int][]Frame // per-stop cache by vCPU
	exitCode int
	excInfo  *ExceptionInfo
	hex      bool // integers in hex in variables, watch and hover (the IDE's toggle)
	kaslr    kaslrState
	linux    linuxState // Linux awareness (linux.go)

	// Requests that must run while the target is halted inside a run.
	reqs      chan func()
	kick      chan struct{}
	runDone   chan struct{}
	userPause bool
	closed    bool
	endDetail string        // how the target ended, when not by the guest's own exit
	quit      chan struct{} // closed by Close: stops watchEnd
}

// New makes a session over a stopped target.
func New(c Config) *Session {
	log := c.Log
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		log = l
	}
	s := &Session{
		log: log.WithField("layer", "session"), emit: c.Emit,
		caps:   c.Target.Capabilities(),
		frames: map[int][]Frame{},
		reqs:   make(chan func(), 16),
		kick:   make(chan struct{}, 1),
	}
	s.t = &taskTarget{Target: c.Target, s: s} // the tasks as threads (linux_threads.go)
	if s.emit == nil {
		s.emit = func(Event) {}
	}
	if c.Symbols != nil {
		s.sym = symbols.NewSet(c.Symbols)
	}
	s.bps = newBPTable(s)
	if c.KernelOffset != nil {
		s.forceSlide(*c.KernelOffset)
	}
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

// Capabilities returns the target's capabilities.
func (s *Session) Capabilities() vmm.Capabilities { return s.caps }

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
	s.emit(Invalidated{Areas: []string{"variables"}})
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
		if s.lastStop.Reason != vmm.ReasonShutdown {
			return s.exitedErr()
		}
	}
	return fn()
}

// halted runs fn with the target stopped: at once when the session is
// stopped, else by halting the running guest, running fn and resuming it
// (invisible to the user).
func (s *Session) halted(fn func() error) error {
	s.mu.Lock()
	if s.state != StateRunning {
		defer s.mu.Unlock()
		if s.state == StateExited {
			return s.exitedErr()
		}
		return fn()
	}
	s.mu.Unlock()
	errc := make(chan error, 1)
	select {
	case s.reqs <- func() { errc <- fn() }:
	default:
		return errors.New("too many requests queued while the guest runs")
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return <-errc
}

// serveRequests runs queued halted() requests (target stopped).
func (s *Session) serveRequests() {
	for {
		select {
		case fn := <-s.reqs:
			s.mu.Lock()
			fn()
			s.mu.Unlock()
		default:
			return
		}
	}
}

// waitInterruptible waits for the running target to stop, serving halted()
// requests on the way: it halts the target, serves them, and resumes it
// when the halt was only for them.
func (s *Session) waitInterruptible() (vmm.Stop, error) {
	for {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			select {
			case <-s.kick:
				cancel()
			case <-done:
			}
		}()
		st, err := s.t.Wait(ctx)
		close(done)
		cancel()
		if !errors.Is(err, context.Canceled) {
			s.serveRequests()
			return st, err
		}
		if err := s.t.Pause(); err != nil {
			return vmm.Stop{}, err
		}
		st, err = s.t.Wait(context.Background())
		if err != nil {
			return st, err
		}
		s.serveRequests()
		if st.Reason == vmm.ReasonPause && !s.pauseRequested() {
			if err := s.t.Continue(); err != nil {
				return vmm.Stop{}, err
			}
			continue
		}
		return st, nil
	}
}

func (s *Session) pauseRequested() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userPause
}

// Pause asks the running guest to stop; a Stopped event with reason pause
// follows.
func (s *Session) Pause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateRunning {
		return nil
	}
	s.userPause = true
	return s.t.Pause()
}

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
			err = errors.Join(err, errors.New("the guest runs inside vmdap's own VMM: it ends with the session"))
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
