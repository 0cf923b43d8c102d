package symbols

// Go's debug/dwarf does not know the DW_ATE_UTF base-type encoding (DWARF
// 4 §5.1, 0x10), which older rustc releases give Rust's char (Debian 12's
// 1.63 does) and C++ compilers give char8_t, char16_t and char32_t:
// it fails to decode such a type, and with it every type that contains
// one, so the variables of those types vanish. A unit that can have one
// is handed to debug/dwarf with the encoding read as unsigned char (a
// char of the same size: Rust's is 4 bytes), in a copy of the unit's
// bytes made only when one is there.

const (
	atEncoding      = 0x3e
	ateUTF          = 0x10
	ateUnsignedChar = 0x08
	langCPlusPlus   = 0x04
	langCPlusPlus03 = 0x19
	langCPlusPlus11 = 0x1a
	langCPlusPlus14 = 0x21
)

// mayHaveUTF says whether a unit's language can give a base type the UTF
// encoding.
func mayHaveUTF(lang uint64) bool {
	switch lang {
	case langRust, langCPlusPlus, langCPlusPlus03, langCPlusPlus11, langCPlusPlus14:
		return true
	}
	return false
}

// utfAsUnsignedChar returns the unit's bytes (info, from its header on)
// with every DW_ATE_UTF base type's encoding made DW_ATE_unsigned_char:
// info itself when there is none.
func (t *Table) utfAsUnsignedChar(u *unit, info []byte) []byte {
	at, err := t.abbrevs(nil, u)
	if err != nil {
		return info
	}
	// Only a table with a base-type abbreviation can have one.
	base := false
	for i := range at.abbrs {
		if at.abbrs[i].tag == tagBaseType {
			base = true
		}
	}
	if !base {
		return info
	}
	out := info
	r := rd{b: info, pos: int(u.dieOff - u.off)}
	for !r.eof() {
		code := r.uleb()
		if code == 0 {
			continue
		}
		a := at.get(code)
		if a == nil {
			break
		}
		for i := range a.attrs {
			sp := &a.attrs[i]
			if a.tag == tagBaseType && sp.at == atEncoding && sp.form == formData1 {
				if r.pos < len(info) && info[r.pos] == ateUTF {
					if &out[0] == &info[0] {
						out = append([]byte(nil), info...)
					}
					out[r.pos] = ateUnsignedChar
				}
			}
			if sp.fixed >= 0 {
				r.skip(uint64(sp.fixed))
			} else if !r.skipForm(sp.form, u.format) {
				return out
			}
		}
	}
	return out
}
