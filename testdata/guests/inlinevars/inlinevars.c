/*
 * Locals of inlined functions as gdb shows them: GCC -O2 wraps an
 * inlined body in a lexical block of the concrete instance and puts the
 * function's locals (w, z) there, so the abstract instance's copies of
 * them are inherited, optimized out, at the inlined call's own level,
 * outside the block: the block's are the ones in scope. The tests build
 * it at -O2 and stop at the marked line.
 */
#include "../common/main64.h"

volatile int sinkhole;

static inline __attribute__((always_inline)) int inner_inl(int q, char c)
{
	int z = q ^ c;
	sinkhole = z; /* bp:inner */
	return z;
}

static inline __attribute__((always_inline)) int outer_inl(int p, _Bool flag)
{
	int w = flag ? p * 2 : p;
	return inner_inl(w, (char)(p & 0x7f)) + 1;
}

__attribute__((noinline)) int by_value(int x, _Bool b)
{
	int r = outer_inl(x, b);
	sinkhole = r;
	return r;
}

void main64(unsigned int magic, unsigned int info)
{
	(void)info;
	sinkhole = by_value((int)magic, 1);
	exit_guest(magic == 0x2badb002 ? 0x10 : 0x11);
}
