// Package symbols owns what vmdap knows about a guest image from its ELF
// symbols and DWARF debug information: PC → function, file and line;
// file:line → breakpoint addresses (moved to the next line with code);
// where a function's prologue ends; the variables in scope at a PC with
// their types and DWARF location expressions; and call-frame information
// (.debug_frame or .eh_frame) for unwinding. A relocatable image (a Linux
// kernel module) is read with its sections placed where they run
// (relocate.go), and a Set answers for a kernel and its modules together
// (set.go). A large image's index is kept on disk by its build ID and read
// back by the next open of the same image (indexcache.go). A unit that
// refers to type units or into other units is decoded with what it refers
// to (typeunits.go). Expressions are read as GCC and clang write them:
// clang's DWARF 5 operands that point into the unit (DW_OP_addrx through
// .debug_addr, DW_OP_convert to a base type) are replaced by what they
// name when an expression is read (addrx.go). Debug information is read
// as it is packaged: compressed sections (compress.go), a separate debug
// file found by build ID or debug link (debugfile.go), dwz's
// supplementary file joined to the image's (altlink.go), and split
// DWARF's .dwo files or .dwp package joined to it (split.go, dwp.go). It uses only
// the standard library's debug/elf and debug/dwarf.
package symbols
