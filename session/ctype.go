package session

import (
	"debug/dwarf"
	"strconv"
	"strings"

	"vmdap/session/symbols"
)

type tkind uint8

const (
	tVoid tkind = iota
	tInt
	tBool
	tChar
	tFloat
	tPtr
	tArray
	tStruct
	tEnum
	tFunc
	// tComplex: C's _Complex float, double and long double (elem: the
	// floating type of each of its two parts).
	tComplex
)

// ctype is the C type of a value, converted from DWARF (or made up for
// registers and literals).
type ctype struct {
	kind   tkind
	name   string
	size   int64
	signed bool
	elem   *ctype // pointer target, array element or function's return type: el()
	// target: a pointer's target not yet converted (el() converts it on
	// first use). A struct's graph through its pointers is most of a
	// kernel's types (struct task_struct reaches thousands), and most
	// of it is never shown.
	target *lazyType
	count  int64 // array length (-1 unknown)
	fields []field
	enums  []enumVal
	params []*ctype // a function's parameters' types (typDots: more)
	qual   qual     // the type's own qualifiers (a pointer's: int * const)
	// typedef: name is a typedef's, and under the name of the type it
	// stands for ("" for one with no name: a pointer, an array), which
	// ptype shows (ptype.go).
	typedef bool
	under   string
	// underQual: the qualifiers of the type under the typedefs
	// (typedef const volatile int cvint: const volatile), which ptype
	// shows; alias: what the typedef names, one level down, as whatis
	// shows it (typedef cvint cvint2: cvint).
	underQual qual
	alias     string
	// incomplete: a struct or union only declared (no DW_AT_byte_size,
	// no members): gdb's <incomplete type>.
	incomplete bool
	quad       bool // a 16-byte float in IEEE binary128, not x87's extended format
	union      bool
	// rust: what a Rust struct or enum is beyond its C shape (its path,
	// its variants); rstr/rslice: a &str or &[T] (data_ptr, length).
	rust     *symbols.RustType
	variants []rustVariant // rust.Enum's, with their data's types
	rstr     bool
	rslice   bool
	rustLang bool // a Rust type: arrays print as [a, b]
}

// typeCache converts DWARF types for one scope: by the dwarf.Type value,
// with the image's symbols for what is beyond C (Rust).
type typeCache struct {
	m    map[dwarf.Type]*ctype
	sym  *symbols.Set
	rust bool // converting a Rust variable's type (a Rust unit's types are its own)
	// depth is fromDWARF's nesting; copies are the typedefs and
	// qualified types made as copies of their types during it, copied
	// again when the outermost call ends: a struct converting its
	// fields is in the cache half done, and a typedef of it met among
	// them (typedef struct node node_t; node_t *next) would keep the
	// fields it had then.
	depth  int
	copies []typeCopy
	// evicted is sym's EvictedCost when the cache was made (stopTypes).
	evicted uint64
}

// typeCopy is a type made as a copy of another, and what it changes.
type typeCopy struct {
	dst, src *ctype
	fix      func(*ctype)
}

// completeStruct returns the definition of a struct or union that t only
// declares, by its name, or nil (t is complete, has no name, or the
// image defines none of its kind).
func completeStruct(t *dwarf.StructType, cache *typeCache) *dwarf.StructType {
	if !t.Incomplete || t.StructName == "" || cache.sym == nil {
		return nil
	}
	dt, ok := cache.sym.TypeByName(t.StructName)
	if !ok {
		return nil
	}
	for i := 0; i < 8; i++ { // (a typedef of the same name: typedef struct x x)
		td, ok := dt.(*dwarf.TypedefType)
		if !ok {
			break
		}
		dt = td.Type
	}
	full, ok := dt.(*dwarf.StructType)
	if !ok || full.Incomplete || full.Kind != t.Kind || full.StructName != t.StructName {
		return nil
	}
	return full
}

// copyType makes dst a copy of src changed by fix, now and again when
// the conversion in progress ends.
func (c *typeCache) copyType(dst, src *ctype, fix func(*ctype)) {
	*dst = *src
	fix(dst)
	c.copies = append(c.copies, typeCopy{dst, src, fix})
}

func newTypeCache(sym *symbols.Set) *typeCache {
	c := &typeCache{m: map[dwarf.Type]*ctype{}, sym: sym}
	if sym != nil {
		c.evicted = sym.EvictedCost()
	}
	return c
}

