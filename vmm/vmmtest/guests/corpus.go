package guests

// Corpus lists the builds of testdata/guests/corpus, the C kernel the
// symbol layer's golden tests and the gdb comparisons use: the DWARF that
// GCC emits at -O0 and -O2 (DWARF 5: location lists, entry values,
// inlined subroutines), DWARF 2 (frame bases as location lists, as xv6
// builds), DWARF 3, DWARF 4 (.debug_loc, GNU entry values) and 32-bit
// (-m32: 4-byte addresses, i386 register numbers); and DWARF that refers
// across units: types in type units (-fdebug-types-section: DWARF 4's
// .debug_types, DWARF 5's type units in .debug_info), and a link-time
// optimised build (-flto: one unit whose functions, parameters and
// variables are named and typed by DW_FORM_ref_addr references into the
// units of the early debug information).
var Corpus = []Options{
	{Tag: "O0", Flags: []string{"-O0"}},
	{Tag: "O2", Flags: []string{"-O2"}},
	{Tag: "dwarf2", Flags: []string{"-O2", "-gdwarf-2"}},
	{Tag: "dwarf3", Flags: []string{"-O2", "-gdwarf-3"}},
	{Tag: "dwarf4", Flags: []string{"-O1", "-gdwarf-4"}},
	{Tag: "m32", Flags: []string{"-m32", "-O2"}},
	{Tag: "types4", Flags: []string{"-O1", "-gdwarf-4", "-fdebug-types-section"}},
	{Tag: "types5", Flags: []string{"-O0", "-fdebug-types-section"}},
	{Tag: "lto", Flags: []string{"-O2", "-flto"}},
}

// CorpusOptions returns the corpus build with that tag.
func CorpusOptions(tag string) (Options, bool) {
	for _, o := range Corpus {
		if o.Tag == tag {
			return o, true
		}
	}
	return Options{}, false
}
