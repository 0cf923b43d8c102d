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
