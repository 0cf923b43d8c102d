package session

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// Fuzz tests for the parsers that read what a client types: expressions
// (watch, hover, conditions, logpoints, console), the examine command,
// hit conditions and console lines. Seed corpora: testdata/fuzz/<name>.
// Each must return a value or an error, never panic or run away.

// memScope is an expression scope over a small memory image, a few
// registers and typed variables (the shapes the evaluator handles:
// integers of every width, a struct, an array, pointers, a float).
type memScope struct {
	mem  [4096]byte
	regs map[string]uint64
	vars map[string]value
}

func newMemScope() *memScope {
	sc := &memScope{regs: map[string]uint64{"rax": 7, "rsp": 0x800, "rbp": 0x7f0, "rip": 0x100, "cs": 8}}
	pt := &ctype{kind: tStruct, name: "struct point", size: 8, fields: []field{
		{name: "x", off: 0, typ: typInt}, {name: "y", off: 4, typ: typInt},
		{name: "b", off: 4, typ: typUInt, bitSize: 3, bitOff: 2}}}
	arr := &ctype{kind: tArray, size: 32, elem: typInt, count: 8}
	binary.LittleEndian.PutUint32(sc.mem[0x10:], 3)
	binary.LittleEndian.PutUint32(sc.mem[0x14:], 4)
	binary.LittleEndian.PutUint64(sc.mem[0x40:], 0x10)
	sc.vars = map[string]value{
		"origin":  {typ: pt, inMem: true, addr: 0x10, name: "origin"},
		"squares": {typ: arr, inMem: true, addr: 0x20, name: "squares"},
		"p":       {typ: ptrTo(pt), inMem: true, addr: 0x40, name: "p"},
		"vp":      {typ: ptrTo(typVoid), inMem: true, addr: 0x40, name: "vp"},
		"c":       {typ: typChar, inMem: true, addr: 0x50, name: "c"},
		"l":       {typ: typLong, inMem: true, addr: 0x58, name: "l"},
		"d":       {typ: typDbl, inMem: true, addr: 0x60, name: "d"},
		"r":       {typ: typULong, reg: "rax", name: "r"},
	}
	return sc
}

func (sc *memScope) readMem(p []byte, addr uint64) error {
	if addr >= uint64(len(sc.mem)) || uint64(len(p)) > uint64(len(sc.mem))-addr {
		return fmt.Errorf("cannot read %d bytes at %#x", len(p), addr)
	}
	copy(p, sc.mem[addr:])
	return nil
}

func (sc *memScope) writeMem(p []byte, addr uint64) error {
	if addr >= uint64(len(sc.mem)) || uint64(len(p)) > uint64(len(sc.mem))-addr {
		return fmt.Errorf("cannot write %d bytes at %#x", len(p), addr)
	}
	copy(sc.mem[addr:], p)
	return nil
}

func (sc *memScope) regGet(name string) (uint64, bool) { v, ok := sc.regs[name]; return v, ok }

func (sc *memScope) regSet(name string, v uint64) error { sc.regs[name] = v; return nil }

func (sc *memScope) lookupVar(name string) (value, bool, error) {
	v, ok := sc.vars[name]
	return v, ok, nil
}

func (sc *memScope) symbolName(addr uint64) (string, bool) { return "", false }

func (sc *memScope) lookupType(name string) (*ctype, bool) {
	switch name {
	case "uint32_t":
		return typUInt, true
	case "point":
		return sc.vars["origin"].typ, true
	}
	return nil, false
}

