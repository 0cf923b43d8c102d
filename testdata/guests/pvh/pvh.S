/* The PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY), then the shared trampoline. */
	.pushsection .note.Xen, "a", @note
	.balign 4
	.long 4
	.long 4
	.long 18
	.asciz "Xen"
	.long entry32
	.popsection
#include "../common/boot32.S"
