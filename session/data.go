package session

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"vmdap/vmm"
	"vmdap/x86"
)

// dataTarget is something a data breakpoint can watch.
type dataTarget struct {
	id      string
	addr    uint64
	size    int64
	name    string
	typ     *ctype
	persist bool
	scope   *watchScope // a local's: the frame it lives in (nil: none)
}

type dataWatch struct {
	target *dataTarget
	access vmm.Access
	watch  vmm.Watch
	last   []byte
}

// DataInfo answers dataBreakpointInfo.
type DataInfo struct {
	DataID      string // "" when the thing cannot be watched
	Description string
	AccessTypes []string
	CanPersist  bool
}

func accessName(a vmm.Access) string { return a.String() }

func parseAccess(s string) (vmm.Access, error) {
	switch s {
	case "", "write":
		return vmm.AccessWrite, nil
	case "read":
		return vmm.AccessRead, nil
	case "readWrite":
		return vmm.AccessReadWrite, nil
	}
	return 0, fmt.Errorf("unknown access type %q", s)
}

// accessTypes lists what the target can watch for size bytes.
func (s *Session) accessTypes(size int64) []string {
	wp, ok := s.t.Watchpoints()
	if !ok {
		return nil
	}
	have := map[vmm.Access]bool{}
	for _, k := range wp.WatchKinds() {
		if k.MaxLen > 0 && size > int64(k.MaxLen) {
			continue
		}
		for _, a := range k.Accesses {
			have[a] = true
		}
	}
	var out []string
	for _, a := range []vmm.Access{vmm.AccessWrite, vmm.AccessRead, vmm.AccessReadWrite} {
		if have[a] {
			out = append(out, accessName(a))
		}
	}
	return out
}

func (s *Session) dataInfo(t *dataTarget) DataInfo {
	if t.size <= 0 {
		return DataInfo{Description: fmt.Sprintf("%s has no size and cannot be watched", t.name)}
	}
	acc := s.accessTypes(t.size)
	if len(acc) == 0 {
		return DataInfo{Description: s.errNoWatchpoints().Error()}
	}
	if t.persist {
		t.id = fmt.Sprintf("global:%s:%#x:%d", t.name, t.addr, t.size)
	} else {
		t.id = fmt.Sprintf("addr:%#x:%d:%s", t.addr, t.size, t.name)
	}
	s.bps.dataIDs[t.id] = t
	desc := fmt.Sprintf("%s (%d bytes at %#x)", t.name, t.size, t.addr)
	return DataInfo{DataID: t.id, Description: desc, AccessTypes: acc, CanPersist: t.persist}
}

