package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// gdb's examine command in the debug console: x/NFU EXPR.

// maxExamine bounds one examine (units, or instructions and strings).
const maxExamine = 4096

type examineFmt struct {
	count int
	f     byte // x d u o t c a s i
	unit  int  // bytes: 1 2 4 8
	phys  bool // guest-physical addresses (xp): no symbol labels
}

func parseExamine(line string) (examineFmt, string, error) {
	e := examineFmt{count: 1, f: 'x', unit: 4}
	rest := strings.TrimPrefix(strings.TrimSpace(line), "x/")
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i > 0 {
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n < 1 || n > maxExamine {
			return e, "", fmt.Errorf("x: count %q: want 1 to %d", rest[:i], maxExamine)
		}
		e.count = n
	}
	unitSet := false
	for ; i < len(rest) && rest[i] != ' ' && rest[i] != '\t'; i++ {
		switch c := rest[i]; c {
		case 'x', 'd', 'u', 'o', 't', 'c', 'a', 's', 'i':
			e.f = c
		case 'b', 'h', 'w', 'g':
			e.unit, unitSet = map[byte]int{'b': 1, 'h': 2, 'w': 4, 'g': 8}[c], true
		default:
			return e, "", fmt.Errorf("x: unknown format letter %q (formats x d u o t c a s i, units b h w g)", c)
		}
	}
	switch {
	case e.f == 'c' && !unitSet:
		e.unit = 1
	case e.f == 'a':
		e.unit = 8
	}
	expr := strings.TrimSpace(rest[i:])
	if expr == "" {
		return e, "", errors.New("x: an address expression is needed, as in x/8xb &counter")
	}
	return e, expr, nil
}

// examine runs an examine command in a frame and returns its output:
// count units (b, h, w, g) from the address the expression gives, in a
// format: x hex, d signed, u unsigned, o octal, t binary, c character,
// a address with its symbol; s strings; i instructions. phys: the
// address is guest-physical (QEMU's xp; unit formats only).
func (s *Session) examine(thread, frame int, line string, phys bool) (string, error) {
	e, expr, err := parseExamine(line)
	if err != nil {
		return "", err
	}
	read := func(v int, p []byte, addr uint64) (int, error) { return s.t.ReadMemory(v, p, addr) }
	if e.phys = phys; phys {
		pm, ok := s.t.PhysicalMemory()
		if !ok {
			return "", errNoPhysical
		}
		if e.f == 's' || e.f == 'i' {
			return "", fmt.Errorf("xp: format %c reads virtual memory: use x/", e.f)
		}
		read = func(_ int, p []byte, addr uint64) (int, error) { return pm.ReadPhysical(p, addr) }
	}
	var out strings.Builder
	err = s.atAddress(thread, frame, expr, func(sc *frameScope, addr uint64) error {
		v := sc.vcpu
		switch e.f {
		case 'i':
			s.examineInsns(&out, v, sc.f.PC, addr, e.count)
		case 's':
			s.examineStrings(&out, v, addr, e.count)
		default:
			s.examineUnits(&out, v, addr, e, read)
		}
		return nil
	})
	return strings.TrimSuffix(out.String(), "\n"), err
}

// label is an address as gdb's x labels it: 0x… <sym+offset>, the
// offset in decimal (the kernel's own sym+0x… is the frames' and the
// disassembly's).
func (s *Session) label(addr uint64) string {
	l := fmt.Sprintf("%#x", addr)
	if s.sym != nil {
		if name, base, ok := s.sym.Symbol(addr); ok {
			if addr == base {
				return l + " <" + name + ">"
			}
			return fmt.Sprintf("%s <%s+%d>", l, name, addr-base)
		}
	}
	return l
}

func (s *Session) examineUnits(out *strings.Builder, v int, addr uint64, e examineFmt, read func(int, []byte, uint64) (int, error)) {
	buf := make([]byte, e.count*e.unit)
	n, _ := read(v, buf, addr)
	perLine := map[int]int{1: 8, 2: 8, 4: 4, 8: 2}[e.unit]
	for i := 0; i < e.count; i++ {
		a := addr + uint64(i*e.unit)
		if (i+1)*e.unit > n {
			if i%perLine != 0 {
				out.WriteString("\n")
			}
			fmt.Fprintf(out, "Cannot access memory at address %#x\n", a)
			return
		}
		if i%perLine == 0 && e.phys {
			fmt.Fprintf(out, "%#x:", a)
		} else if i%perLine == 0 {
			out.WriteString(s.label(a) + ":")
		}
		var b [8]byte
		copy(b[:], buf[i*e.unit:(i+1)*e.unit])
		out.WriteString("\t" + s.unitText(binary.LittleEndian.Uint64(b[:]), e))
		if i%perLine == perLine-1 || i == e.count-1 {
			out.WriteString("\n")
		}
	}
}

func (s *Session) unitText(u uint64, e examineFmt) string {
	bits := 8 * e.unit
	t := &ctype{kind: tInt, size: int64(e.unit), signed: true}
	switch e.f {
	case 'd':
		return strconv.FormatInt(int64(convInt(u, t)), 10)
	case 'u':
		return strconv.FormatUint(u, 10)
	case 'o':
		return "0" + strconv.FormatUint(u, 8)
	case 't':
		return fmt.Sprintf("%0*b", bits, u)
	case 'c':
		c := byte(u)
		if c >= 0x20 && c < 0x7f {
			return fmt.Sprintf("%d '%c'", int8(c), c)
		}
		return fmt.Sprintf("%d '\\x%02x'", int8(c), c)
	case 'a':
		return s.label(u)
	}
	return fmt.Sprintf("%#0*x", bits/4, u)
}

func (s *Session) examineStrings(out *strings.Builder, v int, addr uint64, count int) {
	for i := 0; i < count; i++ {
		var buf [256]byte
		n, _ := s.t.ReadMemory(v, buf[:], addr)
		if n == 0 {
			fmt.Fprintf(out, "%s:\t<error: Cannot access memory at address %#x>\n", s.label(addr), addr)
			return
		}
		end := n
		for j := 0; j < n; j++ {
			if buf[j] == 0 {
				end = j
				break
			}
		}
		text := strconv.Quote(string(buf[:end]))
		next := addr + uint64(end) + 1
		if end == n { // no NUL within the window: the string goes on from there
			text += "..."
			next = addr + uint64(end)
		}
		fmt.Fprintf(out, "%s:\t%s\n", s.label(addr), text)
		addr = next
	}
}

func (s *Session) examineInsns(out *strings.Builder, v int, pc, addr uint64, count int) {
	rd := s.codeReader(v)
	for i := 0; i < count; i++ {
		in := s.decodeWith(rd, addr)
		mark := "   "
		if addr == pc {
			mark = "=> "
		}
		fmt.Fprintf(out, "%s%s:\t%s\n", mark, s.label(addr), in.Text)
		if in.Invalid && in.Text == "<unreadable memory>" {
			return
		}
		addr += uint64(max(len(in.Bytes), 1))
	}
}
