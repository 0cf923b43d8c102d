/*
 * mech: a guest for the VMM mechanism tests. _start installs an IDT and
 * halts; each test then points RIP at one of the case_* labels and steps or
 * continues. Every case ends in hlt (vmm.ReasonHalted) unless it exits.
 * Exception handlers record the vector and the frame, then halt.
 */
	.code64
	.section .text.entry, "ax"
	.globl _start
_start:
	call	setup_idt
	/* say hello on COM1 */
	lea	hello(%rip), %rsi
	mov	$0x3f8, %dx
2:	lodsb
	test	%al, %al
	jz	3f
	out	%al, %dx
	jmp	2b
3:
	.globl ready
ready:
	hlt
	jmp	ready

	/* IDT: vectors 0-31 to the exception stubs, 0x40 to irq_handler */
	.globl setup_idt
setup_idt:
	lea	idt(%rip), %rdi
	lea	vec0(%rip), %rsi
	xor	%ecx, %ecx
1:	mov	%rsi, %rax
	mov	%ax, (%rdi)
	movw	$0x08, 2(%rdi)
	movb	$0, 4(%rdi)
	movb	$0x8e, 5(%rdi)
	shr	$16, %rax
	mov	%ax, 6(%rdi)
	shr	$16, %rax
	mov	%eax, 8(%rdi)
	movl	$0, 12(%rdi)
	add	$16, %rdi
	add	$16, %rsi
	inc	%ecx
	cmp	$32, %ecx
	jb	1b
	lea	idt+0x40*16(%rip), %rdi
	lea	irq_handler(%rip), %rax
	mov	%ax, (%rdi)
	movw	$0x08, 2(%rdi)
	movb	$0, 4(%rdi)
	movb	$0x8e, 5(%rdi)
	shr	$16, %rax
	mov	%ax, 6(%rdi)
	shr	$16, %rax
	mov	%eax, 8(%rdi)
	movl	$0, 12(%rdi)
	lidt	idt_desc(%rip)
	ret

	/* interrupts: enable the local APIC, sti, spin */
	.globl case_irq
case_irq:
	call	setup_idt
	mov	$0xfee000f0, %eax	/* spurious-interrupt vector register: enable */
	movl	$0x1ff, (%rax)
	sti
	.globl irq_loop
irq_loop:
	nop
	nop
	jmp	irq_loop
	.globl irq_loop_end
irq_loop_end:

	/* interrupts: as case_irq, but the loop halts until an interrupt */
	.globl case_irq_hlt
case_irq_hlt:
	call	setup_idt
	mov	$0xfee000f0, %eax
	movl	$0x1ff, (%rax)
	sti
	.globl irq_hlt
irq_hlt:
	hlt
	.globl irq_hlt_after
irq_hlt_after:
	jmp	irq_hlt

	.globl irq_handler
irq_handler:
	push	%rax
	incq	irq_count(%rip)
	mov	$0xfee000b0, %eax	/* EOI */
	movl	$0, (%rax)
	pop	%rax
	iretq

	.text
	.balign 16
	.globl case_nops
case_nops:
	nop
	.globl case_nops_2
case_nops_2:
	nop
	nop
	nop
	hlt

	.globl case_pushf
case_pushf:
	pushfq
	.globl case_pushf_after
case_pushf_after:
	pop	%rax
	mov	%rax, flags_out(%rip)
	hlt

	.globl case_popf
case_popf:
	push	$0x3
	popfq
	.globl case_popf_2
case_popf_2:
	nop
	.globl case_popf_3
case_popf_3:
	nop
	hlt

	.globl case_sti
case_sti:
	sti
	.globl case_sti_2
case_sti_2:
	nop
	cli
	hlt

	.globl case_movss
case_movss:
	mov	%ss, %ax
	.globl case_movss_2
case_movss_2:
	mov	%ax, %ss
	.globl case_movss_3
case_movss_3:
	nop
	.globl case_movss_4
case_movss_4:
	nop
	hlt

	/* rep movsb of rep_count bytes from src_buf to dst_buf */
	.globl case_rep
case_rep:
	lea	src_buf(%rip), %rsi
	lea	dst_buf(%rip), %rdi
	mov	rep_count(%rip), %rcx
	.globl case_rep_insn
case_rep_insn:
	rep movsb
	.globl case_rep_after
case_rep_after:
	nop
	hlt

	.globl case_out
case_out:
	mov	$'A', %al
	mov	$0x3f8, %dx
	.globl case_out_insn
case_out_insn:
	out	%al, %dx
	.globl case_out_after
case_out_after:
	nop
	.globl case_out_after2
case_out_after2:
	nop
	hlt

	.globl case_in
case_in:
	mov	$0x3fd, %dx
	.globl case_in_insn
case_in_insn:
	in	%dx, %al
	.globl case_in_after
case_in_after:
	nop
	hlt

	.globl case_hlt
case_hlt:
	hlt
	.globl case_hlt_after
case_hlt_after:
	nop
	hlt

	.globl case_ud2
case_ud2:
	ud2
	nop
	hlt

	.globl case_int3
case_int3:
	int3
	.globl case_int3_after
case_int3_after:
	nop
	hlt

	.globl case_self
case_self:
	jmp	case_self

	.globl case_call
case_call:
	call	leaf
	.globl case_call_ret
case_call_ret:
	nop
	hlt
	.globl leaf
