/*
 * Typedef chains over qualified types, as gdb's whatis and ptype show
 * them: ptype spells the qualifiers under the typedefs (const volatile
 * int), whatis of a typedef name goes one level down (cvint2: cvint).
 * The tests compare vmdap's whatis and ptype with gdb's on the same ELF
 * file.
 */
#include "../common/main64.h"

volatile int sinkhole;

typedef volatile const int cvint;
typedef cvint cvint2;
typedef cvint2 *cvint_ptr;
typedef const cvint2 ccvint;
typedef unsigned int base_u32;
typedef base_u32 mid_u32;
typedef mid_u32 top_u32;
typedef char *const cptr;

cvint cv = 42;
cvint2 cv2 = 43;
cvint_ptr cvp = &cv2;
ccvint ccv = 44;
top_u32 top = 7;
cptr cp = 0;

void main64(unsigned int magic, unsigned int info)
{
	(void)info;
	sinkhole = cv + cv2 + *cvp + ccv + (int)top + (cp != 0);
	exit_guest(magic == 0x2badb002 ? 0x10 : 0x11);
}
