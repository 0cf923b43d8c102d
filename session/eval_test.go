package session

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// C's integer typing: literals, promotions, conversions (LP64), the
// display format suffixes.
func TestIntegerTyping(t *testing.T) {
	for _, c := range []struct {
		text string
		want *ctype
	}{
		{"0", typInt}, {"7", typInt}, {"2147483647", typInt}, {"2147483648", typLong},
		{"0x7fffffff", typInt}, {"0x80000000", typUInt}, {"0xffffffff", typUInt}, {"0x100000000", typLong},
		{"017", typInt}, {"037777777777", typUInt},
		{"1u", typUInt}, {"1U", typUInt}, {"4294967296u", typULong}, {"1l", typLong}, {"1L", typLong},
		{"1ul", typULong}, {"1LU", typULong}, {"0xffffffffffffffff", typULong}, {"9223372036854775808", typULong},
	} {
		toks, err := lex(c.text)
		if err != nil {
			t.Fatalf("lex %q: %v", c.text, err)
		}
		if got := literalType(toks[0].text, toks[0].num); got != c.want {
			t.Errorf("literal %s: %s, want %s", c.text, got, c.want)
		}
	}
	short := &ctype{kind: tInt, name: "short", size: 2, signed: true}
	for _, c := range []struct {
		a, b, want *ctype
	}{
		{typChar, typChar, typInt}, {short, typUChar, typInt}, {typBool, typInt, typInt},
		{typInt, typUInt, typUInt}, {typUInt, typLong, typLong}, {typLong, typULong, typULong},
		{typInt, ptrTo(typInt), typULong},
	} {
		if got := arith(c.a, c.b); got != c.want {
			t.Errorf("%s op %s: %s, want %s", c.a, c.b, got, c.want)
		}
	}
	if got := convInt(^uint64(0), typUInt); got != 0xffffffff {
		t.Errorf("-1 as unsigned int: %#x", got)
	}
	if got := convInt(0x80000000, typInt); got != 0xffffffff80000000 {
		t.Errorf("0x80000000 as int: %#x", got)
	}
}

func TestFormatSpec(t *testing.T) {
	for _, c := range []struct {
		in, expr string
		hex      bool
	}{
		{"counter,x", "counter", true}, {"a.b , X", "a.b", true}, {"p[1],h", "p[1]", true},
		{"/x counter", "counter", true}, {"/x", "/x", false}, {"counter", "counter", false},
		{",x", ",x", false}, {"f(a,b)", "f(a,b)", false}, {"a,y", "a,y", false},
	} {
		expr, hex := formatSpec(c.in)
		if expr != c.expr || hex != c.hex {
			t.Errorf("formatSpec(%q) = %q, %v; want %q, %v", c.in, expr, hex, c.expr, c.hex)
		}
	}
}

func TestParseExamine(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  examineFmt
		expr  string
		error string
	}{
		{"x/4xb &c", examineFmt{count: 4, f: 'x', unit: 1}, "&c", ""},
		{"x/gx $rsp", examineFmt{count: 1, f: 'x', unit: 8}, "$rsp", ""},
		{"x/3c s", examineFmt{count: 3, f: 'c', unit: 1}, "s", ""},
		{"x/3ch s", examineFmt{count: 3, f: 'c', unit: 2}, "s", ""},
		{"x/2a $rsp", examineFmt{count: 2, f: 'a', unit: 8}, "$rsp", ""},
		{"x/i $pc", examineFmt{count: 1, f: 'i', unit: 4}, "$pc", ""},
		{"x/d  a + 1", examineFmt{count: 1, f: 'd', unit: 4}, "a + 1", ""},
		{"x/0x &c", examineFmt{}, "", "count"},
		{"x/99999x &c", examineFmt{}, "", "count"},
		{"x/4q &c", examineFmt{}, "", "unknown format letter"},
		{"x/4x", examineFmt{}, "", "address expression"},
	} {
		got, expr, err := parseExamine(c.in)
		if c.error != "" {
			if err == nil || !strings.Contains(err.Error(), c.error) {
				t.Errorf("%q: %v, want an error about %s", c.in, err, c.error)
			}
			continue
		}
		if err != nil || got != c.want || expr != c.expr {
			t.Errorf("%q: %+v %q %v, want %+v %q", c.in, got, expr, err, c.want, c.expr)
		}
	}
	for line, want := range map[string]bool{"x + 1": false, " x/4x &c": true, "xp/2g 0": true, "xp": false, "gva2gpa $rip": true, "gva2gpa": false,
		"dump /tmp/g.core": true, "dump g.core": true, `dump "a b.core"`: true, "dump ~/g.core": true, "dump ./g": true,
		"dump": false, "dump + 1": false, "dump / 2": false, "dump /2": false, "dump * 3": false, "dumpster /x": false} {
		if IsConsoleCommand(line) != want {
			t.Errorf("IsConsoleCommand(%q) = %v", line, !want)
		}
	}
}

