package session

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"vmdap/vmm"
)

// BPKind is the kind of a logical breakpoint.
type BPKind uint8

const (
	KindSource BPKind = iota
	KindFunction
	KindInstruction
	KindData
)

// Breakpoint modes: where a code breakpoint goes (the client is offered
// them as breakpoint modes).
const (
	ModeSoftware = "software"
	ModeHardware = "hardware"
)

// BreakpointInfo is a breakpoint as the client sees it.
type BreakpointInfo struct {
	ID       int
	Verified bool
	Message  string
	State    BPState // when not verified: BPPending or BPFailed
	File     string
	Line     int
	Addr     uint64
	HasAddr  bool
}

// BPState says why a breakpoint is not verified.
type BPState uint8

const (
	BPPlaced  BPState = iota // verified (or not yet tried)
	BPPending                // not placed yet: placed as soon as it can be (Message says what it waits for)
	BPFailed                 // it cannot be placed (Message says why)
)

// SourceBP is one requested source breakpoint.
type SourceBP struct {
	Line                                int
	Condition, HitCondition, LogMessage string
	Mode                                string
}

// FunctionBP is one requested function breakpoint.
type FunctionBP struct {
	Name, Condition, HitCondition, Mode string
}

// InstructionBP is one requested instruction breakpoint.
type InstructionBP struct {
	Addr                          uint64
	Condition, HitCondition, Mode string
}

// DataBP is one requested data breakpoint.
type DataBP struct {
	DataID, Access          string
	Condition, HitCondition string
}

// SetSourceBreakpoints replaces a source file's breakpoints.
func (s *Session) SetSourceBreakpoints(file string, bps []SourceBP) ([]BreakpointInfo, error) {
	return s.replaceBreakpoints(func() []BreakpointInfo { return s.bps.setSource(file, bps) })
}

// SetFunctionBreakpoints replaces the function breakpoints.
func (s *Session) SetFunctionBreakpoints(bps []FunctionBP) ([]BreakpointInfo, error) {
	return s.replaceBreakpoints(func() []BreakpointInfo { return s.bps.setFunctions(bps) })
}

// SetInstructionBreakpoints replaces the instruction breakpoints.
func (s *Session) SetInstructionBreakpoints(bps []InstructionBP) ([]BreakpointInfo, error) {
	return s.replaceBreakpoints(func() []BreakpointInfo { return s.bps.setInstructions(bps) })
}

// SetDataBreakpoints replaces the data breakpoints (and places what waited
// for the debug registers they leave).
func (s *Session) SetDataBreakpoints(bps []DataBP) ([]BreakpointInfo, error) {
	return s.replaceBreakpoints(func() []BreakpointInfo {
		out := s.bps.setData(bps)
		s.bps.retry(nil)
		return out
	})
}

// replaceBreakpoints runs a set of the breakpoint table with the target
// stopped: the guest may run, and is halted and resumed around the change.
func (s *Session) replaceBreakpoints(set func() []BreakpointInfo) ([]BreakpointInfo, error) {
	var out []BreakpointInfo
	err := s.halted(func() error { out = set(); return nil })
	return out, err
}

// BreakpointLines lists lines of a file with code in [from, to].
func (s *Session) BreakpointLines(file string, from, to int) []int {
	if s.sym == nil {
		return nil
	}
	return s.sym.FileLines(file, from, to)
}

type logical struct {
	id      int
	kind    BPKind
	file    string
	line    int // requested
	fn      string
	addrs   []uint64
	mode    string // as requested: "", ModeSoftware or ModeHardware
	hw      bool   // the mechanism mode chose (a debug register may stand in for software: see place)
	cond    string
	hitCond string
	logMsg  string
	hits    int
	moved   string // a source breakpoint's line fix-up, said to the user
	note    string // the message of a verified breakpoint (moved, or a bad hit condition)
	// modeNote: why a breakpoint of no mode went into a debug register
	// (a software one would not trap in the vCPUs' mode on this host).
	modeNote string
	info     BreakpointInfo
	watch    *dataWatch
	placed   []physKey
	// exc: the Linux exception filter this internal breakpoint stands
	// for (linux_failure.go); the client never sees it.
	exc string
}

