/*
 * Multiboot 1 entry of the corpus kernel, for both builds: -m32 calls
 * kmain(magic, info) in 32-bit protected mode; the 64-bit build first
 * maps the first 1 GiB and enters long mode. The entry routine's CFI
 * marks it the outermost frame (return address undefined); asm_add and
 * asm_marker have no CFI at all, as hand-written kernel assembly often
 * has none.
 */
	.cfi_sections .debug_frame

	.section .text.entry, "ax"
	.balign 4
mbheader:
	.long 0x1badb002
	.long 0x00000003
	.long -(0x1badb002 + 0x00000003)

#ifdef __x86_64__
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
	mov	boot_ebx, %esi
	call	kmain
	.globl park
park:	cli
	hlt
	jmp	park
	.cfi_endproc

	.text
/* int asm_add(int a, int b, int (*cb)(int)): cb(a + b) + a + b */
	.globl asm_add
	.type asm_add, @function
asm_add:
	push	%rbp
	mov	%rsp, %rbp
	push	%rbx
	push	%r12
	lea	(%rdi,%rsi), %ebx
	mov	%ebx, %edi
	call	*%rdx
	add	%ebx, %eax /* bp:asm-add-after-call */
	pop	%r12
	pop	%rbx
	pop	%rbp
	ret
	.size asm_add, .-asm_add

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

#else /* 32-bit */
	.code32
	.globl entry32
entry32:
	.cfi_startproc
	.cfi_undefined 8
	mov	$stack_top, %esp
	xor	%ebp, %ebp
	push	%ebx
	push	%eax
	call	kmain
	.globl park
park:	cli
	hlt
	jmp	park
	.cfi_endproc

	.text
/* int asm_add(int a, int b, int (*cb)(int)): cb(a + b) + a + b */
	.globl asm_add
	.type asm_add, @function
asm_add:
	push	%ebp
	mov	%esp, %ebp
	push	%ebx
	mov	8(%ebp), %ebx
	add	12(%ebp), %ebx
	push	%ebx
	call	*16(%ebp)
	add	$4, %esp /* bp:asm-add-after-call */
	add	%ebx, %eax
	pop	%ebx
	pop	%ebp
	ret
	.size asm_add, .-asm_add
#endif

/* void asm_marker(void): a line breakpoint in this file lands on the
   first address of its line; a function breakpoint on the label stops at
   its first instruction. */
	.text
	.globl asm_marker
	.type asm_marker, @function
asm_marker:
	nop
	nop /* bp:asm-line */
	nop
	ret
	.size asm_marker, .-asm_marker

	.bss
	.balign 16
	.fill 16384, 1, 0
stack_top:
