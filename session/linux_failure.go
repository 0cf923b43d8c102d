package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"vmdap/vmm"
	"vmdap/x86"
)

// A Linux kernel's own failures as exception breakpoints, as a process
// debugger breaks on an uncaught exception: a panic (panic()), an Oops or
// a BUG (__die_header(), which __die() and die_addr(), the general
// protection fault's, both call since Linux 5.5; __die() before), a WARN
// (__warn()). Each enabled filter is an internal breakpoint at the
// entry of its function (past its endbr64 and ftrace site), where the
// arguments are still in their registers (System V AMD64: rdi, rsi, rdx,
// rcx, r8, r9): the stop says
// the panic's message, the Oops's kind and where it was raised, the
// WARN's file and line, as the kernel is about to print them.

// LinuxExceptionFilters are offered at initialize (VS Code shows only
// the filters offered there) and withdrawn by the capabilities event
// after a launch or attach of an image that is not a Linux kernel.
var LinuxExceptionFilters = []ExceptionFilter{
	{ID: "linux-panic", Label: "Linux: kernel panic", Description: "stop when the kernel panics (at panic(), with its message)", Funcs: []string{"panic"}, Default: true},
	{ID: "linux-oops", Label: "Linux: Oops or BUG", Description: "stop when the kernel dies of an Oops or a BUG (as it prints its header, with where it was raised)", Funcs: []string{"__die_header", "__die"}, Default: true},
	{ID: "linux-warn", Label: "Linux: WARN", Description: "stop at each WARN() the kernel hits (at __warn(), with its file and line)", Funcs: []string{"__warn"}},
}

// linuxFilter returns the Linux exception filter with an id.
func linuxFilter(id string) (ExceptionFilter, bool) {
	for _, f := range LinuxExceptionFilters {
		if f.ID == id {
			return f, true
		}
	}
	return ExceptionFilter{}, false
}

