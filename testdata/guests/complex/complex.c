/*
 * C's complex types as gdb shows them: _Complex float, double and long
 * double globals (DW_ATE_complex_float), a struct and an array holding
 * them. The tests compare vmdap's view of each with gdb's print of the
 * same ELF file. Every global is initialised data.
 */
#include "../common/main64.h"

volatile int sinkhole;

_Complex float c_flt = 0.5f + 1.0fi;
_Complex double c_dbl = 1.5 - 2.25i;
#ifndef __clang__ /* (clang refuses long double with -mgeneral-regs-only) */
_Complex long double c_ld = -3.0L + 0.125Li;
#endif
_Complex double c_arr[2] = { 1.0 + 2.0i, -0.0 - 4.5i };
struct wave {
	int n;
	_Complex double z;
} c_wave = { 3, 0.25 + 8.0i };

void main64(unsigned int magic, unsigned int info)
{
	(void)info;
	sinkhole = c_wave.n;
	exit_guest(magic == 0x2badb002 ? 0x10 : 0x11);
}
