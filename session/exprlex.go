package session

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// The expression language's tokens: numbers, character and string
// literals, identifiers (a Rust or C++ path is one), $registers and
// $functions, and C's operators.

type token struct {
	kind string // "num", "id", "reg", "op", "char", "str", "eof"
	text string
	num  uint64
}

func lex(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c >= '0' && c <= '9':
			j := i
			hex := strings.HasPrefix(strings.ToLower(s[i:]), "0x")
			for j < len(s) && (isAlnum(s[j]) || s[j] == '.' ||
				!hex && (s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E')) { // 1e-3
				j++
			}
			low := strings.ToLower(s[i:j])
			if !hex && strings.ContainsAny(low, ".e") { // a floating constant: 2.5, 1e-3, 0.5f
				f, err := strconv.ParseFloat(strings.TrimRight(low, "fl"), 64)
				if err != nil {
					return nil, fmt.Errorf("bad number %q", s[i:j])
				}
				toks = append(toks, token{kind: "flt", text: s[i:j], num: math.Float64bits(f)})
				i = j
				break
			}
			n, err := strconv.ParseUint(strings.TrimRight(low, "ul"), 0, 64)
			if err != nil {
				return nil, fmt.Errorf("bad number %q", s[i:j])
			}
			toks = append(toks, token{kind: "num", text: s[i:j], num: n})
			i = j
		case c == '\'':
			if i+2 < len(s) && s[i+1] != '\\' && s[i+2] == '\'' {
				toks = append(toks, token{kind: "char", num: uint64(s[i+1])})
				i += 3
			} else if i+3 < len(s) && s[i+1] == '\\' && s[i+3] == '\'' {
				v, ok := cEscape(s[i+2])
				if !ok {
					return nil, fmt.Errorf("bad character literal")
				}
				toks = append(toks, token{kind: "char", num: uint64(v)})
				i += 4
			} else {
				return nil, fmt.Errorf("bad character literal")
			}
		case c == '"':
			str, n, err := lexString(s[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: "str", text: str})
			i += n
		case c == '$' || isAlpha(c):
			j := i + 1
			for j < len(s) && isAlnum(s[j]) {
				j++
				// A path (Rust's crate::module::STATIC, C++'s ns::name):
				// one identifier.
				if c != '$' && j+2 < len(s) && s[j] == ':' && s[j+1] == ':' && isAlpha(s[j+2]) {
					j += 2
				}
			}
			if c == '$' {
				toks = append(toks, token{kind: "reg", text: s[i+1 : j]})
			} else {
				toks = append(toks, token{kind: "id", text: s[i:j]})
			}
			i = j
		default:
			op := ""
			for _, o := range []string{"<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "->"} {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				if !strings.ContainsRune("+-*/%<>&|^!~()[].?:,@{}", rune(c)) {
					return nil, fmt.Errorf("unexpected character %q", c)
				}
				op = string(c)
			}
			toks = append(toks, token{kind: "op", text: op})
			i += len(op)
		}
	}
	return append(toks, token{kind: "eof"}), nil
}

// lexString reads a C string literal at the start of s: its text and
// the bytes it took.
func lexString(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 == len(s) {
				break
			}
			i++
			e, ok := cEscape(s[i])
			if !ok {
				return "", 0, fmt.Errorf("bad escape \\%c in a string", s[i])
			}
			b.WriteByte(e)
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

// cEscape is the character a C escape \c stands for, of those the
// expressions take.
func cEscape(c byte) (byte, bool) {
	e, ok := map[byte]byte{'n': '\n', 't': '\t', 'r': '\r', '0': 0, '\\': '\\', '"': '"', '\'': '\''}[c]
	return e, ok
}

func isAlpha(c byte) bool { return c == '_' || unicode.IsLetter(rune(c)) }
func isAlnum(c byte) bool { return isAlpha(c) || (c >= '0' && c <= '9') }