// maxStopTypes bounds the types a stop's cache converts (a few hundred
// bytes each): past it, the scopes made after start a new cache.
const maxStopTypes = 100_000

// stopTypesTurnover is how much of the unit caches may be let go
// (symbols.Set.EvictedCost) while a stop's type cache lives: its keys
// and their graphs are the units' debug/dwarf types, which it keeps
// after the unit cache let their units go. Counting its own types alone,
// a long stop (a core dump's session is one) that evaluated a few
// thousand globals of as many units held 1.4 GB of evicted units' types
// (the unit cache bounds them at about 64 MB).
var stopTypesTurnover = uint64(symbols.CacheCost)

// stopTypes returns the type cache that the scopes of a stop share
// (session locked): each evaluate, hover and expansion would otherwise
// convert its type's whole graph again (struct task_struct's: 0.7 MB,
// kept until the guest runs). Its keys are the units' debug/dwarf types;
// it goes when the guest runs again, grows past maxStopTypes, or the
// unit caches have let go of a cache's worth of units since it was made,
// so it holds no unit's types long after the unit cache let them go.
func (s *Session) stopTypes() *typeCache {
	if s.types == nil || len(s.types.m) > maxStopTypes ||
		(s.sym != nil && s.sym.EvictedCost()-s.types.evicted >= stopTypesTurnover) {
		s.types = newTypeCache(s.sym)
	}
	return s.types
}

type field struct {
	name    string
	off     int64
	typ     *ctype
	bitSize int64
	bitOff  int64 // from the start of the field's storage (DWARF 4 data_bit_offset semantics)
}

type enumVal struct {
	name string
	val  int64
}

var (
	typLong  = &ctype{kind: tInt, name: "long", size: 8, signed: true}
	typULong = &ctype{kind: tInt, name: "unsigned long", size: 8}
	typInt   = &ctype{kind: tInt, name: "int", size: 4, signed: true}
	typUInt  = &ctype{kind: tInt, name: "unsigned int", size: 4}
	typShort = &ctype{kind: tInt, name: "short", size: 2, signed: true}
	typUShrt = &ctype{kind: tInt, name: "unsigned short", size: 2}
	typChar  = &ctype{kind: tChar, name: "char", size: 1, signed: true}
	typUChar = &ctype{kind: tChar, name: "unsigned char", size: 1}
	typSChar = &ctype{kind: tChar, name: "signed char", size: 1, signed: true}
	typLDbl  = &ctype{kind: tFloat, name: "long double", size: 16}
	typBool  = &ctype{kind: tBool, name: "_Bool", size: 1}
	typVoid  = &ctype{kind: tVoid, name: "void"}
	typDbl   = &ctype{kind: tFloat, name: "double", size: 8}
	typFlt   = &ctype{kind: tFloat, name: "float", size: 4}
	typDots  = &ctype{kind: tVoid, name: "..."} // a function's further parameters
	// typNoDebugFunc is a function known only by its ELF symbol, named
	// as gdb names it.
	typNoDebugFunc = &ctype{kind: tFunc, name: "<text variable, no debug info>", size: 1}
)

func ptrTo(t *ctype) *ctype { return &ctype{kind: tPtr, size: 8, elem: t} }

// The types of the 64-bit instruction, stack and frame pointers, as gdb
// gives them: void (*)() and void *.
var (
	typCodePtr = ptrTo(&ctype{kind: tFunc, size: 1, elem: typVoid})
	typDataPtr = ptrTo(typVoid)
)

// lazyType is a DWARF type to convert when first needed, in the cache of
// the conversion that met it.
type lazyType struct {
	dt    dwarf.Type
	cache *typeCache
}

// el returns the element, pointer target or return type, converting a
// pointer's target on first use. The pointer's copies (typedefs and
// qualified versions of it) convert it on their first use too, to the
// same type through the cache.
func (t *ctype) el() *ctype {
	if l := t.target; l != nil {
		t.elem, t.target = fromDWARF(l.dt, l.cache), nil
	}
	return t.elem
}

// qual is a set of C type qualifiers.
type qual uint8

const (
	qConst qual = 1 << iota
	qVolatile
	qRestrict
	qAtomic
)

