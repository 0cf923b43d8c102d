package session

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// A small C expression evaluator: literals, variables, $registers, unary
// - + ! ~ * &, casts to C types, [] . ->, the binary operators of C
// (arithmetic, shifts, comparisons, bitwise, && ||) and ?:. Pointer
// arithmetic is scaled as in C.

type parser struct {
	toks  []token
	pos   int
	sc    scope
	depth int // nesting of unary() calls, bounded by maxExprDepth
}

// Bounds on one expression (and so on conditions, logpoint
// interpolations and console commands): the parser recurses once per
// nesting level, and a client may send anything.
const (
	maxExprLen   = 4096
	maxExprDepth = 200
)

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token { t := p.toks[p.pos]; p.pos++; return t }
func (p *parser) isOp(s string) bool {
	t := p.peek()
	return t.kind == "op" && t.text == s
}

func (p *parser) expect(s string) error {
	if !p.isOp(s) {
		return fmt.Errorf("expected %q", s)
	}
	p.pos++
	return nil
}

// evalExpr evaluates a C expression in a scope.
func evalExpr(src string, sc scope) (value, error) {
	if len(src) > maxExprLen {
		return value{}, fmt.Errorf("expression too long (%d bytes; at most %d)", len(src), maxExprLen)
	}
	toks, err := lex(src)
	if err != nil {
		return value{}, err
	}
	p := &parser{toks: toks, sc: sc}
	v, err := p.ternary()
	if err != nil {
		return value{}, err
	}
	if p.peek().kind != "eof" {
		return value{}, fmt.Errorf("unexpected %q", p.peek().text)
	}
	return v, nil
}

func (p *parser) ternary() (value, error) {
	c, err := p.binary(0)
	if err != nil || !p.isOp("?") {
		return c, err
	}
	p.next()
	t, err := truthy(c, p.sc)
	if err != nil {
		return value{}, err
	}
	// Only the branch taken is evaluated, as in C and gdb (p ? p->pid :
	// -1 with p null); a condition checked when it is set reads every
	// value as 0, and checks both.
	_, static := p.sc.(*staticScope)
	var a, b value
	if t || static {
		if a, err = p.ternary(); err != nil {
			return value{}, err
		}
	} else if err := p.skip(-1); err != nil {
		return value{}, err
	}
	if err := p.expect(":"); err != nil {
		return value{}, err
	}
	if !t || static {
		if b, err = p.ternary(); err != nil {
			return value{}, err
		}
	} else if err := p.skip(-1); err != nil {
		return value{}, err
	}
	if t {
		return a, nil
	}
	return b, nil
}

// skip moves past an operand that is not evaluated, as C leaves it: the
// right operand of an && whose left is false or an || whose left is true
// (an expression of operators binding tighter than min), or a ternary's
// branch not taken (min < 0). The parse that follows checks what ends it.
func (p *parser) skip(min int) error {
	start := p.pos
	end := func() error {
		if p.pos == start {
			if t := p.peek(); t.kind != "eof" {
				return fmt.Errorf("unexpected %q", t.text)
			}
			return fmt.Errorf("unexpected end of expression")
		}
		return nil
	}
	depth, nested := 0, 0 // open brackets; ?: begun inside a branch
	for ; ; p.next() {
		t := p.peek()
		if t.kind == "eof" {
			if depth > 0 {
				return fmt.Errorf("unexpected end of expression")
			}
			return end()
		}
		if t.kind != "op" {
			continue
		}
		switch t.text {
		case "(", "[":
			depth++
			continue
		case ")", "]":
			if depth == 0 {
				return end()
			}
			depth--
			continue
		}
		if depth > 0 {
			continue
		}
		switch t.text {
		case ",":
			return end()
		case "?":
			if min >= 0 {
				return end()
			}
			nested++
		case ":":
			if nested == 0 {
				return end()
			}
			nested--
		default:
			// Only || and && bind as loosely as an && or || operand
			// ends: never unary operators.
			if prec, ok := precedence[t.text]; ok && min >= 0 && prec <= min {
				return end()
			}
		}
	}
}