// symScope is memScope with functions and enumeration constants, as a
// frame's scope resolves them: kmain (void (void)) at 0x100 and
// sum_squares (int (int)) at 0x180, whose code is in the memory, enum
// color's constants, and favourite, an enum color variable.
type symScope struct{ *memScope }

var typColor = &ctype{kind: tEnum, name: "enum color", size: 4, signed: true,
	enums: []enumVal{{"RED", 0}, {"GREEN", 1}, {"BLUE", 2}}}

func newSymScope() symScope {
	sc := symScope{newMemScope()}
	copy(sc.mem[0x100:], []byte{0x55, 0x48, 0x89, 0xe5}) // push %rbp; mov %rsp,%rbp
	binary.LittleEndian.PutUint32(sc.mem[0x70:], 1)
	sc.vars["kmain"] = value{typ: &ctype{kind: tFunc, size: 1, elem: typVoid}, inMem: true, addr: 0x100, name: "kmain"}
	sc.vars["sum_squares"] = value{typ: &ctype{kind: tFunc, size: 1, elem: typInt, params: []*ctype{typInt}}, inMem: true, addr: 0x180, name: "sum_squares"}
	sc.vars["favourite"] = value{typ: typColor, inMem: true, addr: 0x70, name: "favourite"}
	for _, e := range typColor.enums {
		v := rvalue(typColor, uint64(e.val))
		v.name = e.name
		sc.vars[e.name] = v
	}
	return sc
}

func (sc symScope) symbolName(addr uint64) (string, bool) {
	switch {
	case addr >= 0x100 && addr < 0x180:
		if addr == 0x100 {
			return "kmain", true
		}
		return fmt.Sprintf("kmain+%d", addr-0x100), true
	case addr >= 0x180 && addr < 0x200:
		return "sum_squares", true
	}
	return "", false
}

// TestFunctionValues: a function's name is the function, shown as gdb
// shows it ({void (void)} 0x100 <kmain>), its address in operations and
// casts; & makes a pointer to it in C's spelling.
func TestFunctionValues(t *testing.T) {
	sc := newSymScope()
	for _, c := range []struct{ expr, typ, val string }{
		{"kmain", "void (void)", "{void (void)} 0x100 <kmain>"},
		{"*kmain", "void (void)", "{void (void)} 0x100 <kmain>"},
		{"sum_squares", "int (int)", "{int (int)} 0x180 <sum_squares>"},
		{"&kmain", "void (*)(void)", "0x100 <kmain>"},
		{"&sum_squares", "int (*)(int)", "0x180 <sum_squares>"},
		{"kmain + 1", "void (*)(void)", "0x101 <kmain+1>"},
		{"$rip == kmain", "int", "1"},
		{"kmain == &kmain", "int", "1"},
		{"sum_squares - kmain", "long", "128"},
		{"(unsigned long)kmain", "unsigned long", "256"},
		{"*(unsigned char *)kmain", "unsigned char", "85 'U'"},
		{"((unsigned char *)kmain)[1]", "unsigned char", "72 'H'"},
		{"!kmain", "int", "0"},
	} {
		v, err := evalExpr(c.expr, sc)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got := v.typ.String(); got != c.typ {
			t.Errorf("%s: type %q, want %q", c.expr, got, c.typ)
		}
		if got := format(v, sc, false); got != c.val {
			t.Errorf("%s = %q, want %q", c.expr, got, c.val)
		}
	}
	if _, err := evalExpr("sum_squares(3)", sc); err == nil || !strings.Contains(err.Error(), "calling the guest's functions is not supported") {
		t.Errorf("sum_squares(3): %v, want a refusal that says calls are not supported", err)
	}
	// The C spellings of function types and pointers to them, as gdb's
	// whatis gives them.
	charp := ptrTo(typChar)
	f := &ctype{kind: tFunc, size: 1, elem: charp, params: []*ctype{typInt, charp, typDots}}
	for _, c := range []struct {
		t    *ctype
		want string
	}{
		{f, "char *(int, char *, ...)"}, {ptrTo(f), "char *(*)(int, char *, ...)"},
		{ptrTo(ptrTo(f)), "char *(**)(int, char *, ...)"}, {ptrTo(typNoDebugFunc), "<text variable, no debug info> *"},
		{ptrTo(charp), "char **"},
	} {
		if got := c.t.String(); got != c.want {
			t.Errorf("type %q, want %q", got, c.want)
		}
	}
}

