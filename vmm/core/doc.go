// Package core is a vmm.Target over a core dump of a whole machine: the
// record of a guest at one moment, not a guest that runs. It reads the
// dumps kernel developers have:
//   - ELF core files: QEMU's dump-guest-memory (with or without paging,
//     -p), virsh dump, and a Linux kdump's /proc/vmcore, copied or
//     filtered by makedumpfile -E;
//   - the compressed kdump format (makedumpfile -c, QEMU's
//     dump-guest-memory -z): pages compressed with zlib.
//
// A dump holds guest-physical memory and, for each CPU, its registers:
// QEMU's own note carries all of them (segments with their bases, control
// registers), a kdump's NT_PRSTATUS only the general ones, with the
// kernel's page tables named in its VMCOREINFO note. Virtual addresses are
// translated with the CPU's page tables where its CR3 is known, else the
// kernel's (init_top_pgt, as crash and drgn do), else by the dump's own
// virtual segments.
//
// QEMU's paging dump (-p) describes a virtual mapping that spans several
// RAM blocks (the first megabyte's holes) by one PT_LOAD whose file part
// QEMU clamps to the first block (QEMU 7.2's get_offset_range): the rest
// of that memory is in the file but no header says where. Such memory
// reads as absent, with that reason, not as zeros; a dump without -p
// holds all of RAM.
//
// Nothing in a dump can run or change: Continue and writes fail with an
// error that says so, and no breakpoint, step or watchpoint mechanism is
// offered. Memory is read from the file as it is asked for (a dump of many
// gigabytes costs what is read), through a small cache of pages.
package core
