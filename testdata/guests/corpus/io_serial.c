/* COM1 output: one of two static outb copies (the other is in io_exit.c). */
#include "corpus.h"

NOINLINE static void outb(u16 port, u8 v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); /* bp:outb-serial */
}

void serial_putc(char c)
{
	outb(0x3f8, (u8)c);
}
