/*
 * Shared 32-bit entry for the Multiboot and PVH test guests: saves EAX/EBX,
 * builds identity page tables for the first 1 GiB, enters long mode and
 * calls main64(magic, info) with RSP at our own stack.
 */
	.section .text.entry, "ax"
	.code32
	.globl entry32
entry32:
	mov	%eax, boot_eax
	mov	%ebx, boot_ebx
	mov	$pdpt, %eax
	or	$3, %eax
	mov	%eax, pml4
	mov	$pd, %eax
	or	$3, %eax
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
	or	$0x20, %eax
	mov	%eax, %cr4
	mov	$0xc0000080, %ecx
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000001, %eax
	mov	%eax, %cr0
	lgdt	gdt64_desc
	ljmp	$0x08, $entry64

	.code64
entry64:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$stack_top, %rsp
	mov	boot_eax, %edi
	mov	boot_ebx, %esi
	call	main64
	.globl park
park:	cli
	hlt
	jmp	park

	.data
	.balign 8
gdt64:	.quad 0
	.quad 0x00af9a000000ffff
	.quad 0x00cf92000000ffff
gdt64_desc:
	.word 23
	.long gdt64
boot_eax: .long 0
boot_ebx: .long 0

	.bss
	.balign 4096
pml4:	.fill 4096, 1, 0
pdpt:	.fill 4096, 1, 0
pd:	.fill 4096, 1, 0
	.fill 16384, 1, 0
stack_top:
