/* A Multiboot 2 header only (no Multiboot 1 header, no PVH note), then the
   shared 32-bit trampoline into long mode. */
	.section .text.entry, "ax"
	.balign 8
mb2header:
	.long 0xe85250d6			/* magic */
	.long 0					/* architecture: i386 */
	.long mb2header_end - mb2header		/* header_length */
	.long -(0xe85250d6 + 0 + (mb2header_end - mb2header))
	/* information request: command line, modules, basic meminfo, mmap */
	.balign 8
	.short 1, 0
	.long 8 + 4 * 4
	.long 1, 3, 4, 6
	/* entry address */
	.balign 8
	.short 3, 0
	.long 12
	.long entry32
	/* end */
	.balign 8
	.short 0, 0
	.long 8
mb2header_end:
#include "../common/boot32.S"
