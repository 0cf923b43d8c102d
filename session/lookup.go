package session

import (
	"fmt"
	"strings"

	"vmdap/session/symbols"
)

func (sc *frameScope) lookupVar(name string) (value, bool, error) {
	if name == retvalName {
		v, err := sc.s.lookupRetval(sc.vcpu, sc.types)
		return v, true, err
	}
	if r, ok := strings.CutPrefix(name, "$"); ok && isFPReg(r) {
		v, ok := sc.fpRegValue(r)
		if !ok {
			return value{}, true, fmt.Errorf("$%s is unavailable: the target does not read x87 and SSE registers", r)
		}
		return v, true, nil
	}
	if sc.sc != nil {
		for i := len(sc.sc.Locals) - 1; i >= 0; i-- {
			if v := sc.sc.Locals[i]; v.Name == name {
				val, err := sc.varValue(v)
				return val, true, err
			}
		}
		for _, v := range sc.sc.Params {
			if v.Name == name {
				val, err := sc.varValue(v)
				return val, true, err
			}
		}
	}
	if sc.s.sym != nil {
		if v, ok := sc.s.unitEnumerator(sc.f.look(), name, sc.types); ok {
			return v, true, nil
		}
		if g := sc.s.sym.GlobalByName(name); g != nil {
			val, err := sc.varValue(g)
			return val, true, err
		}
		if v, ok := sc.s.globalName(name, sc.f.look(), sc.types); ok {
			return v, true, nil
		}
		if fn, v, ok := strings.Cut(name, "::"); ok && !strings.Contains(v, "::") {
			return sc.functionStatic(fn, v)
		}
	}
	return value{}, false, nil
}

// functionStatic is gdb's FUNCTION::VARIABLE: a static variable of a
// function (one in its outermost block), wherever the frame is.
func (sc *frameScope) functionStatic(fnName, name string) (value, bool, error) {
	fn := sc.s.sym.FuncByName(fnName)
	if fn == nil {
		return value{}, false, nil
	}
	fs, ok := sc.s.sym.ScopeAt(fn.Low)
	if !ok {
		return value{}, false, nil
	}
	for _, v := range fs.Locals {
		if v.Name != name {
			continue
		}
		if len(v.Loc) > 0 && !v.Static() { // (no location: optimized out, shown so)
			return value{}, true, fmt.Errorf("%s::%s is not static: it has a value only in a frame of %s (select one)", fnName, name, fnName)
		}
		val, err := sc.varValue(v)
		return val, true, err
	}
	return value{}, true, fmt.Errorf("%s has no static variable %q", fnName, name)
}

// unitEnumerator is an enumeration constant visible in the unit of the
// code at pc, typed as its enumeration (as C sees it there: before the
// image's other globals).
func (s *Session) unitEnumerator(pc uint64, name string, cache *typeCache) (value, bool) {
	e, ok := s.sym.EnumeratorAt(pc, name)
	if !ok {
		return value{}, false
	}
	return enumValue(e, name, cache), true
}

func enumValue(e symbols.Enumerator, name string, cache *typeCache) value {
	v := rvalue(fromDWARF(e.Type, cache), uint64(e.Value))
	v.name = name
	return v
}

// globalName resolves a name that is no variable in scope, as gdb does
// after the variables: an enumeration constant of any unit; a function,
// a value of its type at its address (a function known only by its ELF
// symbol of gdb's "<text variable, no debug info>"), which reads as its
// address; any other ELF symbol, an unsigned long at its address.
func (s *Session) globalName(name string, pc uint64, cache *typeCache) (value, bool) {
	if e, ok := s.sym.EnumeratorByName(name); ok {
		return enumValue(e, name, cache), true
	}
	if fn := s.sym.FuncByName(name); fn != nil && !fn.Inline && fn.High > fn.Low {
		t := typNoDebugFunc
		if ft, ok := s.sym.FuncType(fn); ok {
			t = fromDWARF(ft, cache)
		}
		return value{typ: t, inMem: true, addr: fn.Low, name: name}, true
	}
	if a, ok := s.sym.SymbolAddr(name); ok {
		// An ELF symbol: the type a declaration in the code's unit
		// gives it (Linux's jiffies, which its linker script places),
		// else gdb's default, an unsigned long.
		t := typULong
		if dt, ok := s.sym.DeclaredType(pc, name); ok {
			t = fromDWARF(dt, cache)
		}
		return value{typ: t, inMem: true, addr: a, name: name}, true
	}
	return value{}, false
}

// symbolName names the code or data at addr (see symbolAt).
func (s *Session) symbolName(addr uint64) (string, bool) { return symbolAt(s.sym, addr) }

func (sc *frameScope) symbolName(addr uint64) (string, bool) { return sc.s.symbolName(addr) }

func (sc *frameScope) lookupType(name string) (*ctype, bool) {
	return typeNamed(sc.s.sym, name, sc.types)
}

// typeNamed resolves a type name: the fixed-width integer names, else a
// typedef or tag of the image.
func typeNamed(sym *symbols.Set, name string, cache *typeCache) (*ctype, bool) {
	switch name {
	case "uint8_t":
		return typUChar, true
	case "int8_t":
		return typChar, true
	case "uint16_t":
		return typUShrt, true
	case "int16_t":
		return typShort, true
	case "uint32_t":
		return typUInt, true
	case "int32_t":
		return typInt, true
	case "uint64_t", "size_t", "uintptr_t":
		return typULong, true
	case "int64_t", "ssize_t", "intptr_t":
		return typLong, true
	}
	if sym == nil {
		return nil, false
	}
	dt, ok := sym.TypeByName(name)
	if !ok {
		return nil, false
	}
	return fromDWARF(dt, cache), true
}