// String lists the qualifiers in gdb's order (c_type_print_modifier):
// const volatile restrict _Atomic, whatever order the DWARF nests them in.
func (q qual) String() string {
	var out []string
	for i, n := range []string{"const", "volatile", "restrict", "_Atomic"} {
		if q&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, " ")
}

// qualNamed is the qualifier debug/dwarf's QualType names.
func qualNamed(s string) qual {
	switch s {
	case "const":
		return qConst
	case "volatile":
		return qVolatile
	case "restrict":
		return qRestrict
	}
	return 0
}

// String renders the type as gdb's whatis spells it: typedef names kept
// (handler_t [3]), declarators inside out (int (*)(int), int [2][3],
// const char * const).
func (t *ctype) String() string { return t.decl("") }

// decl spells the type around inner, the declarator built so far from
// the outside in: a pointer puts its star (and its own qualifiers) in
// front, an array or function its suffix behind, in parentheses when
// the declarator is a pointer's.
func (t *ctype) decl(inner string) string {
	if t == nil {
		return joinDecl("void", inner)
	}
	if t.name != "" || t.el() == nil {
		base := t.name
		if q := t.qual.String(); q != "" {
			base = q + " " + base
		}
		return joinDecl(base, inner)
	}
	switch t.kind {
	case tPtr:
		star := "*"
		if q := t.qual.String(); q != "" {
			star += " " + q
			if strings.HasPrefix(inner, "*") {
				star += " " // int * const *, but int (* const[2])(void)
			}
		}
		return t.el().decl(star + inner)
	case tArray:
		n := ""
		if t.count >= 0 {
			n = strconv.FormatInt(t.count, 10)
		}
		return t.elemQualified().decl(parenPtr(inner) + "[" + n + "]")
	case tFunc:
		return t.el().decl(parenPtr(inner) + "(" + t.paramList() + ")")
	}
	return joinDecl(t.name, inner)
}

// elemQualified is an array's element type with the array's own
// qualifiers, where C puts them.
func (t *ctype) elemQualified() *ctype {
	if t.qual == 0 {
		return t.el()
	}
	e := *t.el()
	e.qual |= t.qual
	return &e
}

func joinDecl(base, inner string) string {
	if inner == "" {
		return base
	}
	return base + " " + inner
}

// parenPtr wraps a pointer declarator before an array or function
// suffix: (*)[3], (* const)(int).
func parenPtr(inner string) string {
	if strings.HasPrefix(inner, "*") {
		return "(" + inner + ")"
	}
	return inner
}

// paramList is a function type's parameters as C lists them.
func (t *ctype) paramList() string {
	if len(t.params) == 0 {
		return "void"
	}
	ps := make([]string, len(t.params))
	for i, p := range t.params {
		ps[i] = p.String()
	}
	return strings.Join(ps, ", ")
}

// gdbIntNames are GCC's names of C's integer types as gdb shows them.
var gdbIntNames = map[string]string{
	"short int": "short", "short unsigned int": "unsigned short",
	"long int": "long", "long unsigned int": "unsigned long",
	"long long int": "long long", "long long unsigned int": "unsigned long long",
}

func intName(dwarfName string) string {
	if n, ok := gdbIntNames[dwarfName]; ok {
		return n
	}
	return dwarfName
}