// bpTable holds every breakpoint. All methods run with Session.mu held and
// the target stopped.
type bpTable struct {
	s       *Session
	nextID  int
	source  map[string][]*logical
	funcs   []*logical
	insns   []*logical
	kern    []*logical // the enabled Linux exception filters' (internal)
	data    []*logical
	phys    map[physKey]*physical
	watches map[vmm.Watch]int
	exc     *exceptionFilters
	dataIDs map[string]*dataTarget
}

func newBPTable(s *Session) *bpTable {
	return &bpTable{s: s, nextID: 1, source: map[string][]*logical{}, phys: map[physKey]*physical{},
		watches: map[vmm.Watch]int{}, exc: newExceptionFilters(), dataIDs: map[string]*dataTarget{}}
}

func (b *bpTable) newID() int {
	id := b.nextID
	b.nextID++
	return id
}

// setSource replaces the breakpoints of one source file. A breakpoint
// asked for again (same line and mode) keeps its id, hit count and state.
func (b *bpTable) setSource(file string, req []SourceBP) []BreakpointInfo {
	old := b.source[file]
	keep := make([]*logical, len(req))
	used := map[*logical]bool{}
	for i, r := range req {
		for _, o := range old {
			if !used[o] && o.line == r.Line && normMode(o.mode) == normMode(r.Mode) && o.info.State != BPFailed {
				keep[i] = o
				used[o] = true
				break
			}
		}
	}
	// Removed ones go first: the debug registers they free may take new ones.
	for _, o := range old {
		if !used[o] {
			b.unplace(o)
		}
	}
	for i, r := range req {
		l := keep[i]
		if l == nil {
			l = &logical{id: b.newID(), kind: KindSource, file: file, line: r.Line, mode: r.Mode}
			l.info = BreakpointInfo{ID: l.id, File: file, Line: r.Line}
			b.resolveSource(l)
			if len(l.addrs) > 0 {
				b.place(l)
			}
			keep[i] = l
		} else if l.info.State == BPPending {
			b.place(l)
		}
		l.cond, l.hitCond, l.logMsg = r.Condition, r.HitCondition, r.LogMessage
		l.note = l.moved
		if b.vetPlaced(l) && l.info.Verified {
			b.settle(l, BPPlaced, "")
		}
		used[l] = true
	}
	b.source[file] = keep
	b.retry(used)
	out := make([]BreakpointInfo, len(req))
	for i, l := range keep {
		out[i] = l.info
	}
	return out
}

func normMode(m string) string {
	if m == "" {
		return ModeSoftware
	}
	return m
}

func (b *bpTable) resolveSource(l *logical) {
	sym := b.s.sym
	if sym == nil || !sym.HasDWARF() {
		l.info.Message, l.info.State = "the guest image has no line information (build it with -g)", BPFailed
		return
	}
	if l.line < 1 {
		l.info.Message, l.info.State = "not a line of the file: it is before the first line", BPFailed
		return
	}
	addrs, actual, ok := sym.LineAddrs(l.file, l.line)
	if !ok {
		if _, known := sym.MatchFile(l.file); !known {
			b.unresolved(l, "this file is not part of the guest image")
		} else {
			b.unresolved(l, fmt.Sprintf("no code at or after line %d", l.line))
		}
		return
	}
	l.addrs = addrs
	l.info.Line = actual
	if actual != l.line {
		l.moved = fmt.Sprintf("moved from line %d to line %d, the next line with code", l.line, actual)
	}
}

// setFunctions replaces the function breakpoints.
func (b *bpTable) setFunctions(req []FunctionBP) []BreakpointInfo {
	for _, l := range b.funcs {
		b.unplace(l)
	}
	b.funcs = nil
	mine := map[*logical]bool{}
	for _, r := range req {
		l := &logical{id: b.newID(), kind: KindFunction, fn: r.Name, cond: r.Condition, hitCond: r.HitCondition, mode: r.Mode}
		l.info.ID = l.id
		addrs, err := b.s.functionAddrs(r.Name)
		if err != nil {
			b.unresolvedFunc(l, err)
		} else {
			l.addrs = addrs
			l.note = locations(addrs)
			b.place(l)
			b.vetPlaced(l)
			if loc, ok := b.s.lineOf(addrs[0]); ok {
				l.info.File, l.info.Line = loc.File, loc.Line
			}
		}
		b.funcs = append(b.funcs, l)
		mine[l] = true
	}
	b.retry(mine)
	return infos(b.funcs)
}

