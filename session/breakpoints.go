package session

import (
	"errors"
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

// Breakpoint modes (DAP breakpointModes).
const (
	ModeSoftware = "software"
	ModeHardware = "hardware"
)

// BreakpointInfo is a breakpoint as the client sees it.
type BreakpointInfo struct {
	ID       int
	Verified bool
	Message  string
	Reason   string // "pending" or "failed" when not verified
	File     string
	Line     int
	Addr     uint64
	HasAddr  bool
}

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

type logical struct {
	id      int
	kind    BPKind
	file    string
	line    int // requested
	fn      string
	addrs   []uint64
	hw      bool
	cond    string
	hitCond string
	logMsg  string
	hits    int
	mode    string
	info    BreakpointInfo
	watch   *dataWatch
	placed  []physKey
}

type physKey struct {
	addr uint64
	hw   bool
}

type physical struct {
	refs int
}

// bpTable holds every breakpoint. All methods run with Session.mu held and
// the target stopped.
type bpTable struct {
	s       *Session
	nextID  int
	source  map[string][]*logical
	funcs   []*logical
	insns   []*logical
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

// insert adds one reference to a physical breakpoint.
func (b *bpTable) insert(k physKey) error {
	if p := b.phys[k]; p != nil {
		p.refs++
		return nil
	}
	var err error
	if k.hw {
		hw, ok := b.s.t.HWBreakpoints()
		if !ok {
			return fmt.Errorf("hardware breakpoints: %w", vmm.ErrUnsupported)
		}
		err = hw.InsertHWBreakpoint(k.addr)
	} else {
		sw, ok := b.s.t.SWBreakpoints()
		if !ok {
			return fmt.Errorf("software breakpoints: %w", vmm.ErrUnsupported)
		}
		err = sw.InsertBreakpoint(k.addr)
	}
	if err != nil {
		return err
	}
	b.phys[k] = &physical{refs: 1}
	return nil
}

func (b *bpTable) remove(k physKey) {
	p := b.phys[k]
	if p == nil {
		return
	}
	p.refs--
	if p.refs > 0 {
		return
	}
	delete(b.phys, k)
	var err error
	if k.hw {
		if hw, ok := b.s.t.HWBreakpoints(); ok {
			err = hw.RemoveHWBreakpoint(k.addr)
		}
	} else if sw, ok := b.s.t.SWBreakpoints(); ok {
		err = sw.RemoveBreakpoint(k.addr)
	}
	if err != nil {
		b.s.log.WithError(err).Warnf("removing breakpoint at %#x", k.addr)
	}
}

// useHW decides the mechanism for a mode.
func (b *bpTable) useHW(mode string) (bool, error) {
	_, sw := b.s.t.SWBreakpoints()
	_, hw := b.s.t.HWBreakpoints()
	switch mode {
	case "", ModeSoftware:
		if sw {
			return false, nil
		}
		if hw {
			return true, nil
		}
	case ModeHardware:
		if hw {
			return true, nil
		}
		return false, errors.New("this target has no hardware breakpoints")
	default:
		return false, fmt.Errorf("unknown breakpoint mode %q (use %q or %q)", mode, ModeSoftware, ModeHardware)
	}
	return false, errors.New("this target supports no breakpoints")
}

// place inserts the physical breakpoints of l and fills its info.
func (b *bpTable) place(l *logical, mode string) {
	hw, err := b.useHW(mode)
	if err != nil {
		l.info.Verified, l.info.Message, l.info.Reason = false, err.Error(), "failed"
		return
	}
	l.hw = hw
	for _, a := range l.addrs {
		k := physKey{a, hw}
		if err := b.insert(k); err != nil {
			msg := err.Error()
			if errors.Is(err, vmm.ErrNoSlots) {
				msg = "all four hardware breakpoint slots (DR0-DR3) are in use"
			}
			var fe *vmm.FaultError
			if errors.As(err, &fe) {
				msg = fmt.Sprintf("address %#x is not mapped in guest memory", a)
			}
			b.unplace(l)
			l.info.Verified, l.info.Message, l.info.Reason = false, msg, "failed"
			return
		}
		l.placed = append(l.placed, k)
	}
	l.info.Verified = len(l.placed) > 0
	if len(l.addrs) > 0 {
		l.info.Addr, l.info.HasAddr = l.addrs[0], true
	}
}

func (b *bpTable) unplace(l *logical) {
	for _, k := range l.placed {
		b.remove(k)
	}
	l.placed = nil
}

// setSource replaces the breakpoints of one source file.
func (b *bpTable) setSource(file string, req []SourceBP) []BreakpointInfo {
	old := b.source[file]
	var keep []*logical
	out := make([]BreakpointInfo, len(req))
	used := map[*logical]bool{}
	for i, r := range req {
		var l *logical
		for _, o := range old {
			if !used[o] && o.line == r.Line && o.mode == normMode(r.Mode) && o.info.Verified {
				l = o
				break
			}
		}
		if l == nil {
			l = &logical{id: b.newID(), kind: KindSource, file: file, line: r.Line, mode: normMode(r.Mode)}
			l.info = BreakpointInfo{ID: l.id, File: file, Line: r.Line}
			b.resolveSource(l)
			if len(l.addrs) > 0 {
				b.place(l, r.Mode)
			}
		}
		used[l] = true
		l.cond, l.hitCond, l.logMsg = r.Condition, r.HitCondition, r.LogMessage
		b.vetPlaced(l)
		keep = append(keep, l)
		out[i] = l.info
	}
	for _, o := range old {
		if !used[o] {
			b.unplace(o)
		}
	}
	b.source[file] = keep
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
		l.info.Message, l.info.Reason = "the guest image has no line information (build it with -g)", "failed"
		return
	}
	addrs, actual, ok := sym.LineAddrs(l.file, l.line)
	if !ok {
		if _, known := sym.MatchFile(l.file); !known {
			l.info.Message = "this file is not part of the guest image"
		} else {
			l.info.Message = fmt.Sprintf("no code at or after line %d", l.line)
		}
		l.info.Reason = "failed"
		return
	}
	l.addrs = addrs
	l.info.Line = actual
	if actual != l.line {
		l.info.Message = fmt.Sprintf("moved from line %d to line %d, the next line with code", l.line, actual)
	}
}

// setFunctions replaces the function breakpoints.
func (b *bpTable) setFunctions(req []FunctionBP) []BreakpointInfo {
	for _, l := range b.funcs {
		b.unplace(l)
	}
	b.funcs = nil
	out := make([]BreakpointInfo, len(req))
	for i, r := range req {
		l := &logical{id: b.newID(), kind: KindFunction, fn: r.Name, cond: r.Condition, hitCond: r.HitCondition}
		l.info.ID = l.id
		addr, err := b.s.functionAddr(r.Name)
		if err != nil {
			l.info.Message, l.info.Reason = err.Error(), "failed"
		} else {
			l.addrs = []uint64{addr}
			b.place(l, r.Mode)
			b.vetPlaced(l)
			if loc, ok := b.s.lineOf(addr); ok {
				l.info.File, l.info.Line = loc.File, loc.Line
			}
		}
		b.funcs = append(b.funcs, l)
		out[i] = l.info
	}
	return out
}

// setInstructions replaces the instruction breakpoints.
func (b *bpTable) setInstructions(req []InstructionBP) []BreakpointInfo {
	for _, l := range b.insns {
		b.unplace(l)
	}
	b.insns = nil
	out := make([]BreakpointInfo, len(req))
	for i, r := range req {
		l := &logical{id: b.newID(), kind: KindInstruction, addrs: []uint64{r.Addr}, cond: r.Condition, hitCond: r.HitCondition}
		l.info.ID = l.id
		b.place(l, r.Mode)
		b.vetPlaced(l)
		if loc, ok := b.s.lineOf(r.Addr); ok {
			l.info.File, l.info.Line = loc.File, loc.Line
		}
		b.insns = append(b.insns, l)
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
	return append(ls, b.insns...)
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
