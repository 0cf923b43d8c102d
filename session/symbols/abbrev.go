package symbols

// DWARF constants the index and decoders use (DWARF 5, §7.5).
const (
	tagArrayType       = 0x01
	tagClassType       = 0x02
	tagEnumerationType = 0x04
	tagFormalParameter = 0x05
	tagLexicalBlock    = 0x0b
	tagMember          = 0x0d
	tagCompileUnit     = 0x11
	tagStructureType   = 0x13
	tagTypedef         = 0x16
	tagUnionType       = 0x17
	tagInlinedSub      = 0x1d
	tagModule          = 0x1e
	tagBaseType        = 0x24
	tagEnumerator      = 0x28
	tagSubprogram      = 0x2e
	tagVariable        = 0x34
	tagNamespace       = 0x39
	tagPartialUnit     = 0x3c
	tagCallSite        = 0x48
	tagCallSiteParam   = 0x49
	tagGNUCallSite     = 0x4109
	tagGNUCallSiteParm = 0x410a

	atSibling        = 0x01
	atLocation       = 0x02
	atName           = 0x03
	atStmtList       = 0x10
	atLowpc          = 0x11
	atHighpc         = 0x12
	atLanguage       = 0x13
	atCompDir        = 0x1b
	atConstValue     = 0x1c
	atInline         = 0x20
	atProducer       = 0x25
	atAbstractOrigin = 0x31
	atDeclFile       = 0x3a
	atDeclLine       = 0x3b
	atDeclaration    = 0x3c
	atExternal       = 0x3f
	atFrameBase      = 0x40
	atSpecification  = 0x47
	atType           = 0x49
	atEntryPC        = 0x52
	atRanges         = 0x55
	atCallFile       = 0x58
	atCallLine       = 0x59
	atEnumClass      = 0x6d
	atLinkageName    = 0x6e
	atStrOffsetsBase = 0x72
	atAddrBase       = 0x73
	atRnglistsBase   = 0x74
	atLoclistsBase   = 0x8c
	atCallReturnPC   = 0x7d
	atCallValue      = 0x7e
	atCallPC         = 0x81
	atMIPSLinkage    = 0x2007
	atGNURangesBase  = 0x2132
	atGNUAddrBase    = 0x2133
	atGNUCallValue   = 0x2111

	formAddr          = 0x01
	formBlock2        = 0x03
	formBlock4        = 0x04
	formData2         = 0x05
	formData4         = 0x06
	formData8         = 0x07
	formString        = 0x08
	formBlock         = 0x09
	formBlock1        = 0x0a
	formData1         = 0x0b
	formFlag          = 0x0c
	formSdata         = 0x0d
	formStrp          = 0x0e
	formUdata         = 0x0f
	formRefAddr       = 0x10
	formRef1          = 0x11
	formRef2          = 0x12
	formRef4          = 0x13
	formRef8          = 0x14
	formRefUdata      = 0x15
	formIndirect      = 0x16
	formSecOffset     = 0x17
	formExprloc       = 0x18
	formFlagPresent   = 0x19
	formStrx          = 0x1a
	formAddrx         = 0x1b
	formRefSup4       = 0x1c
	formStrpSup       = 0x1d
	formData16        = 0x1e
	formLineStrp      = 0x1f
	formRefSig8       = 0x20
	formImplicitConst = 0x21
	formLoclistx      = 0x22
	formRnglistx      = 0x23
	formRefSup8       = 0x24
	formStrx1         = 0x25
	formStrx2         = 0x26
	formStrx3         = 0x27
	formStrx4         = 0x28
	formAddrx1        = 0x29
	formAddrx2        = 0x2a
	formAddrx3        = 0x2b
	formAddrx4        = 0x2c
	formGNUAddrIndex  = 0x1f01
	formGNUStrIndex   = 0x1f02
	formGNURefAlt     = 0x1f20
	formGNUStrpAlt    = 0x1f21
)

// attrSpec is one attribute of an abbreviation.
type attrSpec struct {
	at    uint32
	form  uint32
	imm   int64 // DW_FORM_implicit_const's value
	fixed int8  // the encoded size when fixed for this unit, else -1
}

