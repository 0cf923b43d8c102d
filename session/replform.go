package session

import "strings"

// ReplForm reads a debug-console line in the forms gdb, lldb and Delve
// users type: "p EXPR", "print EXPR" (or output, inspect), "p/x EXPR"
// (as "/x EXPR"), and the
// assignments "set var LHS = RHS", "LHS = RHS" and "LHS op= RHS" (as LHS
// = (LHS) op (RHS)). For an assignment, assign is true with its two
// sides; else expr is the expression to evaluate.
func ReplForm(line string) (expr, lhs, rhs string, assign bool) {
	e := strings.TrimSpace(line)
	for _, p := range []string{"print/", "p/", "output/", "inspect/"} {
		if rest, ok := strings.CutPrefix(e, p); ok {
			e = "/" + rest
		}
	}
	for _, p := range []string{"print ", "p ", "output ", "inspect ", "set variable ", "set var "} {
		if rest, ok := strings.CutPrefix(e, p); ok {
			e = strings.TrimSpace(rest)
			break
		}
	}
	if l, op, r, ok := splitAssign(e); ok {
		if op != "" {
			r = "(" + l + ") " + op + " (" + r + ")"
		}
		return "", l, r, true
	}
	return e, "", "", false
}

// splitAssign finds the assignment at the top of e (outside brackets and
// quotes): its left side, the operator of a compound one (+ for +=), and
// its right side. ==, !=, <= and >= are comparisons.
func splitAssign(e string) (lhs, op, rhs string, ok bool) {
	depth := 0
	var quote byte
	for i := 0; i < len(e); i++ {
		c := e[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		case c == '"' || c == '\'':
			quote = c
			continue
		case c == '(' || c == '[':
			depth++
			continue
		case c == ')' || c == ']':
			depth--
			continue
		case c != '=' || depth != 0:
			continue
		}
		if i+1 < len(e) && e[i+1] == '=' {
			i++ // ==
			continue
		}
		start := i
		if i > 0 {
			switch p := e[i-1]; {
			case p == '=' || p == '!':
				continue
			case (p == '<' || p == '>') && i > 1 && e[i-2] == p:
				op, start = e[i-2:i], i-2 // <<= >>=
			case p == '<' || p == '>':
				continue // <= >=
			case strings.IndexByte("+-*/%&|^", p) >= 0:
				op, start = e[i-1:i], i-1
			}
		}
		lhs, rhs = strings.TrimSpace(e[:start]), strings.TrimSpace(e[i+1:])
		if lhs == "" || rhs == "" {
			return "", "", "", false
		}
		return lhs, op, rhs, true
	}
	return "", "", "", false
}