func TestMemScopeEvaluates(t *testing.T) {
	sc := newMemScope()
	for expr, want := range map[string]string{
		"origin.x * 10 + origin.y": "34", "p->y": "4", "p.y": "4", "origin->x": "3", "(&origin).y + p.x": "7", "(*p).x + sizeof(point)": "11", "squares[1] == 0": "1",
		"r + 1": "8", "$rax": "7", "$sp": "0x800", "$fp": "0x7f0", "$pc": "0x100", "$sp + 8 == 0x808": "1", "$rsp == $sp": "1", "$pc == 0x100": "1", "$pc - 0x100": "0x0", "(unsigned long)$pc + 1": "257", "-(-(-1))": "-1",
		"2.5": "2.5", "1.5 * 2 + 1": "4", "1e-3 * 1000": "1", "0.5f < 1": "1", "origin.x > 2.5": "1", "1e2": "100", "1 ? 2 : 3": "2", "(uint32_t)-1": "4294967295",
		"sizeof origin": "8", "sizeof origin.x + 1": "5", "sizeof *p": "8", // without parentheses, as C (and gdb) take it
		"{int}&origin": "3", "{int}((char *)&origin + 4)": "4", "{point}p": "{x: 3, y: 4, b: 1}", // gdb's {type} addr
		"origin.x@2": "{3, 4}", "sizeof(origin.x@2)": "8", "(origin.x@2)[1]": "4", // gdb's artificial arrays
	} {
		v, err := evalExpr(expr, sc)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got := format(v, sc, false); got != want {
			t.Errorf("%s = %s, want %s", expr, got, want)
		}
	}
	for _, bad := range []string{strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300), strings.Repeat("-", 5000) + "1", "1/0", "*vp", "origin.z", ")", "'"} {
		if _, err := evalExpr(bad, sc); err == nil {
			t.Errorf("%.40s: evaluated", bad)
		}
	}
}

func FuzzEval(f *testing.F) {
	for _, s := range []string{"origin.x * 10 + origin.y", "p->y", "sizeof(struct point)", "squares[3] = 2", "(char)257",
		"$rax << 63 >> 1", "d / 0", "1 ? origin : squares", "*(int *)vp", "&squares[2] - &squares[0]", "'\\n' + 'a'",
		"-9223372036854775807L - 1", "(((((1)))))", "r ? p : 0", "0x10ul % 3u", "!~-+1", "c > 'a' && l || d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		sc := newMemScope()
		v, err := evalExpr(expr, sc)
		if err != nil {
			return
		}
		_ = format(v, sc, false)
		_ = format(v, sc, true)
		_, _ = truthy(v, sc)
	})
}

func FuzzParseExamine(f *testing.F) {
	for _, s := range []string{"x/4xb &origin", "x/2i $rip", "x/s greeting", "x/3uh 0x10", "x/0x", "x/99999999999999999999x 1", "x/ca p", "x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, expr, err := parseExamine(line)
		if err != nil {
			return
		}
		if e.count < 1 || e.count > maxExamine || (e.unit != 1 && e.unit != 2 && e.unit != 4 && e.unit != 8) || expr == "" {
			t.Fatalf("parseExamine(%q) = %+v, %q", line, e, expr)
		}
		_ = (&Session{}).unitText(0xfedcba9876543210, e)
	})
}

func FuzzHitCondition(f *testing.F) {
	for _, s := range []string{">=4", "% 0", "%3", "== 2", "<1", "7", "", "  >  5 ", "-1", ">99999999999999999999"} {
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, h string, hits int) {
		op, n, err := parseHitCond(h)
		if err == nil && (n < 0 || (op == "%" && n == 0)) {
			t.Fatalf("parseHitCond(%q) = %q %d", h, op, n)
		}
		if (checkHitCond(h) == nil) != (err == nil || strings.TrimSpace(h) == "") {
			t.Fatalf("checkHitCond and parseHitCond disagree on %q", h)
		}
		_ = hitCondMet(h, hits)
	})
}

func FuzzConsoleLine(f *testing.F) {
	for _, s := range []string{"x/4xb &origin", "xp/2dw 0x1000", "gva2gpa $rip", "origin,x", "/x counter", "x", "gva2gpa ", "f(a,b)",
		"ptype/o struct s", "whatis $xmm0.v4_float[1]", "ptype (char *)counter", "ptype int *[3]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if IsConsoleCommand(line) {
			l := strings.TrimSpace(line)
			if rest, ok := strings.CutPrefix(l, "xp/"); ok {
				l = "x/" + rest
			}
			if strings.HasPrefix(l, "x/") {
				_, _, _ = parseExamine(l)
			}
			if isTypeCommand(l) {
				cmd, arg, _ := strings.Cut(l, " ")
				_, _ = typeCommandIn(cmd, strings.TrimSpace(arg), newMemScope())
			}
			return
		}
		expr, _ := formatSpec(line)
		if len(expr) > len(line) {
			t.Fatalf("formatSpec(%q) grew to %q", line, expr)
		}
		_, _ = evalExpr(expr, newMemScope())
	})
}
