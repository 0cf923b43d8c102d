/* The corpus kernel: globals and types a kernel has, a call chain to
   unwind through, optimised arguments and locals, inlined and static
   functions. Every value is computed from constants, so a stop shows the
   same state on every machine. */
#include "corpus.h"

/* The definition after corpus.h's extern declaration. */
ticks_t ticks;

volatile int sinkhole;
u32 magic_seen;
u16 small_global = 0x1234;
signed char neg_global = -5;
u64 big_global = 0x1122334455667788ULL;

struct pte_flags {
	unsigned int present : 1;
	unsigned int rw : 1;
	unsigned int user : 1;
	unsigned int level : 3;
	signed int delta : 5;
	unsigned int pfn : 20;
};

union word {
	u32 u;
	u16 half[2];
	u8 bytes[4];
};

/* A flexible array member. */
struct packet {
	u16 len;
	u8 kind;
	u8 data[];
};

struct ops {
	int (*open)(int fd);
	void (*close)(int fd);
	const char *name;
};

enum state { IDLE, RUNNING = 3, BLOCKED = 7 };

struct task {
	int pid;
	enum state state;
	refcount_t usage;
	struct list_head node;
	struct pte_flags flags;
	union word tag;
	char comm[8];
	const struct ops *ops;
};

NOINLINE static int op_open(int fd)
{
	return fd + 100;
}

/* One line: at -O0 its body's row repeats the entry's line. */
NOINLINE static int twice(int v) { return v * 2; }

NOINLINE static void op_close(int fd)
{
	sinkhole = twice(fd) / 2;
}

const struct ops file_ops = { op_open, op_close, "file" };

struct list_head run_queue = { &run_queue, &run_queue };

struct task init_task = {
	.pid = 1,
	.state = RUNNING,
	.usage = { { 2 } },
	.flags = { .present = 1, .rw = 0, .user = 1, .level = 5, .delta = -3, .pfn = 0xabcde },
	.tag = { .u = 0x11223344 },
	.comm = "init",
	.ops = &file_ops,
};

struct task *current = &init_task;
atomic_t counters[3] = { { 7 }, { -1 }, { 42 } };

static u8 packet_buf[16] __attribute__((aligned(4))) = { 6, 0, 9, 'p', 'k', 't', '!', 0xff, 0x7f };
struct packet *pkt = (struct packet *)packet_buf;

NOINLINE void list_add(struct list_head *n, struct list_head *head)
{
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}

/* Inlined into several callers at -O2. */
static inline int square(int v)
{
	return v * v; /* bp:square */
}

/* Called once: at -O2 it exists only inlined. */
static inline void account(struct task *t, int n)
{
	t->usage.refs.counter += n; /* bp:account */
	ticks += (ticks_t)n;
}

NOINLINE int sink(int v)
{
	sinkhole = v; /* bp:sink */
	return v + 1;
}

/* At -O2 a tail call (jmp sink): gdb shows relay's frame above sink's,
   at the address after the jump. */
NOINLINE int relay(int v)
{
	return sink(v * 2);
}

/* At -O2 the arguments live in registers and n is dead after the call:
   its location list ends in DW_OP_entry_value. */
NOINLINE int scale(int n, int k)
{
	int x = square(n) * 3;
	int y = sink(x) + k;
	return y + square(k);
}

NOINLINE int level3(struct task *t, union word w, struct pte_flags f)
{
	int sum = t->pid + (int)w.half[1] + (int)f.level;
	sinkhole = sum; /* bp:level3 */
	return sum;
}

NOINLINE int level2(struct task *t, int depth)
{
	union word w = t->tag;
	int r = level3(t, w, t->flags) + depth;
	return r * 2;
}

NOINLINE int level1(int seed)
{
	struct task local = init_task;
	local.pid = seed;
	return level2(&local, seed + 1) + 1;
}

/* Called back from assembly without CFI. */
NOINLINE int asm_callback(int v)
{
	int doubled = v * 2;
	sinkhole = doubled; /* bp:callback */
	return doubled;
}

NOINLINE void show_types(struct task *t, struct packet *p, const struct ops *o)
{
	struct pte_flags f = t->flags;
	union word w = t->tag;
	int (*open)(int) = o->open;
	refcount_t r = t->usage;
	u8 first = p->data[0];
	sinkhole = open(first) + r.refs.counter + (int)f.level + w.bytes[0] + square(p->len); /* bp:types */
	o->close(sinkhole);
}

/* At -O2 a clone (IPA-SRA, IPA-CP) that receives v alone: k and unused
   are what its callers passed (DW_OP_GNU_parameter_ref). */
static __attribute__((noinline)) int cloned(int v, int k, int unused)
{
	sinkhole = v + k; /* bp:clone */
	return v * k;
}

/* At -O2 p lives in registers and q, inlined, points to it all the same:
   a pointer the program never has (DW_OP_implicit_pointer). */
struct pair2 {
	int a, b;
};

static inline __attribute__((always_inline)) int pair_sum(const struct pair2 *q)
{
	sinkhole = q->b - q->a; /* bp:implicit */
	return sink(q->a) + q->b;
}

NOINLINE int implicit_user(int x)
{
	struct pair2 p = { x, x * 3 };
	sink(p.b);
	return pair_sum(&p);
}

/* nest begins with inlined code: a breakpoint on nest stops in nest, at
   the call, as gdb shows it, not in what it inlines first. */
static inline __attribute__((always_inline)) int inner_inl(int v)
{
	int t = v ^ 0x55;
	sinkhole = t;
	return t + 1;
}

static inline __attribute__((always_inline)) int outer_inl(int v)
{
	int u = v + 3;
	return inner_inl(u) * 2;
}

NOINLINE int nest(int v)
{
	int w = outer_inl(v);
	w += sink(w) + outer_inl(w); /* bp:sameline */
	return w + outer_inl(w);
}

/* A block's x shadows the parameter x. */
NOINLINE int shadow(int x)
{
	int y = x + 1;
	{
		int x = y * 10;
		sinkhole = x + y; /* bp:shadow */
	}
	return x;
}

/* A variable-length array: its bound is known in the frame only. */
NOINLINE int vla_sum(int n)
{
	int a[n];
	for (int i = 0; i < n; i++)
		a[i] = i * i + 1;
	sinkhole = a[n - 1]; /* bp:vla */
	return a[0] + a[n - 1];
}

/* In a section of its own, as Linux's __init code is: its unit's code
   is in two ranges (DW_AT_ranges), and the location lists of its
   variables name their base address (clang: DW_LLE_base_addressx,
   DW_LLE_startx_length). */
__attribute__((section(".text.init"))) NOINLINE int init_scale(int a, int b)
{
	int c = a * b + sink(a);
	sinkhole = c; /* bp:init */
	return c + b;
}

/* Does not return: at -O2 kmain's call to it is kmain's last
   instruction, so kmain's return address lies past kmain's end. */
__attribute__((noreturn)) NOINLINE static void finish(int total)
{
	exit_guest(total == 9098 ? 0x10 : 0x11); /* bp:exit */
	for (;;)
		;
}

void kmain(u32 magic)
{
	static struct task idle;
	int total = 0;

	magic_seen = magic;
	serial_putc('C');
	list_add(&init_task.node, &run_queue);
	account(&init_task, 577);
	total += scale(5, 7);
	total += level1(40);
	total += asm_add(3, 4, asm_callback);
	show_types(current, pkt, &file_ops);
	idle.pid = total;
	sinkhole = relay((int)(magic & 7));
	sinkhole = cloned(total & 3, 12, 99) + cloned(total & 5, 12, 98);
	sinkhole = implicit_user((int)magic & 15);
	sinkhole = vla_sum(4);
	sinkhole = shadow(6);
	sinkhole = nest(3);
	sinkhole = init_scale((int)magic & 7, 9);
	asm_marker();
	finish(total);
}

#ifdef __clang__
/* clang copies a large structure (level1's local) by calling memcpy, even
   freestanding: a kernel provides one, and so does this one. */
void *memcpy(void *dst, const void *src, unsigned long n)
{
	u8 *d = dst;
	const u8 *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}
#endif
