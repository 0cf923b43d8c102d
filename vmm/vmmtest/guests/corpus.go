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
// units of the early debug information); and -O2 without a frame pointer,
// as x86 Linux builds with its ORC unwinder (frame bases from the CFA
// alone; the parameters of a call inlined at a function's entry located
// by an empty location-list entry there).
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
	{Tag: "nofp", Flags: []string{"-O2", "-fomit-frame-pointer"}},
}

// ClangCorpus lists the corpus built by clang (as Linux's LLVM=1 builds,
// Android's and ChromeOS's kernels, are), with the flags of the GCC
// builds: clang's DWARF 5 (indexed strings and addresses: DW_FORM_strx,
// DW_FORM_addrx, DW_OP_addrx, .debug_str_offsets, .debug_addr; location
// and range lists by index, DW_FORM_loclistx and DW_FORM_rnglistx with
// their bases; DW_TAG_call_site; MD5 in the line table; frame bases
// DW_OP_reg6), at -O0 and -O2, and DWARF 4 (.debug_loc, .debug_ranges)
// and 32-bit; and as x86 Linux builds with its ORC unwinder, without a
// frame pointer (-fomit-frame-pointer: frame bases DW_OP_reg7, functions
// without a prologue whose line table marks prologue_end at the entry),
// and -Os. They are a list of their own: a machine without clang skips
// them, and still checks the GCC builds.
var ClangCorpus = []Options{
	{Tag: "clang-O0", Compiler: "clang", Flags: []string{"-O0"}},
	{Tag: "clang-O2", Compiler: "clang", Flags: []string{"-O2"}},
	{Tag: "clang-dwarf4", Compiler: "clang", Flags: []string{"-O2", "-gdwarf-4"}},
	{Tag: "clang-m32", Compiler: "clang", Flags: []string{"-m32", "-O2"}},
	{Tag: "clang-nofp", Compiler: "clang", Flags: []string{"-O2", "-fomit-frame-pointer"}},
	{Tag: "clang-Os", Compiler: "clang", Flags: []string{"-Os"}},
}

// PackagedCorpus lists the corpus's -O2 build with its debug information
// packaged as users' images carry it: compressed sections (SHF_COMPRESSED
// with zlib, as distributions ship, and zstd; the older GNU .zdebug_*
// sections); the DWARF in a separate file that a .gnu_debuglink section
// names (objcopy --only-keep-debug, strip --strip-debug); and rewritten
// by dwz (partial units imported by DW_TAG_imported_unit), also with a
// supplementary file (dwz -m); and split into .dwo files (-gsplit-dwarf),
// also packaged into a .dwp.
// The code is the O2 build's.
var PackagedCorpus = []Options{
	{Tag: "gz-zlib", Flags: []string{"-O2", "-gz=zlib"}},
	{Tag: "gz-zlib-gnu", Flags: []string{"-O2", "-gz=zlib-gnu"}},
	// (GCC 12 knows no -gz=zstd; binutils 2.40's objcopy does.)
	{Tag: "gz-zstd", Flags: []string{"-O2"}, Post: [][]string{{"objcopy", "--compress-debug-sections=zstd", "{elf}"}}},
	{Tag: "debuglink", Flags: []string{"-O2"}, Post: [][]string{
		{"objcopy", "--only-keep-debug", "{elf}", "{out}.debug"},
		{"objcopy", "--strip-debug", "{elf}"},
		{"objcopy", "--add-gnu-debuglink={out}.debug", "{elf}"}}},
	{Tag: "dwz", Flags: []string{"-O2"}, Post: [][]string{{"dwz", "{elf}"}}},
	// dwz -m moves what files share into a supplementary file that
	// .gnu_debugaltlink names (Fedora's /usr/lib/debug/.dwz/…): given
	// the file twice, all it can share.
	{Tag: "dwz-m", Flags: []string{"-O2"}, Post: [][]string{
		{"cp", "{elf}", "{elf}.twin"},
		{"dwz", "-m", "{out}.sup", "{elf}", "{elf}.twin"},
		{"rm", "{elf}.twin"}}},
	// Split DWARF: the image keeps skeleton units (the line table, the
	// code's addresses in .debug_addr); the rest is in a .dwo file per
	// unit beside it, which DW_AT_dwo_name names.
	{Tag: "split", Flags: []string{"-O2", "-gsplit-dwarf"}},
	// The .dwo files packaged into one .dwp beside the image (llvm-dwp:
	// binutils' dwp does not know DWARF 5), the .dwo files removed.
	{Tag: "split-dwp", Flags: []string{"-O2", "-gsplit-dwarf"}, Post: [][]string{
		{"llvm-dwp", "-e", "{elf}", "-o", "{out}.dwp"},
		{"sh", "-c", "rm -f -- \"$0\"-*.dwo", "{elf}"}}},
	// And as clang writes it (its code is the clang-O2 build's).
	{Tag: "clang-split", Compiler: "clang", Flags: []string{"-O2", "-gsplit-dwarf"}},
}

// CorpusOptions returns the corpus build with that tag (GCC's, clang's
// or a packaged one).
func CorpusOptions(tag string) (Options, bool) {
	all := append(Corpus[:len(Corpus):len(Corpus)], ClangCorpus...)
	for _, o := range append(all, PackagedCorpus...) {
		if o.Tag == tag {
			return o, true
		}
	}
	return Options{}, false
}
