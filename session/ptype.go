package session

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// The debug console's type commands, as gdb prints them: whatis EXPR|TYPE
// (the type's name), ptype EXPR|TYPE (typedefs resolved, a struct's,
// union's or enum's body spelled out: anonymous members expanded, named
// ones by name) and ptype/o (a struct's layout, pahole's view: each
// member's offset and size, bit offsets of bitfields, holes and
// padding, nested structs expanded, the total size).

// isTypeCommand reports whether a console line is whatis or ptype.
func isTypeCommand(l string) bool {
	for _, c := range []string{"whatis", "ptype", "ptype/o"} {
		if rest, ok := strings.CutPrefix(l, c); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return true
		}
	}
	return false
}

// typeCommand runs whatis or ptype in a frame.
func (s *Session) typeCommand(thread, frame int, line string) (string, error) {
	cmd, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return "", fmt.Errorf("%s: a type or an expression is needed, as in %s struct task_struct", cmd, cmd)
	}
	var out string
	err := s.inFrame(thread, frame, func(sc *frameScope) error {
		var err error
		out, err = typeCommandIn(cmd, arg, sc)
		return err
	})
	return out, err
}

// typeCommandIn is what whatis, ptype or ptype/o prints for arg in a
// scope.
func typeCommandIn(cmd, arg string, sc scope) (string, error) {
	t, named, err := typeOfExpr(arg, sc)
	if err != nil {
		return "", err
	}
	if cmd == "whatis" && named && t.typedef && t.alias != "" {
		// whatis TYPEDEF: what it stands for, one level down (typedef
		// cvint cvint2: cvint; u32 in Linux: __u32).
		a := t.alias
		if q := t.qual.String(); q != "" {
			a = q + " " + a
		}
		return "type = " + a, nil
	}
	if cmd == "whatis" && named {
		t = resolved(t)
	}
	return typeCommandText(cmd, t), nil
}

// typeCommandText is what whatis, ptype or ptype/o prints for t.
func typeCommandText(cmd string, t *ctype) string {
	switch cmd {
	case "whatis":
		return "type = " + t.String()
	case "ptype":
		return "type = " + ptype(t, 0, false)
	}
	head := ""
	if r := resolved(t); !t.typedef && r.kind == tStruct && r.rust == nil {
		// gdb's column header, for a struct or union met as itself
		// (not through a typedef).
		head = "/* offset      |    size */  "
	}
	return head + "type = " + ptype(t, 0, true)
}

// typeOfExpr is the type src names (named), or the type of the
// expression src (whose value is not read).
func typeOfExpr(src string, sc scope) (t *ctype, named bool, err error) {
	if len(src) > maxExprLen {
		return nil, false, fmt.Errorf("expression too long (%d bytes; at most %d)", len(src), maxExprLen)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, false, err
	}
	p := &parser{toks: toks, sc: sc}
	if t, ok := p.typeName(); ok && p.peek().kind == "eof" {
		return t, true, nil
	}
	v, err := evalExpr(src, sc)
	if err != nil {
		return nil, false, err
	}
	if v.typ == nil {
		return nil, false, errors.New("the expression has no type")
	}
	return v.typ, false, nil
}

// resolved is t with its typedef name taken off (the type it stands
// for), qualifiers kept.
func resolved(t *ctype) *ctype {
	if !t.typedef {
		return t
	}
	r := *t
	r.name, r.typedef, r.under = t.under, false, ""
	r.qual |= t.underQual
	r.underQual, r.alias = 0, ""
	return &r
}

// ptype spells t as gdb's ptype does at nesting level level (spaces):
// typedefs resolved down the declarator, a struct, union or enum with
// its body, and a pointer or array of one with the body before its
// declarator (struct s {…} *); with offs, a struct's layout (ptype/o).
func ptype(t *ctype, level int, offs bool) string {
	r := stripTypedefs(t, 0)
	e := r
	for e.name == "" && (e.kind == tPtr || e.kind == tArray || e.kind == tFunc) && e.el() != nil {
		e = e.el()
	}
	if e.kind != tStruct && e.kind != tEnum || e.rust != nil || e.rstr || e.rslice {
		return r.String()
	}
	suffix := ""
	if e != r {
		base, decl := e.decl(""), r.decl("")
		if !strings.HasPrefix(decl, base) {
			return r.String()
		}
		suffix = decl[len(base):]
	}
	if e.kind == tEnum {
		return enumBody(e) + suffix
	}
	var o *offsets
	if offs {
		o = &offsets{}
	}
	return structBody(e, level, 1, o) + suffix
}

// stripTypedefs is t with the typedefs of it and of what its
// declarator is built on (pointer targets, array elements, a function's
// return type) resolved, as gdb's ptype spells them.
func stripTypedefs(t *ctype, depth int) *ctype {
	r := resolved(t)
	if r.name != "" || r.el() == nil || depth > 16 || r.kind != tPtr && r.kind != tArray && r.kind != tFunc {
		return r
	}
	c := *r
	c.elem, c.target = stripTypedefs(r.el(), depth+1), nil
	return &c
}

// tagOf is a struct, union or enum's keyword and tag (struct s), or the
// keyword alone for an anonymous one.
func tagOf(t *ctype) string {
	return strings.TrimSuffix(t.name, " {...}")
}

