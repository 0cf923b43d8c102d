package session

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"vmdap/session/symbols"
)

// gdb's info symbol, info address and info line in the debug console, as
// gdb prints them:
//
//	info symbol ADDR     the symbol ADDR is in: do_one_initcall + 49 in section .text
//	info address NAME    where NAME lives: static storage at 0x…, a function at 0x…, a register
//	info line [LOC]      the code of a line: LOC is N, FILE:N, FUNCTION or *ADDR (the frame's line without one)

// infoSymbol answers info symbol ADDR.
func (s *Session) infoSymbol(thread, frame int, expr string) (string, error) {
	if expr == "" {
		return "", errors.New("info symbol: give an address (info symbol 0xffffffff81000000, info symbol $pc)")
	}
	var out string
	err := s.atAddress(thread, frame, expr, func(_ *frameScope, addr uint64) error {
		name, base, ok := "", uint64(0), false
		if s.sym != nil {
			name, base, ok = s.sym.Symbol(addr)
		}
		if !ok {
			out = fmt.Sprintf("No symbol matches %s.", expr)
			return nil
		}
		out = name
		if addr > base {
			out += fmt.Sprintf(" + %d", addr-base)
		}
		if sec, mod := s.sym.SectionAt(addr); sec != "" {
			out += " in section " + sec
			if mod != "" {
				out += " of " + mod
			}
		}
		return nil
	})
	return out, err
}

// infoAddress answers info address NAME: a local or parameter of the
// frame first (in a register, or at its address), then a global variable,
// a function, an ELF symbol.
func (s *Session) infoAddress(thread, frame int, name string) (string, error) {
	if name == "" {
		return "", errors.New("info address: give a name (info address init_task)")
	}
	var out string
	err := s.inFrame(thread, frame, func(sc *frameScope) error {
		if sc.sc != nil {
			for _, vars := range [][]*symbols.Var{sc.sc.Locals, sc.sc.Params} {
				for i := len(vars) - 1; i >= 0; i-- {
					if vars[i].Name != name {
						continue
					}
					val, err := sc.varValue(vars[i])
					switch {
					case err != nil:
						out = fmt.Sprintf("Symbol %q is a variable that is not available here (%v).", name, err)
					case val.reg != "":
						out = fmt.Sprintf("Symbol %q is a variable in $%s.", name, val.reg)
					case val.inMem:
						out = fmt.Sprintf("Symbol %q is a variable at address %#x (in this frame).", name, val.addr)
					default:
						out = fmt.Sprintf("Symbol %q is a variable whose value the optimizer computed, with no address.", name)
					}
					return nil
				}
			}
		}
		if s.sym == nil {
			return fmt.Errorf("no symbol %q in current context", name)
		}
		if g := s.sym.GlobalByName(name); g != nil {
			if val, err := sc.varValue(g); err == nil && val.inMem {
				out = fmt.Sprintf("Symbol %q is static storage at address %#x.", name, val.addr)
				return nil
			}
		}
		if fn := s.sym.FuncByName(name); fn != nil {
			out = fmt.Sprintf("Symbol %q is a function at address %#x.", name, fn.Low)
			return nil
		}
		if a, ok := s.sym.SymbolAddr(name); ok {
			out = fmt.Sprintf("Symbol %q is at %#x in a file compiled without debugging.", name, a)
			return nil
		}
		return fmt.Errorf("no symbol %q in current context", name)
	})
	return out, err
}

// infoLine answers info line [LOC].
func (s *Session) infoLine(thread, frame int, loc string) (string, error) {
	if s.sym == nil {
		return "", errors.New("info line: no symbols are loaded")
	}
	var addr uint64
	switch {
	case strings.HasPrefix(loc, "*"):
		if err := s.atAddress(thread, frame, strings.TrimSpace(loc[1:]), func(_ *frameScope, a uint64) error {
			addr = a
			return nil
		}); err != nil {
			return "", err
		}
	case loc == "":
		if err := s.inFrame(thread, frame, func(sc *frameScope) error {
			addr = sc.f.look()
			return nil
		}); err != nil {
			return "", err
		}
	default:
		file, num, isLine := strings.Cut(loc, ":")
		if !isLine {
			file, num = "", loc
		}
		if n, err := strconv.Atoi(num); err == nil {
			if file == "" {
				l, err := s.frameLine(thread, frame)
				if err != nil {
					return "", err
				}
				file = l.File
			}
			addrs, actual, ok := s.sym.LineAddrs(file, n)
			if !ok || len(addrs) == 0 {
				return fmt.Sprintf("Line %d of %q is out of range or has no code.", n, file), nil
			}
			if actual != n {
				return fmt.Sprintf("Line %d of %q is at address %s but contains no code.", n, file, s.label(addrs[0])), nil
			}
			addr = addrs[0]
		} else if fn := s.sym.FuncByName(loc); fn != nil {
			addr = fn.Low
		} else {
			return "", fmt.Errorf("info line: no line, function or *address %q (info line 42, info line main.c:42, info line kmain, info line *$pc)", loc)
		}
	}
	l, ok := s.sym.PCToLine(addr)
	lo, hi, rok := s.sym.LineRange(addr)
	if !ok || !rok {
		return fmt.Sprintf("No line number information available for address %s", s.label(addr)), nil
	}
	return fmt.Sprintf("Line %d of %q starts at address %s and ends at %s.", l.Line, l.File, s.label(lo), s.label(hi)), nil
}

// frameLine is the source location of a thread's frame.
func (s *Session) frameLine(thread, frame int) (loc symbols.Location, err error) {
	err = s.inFrame(thread, frame, func(sc *frameScope) error {
		l, ok := s.sym.PCToLine(sc.f.look())
		if !ok {
			return errors.New("info line: the frame has no line: give FILE:LINE")
		}
		loc = l
		return nil
	})
	return loc, err
}
