package symbols

import (
	"strconv"
	"strings"
)

// Demangle turns a Rust symbol name (v0 "_R…" or legacy "_ZN…E") into
// its path as gdb prints it — drivers[2eb85e8a103ffc2]::uart::report,
// hal::port::notify::h5c4b4d90e1637e91 — and leaves other names as they
// are. A name it cannot read is returned unchanged.
func Demangle(name string) string {
	switch {
	case strings.HasPrefix(name, "_R"):
		if s, ok := demangleV0(name[2:]); ok {
			return s
		}
	case strings.HasPrefix(name, "_ZN") && strings.HasSuffix(name, "E"):
		if s, ok := demangleLegacy(name[3 : len(name)-1]); ok {
			return s
		}
	}
	return name
}

// demangleLegacy reads <len><ident>… (the Itanium-style nested name Rust
// used before v0) with Rust's $…$ escapes.
func demangleLegacy(s string) (string, bool) {
	var parts []string
	for s != "" {
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		l, err := strconv.Atoi(s[:n])
		if err != nil || l <= 0 || n+l > len(s) {
			return "", false
		}
		parts = append(parts, unescapeLegacy(s[n:n+l]))
		s = s[n+l:]
	}
	return strings.Join(parts, "::"), len(parts) > 0
}

var legacyEscapes = strings.NewReplacer("$SP$", "@", "$BP$", "*", "$RF$", "&", "$LT$", "<", "$GT$", ">",
	"$LP$", "(", "$RP$", ")", "$C$", ",", "$u7e$", "~", "$u20$", " ", "$u27$", "'", "$u5b$", "[",
	"$u5d$", "]", "$u7b$", "{", "$u7d$", "}", "$u3b$", ";", "$u2b$", "+", "$u22$", "\"", "..", "::")

func unescapeLegacy(s string) string {
	if strings.HasPrefix(s, "_$") {
		s = s[1:]
	}
	return legacyEscapes.Replace(s)
}

// v0 mangling (RFC 2603): a small recursive-descent reader of paths and
// the types in generic arguments and impl paths.
type v0 struct {
	s     string
	pos   int
	depth int
	bad   bool
}

func demangleV0(s string) (string, bool) {
	// An optional encoding version (decimal) precedes the path.
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	d := &v0{s: s[i:]}
	out := d.path()
	if d.bad {
		return "", false
	}
	return out, true
}

func (d *v0) peek() byte {
	if d.pos < len(d.s) {
		return d.s[d.pos]
	}
	return 0
}

func (d *v0) next() byte {
	if d.pos < len(d.s) {
		c := d.s[d.pos]
		d.pos++
		return c
	}
	d.bad = true
	return 0
}

// base62 reads a base-62 number ended by '_' ("_" alone is 0, else the
// value plus one).
func (d *v0) base62() uint64 {
	if d.peek() == '_' {
		d.pos++
		return 0
	}
	var v uint64
	for {
		c := d.next()
		var dig uint64
		switch {
		case c == '_':
			return v + 1
		case c >= '0' && c <= '9':
			dig = uint64(c - '0')
		case c >= 'a' && c <= 'z':
			dig = uint64(c-'a') + 10
		case c >= 'A' && c <= 'Z':
			dig = uint64(c-'A') + 36
		default:
			d.bad = true
			return 0
		}
		if v > (^uint64(0)-dig)/62 {
			d.bad = true // more than 64 bits
			return 0
		}
		v = v*62 + dig
	}
}

// disambiguator reads an optional "s<base62>".
func (d *v0) disambiguator() (uint64, bool) {
	if d.peek() != 's' {
		return 0, false
	}
	d.pos++
	return d.base62() + 1, true
}

// ident reads [u]<decimal>[_]<bytes> (u: punycode, shown raw).
func (d *v0) ident() string {
	if d.peek() == 'u' {
		d.pos++
	}
	n := 0
	for d.pos < len(d.s) && d.s[d.pos] >= '0' && d.s[d.pos] <= '9' {
		n = n*10 + int(d.s[d.pos]-'0')
		d.pos++
		if n > len(d.s) {
			d.bad = true
			return ""
		}
	}
	if d.peek() == '_' {
		d.pos++
	}
	if d.pos+n > len(d.s) {
		d.bad = true
		return ""
	}
	id := d.s[d.pos : d.pos+n]
	d.pos += n
	return id
}

// backref follows a B<base62> reference to an earlier position.
func (d *v0) backref(f func(*v0) string) string {
	v := d.base62()
	if d.bad || v >= uint64(d.pos) || d.depth > 64 {
		d.bad = true
		return ""
	}
	at := int(v)
	if at >= d.pos-1 {
		d.bad = true
		return ""
	}
	save := d.pos
	d.pos = at
	d.depth++
	out := f(d)
	d.depth--
	d.pos = save
	return out
}