// structBody is "struct s {\n    int a;\n    …\n}" with its members at
// level+4, by gdb's rules for show: a member's type is spelled out at
// show-1, where an anonymous struct or union is expanded at 0 and
// "struct {...}" below; a named one is expanded above 0. With po (ptype/o),
// every member that is a struct or union is expanded, with each member's
// offset and size, the holes between them and the padding after, kept
// as gdb's print_offset_data keeps them: po is this body's, and the
// bodies of its members get one of their own.
func structBody(t *ctype, level, show int, po *offsets) string {
	var b strings.Builder
	if q := t.qual.String(); q != "" {
		b.WriteString(q + " ")
	}
	b.WriteString(tagOf(t))
	b.WriteString(" {\n")
	fields := t.fields
	if len(fields) == 0 {
		what := "<no data fields>"
		if t.incomplete {
			what = "<incomplete type>"
		}
		indent := level + 4
		if po != nil {
			indent += offsetsWidth
		}
		fmt.Fprintf(&b, "%s%s\n", strings.Repeat(" ", indent), what)
	}
	if po != nil { // storage order, holes between
		fields = append([]field(nil), fields...)
		sort.SliceStable(fields, func(i, j int) bool { return fields[i].bitPos() < fields[j].bitPos() })
	}
	local := &offsets{}
	for _, f := range fields {
		if po != nil {
			po.update(&b, t, f)
		}
		b.WriteString(strings.Repeat(" ", level+4))
		ft := f.typ
		if ft == nil {
			ft = typVoid
		}
		newshow := show - 1
		sub := (*offsets)(nil)
		isStruct := !ft.typedef && ft.kind == tStruct && ft.rust == nil && !ft.rstr && !ft.rslice
		if po != nil && isStruct {
			newshow++
			local.off = po.off + f.bitPos()
			local.end = po.end - 8*ft.size
			sub = local
		}
		anon := strings.HasSuffix(ft.name, "{...}")
		switch {
		case !isStruct || !anon && newshow <= 0 || level >= maxTypeDepth*4:
			// (Past maxTypeDepth, by name: crafted DWARF can make a
			// struct hold itself.)
			b.WriteString(ft.decl(f.name))
		case anon && newshow < 0:
			b.WriteString(joinDecl(ft.name, f.name)) // struct {...} name
		default:
			b.WriteString(strings.TrimSpace(structBody(ft, level+4, newshow, sub) + " " + f.name))
		}
		if f.bitSize > 0 {
			fmt.Fprintf(&b, " : %d", f.bitSize)
		}
		b.WriteString(";\n")
	}
	if po != nil {
		if show > 0 {
			po.finish(&b, t, level)
		}
		b.WriteString(strings.Repeat(" ", offsetsWidth+max(level, 2)))
	} else {
		b.WriteString(strings.Repeat(" ", level))
	}
	b.WriteString("}")
	return b.String()
}

// enumBody is "enum e {A, B, C = 7}": a value is written where it is not
// the one after the previous enumerator's (0 first).
func enumBody(t *ctype) string {
	var parts []string
	next := int64(0)
	for _, e := range t.enums {
		if e.val == next {
			parts = append(parts, e.name)
		} else {
			parts = append(parts, fmt.Sprintf("%s = %d", e.name, e.val))
		}
		next = e.val + 1
	}
	return tagOf(t) + " {" + strings.Join(parts, ", ") + "}"
}

// bitPos is a field's position in bits from its struct's start.
func (f field) bitPos() int64 { return 8*f.off + f.bitOff }

// bits is a field's size in bits.
func (f field) bits() int64 {
	if f.bitSize > 0 {
		return f.bitSize
	}
	if f.typ == nil {
		return 0
	}
	return 8 * f.typ.size
}

// maxTypeDepth bounds how deep ptype spells out nested members.
const maxTypeDepth = 32

// offsetsWidth is the width of ptype/o's offset column
// ("/* offset      |    size */").
const offsetsWidth = 27

// offsets is ptype/o's state in one struct body, as gdb's
// print_offset_data: off, where the body's struct starts in the
// outermost one; end, where the last member so far ends in it (both in
// bits; end may be out of range on entry, as gdb's is, and then makes
// no hole).
type offsets struct {
	off, end int64
}

// update writes a member's offset and size column, after the hole
// before it, and moves end past it; a union's members show their size
// alone and leave end as it is.
func (o *offsets) update(b *strings.Builder, t *ctype, f field) {
	size := int64(0)
	if f.typ != nil {
		size = f.typ.size
	}
	if t.union {
		fmt.Fprintf(b, "/*                %6d */", size)
		return
	}
	pos := f.bitPos()
	o.hole(b, pos, "hole")
	abs := o.off + pos
	if f.bitSize > 0 || o.off%8 != 0 {
		fmt.Fprintf(b, "/* %6d:%2d   |  %6d */", abs/8, abs%8, size)
	} else {
		fmt.Fprintf(b, "/* %6d      |  %6d */", abs/8, size)
	}
	o.end = pos + f.bits()
}

// hole writes the gap between where the members so far end and bit pos.
func (o *offsets) hole(b *strings.Builder, pos int64, what string) {
	if o.end <= 0 || o.end >= pos {
		return
	}
	gap := pos - o.end
	if bit := gap % 8; bit > 0 {
		fmt.Fprintf(b, "/* XXX %2d-bit %-7s    */\n", bit, what)
	}
	if by := gap / 8; by > 0 {
		fmt.Fprintf(b, "/* XXX %2d-byte %-7s   */\n", by, what)
	}
}

// finish writes the padding after the last member and the total size.
func (o *offsets) finish(b *strings.Builder, t *ctype, level int) {
	o.hole(b, 8*t.size, "padding")
	fmt.Fprintf(b, "\n%s/* total size (bytes): %4d */\n", strings.Repeat(" ", offsetsWidth+4+level), t.size)
}