// TestEnumeratorValues: an enumeration constant is a value of its
// enumeration: compared, assigned, cast, shown by name.
func TestEnumeratorValues(t *testing.T) {
	sc := newSymScope()
	for _, c := range []struct{ expr, typ, val string }{
		{"BLUE", "enum color", "BLUE (2)"},
		{"favourite == GREEN", "int", "1"},
		{"favourite != GREEN", "int", "0"},
		{"BLUE - RED", "int", "2"},
		{"GREEN == 1", "int", "1"}, {"(int)BLUE", "int", "2"},
	} {
		v, err := evalExpr(c.expr, sc)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got := v.typ.String(); got != c.typ {
			t.Errorf("%s: type %q, want %q", c.expr, got, c.typ)
		}
		if got := format(v, sc, false); got != c.val {
			t.Errorf("%s = %q, want %q", c.expr, got, c.val)
		}
	}
	dst, _ := evalExpr("favourite", sc)
	src, _ := evalExpr("BLUE", sc)
	if err := assign(dst, sc, src); err != nil {
		t.Fatal(err)
	}
	if v, _ := evalExpr("favourite", sc); format(v, sc, false) != "BLUE (2)" {
		t.Errorf("favourite = BLUE: %s", format(v, sc, false))
	}
}

// TestReplForm: gdb's print and assignment forms in the debug console.
func TestReplForm(t *testing.T) {
	for _, c := range []struct {
		line, expr, lhs, rhs string
		assign               bool
	}{
		{"counter", "counter", "", "", false},
		{"p counter", "counter", "", "", false},
		{"print counter + 1", "counter + 1", "", "", false},
		{"p/x counter", "/x counter", "", "", false},
		{"output counter", "counter", "", "", false},
		{"inspect/x counter", "/x counter", "", "", false},
		{"counter = 3", "", "counter", "3", true},
		{"set var counter = 3", "", "counter", "3", true},
		{"p counter = 3", "", "counter", "3", true},
		{"p->x = a[i == 2]", "", "p->x", "a[i == 2]", true},
		{"counter += 2", "", "counter", "(counter) + (2)", true},
		{"flags <<= 1", "", "flags", "(flags) << (1)", true},
		{"flags >>= 1", "", "flags", "(flags) >> (1)", true},
		{"a == b", "a == b", "", "", false},
		{"a != b", "a != b", "", "", false},
		{"a <= b", "a <= b", "", "", false},
		{"a >= b", "a >= b", "", "", false},
		{"f(x = 1)", "f(x = 1)", "", "", false},
		{"c == '='", "c == '='", "", "", false},
		{"= 3", "= 3", "", "", false},
	} {
		expr, lhs, rhs, assign := ReplForm(c.line)
		if expr != c.expr || lhs != c.lhs || rhs != c.rhs || assign != c.assign {
			t.Errorf("%q: %q %q %q %v, want %q %q %q %v", c.line, expr, lhs, rhs, assign, c.expr, c.lhs, c.rhs, c.assign)
		}
	}
}

