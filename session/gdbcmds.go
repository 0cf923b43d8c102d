package session

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"vmdap/session/symbols"
	"vmdap/x86"
)

// gdb's backtrace and info registers in the debug console, for the users
// who type them from habit: the Call Stack and the Registers scope show
// the same, these print it as gdb does.
//
//	bt [N], backtrace [N], where [N]   the selected thread's frames (the first N)
//	info registers [NAME…], i r …      the frame's registers, or the ones named
//	info symbol, info address, info line (gdbinfo.go)

// isGDBCommand reports whether l is one of them.
func isGDBCommand(l string) bool {
	cmd, _, _ := strings.Cut(l, " ")
	switch cmd {
	case "bt", "backtrace", "where":
		return true
	case "info", "i":
		f := strings.Fields(l)
		return len(f) >= 2 && (f[1] == "registers" || f[1] == "reg" || f[1] == "r" || f[1] == "all-registers" ||
			f[1] == "symbol" || f[1] == "address" || f[1] == "line") // gdbinfo.go
	}
	return false
}

func (s *Session) gdbCommand(thread, frame int, l string) (string, error) {
	f := strings.Fields(l)
	if f[0] == "bt" || f[0] == "backtrace" || f[0] == "where" {
		return s.backtrace(thread, f[1:])
	}
	rest := strings.TrimSpace(strings.Join(f[2:], " "))
	switch f[1] {
	case "symbol":
		return s.infoSymbol(thread, frame, rest)
	case "address":
		return s.infoAddress(thread, frame, rest)
	case "line":
		return s.infoLine(thread, frame, rest)
	}
	return s.infoRegisters(thread, frame, f[2:])
}

// backtrace prints the thread's frames as gdb's bt does: #N, the pc where
// it is not the start of the frame's line (every frame but the innermost
// and the inlined), the function, where in the source.
func (s *Session) backtrace(thread int, args []string) (string, error) {
	limit := -1
	if len(args) > 0 {
		n, err := strconv.Atoi(args[0])
		if err != nil || n <= 0 || len(args) > 1 {
			return "", fmt.Errorf("bt [N]: N is a count of frames, not %q", strings.Join(args, " "))
		}
		limit = n
	}
	v, err := s.vcpuOrCurrent(thread)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	err = s.stopped(func() error {
		fs, err := s.framesLocked(v)
		if err != nil {
			return err
		}
		addrSize := 8
		if s.sym != nil && s.sym.AddrSize == 4 {
			addrSize = 4
		}
		for i, f := range fs {
			if i == limit {
				b.WriteString("(More stack frames follow...)\n")
				break
			}
			fmt.Fprintf(&b, "#%-2d ", i)
			if !f.Inlined && (i > 0 || s.sym == nil || !s.sym.IsStmtStart(f.PC)) {
				// gdb's pc, full width, where the frame is not at the
				// start of a line.
				fmt.Fprintf(&b, "0x%0*x in ", 2*addrSize, f.PC)
			}
			b.WriteString(f.Name())
			b.WriteString(s.frameArgs(v, i))
			if f.File != "" {
				fmt.Fprintf(&b, " at %s:%d", f.File, f.Line)
			}
			if f.Inlined {
				b.WriteString(" (inlined)")
			}
			b.WriteByte('\n')
		}
		return nil
	})
	return b.String(), err
}

// frameArgs prints a frame's arguments as gdb's bt does: (name=value,
// …), a scalar's value as print shows it and anything larger as ...
// (gdb's print frame-arguments scalars); () where the frame has no
// debug information, as gdb prints it.
func (s *Session) frameArgs(v, frame int) string {
	sc, err := s.newScope(v, frame)
	if err != nil || sc.sc == nil {
		return " ()"
	}
	var args []string
	for _, p := range sc.sc.Params {
		text := "<optimized out>"
		if val, err := sc.varValue(p); err == nil {
			switch {
			case !val.typ.isScalar():
				text = "..."
			default:
				text = format(val, sc, false)
			}
		} else if !errors.Is(err, symbols.ErrOptimizedOut) {
			text = "<error: " + err.Error() + ">"
		}
		args = append(args, p.Name+"="+text)
	}
	return " (" + strings.Join(args, ", ") + ")"
}

// infoRegisters prints the frame's registers as gdb's info registers
// does: name, hex, natural (signed decimal, a code address with its
// symbol, flags by name), the general ones, segments and control
// registers, or those named.
func (s *Session) infoRegisters(thread, frame int, names []string) (string, error) {
	var b strings.Builder
	err := s.inFrame(thread, frame, func(sc *frameScope) error {
		if len(names) == 0 {
			names = append(append(x86.GeneralNames(), x86.SegmentNames()[:6]...), x86.ControlNames()...)
		}
		for _, n := range names {
			n = strings.ToLower(strings.TrimPrefix(n, "$"))
			switch n {
			case "pc":
				n = "rip"
			case "sp":
				n = "rsp"
			case "fp":
				n = "rbp"
			case "eflags":
				n = "rflags"
			}
			u, ok := sc.regGet(n)
			if !ok {
				return fmt.Errorf("info registers: no register %q", n)
			}
			natural := strconv.FormatInt(int64(u), 10)
			switch {
			case n == "rip" || n == "eip":
				natural = withSymbol(u, sc)
			case n == "rsp" || n == "rbp" || strings.HasSuffix(n, "_base") || strings.HasPrefix(n, "cr") && n != "cr8":
				natural = fmt.Sprintf("%#x", u)
			case regBits[n] != nil:
				natural = x86.Decode(u, regBits[n])
			}
			fmt.Fprintf(&b, "%-15s%-19s%s\n", n, fmt.Sprintf("%#x", u), natural)
		}
		return nil
	})
	return b.String(), err
}
