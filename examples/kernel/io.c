/* COM1 output, the debug-exit port and a minimal IDT. */
#include "io.h"

#define COM1 0x3f8
#define DEBUG_EXIT 0xf4

static inline void outb(unsigned short port, unsigned char v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline unsigned char inb(unsigned short port)
{
	unsigned char v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void serial_putc(char c)
{
	while ((inb(COM1 + 5) & 0x20) == 0)
		;
	outb(COM1, c);
}

void puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

void put_dec(unsigned long v)
{
	char buf[21];
	int i = 20;
	buf[i] = 0;
	do {
		buf[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	puts(&buf[i]);
}

void exit_guest(int code)
{
	outb(DEBUG_EXIT, code);
	for (;;)
		__asm__ volatile("cli; hlt");
}

struct gate {
	unsigned short off0, sel;
	unsigned char ist, attr;
	unsigned short off1;
	unsigned int off2, zero;
} __attribute__((packed));

/* A whole table in a page of its own, as Linux's idt_table: the CPU
 * reads it at every exception, so its page can never trap reads, and a
 * read watchpoint on a variable must not share it. */
static struct gate idt[256] __attribute__((aligned(4096)));

struct frame {
	unsigned long vector, error, rip, cs, rflags;
};

extern char isr0[], isr6[], isr8[], isr13[], isr14[];

static void set_gate(int vec, void *handler)
{
	unsigned long a = (unsigned long)handler;
	idt[vec] = (struct gate){ (unsigned short)a, 0x08, 0, 0x8e, (unsigned short)(a >> 16), (unsigned int)(a >> 32), 0 };
}

void idt_init(void)
{
	struct {
		unsigned short limit;
		unsigned long base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (unsigned long)idt };
	set_gate(0, isr0);
	set_gate(6, isr6);
	set_gate(8, isr8);
	set_gate(13, isr13);
	set_gate(14, isr14);
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void exception(struct frame *f)
{
	puts("exception ");
	put_dec(f->vector);
	puts(" at ");
	put_dec(f->rip);
	puts("\n");
	exit_guest(0x7f);
}
