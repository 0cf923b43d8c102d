/*
 * Bit-fields as gdb shows them, in the layouts whose DWARF vmdap once
 * read wrong: a field that ends its storage unit has DW_AT_bit_offset 0
 * in DWARF 2/3's big-endian-style description (GCC up to DWARF 4, clang
 * 14 in every version), which is not a field at the unit's first bit.
 * The tests build it with GCC and clang at several DWARF versions and
 * compare vmdap's view of each global with gdb's print of the same ELF
 * file. Every global is initialised data.
 */
#include "../common/main64.h"

volatile int sinkhole;

struct top_bits {
	char x;
	unsigned int lo : 13;
	int neg : 11;             /* ends its 32-bit unit: DW_AT_bit_offset 0 */
	unsigned long long wide : 40;
	short tail : 9;
} top_bits = { 'q', 4097, -777, 0xfedcba9876ull, -200 };

struct full_unit {
	unsigned int low : 31;
	unsigned int flag : 1;    /* the unit's top bit: DW_AT_bit_offset 0 */
	unsigned char a : 4;
	signed char b : 4;        /* ends its byte: DW_AT_bit_offset 0 */
	unsigned long long q : 64; /* a whole unit: DW_AT_bit_offset 0 */
} full_unit = { 0x12345678, 1, 9, -3, 0x8877665544332211ull };

void main64(unsigned int magic, unsigned int info)
{
	(void)info;
	sinkhole = top_bits.neg + full_unit.b;
	exit_guest(magic == 0x2badb002 ? 0x10 : 0x11);
}
