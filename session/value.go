package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"vmdap/session/symbols"
	"vmdap/x86"
)

// value is a typed value: an lvalue in memory or a register, or an rvalue.
type value struct {
	typ   *ctype
	addr  uint64
	inMem bool
	reg   string // register lvalue
	raw   []byte // rvalue (or register) bytes, little-endian
	name  string
	// opt marks, bit by bit, the bytes of an rvalue that the optimizer
	// left nothing for (a composite location's empty pieces): gdb shows
	// such members <optimized out> and the others. nil when all is there.
	opt []byte
	// synth is what a pointer DW_OP_implicit_pointer describes points
	// to: a pointer the program never had (gdb's "<synthetic pointer>"),
	// whose target may have no address.
	synth *value
	// bits, for a bitfield member of a struct in memory (an rvalue of
	// its bits), is where they are: it can be assigned.
	bits *bitLoc
	// viaPtr: the value's address came from a pointer (*p, p->x, p[i]),
	// not from a variable's location.
	viaPtr bool
	// fpReg, for an rvalue of an x87 or SSE register's bytes ($xmm0, a
	// lane of it, $st0, a float variable in xmm0), is that register, its
	// bytes from fpOff: it can be assigned.
	fpReg string
	fpOff int64
}

// fpWriter is a scope that writes x87 and SSE registers (a frame's).
type fpWriter interface {
	fpSet(name string, off int64, b []byte) error
}

// bitLoc is where a bitfield lives in memory: size bits from bit off of
// the bytes at addr (off+size at most 64).
type bitLoc struct {
	addr      uint64
	off, size uint
}

// reread returns the bitfield's value as memory now holds it.
func (b *bitLoc) reread(v value, sc scope) (value, error) {
	var buf [8]byte
	n := (b.off + b.size + 7) / 8
	if err := sc.readMem(buf[:n], b.addr); err != nil {
		return v, err
	}
	u := bitfield(binary.LittleEndian.Uint64(buf[:]), field{bitOff: int64(b.off), bitSize: int64(b.size)}, v.typ.signed)
	nv := rvalue(v.typ, u)
	nv.name, nv.bits = v.name, b
	return nv, nil
}

// store writes u into the bitfield (its low size bits), keeping the bits
// around it: a read, the bits changed, a write of the same bytes.
func (b *bitLoc) store(u uint64, sc scope) error {
	var buf [8]byte
	n := (b.off + b.size + 7) / 8
	if err := sc.readMem(buf[:n], b.addr); err != nil {
		return err
	}
	w := binary.LittleEndian.Uint64(buf[:])
	mask := (uint64(1)<<b.size - 1) << b.off
	if b.size >= 64 {
		mask = ^uint64(0)
	}
	binary.LittleEndian.PutUint64(buf[:], w&^mask|u<<b.off&mask)
	return sc.writeMem(buf[:n], b.addr)
}

// scope is what an expression sees: memory and registers of one frame.
type scope interface {
	readMem(p []byte, addr uint64) error
	writeMem(p []byte, addr uint64) error
	regGet(name string) (uint64, bool)
	regSet(name string, v uint64) error
	lookupVar(name string) (value, bool, error)
	lookupType(name string) (*ctype, bool)
	symbolName(addr uint64) (string, bool) // kmain, kmain+4, points+4: for a function's or a pointer's value
}

func (v value) bytes(sc scope) ([]byte, error) {
	switch {
	case v.synth != nil:
		return nil, errSynthetic
	case v.inMem:
		n := v.typ.size
		if n <= 0 {
			n = 0
		}
		if n > 1<<20 {
			return nil, fmt.Errorf("value of %d bytes is too large to read", n)
		}
		b := make([]byte, n)
		if err := sc.readMem(b, v.addr); err != nil {
			return nil, err
		}
		return b, nil
	case v.reg != "":
		r, ok := sc.regGet(v.reg)
		if !ok {
			return nil, fmt.Errorf("register %s unavailable in this frame", v.reg)
		}
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, r)
		n := v.typ.size
		if n > 8 || n <= 0 {
			n = 8
		}
		return b[:n], nil
	}
	return v.raw, nil
}

