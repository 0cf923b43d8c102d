package symbols

import (
	"debug/dwarf"
	"strings"
)

// Rust types beyond what debug/dwarf decodes: a type's path (its
// namespaces: kernel::sched::Task) and an enum's variants (a
// DW_TAG_variant_part, which debug/dwarf skips), as gdb shows them.

// RustType describes a Rust struct or enum.
type RustType struct {
	Path string    // e.g. kernel::sched::Event
	Enum *RustEnum // nil for a plain struct
}

// RustEnum is an enum's layout: where its discriminant is and which
// variant each value selects.
type RustEnum struct {
	DiscrOff, DiscrSize int64
	HasDiscr            bool // false: one variant, no discriminant
	Variants            []RustVariant
}

// RustVariant is one variant: its name and path, the discriminant value
// that selects it (none: the default variant), and its data (a struct at
// Off).
type RustVariant struct {
	Name     string
	Path     string
	Value    uint64
	HasValue bool
	Off      int64
	Type     dwarf.Type
}

const langRust = 0x1c

// rustIndex is a Rust unit's structure types by name: their DIE offsets
// (relative to the unit's debug/dwarf view) and paths.
type rustIndex map[string][]rustEntry

type rustEntry struct {
	off  dwarf.Offset
	path string
}

// RustType returns what dt is in Rust terms, when dt is a struct type of
// a Rust unit this table has decoded.
func (t *Table) RustType(dt dwarf.Type) (*RustType, bool) {
	st, ok := dt.(*dwarf.StructType)
	if !ok || st.StructName == "" {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := t.cache.head; s != nil; s = s.next {
		if s.data == nil || s.ci < 0 || t.units[s.ci].lang != langRust {
			continue
		}
		if rt, ok := s.rustTypes[dt]; ok {
			return rt, rt != nil
		}
		if s.rustIdx == nil {
			_, r := t.unitReader(s)
			s.rustIdx = buildRustIndex(r)
		}
		for _, e := range s.rustIdx[st.StructName] {
			if typ, err := s.data.Type(e.off); err == nil && typ == dt {
				rt := rustTypeAt(s.data, e)
				if s.rustTypes == nil {
					s.rustTypes = map[dwarf.Type]*RustType{}
				}
				s.rustTypes[dt] = rt
				return rt, true
			}
		}
	}
	return nil, false
}

// buildRustIndex walks a unit's DIEs from r (at the unit's DIE), naming
// each structure type by its namespaces and enclosing types.
func buildRustIndex(r *dwarf.Reader) rustIndex {
	idx := rustIndex{}
	if r == nil {
		return idx
	}
	var stack []string // the path of each open DIE with children ("" for others)
	for n := 0; n < 1<<22; n++ {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == 0 {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 {
				break // the unit's end (a view may hold more units)
			}
			continue
		}
		parent := ""
		if len(stack) > 0 {
			parent = stack[len(stack)-1]
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		path := parent
		switch e.Tag {
		case dwarf.TagNamespace, dwarf.TagStructType, dwarf.TagUnionType, dwarf.TagEnumerationType:
			if name != "" {
				if parent != "" {
					path = parent + "::" + name
				} else {
					path = name
				}
			}
			if e.Tag == dwarf.TagStructType && name != "" {
				idx[name] = append(idx[name], rustEntry{e.Offset, path})
			}
		case dwarf.TagCompileUnit:
			path = ""
		default:
			path = ""
		}
		if e.Children {
			stack = append(stack, path)
		} else if len(stack) == 0 {
			break // a unit without children
		}
	}
	return idx
}

// rustTypeAt reads the struct DIE at e: its variant part, if any.
func rustTypeAt(d *dwarf.Data, e rustEntry) *RustType {
	rt := &RustType{Path: e.path}
	r := d.Reader()
	r.Seek(e.off)
	s, err := r.Next()
	if err != nil || s == nil || !s.Children {
		return rt
	}
	for {
		c, err := r.Next()
		if err != nil || c == nil || c.Tag == 0 {
			return rt
		}
		if c.Tag == dwarf.TagVariantPart {
			rt.Enum = variantPart(d, r, c, e.path)
			return rt
		}
		if c.Children {
			r.SkipChildren()
		}
	}
}

func variantPart(d *dwarf.Data, r *dwarf.Reader, vp *dwarf.Entry, path string) *RustEnum {
	en := &RustEnum{}
	discr, hasDiscr := vp.Val(dwarf.AttrDiscr).(dwarf.Offset)
	if !vp.Children {
		return en
	}
	for {
		c, err := r.Next()
		if err != nil || c == nil || c.Tag == 0 {
			return en
		}
		switch c.Tag {
		case dwarf.TagMember:
			if hasDiscr && c.Offset == discr {
				en.HasDiscr = true
				en.DiscrOff = memberOffset(c)
				if off, ok := c.Val(dwarf.AttrType).(dwarf.Offset); ok {
					if typ, err := d.Type(off); err == nil {
						en.DiscrSize = typ.Size()
					}
				}
			}
		case dwarf.TagVariant:
			v := RustVariant{}
			switch x := c.Val(dwarf.AttrDiscrValue).(type) {
			case int64:
				v.Value, v.HasValue = uint64(x), true
			case uint64:
				v.Value, v.HasValue = x, true
			}
			if c.Children {
				for {
					m, err := r.Next()
					if err != nil || m == nil || m.Tag == 0 {
						break
					}
					if m.Tag == dwarf.TagMember {
						v.Name, _ = m.Val(dwarf.AttrName).(string)
						v.Off = memberOffset(m)
						if off, ok := m.Val(dwarf.AttrType).(dwarf.Offset); ok {
							v.Type, _ = d.Type(off)
						}
					}
					if m.Children {
						r.SkipChildren()
					}
				}
			}
			v.Path = path + "::" + v.Name
			en.Variants = append(en.Variants, v)
			continue
		}
		if c.Children {
			r.SkipChildren()
		}
	}
}

func memberOffset(e *dwarf.Entry) int64 {
	switch v := e.Val(dwarf.AttrDataMemberLoc).(type) {
	case int64:
		return v
	case []byte:
		// DW_OP_plus_uconst n (DWARF 2 style)
		if len(v) > 1 && v[0] == 0x23 {
			b := v[1:]
			n, _ := uleb(&b)
			return int64(n)
		}
	}
	return 0
}

// Variant picks the variant a discriminant value selects: the one with
// that value, else the default (the one without a value).
func (e *RustEnum) Variant(discr uint64) (RustVariant, bool) {
	var def *RustVariant
	for i, v := range e.Variants {
		if v.HasValue && v.Value == discr {
			return v, true
		}
		if !v.HasValue {
			def = &e.Variants[i]
		}
	}
	if def != nil {
		return *def, true
	}
	if !e.HasDiscr && len(e.Variants) == 1 {
		return e.Variants[0], true
	}
	return RustVariant{}, false
}

// IsRustSlice reports a Rust slice or str reference type (a struct named
// &[T] or &str with data_ptr and length members).
func IsRustSlice(name string) (str, slice bool) {
	switch {
	case name == "&str" || name == "&mut str":
		return true, false
	case strings.HasPrefix(name, "&[") || strings.HasPrefix(name, "&mut ["):
		return false, true
	}
	return false, false
}