// entryAddrs returns the entry addresses of the kernel's functions named
// name (not their prologue ends: the arguments are read there).
func (s *Session) entryAddrs(name string) []uint64 {
	if s.sym == nil {
		return nil
	}
	var out []uint64
	for _, fn := range s.sym.FuncsByName(name) {
		if !fn.Inline && fn.High > fn.Low {
			out = append(out, s.pastEntryPads(fn.Low))
		}
	}
	if len(out) == 0 {
		if a, ok := s.sym.SymbolAddr(name); ok {
			out = append(out, s.pastEntryPads(a))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// pastEntryPads moves a kernel function's entry a past its endbr64 and
// its ftrace site (call __fentry__, or the 5-byte nop ftrace makes of
// it), which the kernel rewrites at boot (ftrace; IBT's sealing of
// endbr64) after checking what is there: a breakpoint's int3 in guest
// memory would be seen. The arguments are still in their registers
// after them.
func (s *Session) pastEntryPads(a uint64) uint64 {
	b, ok := s.sym.ImageBytes(a-s.sym.Slide(), 9)
	if !ok {
		return a
	}
	off := 0
	if bytes.HasPrefix(b, []byte{0xf3, 0x0f, 0x1e, 0xfa}) { // endbr64
		off = 4
	}
	site := b[off : off+5]
	switch {
	case site[0] == 0xe8: // call rel32
		to := a + uint64(off) + 5 + uint64(int64(int32(binary.LittleEndian.Uint32(site[1:]))))
		if name, base, ok := s.sym.Symbol(to); ok && base == to && name == "__fentry__" {
			off += 5
		}
	case bytes.Equal(site, []byte{0x0f, 0x1f, 0x44, 0x00, 0x00}): // nopl 0x0(%rax,%rax,1)
		off += 5
	}
	return a + uint64(off)
}

// setKernelFilters replaces the internal breakpoints of the Linux
// exception filters by those of ids (known, for a Linux image). It
// returns, per id, why it cannot be on (nil: it is).
func (b *bpTable) setKernelFilters(ids []string) map[string]error {
	for _, l := range b.kern {
		b.unplace(l)
	}
	b.kern = nil
	out := map[string]error{}
	for _, id := range ids {
		f, _ := linuxFilter(id)
		var fn string
		var addrs []uint64
		for _, fn = range f.Funcs {
			if addrs = b.s.entryAddrs(fn); len(addrs) > 0 {
				break
			}
		}
		if len(addrs) == 0 {
			out[id] = fmt.Errorf("this kernel has no function %s", strings.Join(f.Funcs, " or "))
			continue
		}
		// Software only: never a debug register the user's breakpoints
		// and watchpoints need. Until it can be written (or trap, in the
		// vCPUs' mode) it is tried again at every stop (retry).
		l := &logical{id: -1, kind: KindFunction, fn: fn, exc: id, addrs: addrs}
		if _, sw := b.s.t.SWBreakpoints(); sw {
			l.mode = ModeSoftware
		}
		b.place(l)
		if _, trap := b.swTrap(); l.info.State == BPFailed && (trap || l.mode == "") {
			out[id] = errors.New(l.info.Message)
			continue
		}
		b.kern = append(b.kern, l)
	}
	return out
}

// kernelFailureStop describes a stop at a Linux exception filter's
// breakpoint, from the function's arguments, and keeps it for
// exceptionInfo.
func (s *Session) kernelFailureStop(st vmm.Stop, id string) *Stopped {
	r, _ := s.t.Regs(st.VCPU)
	if sr, err := s.t.SRegs(st.VCPU); err == nil && x86.DecodeMode(sr) != 64 {
		// A 32-bit kernel passes arguments in eax, edx, ecx (regparm):
		// not read here.
		r = x86.Regs{RIP: r.RIP, RSP: r.RSP}
	}
	k := s.kview(st.VCPU)
	str := func(a uint64) string {
		if a == 0 {
			return ""
		}
		t, _ := k.str(a, 256)
		return t
	}
	var text, desc string
	switch id {
	case "linux-panic":
		text = "Kernel panic"
		args := []uint64{r.RSI, r.RDX, r.RCX, r.R8, r.R9}
		stack := func(i int) uint64 { // the variadic arguments after the sixth, above the return address
			v, _ := k.u64(r.RSP + 8 + 8*uint64(i))
			return v
		}
		desc = "Kernel panic - not syncing: " + strings.TrimRight(s.printk(k, str(r.RDI), args, stack), "\n")
		if r.RDI == 0 {
			desc = "Kernel panic (its message is not known here)"
		}
	case "linux-oops":
		text = "Oops"
		desc = fmt.Sprintf("%s: %04x", str(r.RDI), r.RDX) // as the kernel prints it
		if r.RDI == 0 {
			desc = "Oops (its kind is not known here)"
		}
		if ip, ok := k.ptRegsIP(r.RSI); ok {
			at := fmt.Sprintf("%#x", ip) // no function's (a jump to 0): not a data symbol's name
			if s.sym != nil && s.sym.FuncAt(ip) != nil {
				at = s.where(ip)
			}
			desc += ", raised at " + at
		}
	case "linux-warn":
		text = "WARNING"
		desc = "WARNING"
		if f := str(r.RDI); f != "" {
			desc += fmt.Sprintf(" at %s:%d", f, int32(r.RSI))
		}
		if r.RDX != 0 {
			desc += " " + s.symbolize(r.RDX)
		}
	}
	s.excInfo = &ExceptionInfo{ID: text, Description: desc,
		Details: fmt.Sprintf("the %s exception filter: a breakpoint at %s on vCPU %d", id, s.symbolize(st.PC), st.VCPU)}
	return &Stopped{Reason: StopException, Text: text, Description: desc}
}

// ptRegsIP reads the ip of a struct pt_regs.
func (k *kview) ptRegsIP(regs uint64) (uint64, bool) {
	if regs == 0 {
		return 0, false
	}
	t, err := k.typ("pt_regs")
	if err != nil {
		return 0, false
	}
	off, err := k.off(t, "ip")
	if err != nil {
		return 0, false
	}
	ip, err := k.u64(regs + uint64(off))
	return ip, err == nil
}

// maxPrintkLine bounds a printk width or precision (the kernel's
// LOG_LINE_MAX is 1024).
const maxPrintkLine = 1024

// printk formats a printk format with its arguments as the kernel would
// for the conversions a message uses (%s %d %u %x %c %p, with flags,
// width and the h/l/ll/z modifiers; %pS and %ps as symbols); args are
// the register arguments, stack(i) the i-th one after them.
func (s *Session) printk(k *kview, f string, args []uint64, stack func(i int) uint64) string {
	var b strings.Builder
	n := 0
	next := func() uint64 {
		defer func() { n++ }()
		if n < len(args) {
			return args[n]
		}
		return stack(n - len(args))
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' || i+1 >= len(f) {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(f) && strings.IndexByte("-+ #0", f[j]) >= 0 {
			j++
		}
		flags := f[i+1 : j]
		// A width or precision: digits, or * for the next argument;
		// bounded as the kernel's line is (a corrupt format stays cheap).
		num := func() int {
			if j < len(f) && f[j] == '*' {
				j++
				return int(int32(next()))
			}
			v := 0
			for ; j < len(f) && f[j] >= '0' && f[j] <= '9'; j++ {
				v = min(v*10+int(f[j]-'0'), maxPrintkLine)
			}
			return v
		}
		width, prec := min(max(num(), 0), maxPrintkLine), -1
		if j < len(f) && f[j] == '.' {
			j++
			prec = min(max(num(), 0), maxPrintkLine)
		}
		size := 4
		for j < len(f) && strings.IndexByte("hlzt", f[j]) >= 0 {
			switch {
			case f[j] != 'h':
				size = 8
			case size == 2:
				size = 1 // hh
			default:
				size = 2
			}
			j++
		}
		if j >= len(f) {
			b.WriteString(f[i:])
			break
		}
		var out string
		switch conv := f[j]; conv {
		case '%':
			out = "%"
		case 'd', 'i':
			v := next()
			switch size {
			case 1:
				v = uint64(int64(int8(v)))
			case 2:
				v = uint64(int64(int16(v)))
			case 4:
				v = uint64(int64(int32(v)))
			}
			out = strconv.FormatInt(int64(v), 10)
		case 'u', 'x', 'X', 'o':
			v := next()
			if size < 8 {
				v &= 1<<(8*size) - 1
			}
			base := map[byte]int{'u': 10, 'x': 16, 'X': 16, 'o': 8}[conv]
			out = strconv.FormatUint(v, base)
			if conv == 'X' {
				out = strings.ToUpper(out)
			}
			if strings.Contains(flags, "#") && v != 0 && base != 10 {
				out = map[byte]string{'x': "0x", 'X': "0X", 'o': "0"}[conv] + out
			}
		case 'c':
			out = string(rune(byte(next())))
		case 's':
			a := next()
			if a == 0 {
				out = "(null)"
			} else if t, err := k.str(a, 256); err == nil {
				out = t
				if prec >= 0 && prec < len(out) {
					out = out[:prec]
				}
			} else {
				out = fmt.Sprintf("(efault)%#x", a)
			}
		case 'p':
			a := next()
			ext := ""
			if j+1 < len(f) && isAlpha(f[j+1]) {
				ext = string(f[j+1])
				j++
				for j+1 < len(f) && isAlnum(f[j+1]) { // %pS, %pSR, %pK: the extension's letters
					j++
				}
			}
			if ext == "S" || ext == "s" || ext == "B" {
				out = s.symbolize(a)
			} else {
				out = fmt.Sprintf("%016x", a)
			}
		default:
			out = f[i : j+1]
		}
		if pad := width - len(out); pad > 0 {
			switch {
			case strings.Contains(flags, "-"):
				out += strings.Repeat(" ", pad)
			case strings.Contains(flags, "0") && strings.IndexByte("diuxXo", f[j]) >= 0:
				out = strings.Repeat("0", pad) + out
			default:
				out = strings.Repeat(" ", pad) + out
			}
		}
		b.WriteString(out)
		i = j
	}
	return b.String()
}