// u64 reads a scalar as an unsigned integer (sign-extended when signed);
// a function reads as its address.
// errSynthetic: a pointer DW_OP_implicit_pointer describes has no value.
var errSynthetic = errors.New("a synthetic pointer has no address (the program never had it): only *p and p->m read through it")

func (v value) u64(sc scope) (uint64, error) {
	if v.gone(0, int64(len(v.opt)), false) {
		return 0, symbols.ErrOptimizedOut
	}
	if v.synth != nil {
		return 0, errSynthetic
	}
	if v.typ.kind == tFunc {
		if !v.inMem {
			return 0, errors.New("function has no address")
		}
		return v.addr, nil
	}
	b, err := v.bytes(sc)
	if err != nil {
		return 0, err
	}
	if v.typ.kind == tArray {
		if !v.inMem {
			return 0, errors.New("array has no address")
		}
		return v.addr, nil
	}
	if !v.typ.isScalar() {
		return 0, fmt.Errorf("%s is not a scalar", v.typ)
	}
	if v.typ.kind == tFloat {
		f, err := v.f64(sc)
		return uint64(int64(f)), err
	}
	return intFrom(b, v.typ.signed), nil
}

func intFrom(b []byte, signed bool) uint64 {
	var buf [8]byte
	copy(buf[:], b)
	u := binary.LittleEndian.Uint64(buf[:])
	if signed && len(b) > 0 && len(b) < 8 && b[len(b)-1]&0x80 != 0 {
		u |= ^uint64(0) << (8 * uint(len(b)))
	}
	return u
}

// wideInt reads an integer wider than 64 bits (__int128) whole, where
// u64 keeps its low 64 bits (which expressions compute with).
func (v value) wideInt(sc scope) (*big.Int, error) {
	b, err := v.bytes(sc)
	if err != nil {
		return nil, err
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	n := new(big.Int).SetBytes(be)
	if v.typ.signed && len(b) > 0 && b[len(b)-1]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n, nil
}

// formatWide shows a wide integer in decimal, or in hex as the
// two's complement of its width (gdb's /x: 0xff…fb for -5).
func formatWide(v value, sc scope, hex bool) string {
	n, err := v.wideInt(sc)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	if !hex {
		return n.String()
	}
	if n.Sign() < 0 {
		n.Add(n, new(big.Int).Lsh(big.NewInt(1), uint(8*v.typ.size)))
	}
	return "0x" + n.Text(16)
}

// f64 reads a floating value as a float64 (a long double's rounded).
func (v value) f64(sc scope) (float64, error) {
	if v.gone(0, int64(len(v.opt)), false) {
		return 0, symbols.ErrOptimizedOut
	}
	b, err := v.bytes(sc)
	if err != nil {
		return 0, err
	}
	d, err := decodeFloat(b, floatFormatOf(v.typ))
	return d.float64(), err
}

func rvalue(t *ctype, u uint64) value {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, u)
	n := t.size
	if n <= 0 || n > 8 {
		n = 8
	}
	return value{typ: t, raw: b[:n]}
}

// bitfield extracts a bit field's value.
func bitfield(u uint64, f field, signed bool) uint64 {
	v := (u >> uint(f.bitOff)) & (1<<uint(f.bitSize) - 1)
	if signed && v&(1<<uint(f.bitSize-1)) != 0 {
		v |= ^uint64(0) << uint(f.bitSize)
	}
	return v
}

// gone reports whether any bit of n bytes from off of an rvalue is
// optimized out (every bit, with all).
func (v value) gone(off, n int64, all bool) bool {
	if v.opt == nil || v.inMem {
		return false
	}
	for i := off; i < off+n && i < int64(len(v.opt)); i++ {
		if all && v.opt[i] != 0xff {
			return false
		}
		if !all && v.opt[i] != 0 {
			return true
		}
	}
	return all
}

// bitsGone reports whether any of a bit field's bits is optimized out.
func (v value) bitsGone(f field) bool {
	if v.opt == nil || v.inMem {
		return false
	}
	for b := f.bitOff; b < f.bitOff+f.bitSize; b++ {
		if i := f.off + b/8; i < int64(len(v.opt)) && v.opt[i]&(1<<(b%8)) != 0 {
			return true
		}
	}
	return false
}

// optSlice is the part of an rvalue's optimized-out marks a member at
// off of n bytes has.
func (v value) optSlice(off, n int64) []byte {
	if v.opt == nil || off < 0 || off+n > int64(len(v.opt)) {
		return nil
	}
	return v.opt[off : off+n]
}

// format renders a value for the variables view and evaluate.
func format(v value, sc scope, hex bool) string {
	t := v.typ
	if v.opt != nil && !v.inMem {
		n := int64(len(v.opt))
		if v.gone(0, n, true) || t.kind != tStruct && t.kind != tArray && v.gone(0, n, false) {
			return "<optimized out>"
		}
	}
	if t.kind == tStruct {
		if s, ok := formatRust(v, sc, hex); ok {
			return s
		}
	}
	switch t.kind {
	case tStruct:
		b, err := v.bytes(sc)
		if err != nil {
			return "<" + err.Error() + ">"
		}
		var parts []string
		for i, f := range t.fields {
			if i >= 6 {
				parts = append(parts, "...")
				break
			}
			fv := fieldValue(v, f, b)
			if f.name == "" { // an anonymous struct or union: its members, as gdb shows them
				parts = append(parts, format(fv, sc, hex))
				continue
			}
			parts = append(parts, f.name+": "+format(fv, sc, hex))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case tArray:
		if t.count <= 0 && v.inMem {
			// A flexible array member (no bound), or an array of no
			// elements (Linux's char __cacheline_group_begin__x[0]
			// markers): its address, as gdb shows it, with the data
			// symbol it is in, and the string a char one holds.
			s := fmt.Sprintf("%#x", v.addr)
			if name, ok := sc.symbolName(v.addr); ok {
				s += " <" + name + ">"
			}
			if t.el().kind == tChar {
				s += " " + cString(sc, v.addr)
			}
			return s
		}
		if t.el().kind == tChar && t.el().size == 1 && t.count >= 0 && v.opt == nil && !hex { // (in hex, its bytes: gdb's p/x)
			return charArrayText(v, sc)
		}
		n := t.count
		var parts []string
		for i := int64(0); i < n && i < 8; i++ {
			el := format(index(v, i), sc, hex)
			if hex && t.el().kind == tChar { // (gdb's p/x of a char array: the numbers alone)
				el, _, _ = strings.Cut(el, " ")
			}
			parts = append(parts, el)
		}
		if n > 8 {
			parts = append(parts, "...")
		}
		if t.rustLang {
			return "[" + strings.Join(parts, ", ") + "]"
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case tVoid:
		return "void"
	case tPtr:
		if v.synth != nil {
			return "<synthetic pointer>"
		}
	case tFunc:
		// As gdb prints it: {void (void)} 0x1003e0 <kmain>.
		return "{" + t.String() + "} " + withSymbol(v.addr, sc)
	}
	switch {
	case t.kind == tInt && t.size > 8:
		return formatWide(v, sc, hex)
	case t.kind == tFloat:
		return formatFloat(v, sc)
	case t.kind == tComplex && hex:
		return formatWide(v, sc, hex) // (gdb's p/x: its bytes as one number)
	case t.kind == tComplex:
		return formatComplex(v, sc)
	}
	u, err := v.u64(sc)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	switch t.kind {
	case tBool:
		if u != 0 {
			return "true"
		}
		return "false"
	case tPtr:
		// As gdb shows a pointer: the object or function it points
		// into, and a char pointer's string.
		s := withSymbol(u, sc)
		if t.el().kind == tChar && u != 0 {
			s += " " + cString(sc, u)
		}
		return s
	case tEnum:
		return formatEnum(t, u)
	case tChar:
		c := byte(u)
		n := strconv.FormatInt(int64(intFrom([]byte{c}, t.signed)), 10)
		if hex {
			n = fmt.Sprintf("%#x", c)
		}
		return n + " " + quoteC([]byte{c}, '\'')
	}
	if hex {
		return fmt.Sprintf("%#x", u&mask(t.size))
	}
	if t.signed {
		return strconv.FormatInt(int64(u), 10)
	}
	return strconv.FormatUint(u&mask(t.size), 10)
}

// formatEnum names an enumeration's value: NAME (value) for an
// enumerator's; for a flag enumeration the enumerators whose bits it
// holds, with the bits no enumerator names in hex, as gdb shows them
// (generic_val_print_enum_1), then the value: (P_R | P_X) (5),
// (P_W | unknown: 0x8) (10); else the number.
func formatEnum(t *ctype, u uint64) string {
	m := mask(t.size)
	for _, e := range t.enums {
		if uint64(e.val)&m == u&m {
			return fmt.Sprintf("%s (%d)", e.name, e.val)
		}
	}
	if !t.flagEnum() || u&m == 0 {
		return fmt.Sprintf("%d", int64(u))
	}
	rest := u & m
	var parts []string
	for _, e := range t.enums {
		if bit := uint64(e.val); rest&bit != 0 {
			parts = append(parts, e.name)
			rest &^= bit
		}
	}
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("unknown: %#x", rest))
	}
	return fmt.Sprintf("(%s) (%d)", strings.Join(parts, " | "), u&m)
}

// flagEnum is gdb's test for an enumeration of flags
// (update_enumeration_type_from_children): no enumerator negative, none
// with more than one bit set (several may name the same bit).
func (t *ctype) flagEnum() bool {
	for _, e := range t.enums {
		if e.val < 0 || bits.OnesCount64(uint64(e.val)) > 1 {
			return false
		}
	}
	return len(t.enums) > 0
}

// withSymbol renders an address with the symbol it is in: 0x1003e0
// <kmain>, 0x102054 <points+4>.
func withSymbol(addr uint64, sc scope) string {
	if name, ok := sc.symbolName(addr); ok && addr != 0 {
		return fmt.Sprintf("%#x <%s>", addr, name)
	}
	return fmt.Sprintf("%#x", addr)
}

// symbolAt names the code or data at addr for a function's or a
// pointer's value: kmain, or kmain+4 inside it; a data object's symbol
// only within its size (see symbols.Table.AddrSymbol), so that an
// address on the heap or a stack is not taken for the object before it.
func symbolAt(sym *symbols.Set, addr uint64) (string, bool) {
	if sym == nil {
		return "", false
	}
	name, start, ok := sym.AddrSymbol(addr)
	if !ok || name == "" {
		return "", false
	}
	if addr > start {
		name += fmt.Sprintf("+%d", addr-start)
	}
	return name, true
}

func mask(size int64) uint64 {
	if size <= 0 || size >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint(size)) - 1
}

func fieldValue(v value, f field, structBytes []byte) value {
	fv := value{typ: f.typ, name: f.name}
	if f.bitSize > 0 {
		var buf [8]byte
		if int(f.off) < len(structBytes) {
			copy(buf[:], structBytes[f.off:])
		}
		u := bitfield(binary.LittleEndian.Uint64(buf[:]), f, f.typ.signed)
		r := rvalue(f.typ, u)
		if v.inMem && f.off >= 0 && f.bitOff >= 0 && f.bitOff+f.bitSize <= 64 {
			r.bits = &bitLoc{addr: v.addr + uint64(f.off), off: uint(f.bitOff), size: uint(f.bitSize)}
		}
		if v.bitsGone(f) {
			r.opt = make([]byte, len(r.raw))
			for i := range r.opt {
				r.opt[i] = 0xff
			}
		}
		return r
	}
	if v.inMem {
		fv.inMem, fv.addr, fv.viaPtr = true, v.addr+uint64(f.off), v.viaPtr
		return fv
	}
	end := f.off + f.typ.size
	if int(end) <= len(structBytes) && f.off >= 0 {
		fv.raw = structBytes[f.off:end]
		fv.opt = v.optSlice(f.off, f.typ.size)
		if v.fpReg != "" {
			fv.fpReg, fv.fpOff = v.fpReg, v.fpOff+f.off
		}
	}
	return fv
}

func index(v value, i int64) value {
	el := v.typ.el()
	if v.inMem {
		return value{typ: el, inMem: true, addr: v.addr + uint64(i*el.size), viaPtr: v.viaPtr}
	}
	start := i * el.size
	if start+el.size <= int64(len(v.raw)) {
		ev := value{typ: el, raw: v.raw[start : start+el.size], opt: v.optSlice(start, el.size)}
		if v.fpReg != "" {
			ev.fpReg, ev.fpOff = v.fpReg, v.fpOff+start
		}
		return ev
	}
	return value{typ: el, raw: make([]byte, el.size)}
}

// truthy reports a value's truth for conditions.
func truthy(v value, sc scope) (bool, error) {
	if v.typ.kind == tFloat {
		f, err := v.f64(sc)
		return f != 0, err
	}
	u, err := v.u64(sc)
	return u != 0, err
}

// assign stores u (or the parsed text) into an lvalue.
func assign(v value, sc scope, src value) error {
	if !v.typ.isScalar() {
		return fmt.Errorf("cannot assign to a value of type %s", v.typ)
	}
	var u uint64
	var b []byte
	if isX87(v.typ) {
		// In x87's precision: set var ld = 1.0L/3 stores all 64 bits of
		// its mantissa (through a double it kept 53).
		f, ok, err := src.bigOf(sc)
		if err != nil {
			return err
		}
		if ok {
			if r, ok := x87Value(f, v.typ); ok {
				b = r.raw
			}
		}
	}
	if v.typ.kind == tFloat && b == nil {
		f, err := src.f64OrInt(sc)
		if err != nil {
			return err
		}
		b = floatBytes(f, floatFormatOf(v.typ), v.typ.size)
		u = intFrom(b, false)
	} else if v.typ.kind == tFloat {
		u = intFrom(b, false)
	} else {
		var err error
		if u, err = src.u64(sc); err != nil {
			return err
		}
		b = scalarBytes(u, v.typ, (src.typ.signed || src.typ.kind == tFloat) && int64(u) < 0)
	}
	switch {
	case v.inMem:
		return sc.writeMem(b, v.addr)
	case v.reg != "":
		return sc.regSet(v.reg, u)
	case v.bits != nil:
		return v.bits.store(u, sc)
	case v.fpReg != "":
		if w, ok := sc.(fpWriter); ok {
			return w.fpSet(v.fpReg, v.fpOff, b)
		}
	}
	return errors.New("this value cannot be changed (it is not in memory or a register)")
}

// scalarBytes is u stored in a scalar of type t: its low bytes, and
// past 64 bits (an __int128) its sign's when negative is set.
func scalarBytes(u uint64, t *ctype, negative bool) []byte {
	n := max(t.size, 8)
	b := make([]byte, n)
	binary.LittleEndian.PutUint64(b, u)
	if negative {
		for i := 8; i < len(b); i++ {
			b[i] = 0xff
		}
	}
	return b[:max(t.size, 0)]
}

func (v value) f64OrInt(sc scope) (float64, error) {
	if v.typ.kind == tFloat {
		return v.f64(sc)
	}
	u, err := v.u64(sc)
	if v.typ.signed {
		return float64(int64(u)), err
	}
	return float64(u), err
}

// regType is the type of a register name.
func regType(name string) *ctype {
	var r x86.Regs
	n := strings.ToLower(name)
	switch n { // as gdb types them on x86-64: $pc code, $sp and $fp data pointers
	case "rip":
		return typCodePtr
	case "rsp", "rbp":
		return typDataPtr
	}
	if _, ok := r.Get(n); ok {
		switch {
		case strings.HasPrefix(n, "e") || strings.HasSuffix(n, "d"):
			return typUInt
		case strings.HasSuffix(n, "l") || strings.HasSuffix(n, "h") || strings.HasSuffix(n, "b"):
			return typUChar
		case len(n) == 2 && n != "r8" && n != "r9":
			return typUShrt
		case strings.HasSuffix(n, "w"):
			return typUShrt
		}
	}
	return typULong
}
