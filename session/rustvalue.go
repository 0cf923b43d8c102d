package session

import (
	"fmt"
	"strings"
)

// Rust values as gdb shows them: an enum as its variant with its data
// (kernel::sched::Event::Irq{line: 4, count: 300},
// core::option::Option<u32>::Some(42)), a struct prefixed by its path, a
// slice by its elements (&[u32] [3, 5, 7]) and a &str as a string.

// maxSliceShown bounds the elements a slice's rendering lists.
const maxSliceShown = 100

// rustVariant is an enum variant in a ctype.
type rustVariant struct {
	name, path string
	value      uint64
	hasValue   bool
	off        int64
	typ        *ctype
}

// variantOf returns the variant an enum value holds.
func variantOf(v value, sc scope) (rustVariant, []byte, error) {
	t := v.typ
	b, err := v.bytes(sc)
	if err != nil {
		return rustVariant{}, nil, err
	}
	var discr uint64
	if en := t.rust.Enum; en.HasDiscr {
		if en.DiscrOff < 0 || en.DiscrOff+en.DiscrSize > int64(len(b)) || en.DiscrSize > 8 {
			return rustVariant{}, nil, fmt.Errorf("discriminant outside the value")
		}
		discr = intFrom(b[en.DiscrOff:en.DiscrOff+en.DiscrSize], false)
	}
	for _, rv := range t.variants {
		if rv.hasValue && rv.value == discr {
			return rv, b, nil
		}
	}
	for _, rv := range t.variants {
		if !rv.hasValue {
			return rv, b, nil
		}
	}
	if len(t.variants) == 1 {
		return t.variants[0], b, nil
	}
	return rustVariant{}, nil, fmt.Errorf("no variant has discriminant %d", discr)
}

// variantData is the value of the active variant's data.
func variantData(v value, rv rustVariant, b []byte) value {
	return fieldValue(v, field{name: rv.name, off: rv.off, typ: rv.typ}, b)
}

// formatRust renders a Rust value; ok is false when v is not one.
func formatRust(v value, sc scope, hex bool) (string, bool) {
	t := v.typ
	switch {
	case t.rstr, t.rslice:
		ptr, n, err := sliceParts(v, sc)
		if err != nil {
			return "<" + err.Error() + ">", true
		}
		if t.rstr {
			return formatString(sc, ptr, int(min(n, 4096))), true
		}
		el := t.fields[0].typ.el()
		var parts []string
		for i := uint64(0); i < n && i < maxSliceShown; i++ {
			parts = append(parts, format(value{typ: el, inMem: true, addr: ptr + i*uint64(el.size)}, sc, hex))
		}
		if n > maxSliceShown {
			parts = append(parts, "...")
		}
		return t.name + " [" + strings.Join(parts, ", ") + "]", true
	case t.rust != nil && t.rust.Enum != nil:
		rv, b, err := variantOf(v, sc)
		if err != nil {
			return "<" + err.Error() + ">", true
		}
		return rv.path + fieldsText(variantData(v, rv, b), sc, hex, ""), true
	case t.rust != nil:
		return t.name + fieldsText(v, sc, hex, " "), true
	}
	return "", false
}

// fieldsText renders a Rust struct's fields: (a, b) for a tuple struct
// (fields __0, __1…), {f: a, g: b} otherwise, nothing for a unit struct.
func fieldsText(v value, sc scope, hex bool, sep string) string {
	t := v.typ
	if len(t.fields) == 0 {
		return ""
	}
	b, err := v.bytes(sc)
	if err != nil {
		return sep + "<" + err.Error() + ">"
	}
	tuple := strings.HasPrefix(t.fields[0].name, "__")
	var parts []string
	for i, f := range t.fields {
		if i >= 16 {
			parts = append(parts, "...")
			break
		}
		s := format(fieldValue(v, f, b), sc, hex)
		if !tuple {
			s = f.name + ": " + s
		}
		parts = append(parts, s)
	}
	if tuple {
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return sep + "{" + strings.Join(parts, ", ") + "}"
}

// sliceParts reads a &[T] or &str: its data pointer and length.
func sliceParts(v value, sc scope) (uint64, uint64, error) {
	b, err := v.bytes(sc)
	if err != nil {
		return 0, 0, err
	}
	ptr, err := fieldValue(v, v.typ.fields[0], b).u64(sc)
	if err != nil {
		return 0, 0, err
	}
	n, err := fieldValue(v, v.typ.fields[1], b).u64(sc)
	return ptr, n, err
}

// rustChildren gives a Rust enum's children in the Variables view: its
// active variant, named after it, holding its fields (a slice or &str
// keeps data_ptr and length, as gdb's children are); ok is false for
// other values.
func (s *Session) rustChildren(sc *frameScope, name, expr string, val value, hex bool) (func() ([]Var, error), int, bool) {
	t := val.typ
	switch {
	case t.rust != nil && t.rust.Enum != nil:
		return s.locked(func() ([]Var, error) {
			rv, b, err := variantOf(val, sc)
			if err != nil {
				return nil, err
			}
			if len(rv.typ.fields) == 0 {
				return nil, nil
			}
			return []Var{s.makeVar(sc, rv.name, "("+expr+")."+rv.name, variantData(val, rv, b), hex)}, nil
		}), 1, true
	}
	return nil, 0, false
}
