/*
 * Multiboot 1 entry of the Rust guest: maps the first 1 GiB, enters long
 * mode, turns SSE on (Rust's host target uses it), and calls
 * kmain(magic). The entry's CFI (in .eh_frame, where rustc puts its own)
 * marks it the outermost frame.
 */
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
	or	$0x620, %eax	/* PAE | OSFXSR | OSXMMEXCPT */
	mov	%eax, %cr4
	mov	$0xc0000080, %ecx
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	and	$~0x4, %eax	/* no EM */
	or	$0x80000003, %eax	/* PG | MP | PE */
	mov	%eax, %cr0
	lgdt	gdt64_desc
	ljmp	$0x08, $entry64

	.code64
	.globl entry64
entry64:
	.cfi_startproc
	.cfi_undefined 16
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$stack_top, %rsp
	xor	%ebp, %ebp
	mov	boot_eax, %edi
	call	kmain
	.globl park
park:	cli
	hlt
	jmp	park
	.cfi_endproc

/* The precompiled core library is built for unwinding and refers to a
   personality routine; with panic=abort it is never called. */
	.text
	.globl rust_eh_personality
rust_eh_personality:
	ud2

	.data
	.balign 8
gdt64:	.quad 0
	.quad 0x00af9a000000ffff
	.quad 0x00cf92000000ffff
gdt64_desc:
	.word 23
	.long gdt64
boot_eax: .long 0

	.bss
	.balign 4096
pml4:	.fill 4096, 1, 0
pdpt:	.fill 4096, 1, 0
pd:	.fill 4096, 1, 0
	.fill 32768, 1, 0
stack_top:
