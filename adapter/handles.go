package adapter

import (
	"math"
	"sync"

	"vmdap/session"
)

// handles maps the ids the adapter hands out (frame ids,
// variablesReferences, goto and step-in target ids) to session objects.
// Each is valid until the guest runs again (reset), and no id is ever
// given twice in a session: a stale id is refused, never taken for
// another frame.
type handles struct {
	mu      sync.Mutex // guards everything below
	next    int
	frames  map[int]frameRef
	vars    map[int]varRef
	gotos   map[int]session.GotoTarget
	stepIns map[int]session.StepInTarget
}

type frameRef struct {
	thread, index int
}

type varRef struct {
	thread, frame int
	children      func() ([]session.Var, error)
	// elements pages through an array's count elements (nil: not an array).
	elements func(start, count int) ([]session.Var, error)
	count    int
	list     []session.Var // filled on first expansion
}

const firstHandle = 1000

func newHandles() *handles {
	h := &handles{next: firstHandle}
	h.reset()
	return h
}

// reset forgets every id (the guest runs again); ids keep counting.
func (h *handles) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.frames = map[int]frameRef{}
	h.vars = map[int]varRef{}
	h.gotos = map[int]session.GotoTarget{}
	h.stepIns = map[int]session.StepInTarget{}
}

// id returns a fresh id (mu held). After 2^31 of them (years of
// stepping) the count starts again.
func (h *handles) id() int {
	if h.next >= math.MaxInt32 {
		h.next = firstHandle
	}
	h.next++
	return h.next
}

func (h *handles) addFrame(f frameRef) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.id()
	h.frames[id] = f
	return id
}

func (h *handles) frame(id int) (frameRef, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.frames[id]
	return f, ok
}

func (h *handles) addVars(v varRef) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.id()
	h.vars[id] = v
	return id
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

// dropLists forgets the variables' expanded lists (made again on demand).
func (h *handles) dropLists() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, v := range h.vars {
		if v.list != nil {
			v.list = nil
			h.vars[id] = v
		}
	}
}

func (h *handles) addGoto(t session.GotoTarget) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.id()
	h.gotos[id] = t
	return id
}

func (h *handles) gotoTarget(id int) (session.GotoTarget, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.gotos[id]
	return t, ok
}

func (h *handles) addStepIn(t session.StepInTarget) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.id()
	h.stepIns[id] = t
	return id
}

func (h *handles) stepInTarget(id int) (session.StepInTarget, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.stepIns[id]
	return t, ok
}
