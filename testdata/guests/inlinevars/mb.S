/* Multiboot 1 header, then the shared trampoline. */
	.section .text.entry, "ax"
	.balign 4
mbheader:
	.long 0x1badb002
	.long 0x00000003
	.long -(0x1badb002 + 0x00000003)
#include "../common/boot32.S"
