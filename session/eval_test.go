package session

import (
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
	for line, want := range map[string]bool{"x + 1": false, " x/4x &c": true, "xp/2g 0": true, "xp": false, "gva2gpa $rip": true, "gva2gpa": false} {
		if IsConsoleCommand(line) != want {
			t.Errorf("IsConsoleCommand(%q) = %v", line, !want)
		}
	}
}
