package session

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strings"

	"vmdap/session/symbols"
)

// functionAddrs resolves a function breakpoint name to every place it
// binds, as gdb's break does: each copy of the function (a static
// function defined in several units has one in each) after its
// prologue, each inlined copy where it begins, else an ELF symbol at its
// address; "*0x…" is an address. A name no function has that holds * or
// ? is a pattern (patternAddrs).
func (s *Session) functionAddrs(name string) ([]uint64, error) {
	name = strings.TrimSpace(name)
	if a, ok := strings.CutPrefix(name, "*"); ok && strings.HasPrefix(strings.TrimSpace(a), "0x") {
		var a uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(name[1:]), "0x%x", &a); err != nil {
			return nil, fmt.Errorf("bad address %q", name)
		}
		return []uint64{a}, nil
	}
	if s.sym == nil {
		return nil, fmt.Errorf("no symbols are loaded")
	}
	out := s.nameAddrs(name)
	if len(out) == 0 && isFuncPattern(name) {
		return s.patternAddrs(name)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no function named %q in the guest image", name)
	}
	return out, nil
}

// maxPatternFuncs bounds the functions a function breakpoint's pattern
// may match (each may have several copies).
var maxPatternFuncs = 100

// isFuncPattern reports whether a function breakpoint's name, which no
// function has, is a pattern (sched_*, *_lock, jhash?): a C function's
// name has neither * nor ? (a [a-z] class counts only beside them: Rust's
// names hold [T]).
func isFuncPattern(name string) bool {
	return strings.ContainsAny(name, "*?")
}

// patternError refuses a function breakpoint's pattern whatever the
// modules have: malformed, or matching too many functions.
type patternError struct{ msg string }

func (e *patternError) Error() string { return e.msg }

// patternAddrs returns the addresses of the functions whose names match a
// shell pattern (path.Match's: * any run of characters, ? one, [a-z] a
// class), as gdb's rbreak sets one breakpoint on each, at most
// maxPatternFuncs functions.
func (s *Session) patternAddrs(pattern string) ([]uint64, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, &patternError{fmt.Sprintf("bad pattern %q: %v", pattern, err)}
	}
	if s.sym == nil {
		return nil, fmt.Errorf("no symbols are loaded")
	}
	prefix := pattern[:strings.IndexAny(pattern, "*?[\\")]
	// A piece of the pattern every match holds, checked first: a
	// pattern that begins with * is matched against every name.
	piece := ""
	if !strings.ContainsAny(pattern, "[\\") {
		for _, p := range strings.FieldsFunc(pattern, func(r rune) bool { return r == '*' || r == '?' }) {
			if len(p) > len(piece) {
				piece = p
			}
		}
	}
	seen := map[string]bool{}
	var names []string
	s.sym.NamesWithPrefix(prefix, math.MaxInt, func(n string, k symbols.NameKind) {
		if k&symbols.NameFunc != 0 && !seen[n] && strings.Contains(n, piece) {
			if ok, _ := path.Match(pattern, n); ok {
				seen[n] = true
				names = append(names, n)
			}
		}
	})
	switch {
	case len(names) == 0:
		return nil, fmt.Errorf("no function matches %q in the guest image", pattern)
	case len(names) > maxPatternFuncs:
		return nil, &patternError{fmt.Sprintf("%q matches %d functions, more than %d: narrow the pattern", pattern, len(names), maxPatternFuncs)}
	}
	var out []uint64
	for _, n := range names {
		out = append(out, s.nameAddrs(n)...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no function matches %q in the guest image", pattern)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// nameAddrs returns where a breakpoint on a function by name goes: past
// the prologue of each copy, and each place it is inlined (none: no such
// function).
func (s *Session) nameAddrs(name string) []uint64 {
	var out []uint64
	for _, fn := range s.sym.FuncsByName(name) {
		if pe, ok := s.sym.PrologueEnd(fn); ok {
			out = append(out, pe)
		} else {
			out = append(out, fn.Low)
		}
	}
	out = append(out, s.sym.InlinedSites(name)...)
	if len(out) == 0 {
		if a, ok := s.sym.SymbolAddr(name); ok {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