func (d *v0) path() string {
	if d.bad || d.depth > 64 {
		d.bad = true
		return ""
	}
	d.depth++
	defer func() { d.depth-- }()
	switch c := d.next(); c {
	case 'C': // crate root
		dis, has := d.disambiguator()
		name := d.ident()
		if has {
			return name + "[" + strconv.FormatUint(dis, 16) + "]"
		}
		return name
	case 'N': // nested: namespace, parent path, identifier
		ns := d.next()
		parent := d.path()
		dis, _ := d.disambiguator()
		name := d.ident()
		switch {
		case ns >= 'A' && ns <= 'Z':
			kind := map[byte]string{'C': "closure", 'S': "shim"}[ns]
			if kind == "" {
				kind = string(ns)
			}
			if name != "" {
				return parent + "::{" + kind + ":" + name + "#" + strconv.FormatUint(dis, 10) + "}"
			}
			return parent + "::{" + kind + "#" + strconv.FormatUint(dis, 10) + "}"
		}
		return parent + "::" + name
	case 'M': // inherent impl: <type>
		d.disambiguator()
		d.path() // the impl's own path (not shown)
		return "<" + d.typ() + ">"
	case 'X': // trait impl: <type as trait>
		d.disambiguator()
		d.path()
		t := d.typ()
		return "<" + t + " as " + d.path() + ">"
	case 'Y': // trait definition
		t := d.typ()
		return "<" + t + " as " + d.path() + ">"
	case 'I': // generic arguments
		p := d.path()
		var args []string
		for d.peek() != 'E' && !d.bad {
			args = append(args, d.genericArg())
		}
		d.next()
		return p + "::<" + strings.Join(args, ", ") + ">"
	case 'B':
		return d.backref((*v0).path)
	}
	d.bad = true
	return ""
}

func (d *v0) genericArg() string {
	switch d.peek() {
	case 'L': // lifetime
		d.pos++
		d.base62()
		return "'_"
	case 'K': // const
		d.pos++
		return d.constant()
	}
	return d.typ()
}

func (d *v0) constant() string {
	if d.peek() == 'B' {
		d.pos++
		return d.backref((*v0).constant)
	}
	if d.peek() == 'p' {
		d.pos++
		return "_"
	}
	t := d.next()
	neg := d.peek() == 'n'
	if neg {
		d.pos++
	}
	start := d.pos
	for d.peek() != '_' && !d.bad {
		d.next()
	}
	hexs := d.s[start:d.pos]
	d.next()
	v, _ := strconv.ParseUint(hexs, 16, 64)
	switch t {
	case 'b':
		return strconv.FormatBool(v != 0)
	case 'c':
		return strconv.QuoteRune(rune(v))
	}
	if neg {
		return "-" + strconv.FormatUint(v, 10)
	}
	return strconv.FormatUint(v, 10)
}

var v0Basic = map[byte]string{'a': "i8", 'b': "bool", 'c': "char", 'd': "f64", 'e': "str", 'f': "f32",
	'h': "u8", 'i': "isize", 'j': "usize", 'l': "i32", 'm': "u32", 'n': "i128", 'o': "u128", 's': "i16",
	't': "u16", 'u': "()", 'v': "...", 'x': "i64", 'y': "u64", 'z': "!", 'p': "_"}

func (d *v0) typ() string {
	if d.bad || d.depth > 64 {
		d.bad = true
		return ""
	}
	d.depth++
	defer func() { d.depth-- }()
	c := d.peek()
	if b, ok := v0Basic[c]; ok {
		d.pos++
		return b
	}
	switch c {
	case 'R', 'Q': // &T, &mut T
		d.pos++
		if d.peek() == 'L' {
			d.pos++
			d.base62()
		}
		if c == 'Q' {
			return "&mut " + d.typ()
		}
		return "&" + d.typ()
	case 'P', 'O':
		d.pos++
		if c == 'O' {
			return "*mut " + d.typ()
		}
		return "*const " + d.typ()
	case 'A':
		d.pos++
		t := d.typ()
		return "[" + t + "; " + d.constant() + "]"
	case 'S':
		d.pos++
		return "[" + d.typ() + "]"
	case 'T':
		d.pos++
		var ts []string
		for d.peek() != 'E' && !d.bad {
			ts = append(ts, d.typ())
		}
		d.next()
		if len(ts) == 1 {
			return "(" + ts[0] + ",)"
		}
		return "(" + strings.Join(ts, ", ") + ")"
	case 'F': // fn type: skip binder, unsafe, abi
		d.pos++
		if d.peek() == 'G' {
			d.pos++
			d.base62()
		}
		pre := ""
		if d.peek() == 'U' {
			d.pos++
			pre = "unsafe "
		}
		if d.peek() == 'K' {
			d.pos++
			if d.peek() == 'C' {
				d.pos++
				pre += `extern "C" `
			} else {
				pre += `extern "` + d.ident() + `" `
			}
		}
		var args []string
		for d.peek() != 'E' && !d.bad {
			args = append(args, d.typ())
		}
		d.next()
		ret := d.typ()
		s := pre + "fn(" + strings.Join(args, ", ") + ")"
		if ret != "()" {
			s += " -> " + ret
		}
		return s
	case 'D': // dyn Trait
		d.pos++
		if d.peek() == 'G' {
			d.pos++
			d.base62()
		}
		var ts []string
		for d.peek() != 'E' && !d.bad {
			ts = append(ts, d.path())
			for d.peek() == 'p' { // associated type bindings
				d.pos++
				d.ident()
				d.typ()
			}
		}
		d.next()
		if d.peek() == 'L' {
			d.pos++
			d.base62()
		}
		return "dyn " + strings.Join(ts, " + ")
	case 'B':
		d.pos++
		return d.backref((*v0).typ)
	}
	return d.path()
}