leaf:
	nop
	ret

	.globl case_iret
case_iret:
	mov	%rsp, %rax
	push	$0x10
	push	%rax
	pushfq
	push	$0x08
	lea	iret_target(%rip), %rax
	push	%rax
	.globl case_iret_insn
case_iret_insn:
	iretq
	.globl iret_target
iret_target:
	nop
	hlt

	/* counter loop: loop_count iterations of counter++ */
	.globl case_loop
case_loop:
	mov	loop_count(%rip), %rcx
	.globl loop_top
loop_top:
	incq	counter(%rip)
	.globl loop_dec
loop_dec:
	dec	%rcx
	jnz	loop_top
	.globl loop_done
loop_done:
	hlt

	/* a hot loop that touches hot_var (same page as watched_near) */
	.globl case_hot
case_hot:
	mov	loop_count(%rip), %rcx
1:	incq	hot_var(%rip)
	dec	%rcx
	jnz	1b
	hlt

	.globl case_write
case_write:
	movq	$0x1234, watched(%rip)
	.globl case_write_after
case_write_after:
	nop
	.globl case_write_same
case_write_same:
	movq	$0x1234, watched(%rip)
	.globl case_write_same_after
case_write_same_after:
	nop
	hlt

	.globl case_read
case_read:
	mov	watched(%rip), %rax
	.globl case_read_after
case_read_after:
	nop
	hlt

	/* push onto a watched stack slot: rsp = watched_stack_top */
	.globl case_push
case_push:
	lea	watched_stack_top(%rip), %rsp
	mov	$0x55, %eax
	.globl case_push_insn
case_push_insn:
	push	%rax
	.globl case_push_after
case_push_after:
	nop
	hlt

	/* rep movsb into the watched page */
	.globl case_repwatch
case_repwatch:
	lea	src_buf(%rip), %rsi
	lea	watched_buf(%rip), %rdi
	mov	$16, %rcx
	.globl case_repwatch_insn
case_repwatch_insn:
	rep movsb
	nop
	hlt

	/* 16-byte struct written field by field */
	.globl case_struct
case_struct:
	movq	$1, watched_struct(%rip)
	movq	$2, watched_struct+8(%rip)
	nop
	hlt

	/* guest code rewrites a byte of its own code (over a breakpoint) */
	.globl case_selfmod
case_selfmod:
	movb	$0x90, patch_site(%rip)
	.globl patch_site
patch_site:
	hlt
	nop
	hlt

	.globl case_exit
case_exit:
	mov	$0x21, %al
	out	%al, $0xf4
	hlt

	.globl case_triple
case_triple:
	lidt	zero_idt(%rip)
	ud2

	.globl case_print
case_print:
	lea	msg(%rip), %rsi
	mov	$0x3f8, %dx
1:	lodsb
	test	%al, %al
	jz	2f
	out	%al, %dx
	jmp	1b
2:	hlt

	/* nop; jmp back: the benchmark loop (same bytes as the raw loop) */
	.globl case_bench
case_bench:
	nop
	jmp	case_bench

	/* spin forever (pause tests) */
	.globl case_spin
case_spin:
	incq	spin_count(%rip)
	jmp	case_spin

	/* multi-vCPU: each vCPU bumps its own counter, rdi = vCPU index */
	.globl case_percpu
case_percpu:
	lea	percpu(%rip), %rax
	mov	loop_count(%rip), %rcx
1:	incq	(%rax,%rdi,8)
	dec	%rcx
	jnz	1b
	.globl case_percpu_done
case_percpu_done:
	hlt

	/* exception vector stubs: 16 bytes each */
	.balign 16
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.balign 16
	.globl vec\n
vec\n:
	movl	$\n, last_vec(%rip)
	jmp	common_handler
	.endr
	.balign 16
common_handler:
	mov	%rsp, last_frame(%rip)
	.globl handler_halt
handler_halt:
	hlt
	jmp	handler_halt

	.section .rodata
hello:	.asciz "mech ready\n"
msg:	.asciz "hello from the guest\n"

	.data
	.balign 8
	.globl rep_count, loop_count, flags_out, last_vec, last_frame, irq_count
irq_count:	.quad 0
rep_count:	.quad 4
loop_count:	.quad 10
flags_out:	.quad 0
last_vec:	.quad -1
last_frame:	.quad 0
idt_desc:	.word 0x41*16-1
		.quad idt
zero_idt:	.word 0
		.quad 0

	/* the watched page: watched, watched_buf, watched_struct */
	.balign 4096
	.globl watched, watched_buf, watched_struct, watched_near, hot_var
watched:	.quad 0
	.balign 64
watched_buf:	.fill 64, 1, 0
	.balign 64
watched_struct:	.fill 16, 1, 0
	.balign 64
watched_near:	.quad 0
hot_var:	.quad 0

	/* counters on another page */
	.balign 4096
	.globl counter, spin_count, percpu
counter:	.quad 0
spin_count:	.quad 0
percpu:		.fill 8, 8, 0

	/* a watched stack slot */
	.balign 4096
	.globl watched_stack, watched_stack_top
watched_stack:	.fill 256, 1, 0
watched_stack_top:
	.balign 4096

	.bss
	.balign 4096
	.globl idt, src_buf, dst_buf
idt:	.fill 256*16, 1, 0
	.balign 4096
src_buf:	.fill 131072, 1, 0
dst_buf:	.fill 131072, 1, 0
