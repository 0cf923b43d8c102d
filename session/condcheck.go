package session

import (
	"debug/dwarf"
	"errors"
	"fmt"
	"strings"

	"vmdap/session/symbols"
	"vmdap/x86"
)

// Conditions, hit conditions and logpoint messages are checked when a
// breakpoint is set, as gdb checks a condition when it is given: a
// malformed one leaves the breakpoint unverified with the reason, instead
// of being found out at the first hit. The check parses the condition
// against the names the breakpoint's code sees (its locals and
// parameters, globals, symbols, registers) without reading the guest:
// every value reads as zero, and a division by that zero is not an error.

// maxLogMessage bounds a logpoint message (each {expression} in it is
// evaluated at every hit).
const maxLogMessage = 4096

// vet checks l's condition, hit condition and log message.
func (b *bpTable) vet(l *logical) error {
	if err := checkHitCond(l.hitCond); err != nil {
		return err
	}
	if len(l.logMsg) > maxLogMessage {
		return fmt.Errorf("log message too long (%d bytes; at most %d)", len(l.logMsg), maxLogMessage)
	}
	if strings.TrimSpace(l.cond) == "" && !strings.Contains(l.logMsg, "{") {
		return nil // nothing to check: no scope to build (a breakpoint's DWARF scope at each of its addresses)
	}
	sc := b.s.checkScope(l)
	if strings.TrimSpace(l.cond) != "" {
		if _, err := evalExpr(l.cond, sc); err != nil {
			return fmt.Errorf("condition %q: %w", clipText(l.cond, 60), err)
		}
	}
	for _, p := range logParts(l.logMsg) {
		if !p.expr {
			continue
		}
		e, _ := formatSpec(p.text)
		if _, err := evalExpr(e, sc); err != nil {
			return fmt.Errorf("log message: {%s}: %w (a brace that is text is written \\{ or {{)", clipText(e, 60), err)
		}
	}
	return nil
}

// vetPlaced vets a breakpoint just placed (or pending); a malformed one
// is unplaced and failed with the reason. It reports whether l passed.
func (b *bpTable) vetPlaced(l *logical) bool {
	if err := b.vet(l); err != nil {
		b.unplace(l)
		b.settle(l, BPFailed, err.Error())
		return false
	}
	return true
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// staticScope is the scope a condition is checked in: names, types and
// registers, no guest state.
type staticScope struct {
	s       *Session
	names   map[string]dwarf.Type // locals and parameters at the breakpoint
	addrs   []uint64              // the breakpoint's code (its units' enumerators are seen)
	lenient bool                  // any name is accepted (a data breakpoint stops anywhere; a pending one has no code yet)
	types   *typeCache
}

// checkScope is the static scope of a breakpoint's code (session locked).
// One with no code yet (pending on a kernel module) accepts any name: it
// is checked again against its code's names when it binds.
func (s *Session) checkScope(l *logical) *staticScope {
	lenient := l.kind == KindData || len(l.addrs) == 0 && l.kind != KindInstruction
	sc := &staticScope{s: s, names: map[string]dwarf.Type{}, addrs: l.addrs, lenient: lenient, types: newTypeCache(s.sym)}
	if s.sym == nil {
		return sc
	}
	for _, a := range l.addrs {
		if fs, ok := s.sym.ScopeAt(a); ok {
			for _, v := range append(append([]*symbols.Var(nil), fs.Params...), fs.Locals...) {
				sc.names[v.Name] = v.Type
			}
		}
	}
	return sc
}

var errStatic = errors.New("not while checking a condition")

func (sc *staticScope) readMem(p []byte, addr uint64) error {
	clear(p)
	return nil
}

func (sc *staticScope) writeMem(p []byte, addr uint64) error { return errStatic }

func (sc *staticScope) regGet(name string) (uint64, bool) {
	var r x86.Regs
	var sr x86.SRegs
	var d x86.DebugRegs
	if _, ok := r.Get(name); ok {
		return 0, true
	}
	if _, ok := sr.Get(name); ok {
		return 0, true
	}
	_, ok := d.Get(name)
	return 0, ok
}

func (sc *staticScope) regSet(name string, v uint64) error { return errStatic }

func (sc *staticScope) lookupVar(name string) (value, bool, error) {
	if r, ok := strings.CutPrefix(name, "$"); ok && isFPReg(r) {
		t := fpRegType(r)
		return value{typ: t, raw: make([]byte, t.size), name: name}, true, nil
	}
	if t, ok := sc.names[name]; ok {
		return value{typ: fromDWARF(t, sc.types), inMem: true, name: name}, true, nil
	}
	if sym := sc.s.sym; sym != nil {
		for _, a := range sc.addrs {
			if v, ok := sc.s.unitEnumerator(a, name, sc.types); ok {
				return v, true, nil
			}
		}
		if g := sym.GlobalByName(name); g != nil {
			return value{typ: fromDWARF(g.Type, sc.types), inMem: true, name: name}, true, nil
		}
		pc := uint64(0)
		if len(sc.addrs) > 0 {
			pc = sc.addrs[0]
		}
		if v, ok := sc.s.globalName(name, pc, sc.types); ok {
			if v.inMem {
				v.addr = 0 // (no guest state: every value reads as zero)
			}
			return v, true, nil
		}
	}
	if sc.lenient {
		if _, isReg := sc.regGet(strings.ToLower(name)); !isReg {
			return value{typ: typLong, inMem: true, name: name}, true, nil
		}
	}
	return value{}, false, nil
}

func (sc *staticScope) symbolName(addr uint64) (string, bool) { return "", false }

func (sc *staticScope) lookupType(name string) (*ctype, bool) {
	return typeNamed(sc.s.sym, name, sc.types)
}
