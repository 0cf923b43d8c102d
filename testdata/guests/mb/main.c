#include "../common/main64.h"

struct mbi {
	unsigned int flags, mem_lower, mem_upper, boot_device, cmdline;
	unsigned int mods_count, mods_addr, syms[4], mmap_length, mmap_addr;
};

volatile unsigned long hits;
volatile int spin;
volatile unsigned long spins;

void main64(unsigned int magic, unsigned int info)
{
	struct mbi *mbi = (struct mbi *)(unsigned long)info;
	puts("multiboot magic=");
	put_hex(magic);
	puts(" flags=");
	put_hex(mbi->flags);
	puts(" mem_upper=");
	put_hex(mbi->mem_upper);
	if (mbi->flags & 4) {
		puts(" cmdline=");
		puts((const char *)(unsigned long)mbi->cmdline);
	}
	puts("\n");
	hits = hits + 1;
	while (spin) {
		__asm__ volatile(".globl spin_loop\nspin_loop:");
		spins++;
	}
	exit_guest(magic == 0x2badb002 ? 0x10 : 0x11);
}

/* pit_wait: a test points RIP here (after main64 has been reached). The
   PIT ticks at ~1 kHz through the 8259 PIC (IRQ0 → vector 0x20) while the
   code waits in a hlt loop; it exits with 0x20 after pit_goal ticks. */
volatile unsigned long pit_ticks;
volatile unsigned long pit_goal = 3;

struct gate64 {
	unsigned short off0, sel;
	unsigned char ist, attr;
	unsigned short off1;
	unsigned int off2, zero;
};

static struct gate64 idt64[0x21];

void isr_pit(void);
__asm__(".text\n.globl isr_pit\nisr_pit:\n"
	"push %rax\npush %rcx\npush %rdx\npush %rsi\npush %rdi\npush %r8\npush %r9\npush %r10\npush %r11\n"
	"call pit_tick\n"
	"pop %r11\npop %r10\npop %r9\npop %r8\npop %rdi\npop %rsi\npop %rdx\npop %rcx\npop %rax\n"
	"iretq\n");

void pit_tick(void)
{
	pit_ticks++;
	outb(0x20, 0x20); /* end of interrupt */
}

void pit_wait(void)
{
	unsigned long a = (unsigned long)isr_pit;
	struct {
		unsigned short limit;
		unsigned long base;
	} __attribute__((packed)) idtr = { sizeof(idt64) - 1, (unsigned long)idt64 };

	idt64[0x20] = (struct gate64){ (unsigned short)a, 0x08, 0, 0x8e, (unsigned short)(a >> 16), (unsigned int)(a >> 32), 0 };
	__asm__ volatile("lidt %0" : : "m"(idtr));
	/* 8259: master at vector 0x20, only IRQ0 unmasked; slave masked */
	outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01); outb(0x21, 0xfe);
	outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 0x02); outb(0xa1, 0x01); outb(0xa1, 0xff);
	/* PIT channel 0, rate generator, 1193 → ~1 kHz */
	outb(0x43, 0x34); outb(0x40, 1193 & 0xff); outb(0x40, 1193 >> 8);
	__asm__ volatile("sti");
	while (pit_ticks < pit_goal)
		__asm__ volatile(".globl pit_hlt\npit_hlt: hlt");
	__asm__ volatile("cli");
	exit_guest(0x20);
}
