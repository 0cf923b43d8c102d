/*
 * Entry for vmdap's 64-bit direct boot: long mode, ring 0, interrupts off,
 * RSP at this vCPU's own stack, RDI = vCPU index, RSI = number of vCPUs.
 * vCPU 0 runs kmain; the others halt.
 */
	.section .text.entry, "ax"
	.globl _start
_start:
	test	%rdi, %rdi
	jnz	park
	xor	%ebp, %ebp
	call	kmain
park:
	cli
	hlt
	jmp	park

/* Exception stubs: push the vector (and a zero error code where the CPU
   pushes none), then call the C handler. */
	.macro stub n, err
	.globl isr\n
isr\n:
	.if \err == 0
	push	$0
	.endif
	push	$\n
	jmp	isr_common
	.endm
	stub 0,0
	stub 6,0
	stub 8,1
	stub 13,1
	stub 14,1
isr_common:
	mov	%rsp, %rdi
	call	exception
	jmp	park
