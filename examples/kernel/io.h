#ifndef IO_H
#define IO_H

void puts(const char *s);
void put_dec(unsigned long v);
void exit_guest(int code);
void idt_init(void);

#endif