var precedence = map[string]int{
	"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
	"<": 7, ">": 7, "<=": 7, ">=": 7, "<<": 8, ">>": 8, "@": 9, "+": 10, "-": 10, "*": 11, "/": 11, "%": 11,
}

// maxArtificial bounds gdb's artificial arrays (p *ptr@n).
const maxArtificial = 1 << 20

// artificialArray is gdb's binary @: a.k.a. *ptr@n, the n objects of a's
// type from a's address on, as an array.
func artificialArray(a, n value, sc scope) (value, error) {
	if !a.inMem {
		return value{}, errors.New("only a value in memory can be the left operand of @ (as gdb's *ptr@n)")
	}
	c, err := n.u64(sc)
	if err != nil {
		return value{}, err
	}
	if int64(c) <= 0 || c > maxArtificial || a.typ.size <= 0 {
		return value{}, fmt.Errorf("@ takes a count from 1 to %d, not %d", maxArtificial, int64(c))
	}
	t := &ctype{kind: tArray, elem: a.typ, count: int64(c), size: int64(c) * a.typ.size}
	return value{typ: t, inMem: true, addr: a.addr}, nil
}

func (p *parser) binary(min int) (value, error) {
	lhs, err := p.unary()
	if err != nil {
		return value{}, err
	}
	for {
		t := p.peek()
		prec, ok := precedence[t.text]
		if t.kind != "op" || !ok || prec <= min {
			return lhs, nil
		}
		p.next()
		// short circuit
		if t.text == "&&" || t.text == "||" {
			lt, err := truthy(lhs, p.sc)
			if err != nil {
				return value{}, err
			}
			if _, static := p.sc.(*staticScope); !static && lt == (t.text == "||") {
				// Decided by the left operand: the right one is not
				// evaluated (p && p->pid == 1 with p null), as in C
				// and gdb; a condition checked when it is set reads
				// every value as 0, and checks both.
				if err := p.skip(prec); err != nil {
					return value{}, err
				}
				lhs = rvalue(typInt, b2u(lt))
				continue
			}
			rhs, err := p.binary(prec)
			if err != nil {
				return value{}, err
			}
			rt, err := truthy(rhs, p.sc)
			if err != nil {
				return value{}, err
			}
			r := lt && rt
			if t.text == "||" {
				r = lt || rt
			}
			lhs = rvalue(typInt, b2u(r))
			continue
		}
		rhs, err := p.binary(prec)
		if err != nil {
			return value{}, err
		}
		if t.text == "@" {
			if lhs, err = artificialArray(lhs, rhs, p.sc); err != nil {
				return value{}, err
			}
			continue
		}
		if lhs, err = binop(t.text, lhs, rhs, p.sc); err != nil {
			return value{}, err
		}
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func binop(op string, a, b value, sc scope) (value, error) {
	if isX87(a.typ) || isX87(b.typ) {
		if v, ok, err := x87Op(op, a, b, sc); ok || err != nil {
			return v, err
		}
	}
	if a.typ.kind == tFloat || b.typ.kind == tFloat {
		x, err := a.f64OrInt(sc)
		if err != nil {
			return value{}, err
		}
		y, err := b.f64OrInt(sc)
		if err != nil {
			return value{}, err
		}
		r, err := floatOp(op, x, y)
		if t := a.typ; err == nil && r.typ == typDbl && (isX87(t) || isX87(b.typ)) {
			// A long double's infinities and NaNs (x87's NaN keeps its
			// integer bit).
			if !isX87(t) {
				t = b.typ
			}
			f, _ := r.f64(sc)
			r = value{typ: &ctype{kind: tFloat, name: "long double", size: t.size}, raw: floatBytes(f, fmtX87, t.size)}
		}
		return r, err
	}
	a, b = funcAddr(a), funcAddr(b)
	ap := a.typ.kind == tPtr || a.typ.kind == tArray
	bp := b.typ.kind == tPtr || b.typ.kind == tArray
	x, err := a.u64(sc)
	if err != nil {
		return value{}, err
	}
	y, err := b.u64(sc)
	if err != nil {
		return value{}, err
	}
	if (op == "+" || op == "-") && (ap || bp) {
		switch {
		case ap && bp && op == "-":
			sz := uint64(elemSize(a.typ))
			return rvalue(typLong, uint64(int64(x-y)/int64(sz))), nil
		case ap:
			t := ptrTo(a.typ.el())
			if op == "+" {
				return rvalue(t, x+y*uint64(elemSize(a.typ))), nil
			}
			return rvalue(t, x-y*uint64(elemSize(a.typ))), nil
		case op == "+":
			return rvalue(ptrTo(b.typ.el()), y+x*uint64(elemSize(b.typ))), nil
		}
	}
	rt := arith(a.typ, b.typ)
	if op == "<<" || op == ">>" {
		rt = promote(a.typ) // a shift has its left operand's type
	}
	x = convInt(x, rt)
	if op != "<<" && op != ">>" {
		y = convInt(y, rt)
	}
	unsigned := !rt.signed
	sx, sy := int64(x), int64(y)
	cmp := func(r bool) (value, error) { return rvalue(typInt, b2u(r)), nil }
	switch op {
	case "+":
		return rvalue(rt, x+y), nil
	case "-":
		return rvalue(rt, x-y), nil
	case "*":
		return rvalue(rt, x*y), nil
	case "/", "%":
		if _, static := sc.(*staticScope); static && y == 0 {
			return rvalue(rt, 0), nil // a condition being checked: every value reads 0
		}
		if y == 0 {
			return value{}, fmt.Errorf("division by zero")
		}
		if unsigned {
			if op == "/" {
				return rvalue(rt, x/y), nil
			}
			return rvalue(rt, x%y), nil
		}
		if op == "/" {
			return rvalue(rt, uint64(sx/sy)), nil
		}
		return rvalue(rt, uint64(sx%sy)), nil
	case "<<":
		return rvalue(rt, x<<(y&63)), nil
	case ">>":
		if unsigned {
			return rvalue(rt, x>>(y&63)), nil
		}
		return rvalue(rt, uint64(sx>>(y&63))), nil
	case "&":
		return rvalue(rt, x&y), nil
	case "|":
		return rvalue(rt, x|y), nil
	case "^":
		return rvalue(rt, x^y), nil
	case "==":
		return cmp(x == y)
	case "!=":
		return cmp(x != y)
	case "<":
		if unsigned {
			return cmp(x < y)
		}
		return cmp(sx < sy)
	case ">":
		if unsigned {
			return cmp(x > y)
		}
		return cmp(sx > sy)
	case "<=":
		if unsigned {
			return cmp(x <= y)
		}
		return cmp(sx <= sy)
	case ">=":
		if unsigned {
			return cmp(x >= y)
		}
		return cmp(sx >= sy)
	}
	return value{}, fmt.Errorf("unknown operator %q", op)
}

// literalType is an integer constant's C type (LP64): the first of int,
// unsigned int (hex and octal only), long, unsigned long that holds it,
// skipping what its u and l suffixes rule out.
func literalType(text string, n uint64) *ctype {
	low := strings.ToLower(text)
	digits := strings.TrimRight(low, "ul")
	suffix := low[len(digits):]
	u, l := strings.Contains(suffix, "u"), strings.Contains(suffix, "l")
	decimal := digits == "0" || !strings.HasPrefix(digits, "0")
	for _, t := range []*ctype{typInt, typUInt, typLong, typULong} {
		switch {
		case u && t.signed, l && t.size < 8, decimal && !u && !t.signed && t.size < 8:
			continue
		}
		bits := 8 * uint(t.size)
		if t.signed && n <= 1<<(bits-1)-1 || !t.signed && (bits >= 64 || n <= 1<<bits-1) {
			return t
		}
	}
	return typULong
}

// promote is C's integer promotion (LP64): what is narrower than int,
// and an enum, becomes int; pointers and arrays count as unsigned long.
func promote(t *ctype) *ctype {
	switch {
	case t.kind == tPtr || t.kind == tArray:
		return typULong
	case t.size >= 8:
		if t.signed {
			return typLong
		}
		return typULong
	case t.size == 4 && !t.signed && (t.kind == tInt || t.kind == tEnum):
		// (an enumeration whose underlying type is unsigned int)
		return typUInt
	}
	return typInt
}

// arith is C's usual arithmetic conversions of two integer operands
// (LP64: long holds every unsigned int).
func arith(a, b *ctype) *ctype {
	a, b = promote(a), promote(b)
	if a.size != b.size {
		if a.size > b.size {
			return a
		}
		return b
	}
	if !a.signed {
		return a
	}
	return b
}

// convInt converts a 64-bit integer (sign- or zero-extended by its own
// type) to integer type t, extended back to 64 bits by t's signedness.
func convInt(u uint64, t *ctype) uint64 {
	if t.size >= 8 || t.size <= 0 {
		return u
	}
	bits := 8 * uint(t.size)
	u &= 1<<bits - 1
	if t.signed && u&(1<<(bits-1)) != 0 {
		u |= ^uint64(0) << bits
	}
	return u
}

func floatOp(op string, x, y float64) (value, error) {
	f := func(r float64) (value, error) {
		v := rvalue(typDbl, 0)
		v.raw = make([]byte, 8)
		u := math.Float64bits(r)
		for i := 0; i < 8; i++ {
			v.raw[i] = byte(u >> (8 * i))
		}
		return v, nil
	}
	cmp := func(r bool) (value, error) { return rvalue(typInt, b2u(r)), nil }
	switch op {
	case "+":
		return f(x + y)
	case "-":
		return f(x - y)
	case "*":
		return f(x * y)
	case "/":
		return f(x / y)
	case "==":
		return cmp(x == y)
	case "!=":
		return cmp(x != y)
	case "<":
		return cmp(x < y)
	case ">":
		return cmp(x > y)
	case "<=":
		return cmp(x <= y)
	case ">=":
		return cmp(x >= y)
	}
	return value{}, fmt.Errorf("operator %q does not apply to floating point", op)
}

func elemSize(t *ctype) int64 {
	if t.el() == nil || t.el().size <= 0 {
		return 1 // void * arithmetic, as GNU C
	}
	return t.el().size
}

func (p *parser) unary() (value, error) {
	if p.depth++; p.depth > maxExprDepth {
		return value{}, fmt.Errorf("expression too deeply nested (more than %d levels)", maxExprDepth)
	}
	defer func() { p.depth-- }()
	t := p.peek()
	if t.kind == "op" {
		switch t.text {
		case "-", "+", "!", "~":
			p.next()
			v, err := p.unary()
			if err != nil {
				return value{}, err
			}
			if isX87(v.typ) && (t.text == "-" || t.text == "+") {
				// 0 - x in x87's precision, as gdb negates a float.
				return binop(t.text, rvalue(typInt, 0), v, p.sc)
			}
			if v.typ.kind == tFloat && (t.text == "-" || t.text == "+") {
				f, err := v.f64(p.sc)
				if err != nil {
					return value{}, err
				}
				if t.text == "-" {
					f = -f
				}
				return floatOp("+", f, 0)
			}
			u, err := v.u64(p.sc)
			if err != nil {
				return value{}, err
			}
			rt := promote(v.typ)
			u = convInt(u, rt)
			switch t.text {
			case "-":
				return rvalue(rt, -u), nil
			case "+":
				return rvalue(rt, u), nil
			case "!":
				return rvalue(typInt, b2u(u == 0)), nil
			default:
				return rvalue(rt, ^u), nil
			}
		case "*":
			p.next()
			v, err := p.unary()
			if err != nil {
				return value{}, err
			}
			return deref(v, p.sc)
		case "&":
			p.next()
			v, err := p.unary()
			if err != nil {
				return value{}, err
			}
			if !v.inMem {
				return value{}, fmt.Errorf("cannot take the address of a value that is not in memory")
			}
			return rvalue(ptrTo(v.typ), v.addr), nil
		case "(":
			if ct, ok := p.tryType(); ok {
				v, err := p.unary()
				if err != nil {
					return value{}, err
				}
				return cast(v, ct, p.sc)
			}
		case "{":
			// gdb's {type} addr: the object of that type at addr.
			p.next()
			ct, ok := p.typeName()
			if !ok {
				return value{}, fmt.Errorf("{type} addr: a type name is needed after {, as in {int} &x")
			}
			if err := p.expect("}"); err != nil {
				return value{}, err
			}
			v, err := p.unary()
			if err != nil {
				return value{}, err
			}
			a, err := v.u64(p.sc)
			if err != nil {
				return value{}, err
			}
			if ct.kind == tVoid || ct.kind == tFunc {
				return value{}, fmt.Errorf("{%s} addr: an object of that type has no value to read", ct)
			}
			return value{typ: ct, addr: a, inMem: true, viaPtr: true}, nil
		}
	}
	if t.kind == "id" && t.text == "sizeof" {
		p.next()
		if n := p.peek(); n.kind != "op" || n.text != "(" {
			// sizeof init_task: of an expression, without parentheses.
			v, err := p.unary()
			if err != nil {
				return value{}, err
			}
			return rvalue(typULong, uint64(v.typ.size)), nil
		}
		p.next()
		if ct, ok := p.typeName(); ok {
			if err := p.expect(")"); err != nil {
				return value{}, err
			}
			return rvalue(typULong, uint64(ct.size)), nil
		}
		v, err := p.ternary()
		if err != nil {
			return value{}, err
		}
		if err := p.expect(")"); err != nil {
			return value{}, err
		}
		return rvalue(typULong, uint64(v.typ.size)), nil
	}
	return p.postfix()
}

// tryType parses "(type)" when the parenthesis holds a type name.
func (p *parser) tryType() (*ctype, bool) {
	save := p.pos
	p.next() // (
	if ct, ok := p.typeName(); ok && p.isOp(")") {
		p.next()
		return ct, true
	}
	p.pos = save
	return nil, false
}

var baseTypeWords = map[string]bool{"unsigned": true, "signed": true, "char": true, "short": true, "int": true,
	"long": true, "void": true, "float": true, "double": true, "_Bool": true, "const": true, "volatile": true,
	"struct": true, "union": true, "enum": true}

// typeName parses a C type name: base words or a typedef/tag name,
// followed by '*'s.
func (p *parser) typeName() (*ctype, bool) {
	save := p.pos
	var words []string
	for p.peek().kind == "id" && baseTypeWords[p.peek().text] {
		w := p.next().text
		if w == "struct" || w == "union" || w == "enum" {
			if p.peek().kind != "id" {
				p.pos = save
				return nil, false
			}
			words = append(words, w+" "+p.next().text)
			break
		}
		if w != "const" && w != "volatile" {
			words = append(words, w)
		}
	}
	var ct *ctype
	if len(words) == 0 {
		if p.peek().kind != "id" {
			p.pos = save
			return nil, false
		}
		name := p.peek().text
		if _, isVar, _ := p.sc.lookupVar(name); isVar {
			p.pos = save
			return nil, false
		}
		t, ok := p.sc.lookupType(name)
		if !ok {
			p.pos = save
			return nil, false
		}
		p.next()
		ct = t
	} else {
		ct = baseType(words, p.sc)
		if ct == nil {
			p.pos = save
			return nil, false
		}
	}
	for p.isOp("*") {
		p.next()
		ct = ptrTo(ct)
	}
	// Array declarators, as sizeof(int[10]) and {char[16]} addr take
	// them: int[2][3] is two arrays of three.
	var dims []int64
	for p.isOp("[") && p.pos+2 < len(p.toks) && p.toks[p.pos+1].kind == "num" &&
		p.toks[p.pos+2].kind == "op" && p.toks[p.pos+2].text == "]" && p.toks[p.pos+1].num < 1<<32 {
		dims = append(dims, int64(p.toks[p.pos+1].num))
		p.pos += 3
	}
	for i := len(dims) - 1; i >= 0; i-- {
		ct = &ctype{kind: tArray, elem: ct, count: dims[i], size: dims[i] * ct.size}
	}
	return ct, true
}

func baseType(words []string, sc scope) *ctype {
	joined := strings.Join(words, " ")
	if strings.HasPrefix(joined, "struct ") || strings.HasPrefix(joined, "union ") || strings.HasPrefix(joined, "enum ") {
		parts := strings.SplitN(joined, " ", 2)
		t, ok := sc.lookupType(parts[1])
		if !ok {
			return nil
		}
		return t
	}
	unsigned, signed := false, false
	longs, short, char := 0, false, false
	for _, w := range words {
		switch w {
		case "unsigned":
			unsigned = true
		case "signed":
			signed = true
		case "long":
			longs++
		case "short":
			short = true
		case "char":
			char = true
		case "void":
			return typVoid
		case "float":
			return typFlt
		case "double":
			if slices.Contains(words, "long") {
				// x87's extended format: 16 bytes, 12 in a 32-bit
				// image (its DWARF's size when it has the type).
				if t, ok := sc.lookupType("long double"); ok && t.kind == tFloat {
					return t
				}
				return typLDbl
			}
			return typDbl
		case "_Bool":
			return typBool
		}
	}
	switch {
	case char && unsigned:
		return typUChar
	case char && signed:
		return typSChar
	case char:
		return typChar
	case short && unsigned:
		return typUShrt
	case short:
		return typShort
	case longs > 0 && unsigned:
		return typULong
	case longs > 0:
		return typLong
	case unsigned:
		return typUInt
	}
	return typInt
}

func cast(v value, t *ctype, sc scope) (value, error) {
	if t.kind == tStruct || t.kind == tArray {
		if !v.inMem {
			return value{}, fmt.Errorf("cannot cast a value that is not in memory to %s", t)
		}
		return value{typ: t, inMem: true, addr: v.addr}, nil
	}
	if isX87(t) {
		if f, ok, err := v.bigOf(sc); err != nil {
			return value{}, err
		} else if ok {
			if r, ok := x87Value(f, t); ok {
				return r, nil
			}
		}
		f, err := v.f64OrInt(sc) // an infinity or a NaN
		if err != nil {
			return value{}, err
		}
		return value{typ: t, raw: floatBytes(f, fmtX87, t.size)}, nil
	}
	if t.kind == tFloat {
		f, err := v.f64OrInt(sc)
		if err != nil {
			return value{}, err
		}
		r, _ := floatOp("+", f, 0)
		if t.size == 4 {
			u := math.Float32bits(float32(f))
			r = value{typ: typFlt, raw: []byte{byte(u), byte(u >> 8), byte(u >> 16), byte(u >> 24)}}
		}
		return r, nil
	}
	u, err := v.u64(sc)
	if err != nil {
		return value{}, err
	}
	u &= mask(t.size)
	if t.signed && t.size < 8 {
		u = intFrom(rvalue(t, u).raw, true)
	}
	return rvalue(t, u), nil
}

// funcAddr is what a function is in an operation: a pointer to it (C's
// function-to-pointer conversion).
func funcAddr(v value) value {
	if v.typ.kind != tFunc || !v.inMem {
		return v
	}
	return rvalue(ptrTo(v.typ), v.addr)
}

func deref(v value, sc scope) (value, error) {
	switch v.typ.kind {
	case tFunc:
		return v, nil // *kmain is kmain, as in C
	case tPtr:
		if v.synth != nil {
			return *v.synth, nil
		}
		if v.typ.el().kind == tVoid {
			return value{}, fmt.Errorf("cannot dereference a void pointer: cast it first")
		}
		u, err := v.u64(sc)
		if err != nil {
			return value{}, err
		}
		return value{typ: v.typ.el(), inMem: true, addr: u, viaPtr: true}, nil
	case tArray:
		return index(v, 0), nil
	}
	return value{}, fmt.Errorf("cannot dereference a value of type %s", v.typ)
}

func (p *parser) postfix() (value, error) {
	v, err := p.primary()
	if err != nil {
		return value{}, err
	}
	for {
		switch {
		case p.isOp("["):
			p.next()
			i, err := p.ternary()
			if err != nil {
				return value{}, err
			}
			if err := p.expect("]"); err != nil {
				return value{}, err
			}
			n, err := i.u64(p.sc)
			if err != nil {
				return value{}, err
			}
			switch v.typ.kind {
			case tArray:
				v = index(v, int64(n))
			case tPtr:
				base, err := v.u64(p.sc)
				if err != nil {
					return value{}, err
				}
				v = value{typ: v.typ.el(), inMem: true, addr: base + n*uint64(elemSize(v.typ)), viaPtr: true}
			default:
				return value{}, fmt.Errorf("cannot index a value of type %s", v.typ)
			}
		case p.isOp(".") || p.isOp("->"):
			arrow := p.next().text == "->"
			name := p.next()
			if name.kind != "id" {
				return value{}, fmt.Errorf("expected a field name")
			}
			// As gdb takes them: -> on a struct is its member, . on a
			// pointer to one its target's (init_task.parent.comm,
			// $lx_task_by_pid(1)->comm).
			if arrow && v.typ.kind != tStruct || !arrow && v.typ.kind == tPtr && v.typ.el().kind == tStruct {
				if v, err = deref(v, p.sc); err != nil {
					return value{}, err
				}
			}
			if v.typ.kind != tStruct {
				return value{}, fmt.Errorf("%s is not a struct or union", v.typ)
			}
			f, ok := v.typ.fieldByName(name.text)
			if !ok {
				return value{}, fmt.Errorf("%s has no field %q", v.typ, name.text)
			}
			b := []byte(nil)
			if !v.inMem || f.bitSize > 0 {
				if b, err = v.bytes(p.sc); err != nil {
					return value{}, err
				}
			}
			v = fieldValue(v, f, b)
		default:
			return v, nil
		}
	}
}

func (p *parser) primary() (value, error) {
	t := p.next()
	switch t.kind {
	case "num":
		return rvalue(literalType(t.text, t.num), t.num), nil
	case "flt": // a double, as C types 2.5 (gdb too)
		return rvalue(typDbl, t.num), nil
	case "char":
		return rvalue(typChar, t.num), nil
	case "str":
		// "text": a char array of its bytes and a NUL, as gdb makes it;
		// literals side by side are one ("a" "b"), as in C.
		text := t.text
		for p.peek().kind == "str" {
			text += p.next().text
		}
		n := int64(len(text)) + 1
		return value{typ: &ctype{kind: tArray, elem: typChar, count: n, size: n}, raw: append([]byte(text), 0)}, nil
	case "reg":
		if p.isOp("(") { // $lx_current(), $container_of(…): linux_gdbfuncs.go
			return p.gdbFunction(t.text)
		}
		name := strings.ToLower(t.text)
		switch name { // gdb's standard names: $sp is the stack pointer, not its low 16 bits
		case "pc":
			name = "rip"
		case "sp":
			name = "rsp"
		case "fp":
			name = "rbp"
		}
		if "$"+name == retvalName || isFPReg(name) { // $_retval, $xmm0, $st0: values, not integers
			if v, ok, err := p.sc.lookupVar("$" + name); ok || err != nil {
				return v, err
			}
		}
		if _, ok := p.sc.regGet(name); !ok {
			return value{}, fmt.Errorf("no register $%s", t.text)
		}
		return value{typ: regType(name), reg: name, name: "$" + name}, nil
	case "id":
		if p.isOp("(") {
			if v, ok, err := p.builtinCall(t.text); ok { // per_cpu(…), container_of(…): linux_expr.go
				return v, err
			}
		}
		v, ok, err := p.sc.lookupVar(t.text)
		if err != nil {
			return value{}, err
		}
		if ok && p.isOp("(") && (v.typ.kind == tFunc || v.typ.kind == tPtr && v.typ.elem != nil && v.typ.elem.kind == tFunc) {
			return value{}, fmt.Errorf("%s(…): calling the guest's functions is not supported (vmdap does not run guest code from an expression)", t.text)
		}
		if ok {
			return v, nil
		}
		if v, ok, err := p.builtinName(t.text); ok { // current
			return v, err
		}
		if _, ok := p.sc.regGet(strings.ToLower(t.text)); ok {
			return value{typ: regType(t.text), reg: strings.ToLower(t.text), name: t.text}, nil
		}
		return value{}, fmt.Errorf("no variable, symbol or register named %q here", t.text)
	case "op":
		if t.text == "(" {
			v, err := p.ternary()
			if err != nil {
				return value{}, err
			}
			return v, p.expect(")")
		}
	case "eof":
		return value{}, fmt.Errorf("unexpected end of expression")
	}
	return value{}, fmt.Errorf("unexpected %q", t.text)
}
