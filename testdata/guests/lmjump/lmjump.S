/*
 * lmjump: the early boot of a typical Multiboot kernel (xv6-x86_64 and
 * friends). A 32-bit stub builds identity page tables, enables PAE, long
 * mode and paging, loads its own GDT and far-jumps into 64-bit code.
 *
 * As in those stubs, the GDT sits in the code page and its descriptors
 * have the accessed bit clear, so the CPU (or KVM's emulator) writes that
 * bit when the ljmp and the segment loads use them. A software breakpoint
 * anywhere in this page makes vmdap write-protect it.
 *
 * Exits through the debug-exit port with 0x31 when it reaches the end in
 * long mode, after writing `marker` (a write a watchpoint can catch).
 */
	.section .text.entry, "ax"
	.code32
	.balign 4
mbheader:
	.long 0x1badb002
	.long 0x00000003
	.long -(0x1badb002 + 0x00000003)

	.globl entry32
entry32:
	/* PML4[0] -> PDPT, PDPT[0] -> PD, PD = 512 × 2 MiB identity pages */
	mov	$pdpt + 3, %eax
	mov	%eax, pml4
	mov	$pd + 3, %eax
	mov	%eax, pdpt
	xor	%ecx, %ecx
1:	mov	%ecx, %eax
	shl	$21, %eax
	or	$0x83, %eax
	mov	%eax, pd(,%ecx,8)
	inc	%ecx
	cmp	$512, %ecx
	jb	1b
	mov	$pml4, %eax
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
	lgdt	gdtr
	.globl far_jump
far_jump:
	ljmp	$0x08, $entry64

	.code64
	.globl entry64
entry64:
	mov	$0x10, %ax
	.globl load_ds
load_ds:
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$stack_top, %rsp
	.globl in_long_mode
in_long_mode:
	movl	$0x600df00d, marker(%rip)
	mov	$0x18, %al		/* (0x18 << 1) | 1 = 0x31 */
	.globl done
done:
	out	%al, $0xf4
	cli
1:	hlt
	jmp	1b

	.balign 16
	.globl gdt
gdt:	.quad 0
	.quad 0x00209a0000000000	/* 64-bit code, accessed bit clear */
	.quad 0x0000920000000000	/* data, accessed bit clear */
gdt_end:
gdtr:	.word gdt_end - gdt - 1
	.long gdt
	.balign 4
	.globl marker
marker:	.long 0

	.bss
	.balign 4096
pml4:	.fill 4096, 1, 0
pdpt:	.fill 4096, 1, 0
pd:	.fill 4096, 1, 0
	.fill 4096, 1, 0
stack_top:
