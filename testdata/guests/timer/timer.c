/* Interrupt scenarios for vmdap's tests (launched with "irqchip": true):
   the local APIC timer ticks while the kernel waits in a hlt loop. Lines
   are found by their "T:" markers. */

#define APIC 0xfee00000UL
#define TIMER_VECTOR 0x20

volatile unsigned long ticks;
unsigned long seen;

struct gate {
	unsigned short off0, sel;
	unsigned char ist, attr;
	unsigned short off1;
	unsigned int off2, zero;
};

static struct gate idt[TIMER_VECTOR + 1];

extern void isr_timer(void);

static inline void outb(unsigned short port, unsigned char v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static void apic_write(unsigned int reg, unsigned int v)
{
	*(volatile unsigned int *)(APIC + reg) = v;
}

void on_tick(void)
{
	ticks++;             /* T:tick */
	apic_write(0xb0, 0); /* end of interrupt */
}

static void idt_init(void)
{
	unsigned long a = (unsigned long)isr_timer;
	struct {
		unsigned short limit;
		unsigned long base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (unsigned long)idt };

	idt[TIMER_VECTOR] = (struct gate){ (unsigned short)a, 0x08, 0, 0x8e, (unsigned short)(a >> 16), (unsigned int)(a >> 32), 0 };
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void wait_ticks(unsigned long n)
{
	while (ticks < n) __asm__ volatile("hlt"); /* T:wait */
	seen = ticks; /* T:seen */
}

void kmain(void)
{
	idt_init();
	apic_write(0xf0, 0x1ff);                    /* enable the local APIC */
	apic_write(0x3e0, 0xb);                     /* timer divide by 1 */
	apic_write(0x320, TIMER_VECTOR | 1 << 17);  /* periodic */
	apic_write(0x380, 2000000);                 /* T:start */
	__asm__ volatile("sti");
	wait_ticks(3);                              /* T:callwait */
	__asm__ volatile("cli");
	apic_write(0x320, 1 << 16);                 /* masked */
	outb(0xf4, seen >= 3 ? 0 : 1);              /* T:exit */
	for (;;)
		__asm__ volatile("hlt");
}
