/*
 * Floating point in x87 and SSE registers, as gdb shows it: arguments
 * and locals that -O2 keeps in xmm registers, and values returned in
 * XMM0/XMM1 (float, double, small aggregates of SSE class, mixed with
 * RAX) and in st(0) (long double). The test guests are built without SSE
 * (-mgeneral-regs-only); this one drops that flag (its cflags), and
 * main64, still without SSE, lets the CPU run SSE code (CR4.OSFXSR, as
 * an OS does) before the code that uses it.
 */
#include "../common/main64.h"

void run(void);

__attribute__((target("general-regs-only"))) void main64(unsigned int magic, unsigned int info)
{
	(void)info;
	unsigned long cr0, cr4;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %0, %%cr0" : : "r"((cr0 & ~4ul) | 2ul)); /* EM off, MP on */
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | 0x600ul)); /* OSFXSR, OSXMMEXCPT */
	__asm__ volatile("fninit");
	static const unsigned int pattern[4] = { 0x12345678, 0xdeadbeef, 1, 0xfffffffe };
	__asm__ volatile("movdqu %0, %%xmm7" : : "m"(pattern));
	run();
	exit_guest(magic == 0x2badb002 ? 0x10 : 0x11);
}

struct dl {
	double d;
	long l;
};
struct f3 {
	float a, b, c;
};
struct dd {
	double x, y;
};

volatile double got_d;
volatile float got_f;
volatile long double got_ld;
volatile struct dl got_dl;
volatile struct f3 got_f3;
volatile struct dd got_dd;

__attribute__((noinline)) double scale_d(double x, float k)
{
	double r = x * k;
	got_d = r;
	return r;
}

__attribute__((noinline)) float neg_f(float v)
{
	return -v;
}

__attribute__((noinline)) long double third(long double v)
{
	return v / 3;
}

__attribute__((noinline)) struct dl mk_dl(double d, long l)
{
	struct dl r = { d * 2, l + 1 };
	return r;
}

__attribute__((noinline)) struct f3 mk_f3(float a)
{
	struct f3 r = { a, a + 1, a + 2 };
	return r;
}

__attribute__((noinline)) struct dd mk_dd(double x)
{
	struct dd r = { x, -x };
	return r;
}

void run(void)
{
	got_d = scale_d(2.5, 3.0f);
	got_f = neg_f(1.25f);
	got_ld = third(1.0L);
	got_dl = mk_dl(0.75, 41);
	got_f3 = mk_f3(0.5f);
	got_dd = mk_dd(1.5);
}
