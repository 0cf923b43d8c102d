/*
 * The DWARF corpus guest: one small C kernel built by GCC at -O0, -O2,
 * with DWARF 2, 3 and 4, for 32-bit (-m32), with type units, -flto and
 * without a frame pointer, and by clang at -O0, -O2, -Os, with DWARF 4,
 * for 32-bit and without a frame pointer, so that vmdap's symbol layer
 * and its sessions are compared with readelf and gdb on what real
 * compilers emit. Lines the tests stop at carry a marker comment
 * "bp:NAME".
 */
#ifndef CORPUS_H
#define CORPUS_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

/* Typedef chains, as a kernel has them. */
typedef u32 ticks_t;
typedef struct {
	int counter;
} atomic_t;
typedef struct refcount_struct {
	atomic_t refs;
} refcount_t;

struct list_head {
	struct list_head *next, *prev;
};

/* Declared here, defined in kernel.c after this declaration: GCC gives
   the definition a DW_AT_specification (xv6's ticks is such a global). */
extern ticks_t ticks;

/* Serial output and the exit port, each with its own static outb. */
void serial_putc(char c);
void exit_guest(int code);

/* Assembly routines (entry.S): no CFI; asm_add calls cb(a + b) and adds
   a + b to what it returns. */
int asm_add(int a, int b, int (*cb)(int));
void asm_marker(void);

/* clang has no noclone (and makes no clones for constant arguments). */
#ifdef __clang__
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE __attribute__((noinline, noclone))
#endif

#endif