// DataInfoForVar answers dataBreakpointInfo for a variable from Scopes or
// Evaluate.
func (s *Session) DataInfoForVar(v Var) DataInfo {
	if !v.inMem {
		return DataInfo{Description: fmt.Sprintf("%s is not in memory (it lives in a register or is computed)", v.Name)}
	}
	name := v.EvaluateName
	if name == "" {
		name = v.Name
	}
	t := &dataTarget{addr: v.addr, size: v.size, name: name, typ: v.typ}
	if s.sym != nil && s.sym.GlobalByName(name) != nil {
		t.persist = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !t.persist && s.state == StateStopped {
		t.scope = s.frameOwning(s.curVCPU, t.addr)
	}
	return s.dataInfo(t)
}

// DataInfoForExpr answers dataBreakpointInfo for an expression (an lvalue
// in memory).
func (s *Session) DataInfoForExpr(thread, frame int, expr string) (DataInfo, error) {
	v, err := s.Evaluate(thread, frame, expr, false)
	if err != nil {
		return DataInfo{}, err
	}
	return s.DataInfoForVar(v), nil
}

// DataInfoForAddress answers dataBreakpointInfo with asAddress: addr is
// an expression giving the address, size the byte count.
func (s *Session) DataInfoForAddress(thread int, addr string, size int) (DataInfo, error) {
	if size <= 0 {
		size = 1
	}
	v, err := s.Evaluate(thread, 0, addr, false)
	if err != nil {
		return DataInfo{}, err
	}
	var a uint64
	err = s.stopped(func() error {
		sc, err := s.newScope(max(thread-1, 0), 0)
		if err != nil {
			return err
		}
		val, err := evalExpr(addr, sc)
		if err != nil {
			return err
		}
		a, err = val.u64(sc)
		return err
	})
	if err != nil {
		return DataInfo{}, err
	}
	_ = v
	if a+uint64(size-1) < a {
		return DataInfo{}, fmt.Errorf("%d bytes from %#x run past the end of the address space", size, a)
	}
	t := &dataTarget{addr: a, size: int64(size), name: fmt.Sprintf("%#x", a)}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dataInfo(t), nil
}

// parseDataID decodes a data id (also ones from an earlier session, for
// persisted breakpoints).
func (b *bpTable) parseDataID(id string) (*dataTarget, error) {
	if t, ok := b.dataIDs[id]; ok {
		return t, nil
	}
	parts := strings.Split(id, ":")
	bad := fmt.Errorf("unknown data breakpoint id %q", id)
	if len(parts) < 3 {
		return nil, bad
	}
	t := &dataTarget{id: id}
	var addrS, sizeS string
	switch parts[0] {
	case "global":
		if len(parts) != 4 {
			return nil, bad
		}
		t.name, addrS, sizeS, t.persist = parts[1], parts[2], parts[3], true
		if g := b.s.sym; g != nil {
			if gv := g.GlobalByName(t.name); gv != nil {
				// the address comes from the symbols, not the old id
				if sc, err := b.s.newScope(0, 0); err == nil {
					if val, err := sc.varValue(gv); err == nil && val.inMem {
						addrS = fmt.Sprintf("%#x", val.addr)
						t.typ = val.typ
					}
				}
			}
		}
	case "addr":
		addrS, sizeS = parts[1], parts[2]
		if len(parts) > 3 {
			t.name = strings.Join(parts[3:], ":")
		}
	default:
		return nil, bad
	}
	var err error
	if t.addr, err = strconv.ParseUint(addrS, 0, 64); err != nil {
		return nil, bad
	}
	if t.size, err = strconv.ParseInt(sizeS, 0, 64); err != nil || t.size <= 0 {
		return nil, bad
	}
	if t.name == "" {
		t.name = fmt.Sprintf("%#x", t.addr)
	}
	return t, nil
}

// setData replaces the data breakpoints.
func (b *bpTable) setData(req []DataBP) []BreakpointInfo {
	for _, l := range b.data {
		b.unplaceData(l)
	}
	b.data = nil
	out := make([]BreakpointInfo, len(req))
	for i, r := range req {
		l := &logical{id: b.newID(), kind: KindData, cond: r.Condition, hitCond: r.HitCondition}
		l.info.ID = l.id
		t, err := b.parseDataID(r.DataID)
		if err == nil && t.scope != nil && t.scope.left != "" {
			err = errors.New(t.scope.left)
		}
		if err == nil {
			var acc vmm.Access
			if acc, err = parseAccess(r.Access); err == nil {
				l.watch = &dataWatch{target: t, access: acc}
				if err = b.vet(l); err == nil {
					err = b.placeData(l)
				}
			}
		}
		if err != nil {
			l.info.Verified, l.info.Message, l.info.State = false, err.Error(), BPFailed
		}
		b.data = append(b.data, l)
		out[i] = l.info
	}
	return out
}

// placeData puts a data breakpoint in the best place: the debug registers
// when they fire on this host and have room (write/readWrite, split over
// slots), else page protection, else the stub's own watchpoints.
func (b *bpTable) placeData(l *logical) error {
	dw := l.watch
	wp, ok := b.s.t.Watchpoints()
	if !ok {
		return b.s.errNoWatchpoints()
	}
	t := dw.target
	var why []string
	for _, k := range wp.WatchKinds() {
		if k.MaxLen > 0 && t.size > int64(k.MaxLen) {
			why = append(why, fmt.Sprintf("%s watchpoints cover at most %d bytes", k.Kind, k.MaxLen))
			continue
		}
		okAcc := false
		for _, a := range k.Accesses {
			okAcc = okAcc || a == dw.access
		}
		if !okAcc {
			why = append(why, fmt.Sprintf("%s watchpoints cannot watch %s access", k.Kind, dw.access))
			continue
		}
		if k.Kind == vmm.WatchDebugReg && len(x86.SplitRange(t.addr, int(t.size))) > 4 {
			why = append(why, "the range needs more than four debug registers")
			continue
		}
		w := vmm.Watch{Addr: t.addr, Len: int(t.size), Access: dw.access, Kind: k.Kind}
		err := wp.InsertWatchpoint(w)
		if err == nil {
			dw.watch = w
			dw.last = b.s.peekData(t)
			l.info.Verified = true
			l.info.Addr, l.info.HasAddr = t.addr, true
			l.info.Message = fmt.Sprintf("%s: %s watchpoint", t.name, k.Kind)
			if len(why) > 0 {
				l.info.Message += " (" + strings.Join(why, "; ") + ")"
			}
			b.watches[w]++
			b.placeScope(l)
			return nil
		}
		if errors.Is(err, vmm.ErrNoSlots) {
			why = append(why, "the debug registers are in use")
			continue
		}
		if errors.Is(err, vmm.ErrUnsupported) {
			why = append(why, err.Error())
			continue
		}
		return err
	}
	if len(why) == 0 {
		why = append(why, "no watchpoint mechanism fits")
	}
	if onlySoftware(wp.WatchKinds()) {
		why = append(why, "debug-register watchpoints do not fire on "+b.s.caps.Host)
	}
	return errors.New(strings.Join(why, "; "))
}

// onlySoftware says whether a target watches only by stepping and
// comparing: no debug register, page protection or stub of its own.
func onlySoftware(kinds []vmm.WatchSupport) bool {
	for _, k := range kinds {
		if k.Kind != vmm.WatchSoftware {
			return false
		}
	}
	return true
}

func (b *bpTable) unplaceData(l *logical) {
	if l.watch == nil || !l.info.Verified {
		return
	}
	b.unplaceScope(l)
	w := l.watch.watch
	b.watches[w]--
	if b.watches[w] <= 0 {
		delete(b.watches, w)
		if wp, ok := b.s.t.Watchpoints(); ok {
			if err := wp.RemoveWatchpoint(w); err != nil {
				b.s.log.WithError(err).Warn("removing watchpoint")
			}
		}
	}
}

func (s *Session) peekData(t *dataTarget) []byte {
	b := make([]byte, t.size)
	if _, err := s.t.ReadMemory(0, b, t.addr); err != nil {
		return nil
	}
	return b
}

// dataStop decides whether a watchpoint stop is a user stop and describes
// it ("counter changed 41 → 42 at kmain+0x2c (main.c:17)").
func (s *Session) dataStop(st vmm.Stop) (*Stopped, bool) {
	h := st.Watch
	if h == nil {
		return nil, false
	}
	accessEnd := h.Addr + 1
	var hit []*logical
	for _, l := range s.bps.data {
		if l.watch == nil || !l.info.Verified {
			continue
		}
		t := l.watch.target
		if l.watch.watch == h.Watch || (h.Addr < t.addr+uint64(t.size) && t.addr < accessEnd) {
			if l.watch.access&h.Access == 0 && h.Access != vmm.AccessReadWrite {
				continue
			}
			hit = append(hit, l)
		}
	}
	var ids []int
	desc := ""
	for _, l := range hit {
		if !s.conditionMet(l, st.VCPU) {
			continue
		}
		ids = append(ids, l.id)
		if desc == "" {
			desc = s.describeData(l, h, st.PC)
		}
	}
	// keep snapshots current
	for _, l := range hit {
		l.watch.last = s.peekData(l.watch.target)
	}
	if len(ids) == 0 {
		return nil, false
	}
	return &Stopped{Reason: StopDataBreakpoint, HitIDs: ids, Description: desc, Text: desc}, true
}

func (s *Session) describeData(l *logical, h *vmm.WatchHit, pc uint64) string {
	t := l.watch.target
	old, nw := h.Old, h.New
	if int64(len(old)) != t.size || int64(len(nw)) != t.size {
		old, nw = l.watch.last, s.peekData(t)
	}
	show := func(b []byte) string {
		if b == nil {
			return "?"
		}
		typ := t.typ
		if typ == nil || typ.size != int64(len(b)) {
			return fmt.Sprintf("% x", b)
		}
		return format(value{typ: typ, raw: b}, nilScope{}, false)
	}
	where := s.where(pc)
	switch {
	case h.Access == vmm.AccessRead:
		return fmt.Sprintf("%s read (value %s) at %s", t.name, show(nw), where)
	case old != nil && !bytes.Equal(old, nw):
		return fmt.Sprintf("%s changed %s → %s at %s", t.name, show(old), show(nw), where)
	case h.Access == vmm.AccessWrite:
		return fmt.Sprintf("%s written with the same value %s at %s", t.name, show(nw), where)
	}
	return fmt.Sprintf("%s accessed (value %s) at %s", t.name, show(nw), where)
}

// nilScope formats rvalues that need no memory.
type nilScope struct{}

func (nilScope) readMem([]byte, uint64) error          { return errors.New("no memory") }
func (nilScope) writeMem([]byte, uint64) error         { return errors.New("no memory") }
func (nilScope) regGet(string) (uint64, bool)          { return 0, false }
func (nilScope) regSet(string, uint64) error           { return errors.New("no registers") }
func (nilScope) lookupVar(string) (value, bool, error) { return value{}, false, nil }
func (nilScope) lookupType(string) (*ctype, bool)      { return nil, false }
func (nilScope) symbolName(uint64) (string, bool)      { return "", false }