// setInstructions replaces the instruction breakpoints.
func (b *bpTable) setInstructions(req []InstructionBP) []BreakpointInfo {
	for _, l := range b.insns {
		b.unplace(l)
	}
	b.insns = nil
	mine := map[*logical]bool{}
	for _, r := range req {
		l := &logical{id: b.newID(), kind: KindInstruction, addrs: []uint64{r.Addr}, cond: r.Condition, hitCond: r.HitCondition, mode: r.Mode}
		l.info.ID = l.id
		if loc, ok := b.s.lineOf(r.Addr); ok {
			l.info.File, l.info.Line = loc.File, loc.Line
		}
		b.place(l)
		b.vetPlaced(l)
		b.insns = append(b.insns, l)
		mine[l] = true
	}
	b.retry(mine)
	return infos(b.insns)
}

// locations says how many places a breakpoint binds, as gdb's "(3
// locations)" does, when there is more than one; the client shows one
// line.
func locations(addrs []uint64) string {
	if len(addrs) < 2 {
		return ""
	}
	return fmt.Sprintf("%d locations", len(addrs))
}

func infos(ls []*logical) []BreakpointInfo {
	out := make([]BreakpointInfo, len(ls))
	for i, l := range ls {
		out[i] = l.info
	}
	return out
}

// all returns every code breakpoint (not data).
func (b *bpTable) all() []*logical {
	var ls []*logical
	files := make([]string, 0, len(b.source))
	for f := range b.source {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		ls = append(ls, b.source[f]...)
	}
	ls = append(ls, b.funcs...)
	ls = append(ls, b.insns...)
	return append(ls, b.kern...)
}

// changed tells the client that a breakpoint changed (not an internal
// one, which it does not know).
func (b *bpTable) changed(l *logical) {
	if l.exc == "" {
		b.s.emit(BreakpointChanged{BP: l.info})
	}
}

// at returns the code breakpoints covering addr.
func (b *bpTable) at(addr uint64) []*logical {
	var ls []*logical
	for _, l := range b.all() {
		if len(l.placed) == 0 {
			continue
		}
		for _, a := range l.addrs {
			if a == addr {
				ls = append(ls, l)
				break
			}
		}
	}
	return ls
}

// hitCondition operators: ">N", ">=N", "<N", "<=N", "==N", "%N"; a bare N
// means ">=N" (stop from the N-th hit on, gdb's ignore count).
func checkHitCond(h string) error {
	if strings.TrimSpace(h) == "" {
		return nil
	}
	_, _, err := parseHitCond(h)
	return err
}

func parseHitCond(h string) (string, int, error) {
	h = strings.TrimSpace(h)
	op := ">="
	for _, o := range []string{">=", "<=", "==", ">", "<", "%"} {
		if strings.HasPrefix(h, o) {
			op, h = o, strings.TrimSpace(h[len(o):])
			break
		}
	}
	n, err := strconv.Atoi(h)
	if err != nil || n < 0 || (op == "%" && n == 0) {
		return "", 0, fmt.Errorf("invalid hit condition %q: use a number, optionally after >, >=, <, <=, == or %%", h)
	}
	return op, n, nil
}

func hitCondMet(h string, hits int) bool {
	if strings.TrimSpace(h) == "" {
		return true
	}
	op, n, err := parseHitCond(h)
	if err != nil {
		return true
	}
	switch op {
	case ">":
		return hits > n
	case ">=":
		return hits >= n
	case "<":
		return hits < n
	case "<=":
		return hits <= n
	case "==":
		return hits == n
	case "%":
		return hits%n == 0
	}
	return true
}
