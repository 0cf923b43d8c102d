/*
 * vmdap example guest: a few functions, a loop, a global counter, a struct
 * and an array, serial output on COM1, and an exit status through the
 * QEMU-compatible debug-exit port (exit status = (value << 1) | 1).
 */
#include "io.h"

struct point {
	int x;
	int y;
};

enum color { RED, GREEN, BLUE };

volatile unsigned long counter;          /* the global counter */
struct point origin = {3, 4};
enum color favourite = GREEN;
int squares[8];
const char *greeting = "hello from the vmdap example guest";
unsigned long busy_iterations = 100000;  /* a long call for "step over" */
volatile int scenario;                   /* set to 1 in the debugger: divide by zero */

int square(int x)
{
	int result = x * x;
	return result;
}

int sum_squares(int n)
{
	int total = 0;
	for (int i = 0; i < n; i++) {
		squares[i] = square(i);
		total += squares[i];
		counter++;
	}
	return total;
}

unsigned long busy_work(unsigned long iterations)
{
	unsigned long acc = 0;
	for (unsigned long i = 0; i < iterations; i++)
		acc += i ^ (acc >> 3);
	return acc;
}

int divide(int a, int b)
{
	return a / b;
}

void kmain(void)
{
	idt_init();
	puts(greeting);
	puts("\n");
	int total = sum_squares(5);
	puts("sum of squares: ");
	put_dec(total);
	puts("\n");
	struct point p = origin;
	p.x += total;
	p.y = square(p.y) - divide(9, 1); /* two calls on a line: Step Into Target */
	unsigned long work = busy_work(busy_iterations);
	puts("busy work: ");
	put_dec(work & 0xffff);
	puts("\n");
	if (scenario == 1)
		total = divide(total, scenario - 1);
	puts("counter: ");
	put_dec(counter);
	puts("\n");
	exit_guest(total == 30 && p.x == 33 ? 0 : 1);
}
