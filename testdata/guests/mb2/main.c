#include "../common/main64.h"

/* Walks the Multiboot 2 information structure and prints what it finds on
   COM1: the command line, basic memory information, the memory map, the
   boot loader name and each module (its string and first bytes). Exits
   with 0x12 when the magic is right and the command line, basic memory
   information and memory map are there, else 0x13. */

struct tag {
	unsigned int type, size;
};

static void put_dec(unsigned long v)
{
	char buf[21];
	int i = 20;
	buf[i] = 0;
	do {
		buf[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	puts(buf + i);
}

void main64(unsigned int magic, unsigned int info)
{
	unsigned int total = *(unsigned int *)(unsigned long)info;
	int seen = 0;
	puts("mb2 magic=");
	put_hex(magic);
	puts(" info=");
	put_hex(info);
	puts("\n");
	for (unsigned long p = info + 8; p < info + total;) {
		struct tag *t = (struct tag *)p;
		if (t->type == 0)
			break;
		unsigned int *w = (unsigned int *)(t + 1);
		switch (t->type) {
		case 1:
			puts("cmdline=");
			puts((const char *)w);
			puts("\n");
			seen |= 1;
			break;
		case 2:
			puts("loader=");
			puts((const char *)w);
			puts("\n");
			break;
		case 3: {
			const char *data = (const char *)(unsigned long)w[0];
			puts("module start=");
			put_hex(w[0]);
			puts(" len=");
			put_dec(w[1] - w[0]);
			puts(" string=");
			puts((const char *)(w + 2));
			puts(" data=");
			for (unsigned int i = 0; i < 8 && i < w[1] - w[0]; i++) {
				char c[2] = { data[i], 0 };
				puts(c);
			}
			puts("\n");
			seen |= 2;
			break;
		}
		case 4:
			puts("mem_lower=");
			put_dec(w[0]);
			puts(" mem_upper=");
			put_dec(w[1]);
			puts("\n");
			seen |= 4;
			break;
		case 6: {
			unsigned int esize = w[0], n = (t->size - 16) / esize;
			unsigned long ram = 0;
			for (unsigned int i = 0; i < n; i++) {
				unsigned long *e = (unsigned long *)((char *)t + 16 + i * esize);
				if (((unsigned int *)e)[4] == 1)
					ram += e[1];
			}
			puts("mmap entries=");
			put_dec(n);
			puts(" ram=");
			put_dec(ram >> 10);
			puts("K\n");
			seen |= 8;
			break;
		}
		}
		p += (t->size + 7) & ~7ul;
	}
	exit_guest(magic == 0x36d76289 && (seen & 13) == 13 ? 0x12 : 0x13);
}
