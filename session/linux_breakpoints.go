package session

import (
	"errors"
	"fmt"
	"slices"
)

// Breakpoints and modules: with module tracking on, a source or function
// breakpoint that nothing loaded has code for stays pending (it may be in
// a module not loaded yet); whenever modules come, go or move, every
// source and function breakpoint is bound again, gaining or losing the
// addresses in them, and reported when that changes it.

// unresolved settles a breakpoint that has no address: pending while
// modules are watched, else failed with msg.
func (b *bpTable) unresolved(l *logical, msg string) {
	l.addrs = nil
	if b.s.linux.mods.on {
		l.info.Verified, l.info.State = false, BPPending
		l.info.Message = msg + "; vmdap binds it when a kernel module that has it loads"
		return
	}
	l.info.Verified, l.info.State, l.info.Message = false, BPFailed, msg
}

// unresolvedFunc settles a function breakpoint that has no address: a
// pattern refused (malformed, or matching too many functions) fails,
// whatever modules load; else as unresolved.
func (b *bpTable) unresolvedFunc(l *logical, err error) {
	var pe *patternError
	if errors.As(err, &pe) {
		l.addrs = nil
		l.info.Verified, l.info.State, l.info.Message = false, BPFailed, err.Error()
		return
	}
	b.unresolved(l, err.Error())
}

// awaitingModule reports whether l is pending without an address, waiting
// for a module (place leaves it so).
func (b *bpTable) awaitingModule(l *logical) bool {
	return len(l.addrs) == 0 && l.info.State == BPPending && b.s.linux.mods.on
}

// rebind binds every source and function breakpoint again after the
// modules changed.
func (b *bpTable) rebind() {
	for _, ls := range b.source {
		for _, l := range ls {
			b.rebindOne(l)
		}
	}
	for _, l := range b.funcs {
		b.rebindOne(l)
	}
}

func (b *bpTable) rebindOne(l *logical) {
	sym := b.s.sym
	var addrs []uint64
	var msg string
	actual := l.line
	switch l.kind {
	case KindSource:
		var ok bool
		addrs, actual, ok = sym.LineAddrs(l.file, l.line)
		if !ok {
			addrs, msg = nil, "no code for this line in the kernel or its loaded modules"
		}
	case KindFunction:
		var err error
		if addrs, err = b.s.functionAddrs(l.fn); err != nil {
			if len(l.addrs) == 0 {
				return // unresolved already
			}
			b.unplace(l)
			b.unresolvedFunc(l, err)
			b.changed(l)
			return
		}
	default:
		return
	}
	if slices.Equal(addrs, l.addrs) {
		return
	}
	b.unplace(l)
	if len(addrs) == 0 {
		b.unresolved(l, msg)
		b.changed(l)
		return
	}
	l.addrs = addrs
	if l.kind == KindSource {
		l.info.Line = actual
		l.moved = ""
		if actual != l.line {
			l.moved = fmt.Sprintf("moved from line %d to line %d, the next line with code", l.line, actual)
		}
		l.note = l.moved
	} else {
		l.note = locations(addrs)
		if loc, ok := b.s.lineOf(addrs[0]); ok {
			l.info.File, l.info.Line = loc.File, loc.Line
		}
	}
	b.place(l)
	b.vetPlaced(l) // now against the names its code sees
	b.changed(l)
}
