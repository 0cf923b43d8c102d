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
//
// A stop can last: a core dump's session is one stop, and an editor
// evaluates and expands at every hover, watch and console line. Each
// map keeps its newest ids only (maxHandles, maxVarHandles; an older one is refused as
// a stale one is), and the expanded lists of the newest maxVarLists
// references (an older one is made again when asked for, as after
// dropLists): 20,000 expansions of init_task on a core dump held 4.4 GB.
type handles struct {
	mu      sync.Mutex // guards everything below
	next    int
	frames  idMap[frameRef]
	vars    idMap[varRef]
	gotos   idMap[session.GotoTarget]
	stepIns idMap[session.StepInTarget]
	lists   []int // the references whose list is kept, oldest first
}

// Bounds of the ids a stop keeps (see handles). A variable reference
// holds its value's types, and through them its unit's decoded DWARF
// types (a quarter of a megabyte each on Debian's vmlinux, measured): it
// is the one kept fewest.
const (
	maxHandles    = 50_000
	maxVarHandles = 5_000
	maxVarLists   = 256
)

// idMap is a map of ids that keeps the newest max of them.
type idMap[V any] struct {
	m     map[int]V
	order []int // the ids in m, oldest first
	max   int
}

func newIDMap[V any](max int) idMap[V] { return idMap[V]{m: map[int]V{}, max: max} }

func (m *idMap[V]) put(id int, v V) {
	if _, ok := m.m[id]; !ok {
		m.order = append(m.order, id)
	}
	m.m[id] = v
	for len(m.m) > m.max && len(m.order) > 0 {
		delete(m.m, m.order[0])
		m.order = m.order[1:]
	}
}

func (m *idMap[V]) get(id int) (V, bool) {
	v, ok := m.m[id]
	return v, ok
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
	h.frames = newIDMap[frameRef](maxHandles)
	h.vars = newIDMap[varRef](maxVarHandles)
	h.gotos = newIDMap[session.GotoTarget](maxHandles)
	h.stepIns = newIDMap[session.StepInTarget](maxHandles)
	h.lists = nil
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
	h.frames.put(id, f)
	return id
}

func (h *handles) frame(id int) (frameRef, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.frames.get(id)
	return f, ok
}

func (h *handles) addVars(v varRef) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.id()
	h.vars.put(id, v)
	return id
}

func (h *handles) vars1(id int) (varRef, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.vars.get(id)
	return v, ok
}

func (h *handles) setList(id int, l []session.Var) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.vars.get(id)
	if !ok {
		return
	}
	if v.list == nil {
		h.lists = append(h.lists, id)
	}
	v.list = l
	h.vars.m[id] = v
	for len(h.lists) > maxVarLists {
		old := h.lists[0]
		h.lists = h.lists[1:]
		if v, ok := h.vars.get(old); ok {
			v.list = nil
			h.vars.m[old] = v
		}
	}
}

// dropLists forgets the variables' expanded lists (made again on demand).
func (h *handles) dropLists() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range h.lists {
		if v, ok := h.vars.get(id); ok {
			v.list = nil
			h.vars.m[id] = v
		}
	}
	h.lists = nil
}

func (h *handles) addGoto(t session.GotoTarget) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.id()
	h.gotos.put(id, t)
	return id
}

func (h *handles) gotoTarget(id int) (session.GotoTarget, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.gotos.get(id)
	return t, ok
}

func (h *handles) addStepIn(t session.StepInTarget) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.id()
	h.stepIns.put(id, t)
	return id
}

func (h *handles) stepInTarget(id int) (session.StepInTarget, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.stepIns.get(id)
	return t, ok
}
