/* Shared 64-bit part of the Multiboot and PVH test guests. */
static inline void outb(unsigned short port, unsigned char v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

void puts(const char *s)
{
	while (*s)
		outb(0x3f8, *s++);
}

static void put_hex(unsigned long v)
{
	char buf[19] = "0x";
	for (int i = 0; i < 16; i++)
		buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 0xf];
	buf[18] = 0;
	puts(buf);
}

static void exit_guest(int code)
{
	outb(0xf4, code);
	for (;;)
		__asm__ volatile("cli; hlt");
}
