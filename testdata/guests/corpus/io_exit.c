/* The exit port (QEMU's isa-debug-exit, vmdap's VMM): the second static
   outb copy. */
#include "corpus.h"

NOINLINE static void outb(u16 port, u8 v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); /* bp:outb-exit */
}

void exit_guest(int code)
{
	outb(0xf4, (u8)code);
	for (;;)
		__asm__ volatile("cli; hlt");
}
