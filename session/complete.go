package session

import (
	"sort"
	"strings"

	"vmdap/session/symbols"
	"vmdap/x86"
)

// Completion is a debug-console suggestion: Label replaces the Length
// bytes of the text that start at byte offset Start.
type Completion struct {
	Label  string
	Kind   CompletionKind
	Start  int
	Length int
}

// CompletionKind says what a completion names.
type CompletionKind uint8

const (
	CompleteVariable CompletionKind = iota // a local, argument, global or data symbol
	CompleteFunction
	CompleteField    // a struct or union member
	CompleteRegister // a register, after '$'
	CompleteKeyword  // an operator of the expression language (sizeof)
	CompleteConstant // an enumeration constant
)

// maxCompletions bounds an answer (an image can have thousands of symbols).
const maxCompletions = 200

// Completions suggests how to finish the word before byte offset cursor
// of an expression typed in a frame: locals, arguments, globals, symbols,
// enumeration constants, registers after '$', and the members of a struct after '.' or '->'.
// isFormatWord reports whether line is an examine command's first word
// so far (x/, x/8g, xp/4x).
func isFormatWord(line string) bool {
	for _, c := range []string{"x/", "xp/"} {
		if rest, ok := strings.CutPrefix(strings.TrimLeft(line, " "), c); ok && !strings.ContainsAny(rest, " \t") {
			return true
		}
	}
	return false
}

func (s *Session) Completions(thread, frame int, text string, cursor int) ([]Completion, error) {
	v, err := s.vcpuOrCurrent(thread)
	if err != nil {
		return nil, err
	}
	cursor = min(max(cursor, 0), len(text))
	start := cursor
	for start > 0 && isAlnum(text[start-1]) {
		start--
	}
	prefix := text[start:cursor]
	var out []Completion
	add := func(label string, typ CompletionKind) {
		if strings.HasPrefix(label, prefix) { // the name typed in full too, as gdb's complete lists it
			out = append(out, Completion{Label: label, Kind: typ, Start: start, Length: len(prefix)})
		}
	}
	err = s.stopped(func() error {
		switch before := text[:start]; {
		case strings.HasSuffix(before, "$"):
			for _, n := range x86.AllRegisterNames() {
				add(n, CompleteRegister)
			}
			if s.isLinux() { // gdb's Linux functions: linux_gdbfuncs.go
				for _, n := range gdbFunctionNames() {
					add(n[1:], CompleteFunction)
				}
			}
			if s.ret != nil && s.ret.vcpu == v {
				add(retvalName[1:], CompleteVariable)
			}
		case strings.HasSuffix(before, "."), strings.HasSuffix(before, "->"):
			sc, err := s.scopeOf(v, frame)
			if err != nil {
				return err
			}
			for _, f := range s.membersOf(sc, operandBefore(strings.TrimSuffix(strings.TrimSuffix(before, "."), "->"))) {
				add(f, CompleteField)
			}
		case prefix == "" && strings.HasSuffix(before, ">"):
			// '>' triggers completion for "->"; after a comparison there is nothing to offer
		case isFormatWord(text[:cursor]):
			// x/8gx, xp/4i: examine's count, format and size, no names
			// (the names come after them)
		default:
			sc, err := s.scopeOf(v, frame)
			if err != nil {
				return err
			}
			seen := map[string]bool{}
			named := func(name string, typ CompletionKind) {
				if !seen[name] {
					seen[name] = true
					add(name, typ)
				}
			}
			if sc.sc != nil {
				for _, l := range sc.sc.Locals {
					named(l.Name, CompleteVariable)
				}
				for _, p := range sc.sc.Params {
					named(p.Name, CompleteVariable)
				}
			}
			if s.sym != nil {
				for _, g := range s.sym.Globals(sc.f.PC) {
					named(g.Name, CompleteVariable)
				}
				// The first names in order of each image: the answer's
				// maxCompletions are among them (one more for the
				// prefix itself, which is not offered).
				s.sym.NamesWithPrefix(prefix, maxCompletions+1, func(name string, k symbols.NameKind) {
					typ := CompleteVariable
					switch {
					case k&symbols.NameFunc != 0:
						typ = CompleteFunction
					case k == symbols.NameEnumerator:
						typ = CompleteConstant
					}
					named(name, typ)
				})
			}
			named("sizeof", CompleteKeyword)
			if s.isLinux() {
				// The kernel's idioms the evaluator knows (linux_expr.go),
				// and at the start of the line its console commands.
				for _, n := range linuxIdioms {
					named(n, CompleteFunction)
				}
				named("current", CompleteVariable)
			}
		}
		// The Linux console commands, as the line's first word (which
		// may hold a '-': lx-dmesg).
		if line := text[:cursor]; s.isLinux() && line != "" && !strings.ContainsAny(line, " \t") {
			for w := range linuxCommands {
				if strings.HasPrefix(w, line) && w != line {
					out = append(out, Completion{Label: w, Kind: CompleteKeyword, Start: 0, Length: len(line)})
				}
			}
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	if len(out) > maxCompletions {
		out = out[:maxCompletions]
	}
	return out, err
}

// operandBefore returns the postfix expression that ends text (what a
// '.' or '->' typed after it applies to): identifiers, members, indexes
// and balanced parentheses, back to the first operator outside them.
func operandBefore(text string) string {
	depth := 0
	i := len(text)
	for i > 0 {
		c := text[i-1]
		switch {
		case c == ')' || c == ']':
			depth++
		case c == '(' || c == '[':
			if depth == 0 {
				return strings.TrimSpace(text[i:])
			}
			depth--
		case depth > 0, isAlnum(c), c == '.', c == '$':
		case c == '>' && i >= 2 && text[i-2] == '-':
			i--
		default:
			return strings.TrimSpace(text[i:])
		}
		i--
	}
	return strings.TrimSpace(text)
}

// membersOf lists the member names of a struct expression, or of the
// struct a pointer expression points to.
func (s *Session) membersOf(sc *frameScope, expr string) []string {
	if expr == "" {
		return nil
	}
	val, err := evalExpr(expr, sc)
	if err != nil {
		return nil
	}
	t := val.typ
	if t.kind == tPtr && t.el() != nil {
		t = t.el()
	}
	var names []string
	if t.kind == tStruct {
		for _, f := range t.fields {
			names = append(names, f.name)
		}
	}
	return names
}