// abbrev is one abbreviation: a DIE's tag, whether it has children, and
// its attributes' forms.
type abbrev struct {
	tag      uint32
	children bool
	attrs    []attrSpec
	// fixedSize is the size of all attributes together when every form
	// has a fixed size in this unit (a DIE can be skipped in one step),
	// else -1.
	fixedSize int
	// For the index's fast paths (index.go, passOver), in a DIE of an
	// abbreviation whose attributes all have fixed sizes: typeName is
	// the offset of a named type's DW_FORM_strp name (-1: not such a
	// type), sibAt that of its DW_FORM_ref4 sibling (-1: none), and decl
	// says the index passes over it: a declaration (DW_AT_declaration,
	// DW_FORM_flag_present) of a function, variable or type, or an
	// anonymous type.
	typeName, sibAt int16
	decl            bool
	indexed         bool // its tag is one the index records (indexedTag)
}

// abbrevTable maps abbreviation codes to abbreviations; codes are
// usually dense from 1, so a slice serves most, a map the rest.
type abbrevTable struct {
	dense  []*abbrev
	sparse map[uint64]*abbrev
	// Backing arrays, reused when a table is parsed into this one again.
	specs []attrSpec
	abbrs []abbrev
	spans []abbrevSpan
	// refs says which references to other units its DIEs can hold: to
	// another unit's DIE (DW_FORM_ref_addr), to a type unit
	// (DW_FORM_ref_sig8); DW_FORM_indirect counts as both.
	refs unitRefs
}

// unitRefs are the kinds of reference out of a unit (see typeunits.go).
type unitRefs uint8

const (
	refsAddr unitRefs = 1 << iota // DW_FORM_ref_addr: a DIE of another unit
	refsSig8                      // DW_FORM_ref_sig8: a type unit's type
)

type abbrevSpan struct {
	code       uint64
	start, end int
}

func (t *abbrevTable) get(code uint64) *abbrev {
	if code < uint64(len(t.dense)) {
		return t.dense[code]
	}
	return t.sparse[code]
}

// unitFormat is what sizes a form in one unit.
type unitFormat struct {
	version  int
	addrSize int
	offSize  int // 4, or 8 in 64-bit DWARF
}

// formSize returns the fixed encoded size of form in a unit, or -1.
func (u unitFormat) formSize(form uint32) int {
	switch form {
	case formFlagPresent, formImplicitConst:
		return 0
	case formAddr:
		return u.addrSize
	case formData1, formRef1, formFlag, formStrx1, formAddrx1:
		return 1
	case formData2, formRef2, formStrx2, formAddrx2:
		return 2
	case formStrx3, formAddrx3:
		return 3
	case formData4, formRef4, formRefSup4, formStrx4, formAddrx4:
		return 4
	case formData8, formRef8, formRefSig8, formRefSup8:
		return 8
	case formData16:
		return 16
	case formStrp, formLineStrp, formSecOffset, formStrpSup, formGNURefAlt, formGNUStrpAlt:
		return u.offSize
	case formRefAddr:
		if u.version == 2 {
			return u.addrSize
		}
		return u.offSize
	}
	return -1
}

// parseAbbrevs reads the abbreviation table at off into t (reusing its
// arrays; nil: a new table). Abbreviations and their attribute specs
// live in two arrays per table.
func parseAbbrevs(t *abbrevTable, sec []byte, off uint64, u unitFormat) (*abbrevTable, error) {
	if off >= uint64(len(sec)) {
		return nil, formatError("abbrev", off, "offset out of range")
	}
	if t == nil {
		t = &abbrevTable{}
	}
	r := rd{b: sec, pos: int(off)}
	specs, abbrs, spans := t.specs[:0], t.abbrs[:0], t.spans[:0]
	var refs unitRefs
	// The sizes of the standard forms in this unit, looked up rather than
	// switched on: a kernel has 6 MB of abbreviations, a table per unit.
	var sizes [0x30]int8
	for f := range sizes {
		sizes[f] = int8(u.formSize(uint32(f)))
	}
	for !r.eof() {
		code := r.uleb()
		if code == 0 {
			break
		}
		a := abbrev{tag: uint32(r.uleb()), children: r.u8() != 0}
		start := len(specs)
		for !r.eof() {
			var at, form uint64
			if p := r.pos; p+1 < len(r.b) && (r.b[p]|r.b[p+1])&0x80 == 0 {
				at, form = uint64(r.b[p]), uint64(r.b[p+1]) // both one byte: most pairs
				r.pos = p + 2
			} else {
				at, form = r.uleb(), r.uleb()
			}
			if at == 0 && form == 0 {
				break
			}
			sp := attrSpec{at: uint32(at), form: uint32(form)}
			switch form {
			case formImplicitConst:
				sp.imm = r.sleb()
			case formRefAddr:
				refs |= refsAddr
			case formRefSig8:
				refs |= refsSig8
			case formIndirect:
				refs |= refsAddr | refsSig8
			}
			if form < uint64(len(sizes)) {
				sp.fixed = sizes[form]
			} else {
				sp.fixed = int8(u.formSize(sp.form))
			}
			if sp.fixed < 0 {
				a.fixedSize = -1
			} else if a.fixedSize >= 0 {
				a.fixedSize += int(sp.fixed)
			}
			specs = append(specs, sp)
		}
		a.typeName, a.sibAt, a.decl = fastPaths(a, specs[start:])
		a.indexed = indexedTag(a.tag)
		abbrs = append(abbrs, a)
		spans = append(spans, abbrevSpan{code, start, len(specs)})
	}
	if r.bad {
		return nil, formatError("abbrev", off, "truncated table")
	}
	t.specs, t.abbrs, t.spans, t.refs = specs, abbrs, spans, refs
	clear(t.dense)
	t.dense = t.dense[:0]
	t.sparse = nil
	for i, sp := range spans {
		a := &abbrs[i]
		a.attrs = specs[sp.start:sp.end:sp.end]
		if sp.code < 1<<16 {
			if uint64(len(t.dense)) <= sp.code {
				t.dense = append(t.dense, make([]*abbrev, int(sp.code)+1-len(t.dense))...)
			}
			t.dense[sp.code] = a
		} else {
			if t.sparse == nil {
				t.sparse = map[uint64]*abbrev{}
			}
			t.sparse[sp.code] = a
		}
	}
	return t, nil
}

