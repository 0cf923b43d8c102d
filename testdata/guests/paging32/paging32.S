/*
 * paging32: the entry of the 32-bit xv6 (and of many 32-bit hobby
 * kernels): Multiboot puts it in protected mode without paging; it turns
 * on CR4.PSE, loads a page directory of two 4 MiB pages (identity and
 * 0x80000000 → 0), sets CR0.PG|WP and jumps to its high-half address.
 * There it writes `marker` through the high mapping, reads it back
 * through the identity mapping and exits with 0x41 (match) or 0x43.
 */
#define KERNBASE 0x80000000
#define V2P(x) ((x) - KERNBASE)

	.section .text.entry, "ax"
	.code32
	.balign 4
mbheader:
	.long 0x1badb002
	.long 0
	.long -(0x1badb002)

	.globl _start
	_start = V2P(entry)

	.globl entry
entry:
	mov	%cr4, %eax
	or	$0x10, %eax			/* CR4.PSE */
	mov	%eax, %cr4
	mov	$V2P(entrypgdir), %eax
	mov	%eax, %cr3
	mov	%cr0, %eax
	or	$0x80010000, %eax		/* CR0.PG | CR0.WP */
	.globl enable_paging
enable_paging:
	mov	%eax, %cr0
	.globl paging_on
paging_on:
	mov	$stack_top, %esp
	mov	$high, %eax
	jmp	*%eax

	.globl high
high:
	movl	$0x32b17, marker
	mov	V2P(marker), %eax
	cmp	$0x32b17, %eax
	mov	$0x20, %al			/* (0x20 << 1) | 1 = 0x41 */
	je	1f
	mov	$0x21, %al			/* 0x43: the two mappings disagree */
1:
	.globl done
done:
	out	%al, $0xf4
	cli
2:	hlt
	jmp	2b

	.data
	.balign 4096
	.globl entrypgdir
entrypgdir:
	.long 0x00000083			/* [0]: 0 → 0, 4 MiB, P|W|PS */
	.fill (KERNBASE >> 22) - 1, 4, 0
	.long 0x00000083			/* [KERNBASE>>22]: 0x80000000 → 0 */
	.fill 1024 - (KERNBASE >> 22) - 1, 4, 0
	.globl marker
marker:	.long 0

	.bss
	.balign 16
	.fill 4096, 1, 0
stack_top:
