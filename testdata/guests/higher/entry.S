/*
 * A higher-half kernel in miniature, booted the way Linux's vmlinux is
 * through PVH: linked at KERNEL_VMA + 1 MiB, loaded at 1 MiB, entered at
 * its physical address in 32-bit protected mode without paging. It maps
 * the first GiB of RAM twice (at 0 and at KERNEL_VMA), enables long mode,
 * jumps to its high half, maps the same GiB a third time at ALIAS_VMA (as
 * a kernel maps a module late) and calls start_kernel. Until paging is on,
 * no high address is mapped; until start_kernel, nothing is at ALIAS_VMA.
 */
	.set	KERNEL_VMA, 0xffffffff80000000
#define PA(x) ((x) - KERNEL_VMA)

	.pushsection .note.Xen, "a", @note
	.balign 4
	.long	4
	.long	4
	.long	18			/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.long	PA(entry32)
	.popsection

	.section .text.entry, "ax"
	.code32
	.globl	entry32
entry32:
	mov	$PA(pdpt_lo) + 3, %eax
	mov	%eax, PA(pml4)
	mov	$PA(pdpt_hi) + 3, %eax
	mov	%eax, PA(pml4) + 511 * 8
	mov	$PA(pd) + 3, %eax
	mov	%eax, PA(pdpt_lo)
	mov	%eax, PA(pdpt_hi) + 510 * 8
	xor	%ecx, %ecx
1:	mov	%ecx, %eax
	shl	$21, %eax
	or	$0x83, %eax
	mov	%eax, PA(pd)(,%ecx,8)
	inc	%ecx
	cmp	$512, %ecx
	jb	1b
	mov	$PA(pml4), %eax
	mov	%eax, %cr3
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000001, %eax	/* PG | PE */
	mov	%eax, %cr0
	.globl	paging_on
paging_on:
	lgdt	PA(gdt_desc)
	ljmp	$0x08, $PA(entry64)

	.code64
entry64:				/* long mode, still at the physical address */
	movabs	$high64, %rax
	jmp	*%rax
	.globl	high64
high64:					/* the high half */
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	movabs	$stack_top, %rsp
	/* the late mapping: PML4[510] (ALIAS_VMA) → the same GiB */
	movabs	$pml4 + 510 * 8, %rdi
	movabs	$PA(pdpt_alias) + 3, %rax
	mov	%rax, (%rdi)
	movabs	$pdpt_alias, %rdi
	movabs	$PA(pd) + 3, %rax
	mov	%rax, (%rdi)
	call	start_kernel
	.globl	park
park:	cli
	hlt
	jmp	park

	.data
	.balign	8
gdt:	.quad	0
	.quad	0x00af9a000000ffff	/* 64-bit code */
	.quad	0x00cf92000000ffff	/* data */
gdt_desc:
	.word	23
	.long	PA(gdt)

	.bss
	.balign	4096
	.globl	pml4
pml4:	.fill	4096, 1, 0
pdpt_lo: .fill	4096, 1, 0
pdpt_hi: .fill	4096, 1, 0
pdpt_alias: .fill 4096, 1, 0
pd:	.fill	4096, 1, 0
	.fill	16384, 1, 0
stack_top:
