#include "../common/main64.h"

struct hvm_start_info {
	unsigned int magic, version, flags, nr_modules;
	unsigned long modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	unsigned int memmap_entries, reserved;
};

void main64(unsigned int eax, unsigned int info)
{
	struct hvm_start_info *si = (struct hvm_start_info *)(unsigned long)info;
	puts("pvh magic=");
	put_hex(si->magic);
	puts(" memmap_entries=");
	put_hex(si->memmap_entries);
	if (si->cmdline_paddr) {
		puts(" cmdline=");
		puts((const char *)si->cmdline_paddr);
	}
	puts("\n");
	exit_guest(si->magic == 0x336ec578 ? 0x20 : 0x21);
}
