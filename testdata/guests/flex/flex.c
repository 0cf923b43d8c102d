/*
 * Flexible array members as gdb shows them: the address of the member,
 * with the data symbol there (the object after the struct's own, when
 * the struct's symbol has no room for elements), and a char one's
 * string. The tests compare vmdap's view of each global with gdb's print
 * of the same ELF file. Every global is initialised data.
 */
#include "../common/main64.h"

volatile int sinkhole;

struct flex {
	int n;
	short data[];
} flex_g = { 3 };
int after_flex = 99;

struct cflex {
	long len;
	char text[];
} cflex_g = { 5 };
char after_cflex[8] = "tail";

void main64(unsigned int magic, unsigned int info)
{
	(void)info;
	sinkhole = flex_g.n + after_flex + (int)cflex_g.len + after_cflex[0];
	exit_guest(magic == 0x2badb002 ? 0x10 : 0x11);
}
