	.section .text.entry, "ax"
	.globl _start
_start:
	xor	%ebp, %ebp
	call	kmain
1:	cli
	hlt
	jmp	1b
