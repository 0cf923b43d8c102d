/* Data-breakpoint scenarios for vmdap's tests; lines are found by their
   "W:" markers. RDI = vCPU index, RSI = vCPU count (64-bit direct boot). */

struct pair {
	unsigned long a;
	unsigned long b;
};

volatile unsigned long counter;
struct pair pair;
int arr[8];
unsigned long hot;
volatile unsigned long shared;
volatile int go_ahead;
unsigned long results[4];
const unsigned char src[32] = "0123456789abcdefghijklmnopqrstu";

static inline void outb(unsigned short port, unsigned char v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

void bump(unsigned long *p)
{
	*p = *p + 1; /* W:bump */
}

unsigned long sum_hot(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		hot += i; /* W:hot */
	return hot;
}

void copy_into(void *dst, const void *s, unsigned long n)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(s), "+c"(n) : : "memory"); /* W:repmovs */
}

unsigned long with_local(unsigned long seed)
{
	unsigned long local = seed; /* W:local_init */
	local = local * 3;          /* W:local_mul */
	local = local + 1;          /* W:local_add */
	return local;
}

void secondary(unsigned long cpu)
{
	while (!go_ahead)
		;
	shared = 100 + cpu; /* W:secondary */
	for (;;)
		__asm__ volatile("cli; hlt");
}

void kmain(unsigned long cpu, unsigned long ncpus)
{
	if (cpu != 0)
		secondary(cpu);
	counter = 41;     /* W:c41 */
	counter = 42;     /* W:c42 */
	counter = 42;     /* W:csame */
	pair.a = 1;       /* W:pa */
	pair.b = 2;       /* W:pb */
	arr[3] = 7;       /* W:arr3 */
	bump((unsigned long *)&counter); /* W:callbump */
	results[0] = counter; /* W:readc */
	results[1] = sum_hot(2000); /* W:callhot */
	copy_into(arr, src, sizeof arr); /* W:callcopy */
	results[2] = with_local(5); /* W:calllocal */
	go_ahead = 1;     /* W:go */
	while (ncpus > 1 && shared == 0)
		;
	outb(0xf4, counter == 43 ? 0 : 1); /* W:exit */
	for (;;)
		__asm__ volatile("cli; hlt");
}
