/*
 * stepout: assembly functions for stepOut without a return address, in
 * 32-bit and 64-bit code. A Multiboot 1 kernel (boots on vmdap's VMM and
 * under QEMU -kernel).
 *
 *   entry32 → f32 (32-bit, no CFI, pushes before f32_mid)
 *           → long mode → f64 (no CFI, pushes before f64_mid)
 *           → f64_cfi (CFI in .debug_frame: an ordinary stepOut)
 *           → top64 (CFI marks it outermost: stepOut is refused)
 *               → loop64 when `forever` is set (never returns)
 *           → exit 0x2a (debug-exit port: status 0x55)
 */
	.cfi_sections .debug_frame

	.section .text.entry, "ax"
	.code32
	.balign 4
mbheader:
	.long 0x1badb002
	.long 0
	.long -(0x1badb002)

	.globl entry32
entry32:
	mov	$stack_top, %esp
	xor	%ebp, %ebp
	mov	$0x11111111, %ebx
	mov	$0x22222222, %esi
	call	f32
	.globl after_f32
after_f32:
	/* identity page tables (2 MiB pages), PAE, LME, PG; GDT in .data */
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
	or	$0x20, %eax
	mov	%eax, %cr4
	mov	$0xc0000080, %ecx
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000001, %eax
	mov	%eax, %cr0
	lgdt	gdtr
	ljmp	$0x08, $entry64

	.globl f32
f32:
	push	%ebx
	push	%esi
	.globl f32_mid
f32_mid:
	mov	$3, %ecx
1:	dec	%ecx
	jnz	1b
	pop	%esi
	pop	%ebx
	ret

	.code64
entry64:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$stack_top, %rsp
	xor	%ebp, %ebp
	mov	$0x3333333333333333, %rbx
	mov	$0x4444444444444444, %r12
	call	f64
	.globl after_f64
after_f64:
	call	f64_cfi
	.globl after_f64_cfi
after_f64_cfi:
	call	top64
	.globl after_top64
after_top64:
	mov	$0x2a, %al
	out	%al, $0xf4
	cli
2:	hlt
	jmp	2b

	.globl f64
f64:
	push	%rbx
	push	%r12
	.globl f64_mid
f64_mid:
	mov	$3, %ecx
1:	dec	%ecx
	jnz	1b
	pop	%r12
	pop	%rbx
	ret

	.globl f64_cfi
f64_cfi:
	.cfi_startproc
	push	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_offset rbx, -16
	.globl f64_cfi_mid
f64_cfi_mid:
	mov	$3, %ecx
1:	dec	%ecx
	jnz	1b
	pop	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbx
	ret
	.cfi_endproc

	.globl top64
top64:
	.cfi_startproc
	.cfi_undefined rip
	.globl top64_body
top64_body:
	cmpl	$0, forever(%rip)
	je	1f
	call	loop64
1:	ret
	.cfi_endproc

	.globl loop64
loop64:
	push	%rbx
	.globl loop64_mid
loop64_mid:
	inc	%rax
	jmp	loop64_mid

	.data
	.balign 8
gdt:	.quad 0
	.quad 0x00af9a000000ffff
	.quad 0x00cf92000000ffff
gdtr:	.word 23
	.long gdt
	.balign 4
	.globl forever
forever: .long 0

	.bss
	.balign 4096
pml4:	.fill 4096, 1, 0
pdpt:	.fill 4096, 1, 0
pd:	.fill 4096, 1, 0
	.fill 8192, 1, 0
stack_top:
