#include "../common/main64.h"

extern char tramp[], tramp_end[];
extern volatile unsigned int ap_count;
volatile unsigned long counters[8];
volatile unsigned long shared;
volatile unsigned long rounds = 2000000000;
volatile unsigned long spin_ap;

static void lapic(unsigned int reg, unsigned int v)
{
	*(volatile unsigned int *)(0xfee00000UL + reg) = v;
}

static void delay(void)
{
	for (volatile int i = 0; i < 10000; i++)
		;
}

unsigned long leaf(unsigned long x)
{
	unsigned long y = x * 2; /* S:leaf */
	return y + 1;
}

void work(unsigned long cpu)
{
	counters[cpu]++; /* S:work */
	shared += leaf(cpu); /* S:workleaf */
}

void ap_main(unsigned long cpu)
{
	for (;;) {
		work(cpu); /* S:apwork */
		while (spin_ap) /* S:apspin */
			;
	}
}

void main64(unsigned int magic, unsigned int info)
{
	char *d = (char *)0x8000;
	for (char *s = tramp; s < tramp_end; s++)
		*d++ = *s;
	lapic(0x310, 0);
	lapic(0x300, 0x000c4500); /* INIT, all but self */
	delay();
	lapic(0x300, 0x000c4608); /* SIPI, vector 0x08 */
	delay();
	lapic(0x300, 0x000c4608);
	puts("started\n"); /* S:started */
	for (unsigned long i = 0; i < rounds; i++) {
		work(0); /* S:bspwork */
		counters[7] = ap_count; /* S:bspcount */
	}
	exit_guest(0x21); /* S:exit */
}