// fromDWARF converts a DWARF type, caching by the dwarf.Type value.
func fromDWARF(dt dwarf.Type, cache *typeCache) *ctype {
	if dt == nil {
		return typVoid
	}
	if c, ok := cache.m[dt]; ok {
		return c
	}
	c := &ctype{size: dt.Size(), rustLang: cache.rust}
	cache.m[dt] = c
	cache.depth++
	defer func() {
		if cache.depth--; cache.depth == 0 {
			for _, cp := range cache.copies {
				*cp.dst = *cp.src
				cp.fix(cp.dst)
			}
			cache.copies = cache.copies[:0]
		}
	}()
	switch t := dt.(type) {
	case *dwarf.IntType:
		c.kind, c.name, c.signed = tInt, intName(t.Name), true
	case *dwarf.UintType:
		c.kind, c.name = tInt, intName(t.Name)
	case *dwarf.CharType:
		c.kind, c.name, c.signed = tChar, t.Name, true
	case *dwarf.UcharType:
		c.kind, c.name = tChar, t.Name
	case *dwarf.BoolType:
		c.kind, c.name = tBool, t.Name
	case *dwarf.FloatType:
		// IEEE's binary128 by its name, as gdb tells it from x87's
		// extended format, both 16 bytes on x86-64.
		c.kind, c.name = tFloat, t.Name
		c.quad = t.Name == "_Float128" || t.Name == "__float128"
	case *dwarf.ComplexType:
		// Two floats, the real part first, as gdb prints them: 1.5 +
		// -2.25i. (GCC's complex int is a base type of its own
		// encoding, which debug/dwarf does not read.)
		c.kind, c.name = tComplex, t.Name
		part := &ctype{kind: tFloat, size: t.ByteSize / 2, name: strings.TrimPrefix(t.Name, "complex ")}
		part.quad = strings.Contains(t.Name, "128")
		if part.name == t.Name { // (clang names every one "complex")
			part.name = map[int64]string{4: "float", 8: "double", 16: "long double"}[part.size]
		}
		c.elem = part
	case *dwarf.AddrType:
		c.kind, c.name = tInt, t.Name
	case *dwarf.PtrType:
		c.kind, c.size = tPtr, 8
		if t.ByteSize == 4 {
			c.size = 4 // a 32-bit image's pointer
		}
		if tc, ok := cache.m[t.Type]; ok || t.Type == nil {
			c.elem = tc // converted already (or void: nil)
			if !ok {
				c.elem = typVoid
			}
		} else {
			c.target = &lazyType{t.Type, cache}
		}
	case *dwarf.ArrayType:
		c.kind = tArray
		c.elem = fromDWARF(t.Type, cache)
		c.count = t.Count
		if c.count >= 0 && c.el().size > 0 {
			c.size = c.count * c.el().size
		}
	case *dwarf.StructType:
		if full := completeStruct(t, cache); full != nil {
			// A declaration (struct files_struct; in a unit that only
			// points to it) is its definition, found by name, as gdb's
			// check_typedef finds an opaque type's.
			cache.copyType(c, fromDWARF(full, cache), func(*ctype) {})
			break
		}
		c.kind = tStruct
		c.union = t.Kind == "union"
		c.incomplete = t.Incomplete
		c.name = t.Kind + " " + t.StructName
		if t.StructName == "" {
			c.name = t.Kind + " {...}"
		}
		for i, f := range t.Field {
			fld := field{name: f.Name, off: f.ByteOffset, typ: fromDWARF(f.Type, cache), bitSize: f.BitSize}
			if i == len(t.Field)-1 && fld.typ.kind == tArray && fld.typ.count == 0 && f.ByteOffset == t.ByteSize && !c.union {
				// debug/dwarf gives a flexible array member at the very end
				// of its struct (no padding after it) 0 elements, not the
				// -1 of one with no bound: it is the flexible array C
				// wrote (u8 data[]), as gdb shows it. (A GNU [0] array there
				// reads the same.)
				flex := *fld.typ
				flex.count = -1
				fld.typ = &flex
			}
			if f.BitSize > 0 {
				fld.bitOff = f.DataBitOffset - 8*f.ByteOffset
				if f.DataBitOffset == 0 && f.ByteSize > 0 {
					// DWARF 2/3's big-endian-style DW_AT_bit_offset, which
					// GCC writes up to DWARF 4 and clang 14 in every
					// version, always with the storage unit's
					// DW_AT_byte_size (a DW_AT_data_bit_offset comes
					// without one). debug/dwarf gives an absent
					// DW_AT_bit_offset and a DW_AT_bit_offset of 0 (a
					// field that ends its storage unit: int hi : 11 after
					// unsigned lo : 21) alike as 0: the byte size tells.
					fld.bitOff = f.ByteSize*8 - f.BitOffset - f.BitSize
				}
				fld.off, fld.bitOff = storageUnit(8*fld.off+fld.bitOff, fld.typ.size, f.BitSize)
			}
			c.fields = append(c.fields, fld)
		}
		if cache.sym != nil {
			if rt, ok := cache.sym.RustType(t); ok {
				c.rust = rt
				c.name = rt.Path
				if rt.Enum != nil {
					for _, v := range rt.Enum.Variants {
						c.variants = append(c.variants, rustVariant{name: v.Name, path: v.Path, value: v.Value,
							hasValue: v.HasValue, off: v.Off, typ: fromDWARF(v.Type, cache)})
					}
				}
			}
			if str, slice := symbols.IsRustSlice(t.StructName); (str || slice) && len(c.fields) == 2 &&
				c.fields[0].name == "data_ptr" && c.fields[1].name == "length" {
				c.rstr, c.rslice = str, slice
				c.name = t.StructName
			}
		}
	case *dwarf.EnumType:
		// Signed when an enumerator is negative, else unsigned, as C
		// picks its underlying type (GCC's and clang's DW_AT_type:
		// unsigned int for enum { A = 1, HI = 0x80000000u }) and gdb
		// reads it: (long)e of HI is 2147483648, not -2147483648.
		c.kind = tEnum
		c.name = "enum " + t.EnumName
		for _, v := range t.Val {
			c.enums = append(c.enums, enumVal{v.Name, v.Val})
			c.signed = c.signed || v.Val < 0
		}
	case *dwarf.TypedefType:
		// The typedef's name stands for the whole type (handler_t, not
		// int (*)(int)), qualifiers inside it included.
		name := t.Name
		cache.copyType(c, fromDWARF(t.Type, cache), func(c *ctype) {
			alias := c.String() // (one level down: a typedef's name, or the type spelled)
			if !c.typedef {
				c.under, c.underQual = c.name, c.qual
			} else {
				c.underQual |= c.qual // typedef const cvint ccv;
			}
			c.name, c.qual, c.typedef, c.alias = name, 0, true, alias
		})
	case *dwarf.QualType:
		q := qualNamed(t.Qual)
		cache.copyType(c, fromDWARF(t.Type, cache), func(c *ctype) { c.qual |= q })
	case *dwarf.FuncType:
		c.kind, c.size = tFunc, 1
		c.elem = fromDWARF(t.ReturnType, cache)
		for _, p := range t.ParamType {
			if _, dots := p.(*dwarf.DotDotDotType); dots {
				c.params = append(c.params, typDots)
				continue
			}
			c.params = append(c.params, fromDWARF(p, cache))
		}
	case *dwarf.VoidType, *dwarf.UnspecifiedType:
		c.kind, c.name = tVoid, "void"
	default:
		if u, ok := atomicTarget(dt, cache); ok {
			// A qualifier: _Atomic int reads as the int it holds.
			cache.copyType(c, fromDWARF(u, cache), func(c *ctype) { c.qual |= qAtomic })
			break
		}
		c.kind, c.name = tInt, dt.String()
	}
	return c
}

