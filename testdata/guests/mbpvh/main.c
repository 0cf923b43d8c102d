#include "../common/main64.h"

/* Entered through Multiboot 1 (EAX 0x2badb002) or PVH (EBX → start info,
   its magic 0x336ec578): the exit status says which. */
void main64(unsigned int magic, unsigned int info)
{
	if (magic == 0x2badb002)
		exit_guest(0x10);
	exit_guest(*(unsigned int *)(unsigned long)info == 0x336ec578 ? 0x20 : 0x21);
}
