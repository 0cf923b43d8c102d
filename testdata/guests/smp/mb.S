/* Multiboot 1 SMP guest: the BSP enters long mode with 4 GiB identity
   mapped, starts the APs (INIT-SIPI-SIPI, trampoline at 0x8000) and each
   AP enters long mode and calls ap_main(index). */
	.section .text.entry, "ax"
	.balign 4
mbheader:
	.long 0x1badb002
	.long 0x00000003
	.long -(0x1badb002 + 0x00000003)
	.code32
	.globl entry32
entry32:
	mov	%eax, boot_eax
	mov	%ebx, boot_ebx
	mov	$pdpt, %eax
	or	$3, %eax
	mov	%eax, pml4
	xor	%ecx, %ecx
2:	mov	%ecx, %eax
	shl	$12, %eax
	add	$pd, %eax
	or	$3, %eax
	mov	%eax, pdpt(,%ecx,8)
	inc	%ecx
	cmp	$4, %ecx
	jb	2b
	xor	%ecx, %ecx
1:	mov	%ecx, %eax
	shl	$21, %eax
	or	$0x83, %eax
	mov	%eax, pd(,%ecx,8)
	mov	%ecx, %eax
	shr	$11, %eax
	mov	%eax, pd+4(,%ecx,8)
	inc	%ecx
	cmp	$2048, %ecx
	jb	1b
	.globl ap32
ap32:	/* the APs come here too, in protected mode, from the trampoline */
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
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
	cmpl	$0, bsp_done
	jne	ap64
	movl	$1, bsp_done
	mov	$stack_top, %rsp
	mov	boot_eax, %edi
	mov	boot_ebx, %esi
	call	main64
	.globl park
park:	cli
	hlt
	jmp	park
ap64:
	mov	$1, %eax
	lock xadd %eax, ap_count
	inc	%eax
	mov	%eax, %edi
	inc	%eax
	shl	$14, %eax
	lea	ap_stacks(%rax), %rsp
	call	ap_main
	jmp	park

	.globl tramp, tramp_end
	.code16
tramp:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	lgdtl	(tgdt_desc - tramp + 0x8000)
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$0x08, $ap32
	.balign 8
tgdt:	.quad 0
	.quad 0x00cf9a000000ffff
	.quad 0x00cf92000000ffff
tgdt_desc:
	.word 23
	.long tgdt - tramp + 0x8000
tramp_end:

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
bsp_done: .long 0
	.globl ap_count
ap_count: .long 0

	.bss
	.balign 4096
pml4:	.fill 4096, 1, 0
pdpt:	.fill 4096, 1, 0
pd:	.fill 16384, 1, 0
	.fill 16384, 1, 0
stack_top:
ap_stacks: .fill 16384*9, 1, 0