// storageUnit places a bitfield at bit pos of its struct (from the
// struct's start: DWARF 5's DW_AT_data_bit_offset, which GCC gives with
// no byte offset) in the storage unit of its type's size that holds it,
// as DWARF 4's byte offset and bit offset do: the offset of that unit
// and the field's first bit in it. A member's value is read as the 8
// bytes from its offset, so a field past a struct's first 8 bytes read 0
// before (c : 3 after two longs, at bit 128). A field that straddles
// units (a packed struct's) is placed at its first byte.
func storageUnit(pos, size, bits int64) (off, bitOff int64) {
	if size <= 0 || size > 8 || size&(size-1) != 0 {
		size = 1
	}
	off = pos / 8 &^ (size - 1)
	if pos-8*off+bits > 64 {
		off = pos / 8
	}
	return off, pos - 8*off
}

// atomicTarget is the type an _Atomic type qualifies, which
// debug/dwarf does not give (see symbols.Table.AtomicTarget).
func atomicTarget(dt dwarf.Type, cache *typeCache) (dwarf.Type, bool) {
	if ut, ok := dt.(*dwarf.UnsupportedType); !ok || ut.Tag != dwarf.TagAtomicType || cache.sym == nil {
		return nil, false
	}
	return cache.sym.AtomicTarget(dt)
}

func (t *ctype) isScalar() bool {
	switch t.kind {
	case tInt, tBool, tChar, tFloat, tPtr, tEnum:
		return true
	}
	return false
}

func (t *ctype) fieldByName(name string) (field, bool) {
	for _, f := range t.fields {
		if f.name == name {
			return f, true
		}
		// anonymous struct/union members
		if f.name == "" && f.typ.kind == tStruct {
			if sub, ok := f.typ.fieldByName(name); ok {
				sub.off += f.off
				return sub, true
			}
		}
	}
	return field{}, false
}
