/* A Multiboot 1 header and a PVH entry note with entries of their own, as
   kernels that boot either way have them; then the shared trampoline.
   QEMU's -kernel tries Multiboot 1 before PVH: it enters at entry32. */
	.pushsection .note.Xen, "a", @note
	.balign 4
	.long 4
	.long 4
	.long 18
	.asciz "Xen"
	.long pvh_entry
	.popsection
	.section .text.entry, "ax"
	.balign 4
mbheader:
	.long 0x1badb002
	.long 0x00000003
	.long -(0x1badb002 + 0x00000003)
	.code32
	.globl pvh_entry
pvh_entry:
	nop
	jmp	entry32
#include "../common/boot32.S"