// skipForm skips one attribute value of a variable-size form. It reports
// false for an unknown form (the rest of the unit cannot be decoded).
func (r *rd) skipForm(form uint32, u unitFormat) bool {
	if n := u.formSize(form); n >= 0 {
		r.skip(uint64(n))
		return true
	}
	switch form {
	case formString:
		r.cstr()
	case formBlock1:
		r.skip(uint64(r.u8()))
	case formBlock2:
		r.skip(uint64(r.u16()))
	case formBlock4:
		r.skip(uint64(r.u32()))
	case formBlock, formExprloc:
		r.skip(r.uleb())
	case formSdata:
		r.sleb()
	case formUdata, formRefUdata, formStrx, formAddrx, formLoclistx, formRnglistx, formGNUAddrIndex, formGNUStrIndex:
		r.uleb()
	case formIndirect:
		return r.skipForm(uint32(r.uleb()), u)
	default:
		return false
	}
	return true
}

// FormatError reports malformed debug information.
type FormatError struct {
	Section string
	Offset  uint64
	Msg     string
}

func (e *FormatError) Error() string {
	return "malformed ." + "debug_" + e.Section + " at " + hex(e.Offset) + ": " + e.Msg
}

func formatError(sec string, off uint64, msg string) error {
	return &FormatError{Section: sec, Offset: off, Msg: msg}
}

func hex(v uint64) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0x0"
	}
	var b [18]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = digits[v&15]
		v >>= 4
	}
	i -= 2
	b[i], b[i+1] = '0', 'x'
	return string(b[i:])
}

// fastPaths finds an abbreviation's typeName, sibAt and decl (see
// abbrev): only for the tags the index looks at, with attributes all of
// fixed sizes and, when the DIE has children, a DW_FORM_ref4 sibling to
// pass over them.
func fastPaths(a abbrev, specs []attrSpec) (typeName, sibAt int16, decl bool) {
	isType := false
	switch a.tag {
	case tagBaseType, tagStructureType, tagUnionType, tagEnumerationType, tagTypedef, tagClassType:
		isType = true
	case tagSubprogram, tagVariable:
	default:
		return -1, -1, false
	}
	if a.fixedSize < 0 || a.fixedSize > 1<<14 {
		return -1, -1, false
	}
	typeName, sibAt = -1, -1
	pos := int16(0)
	for _, sp := range specs {
		switch sp.at {
		case atName:
			if sp.form != formStrp {
				return -1, -1, false
			}
			typeName = pos
		case atSibling:
			if sp.form != formRef4 {
				return -1, -1, false
			}
			sibAt = pos
		case atDeclaration:
			if sp.form != formFlagPresent {
				return -1, -1, false
			}
			decl = true
		}
		pos += int16(sp.fixed)
	}
	if a.children && sibAt < 0 {
		return -1, -1, false
	}
	if isType && typeName < 0 {
		decl = true // an anonymous type: nothing to index either
	}
	if !isType || decl {
		typeName = -1
	}
	return typeName, sibAt, decl
}