// TestStringLiterals: "text" is a char array of its bytes and a NUL, as
// gdb makes it, with C's escapes; a bad one is an error, not a panic.
func TestStringLiterals(t *testing.T) {
	sc := newSymScope()
	for _, c := range []struct{ expr, typ, val string }{
		{`"ab"`, "char [3]", `"ab"`},
		{`""`, "char [1]", `""`},
		{`"a\"b\\c\n"`, "char [7]", `"a\"b\\c\n"`},
		{`sizeof("abc")`, "unsigned long", "4"},
		{`sizeof(long double)`, "unsigned long", "16"},
		{`sizeof(double)`, "unsigned long", "8"},
		{`"xyz"[1]`, "char", "121 'y'"},
		{`"a" "bc"`, "char [4]", `"abc"`}, // side by side: one literal, as in C
		{`sizeof(int[10])`, "unsigned long", "40"},
		{`sizeof(char *[4])`, "unsigned long", "32"},
		{`sizeof(int[2][3])`, "unsigned long", "24"},
	} {
		v, err := evalExpr(c.expr, sc)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got := v.typ.String(); got != c.typ {
			t.Errorf("%s: type %q, want %q", c.expr, got, c.typ)
		}
		if got := format(v, sc, false); got != c.val {
			t.Errorf("%s = %q, want %q", c.expr, got, c.val)
		}
	}
	for _, expr := range []string{`"abc`, `"a\q"`, `"\`, `$lx_current()`, `$lx_nope(1)`, `$lx_current(1, 2, 3, 4, 5)`} {
		if v, err := evalExpr(expr, sc); err == nil {
			t.Errorf("%s: %+v, want an error", expr, v)
		}
	}
}

// TestLogParts: a logpoint's message split into text and {expressions},
// with braces that are text written \{ \} or {{ }}.
func TestLogParts(t *testing.T) {
	for msg, want := range map[string]string{
		"i={i} total={total,x}": `"i=" {i} " total=" {total,x}`,
		`set \{a} to {a}`:       `"set {a} to " {a}`,
		"{{literal}} {x}":       `"{literal} " {x}`,
		"open { brace":          `"open { brace"`,
		"a}b":                   `"a}b"`,
		`path C:\dir {p}`:       `"path C:\\dir " {p}`,
		"":                      ``,
	} {
		var got []string
		for _, p := range logParts(msg) {
			if p.expr {
				got = append(got, "{"+p.text+"}")
			} else {
				got = append(got, strconv.Quote(p.text))
			}
		}
		if g := strings.Join(got, " "); g != want {
			t.Errorf("logParts(%q) = %s, want %s", msg, g, want)
		}
	}
}

// TestCharArrayInHex: a char array shows its text, and in hex its bytes,
// as gdb's p and p/x show them.
func TestCharArrayInHex(t *testing.T) {
	sc := newMemScope()
	arr := &ctype{kind: tArray, elem: typChar, count: 4, size: 4}
	v := value{typ: arr, raw: []byte("ab\x00\x00")}
	if got := format(v, sc, false); got != `"ab\000\000"` && got != `"ab"` {
		t.Errorf("char[4] %q: %s", "ab", got)
	}
	if got, want := format(v, sc, true), "{0x61, 0x62, 0x0, 0x0}"; got != want {
		t.Errorf("char[4] %q in hex: %s, want %s", "ab", got, want)
	}
}

// TestShortCircuit: the right operand of && and || and a ternary's branch
// not taken are not evaluated, as in C and gdb: p && p->pid == 1 with p
// null is 0, not a failure to read memory at the member's address.
func TestShortCircuit(t *testing.T) {
	sc := newMemScope()
	const bad = "*(int *)0x7fff0000"
	for _, c := range []struct{ expr, want string }{
		{"0 && " + bad, "0"},
		{"1 || " + bad, "1"},
		{"1 || 0 && " + bad, "1"},
		{"0 && " + bad + " || 4", "1"},
		{"(0 && " + bad + ") + 5", "5"},
		{"0 && (" + bad + " ? " + bad + " : 1) || 0", "0"},
		{"0 ? " + bad + " : 7", "7"},
		{"1 ? 5 : " + bad, "5"},
		{"1 ? 0 ? " + bad + " : 2 : " + bad, "2"},
		{"0 ? 1 : 0 ? " + bad + " : 3", "3"},
		{"origin.x == 3 && origin.y == 4", "1"},
		{"1 && 2", "1"},
		{"0 || 0", "0"},
	} {
		v, err := evalExpr(c.expr, sc)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got := format(v, sc, false); got != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
	}
	for _, expr := range []string{"1 && " + bad, "0 || " + bad, "0 &&", "0 && || 1", "1 ? 2", "0 ? : 1", "(0 && 1"} {
		if v, err := evalExpr(expr, sc); err == nil {
			t.Errorf("%s = %s, want an error", expr, format(v, sc, false))
		}
	}
}
