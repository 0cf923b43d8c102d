package adapter

import (
	"sync"

	"vmdap/session"
)

// handles maps DAP frame ids and variablesReferences to session objects.
// They are valid for one stop: reset() at every stop and resume.
type handles struct {
	mu     sync.Mutex
	next   int
	frames map[int]frameRef
	vars   map[int]varRef
}

type frameRef struct {
	thread, index int
}

type varRef struct {
	thread, frame int
	children      func() ([]session.Var, error)
	list          []session.Var // filled on first expansion
}

const firstHandle = 1000

func newHandles() *handles {
	h := &handles{}
	h.reset()
	return h
}

func (h *handles) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next = firstHandle
	h.frames = map[int]frameRef{}
	h.vars = map[int]varRef{}
}

func (h *handles) addFrame(f frameRef) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	h.frames[h.next] = f
	return h.next
}

func (h *handles) frame(id int) (frameRef, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.frames[id]
	return f, ok
}

// threadFrame returns the thread and frame index of a frame id; without
// one (a console line with no frame), thread 0 (the last stop's vCPU)
// and its innermost frame.
func (h *handles) threadFrame(id int) (thread, frame int) {
	if f, ok := h.frame(id); ok {
		return f.thread, f.index
	}
	return 0, 0
}

func (h *handles) addVars(v varRef) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	h.vars[h.next] = v
	return h.next
}

func (h *handles) vars1(id int) (varRef, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.vars[id]
	return v, ok
}

func (h *handles) setList(id int, l []session.Var) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.vars[id]; ok {
		v.list = l
		h.vars[id] = v
	}
}
