/*
 * Enumerations in expressions as gdb evaluates them: one whose
 * enumerators are all non-negative has an unsigned underlying type
 * (unsigned int), one with a negative enumerator a signed one. The tests
 * compare vmdap's evaluation of expressions on them with gdb's on the
 * same ELF file. Every global is initialised data.
 */
#include "../common/main64.h"

volatile int sinkhole;

enum fl { FL_A = 1, FL_B = 2, FL_HI = 0x80000000u };
enum neg { NEG_MIN = -3, NEG_ONE = -1, NEG_BIG = 0x7fffffff };

enum fl fl_hi = FL_HI | FL_B;
enum fl fl_all = (enum fl)0xffffffffu;
enum neg neg_min = NEG_MIN;

void main64(unsigned int magic, unsigned int info)
{
	(void)info;
	sinkhole = (int)fl_hi + neg_min;
	exit_guest(magic == 0x2badb002 ? 0x10 : 0x11);
}
