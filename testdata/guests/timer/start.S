/* Entry and the timer interrupt's entry stub, with CFI describing the
   interrupt frame so a debugger unwinds from on_tick into the code the
   interrupt stopped. The CFI goes to .debug_frame (.eh_frame is not
   linked). */
	.cfi_sections .debug_frame
	.section .text.entry, "ax"
	.globl _start
_start:
	xor	%ebp, %ebp
	call	kmain
1:	cli
	hlt
	jmp	1b

	.text
	.globl isr_timer
	.type isr_timer, @function
isr_timer:
	.cfi_startproc simple
	.cfi_signal_frame
	.cfi_def_cfa %rsp, 40
	.cfi_offset %rip, -40
	.cfi_offset %rsp, -16
	push	%rax
	.cfi_adjust_cfa_offset 8
	push	%rcx
	.cfi_adjust_cfa_offset 8
	push	%rdx
	.cfi_adjust_cfa_offset 8
	push	%rsi
	.cfi_adjust_cfa_offset 8
	push	%rdi
	.cfi_adjust_cfa_offset 8
	push	%r8
	.cfi_adjust_cfa_offset 8
	push	%r9
	.cfi_adjust_cfa_offset 8
	push	%r10
	.cfi_adjust_cfa_offset 8
	push	%r11
	.cfi_adjust_cfa_offset 8
	sub	$8, %rsp		/* 16-byte alignment for the call */
	.cfi_adjust_cfa_offset 8
	call	on_tick
	add	$8, %rsp
	.cfi_adjust_cfa_offset -8
	pop	%r11
	.cfi_adjust_cfa_offset -8
	pop	%r10
	.cfi_adjust_cfa_offset -8
	pop	%r9
	.cfi_adjust_cfa_offset -8
	pop	%r8
	.cfi_adjust_cfa_offset -8
	pop	%rdi
	.cfi_adjust_cfa_offset -8
	pop	%rsi
	.cfi_adjust_cfa_offset -8
	pop	%rdx
	.cfi_adjust_cfa_offset -8
	pop	%rcx
	.cfi_adjust_cfa_offset -8
	pop	%rax
	.cfi_adjust_cfa_offset -8
	iretq
	.cfi_endproc
	.size isr_timer, . - isr_timer
