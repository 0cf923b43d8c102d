/* The higher-half guest's C part, linked at KERNEL_VMA (-mcmodel=kernel). */
#include "../common/main64.h"

#define KERNEL_VMA 0xffffffff80000000UL
#define ALIAS_VMA 0xffffff0000000000UL /* PML4[510], mapped by high64 */

volatile unsigned long kernel_hits, module_hits;

/* module_init runs through ALIAS_VMA, an address no PT_LOAD names. */
void module_init(void)
{
	module_hits++;
	puts("module_init\n");
}

void start_kernel(void)
{
	kernel_hits++;
	puts("start_kernel at ");
	put_hex((unsigned long)start_kernel);
	puts("\n");
	void (*alias)(void) = (void (*)(void))((unsigned long)module_init - KERNEL_VMA + ALIAS_VMA);
	alias();
	exit_guest(kernel_hits == 1 && module_hits == 1 ? 0x30 : 0x31);
}
