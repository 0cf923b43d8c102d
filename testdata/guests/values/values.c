/*
 * Values as gdb shows them: globals of the types and shapes whose
 * display vmdap once got wrong (_Atomic, __int128, long double, float
 * precision, multi-dimensional arrays, qualified pointers, typedefs in
 * arrays, flag enums, char arrays holding NULs, pointers into data
 * objects). The tests compare vmdap's view of each with gdb's print of
 * the same ELF file. Every global is initialised data: the values are
 * there before main64 runs.
 */
#include "../common/main64.h"

typedef unsigned char u8;

volatile int sinkhole;

/* Flag enums (every enumerator one bit) and a plain one. */
enum perm { P_R = 1, P_W = 2, P_X = 4 };
enum sign { NEG = -2, ZERO = 0, POS = 2 };
enum perm perms = P_R | P_X;
enum perm perms_odd = (enum perm)(P_W | 8);
enum perm perms_none = (enum perm)0;
enum perm perms_one = P_W;
enum sign sgn = NEG;
enum sign sgn_odd = (enum sign)5;

/* Arrays: of structs, two and three dimensions, chars holding NULs. */
struct pt {
	short x, y;
};
struct pt points[3] = { { 1, -1 }, { 2, -2 }, { 3, -3 } };
int grid[2][3] = { { 1, 2, 3 }, { 4, 5, 6 } };
u8 cube[2][2][2] = { { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } };
char name_buf[12] = "hello\tw\"d";
unsigned char ubytes[4] = { 'a', 0, 200, 'z' };
signed char sbytes[3] = { -1, 'Q', 0 };
char holes[5] = { 'a', 0, 'x', 0, 0 };
char escapes[8] = { 7, 27, '\'', '\\', 127, '\n', '\r', 'e' };
/* A large array: a client pages through its elements. */
unsigned int big_arr[8192] = { [0] = 1, [999] = 1000, [1000] = 1001, [8191] = 8192 };
unsigned int (*far_arr)[2000] = (unsigned int (*)[2000])0xfffffffffffff000; /* unmapped */

/* A global only the linker script defines (as Linux's jiffies is):
 * its type is its declaration's. */
extern volatile unsigned int lds_word;

/* Bitfields past a struct's first eight bytes: DWARF 5 gives their
 * position from the struct's start (DW_AT_data_bit_offset), not from a
 * storage unit. */
struct late_bits {
	long a, b;
	unsigned c : 3;
	unsigned d : 5;
	signed char e : 4;
	unsigned long f : 40;
} late_bits = { 1, 2, 5, 9, -3, 0x123456789 };

/* Anonymous members: a union and a struct with no name. */
struct anon_holder {
	int kind;
	union {
		int i;
		unsigned char b[4];
	};
	struct {
		short lo, hi;
	};
} anon_h = { 3, { .i = 0x01020304 }, { -1, 2 } };

/* Pointers into data objects, and one into nothing. */
struct pt *ppt = &points[1];
char *ppt_bytes = (char *)&points[1];
const char *in_name = &name_buf[6];
void *vgrid = &grid[1][0];
int *nowhere = (int *)0x3f00000;
struct pt *past_points = &points[3]; /* in the gap after points */

/* Qualified pointers, typedefs in arrays, function pointers. */
typedef int (*handler_t)(int);
__attribute__((noinline)) static int h_inc(int v) { return v + 1; }
__attribute__((noinline)) static int h_dbl(int v) { return v * 2; }
handler_t handlers[3] = { h_inc, h_dbl, 0 };
int (*const cfp)(int) = h_dbl;
const char *const greeting = "greet";
const volatile int cv_int = 77;
volatile int *const vp_const = &sinkhole;
const int *volatile const *cvpp;

/* _Atomic, 128-bit integers, floating point. */
_Atomic int atomic_ctr = 5;
_Atomic(struct pt) atomic_pt = { 9, 8 };
__int128 i128 = -((__int128)1 << 70) - 3;
unsigned __int128 u128 = ((unsigned __int128)0x0123456789abcdefULL << 64) | 0xfedcba9876543210ULL;
__int128 i128_small = -5;
float fl_g = 1.5f;
float fl_arr[2] = { 0.1f, -0.0f };
float fl_nan = -__builtin_nanf("7");
double db_g = -2.0 / 3.0;
double db_tenth = 0.1;
double db_inf = __builtin_inf();
double db_ninf = -__builtin_inf();
double db_nan = __builtin_nan("");
long double ld_g = 1.0L / 3.0L;
long double ld_big = 1e30L;
long double ld_nan = __builtin_nanl("");
long double ld_ninf = -__builtin_infl();
__float128 f128 = 1.0Q / 3.0Q;

void main64(unsigned int magic, unsigned int info)
{
	(void)info;
	sinkhole = handlers[0](1) + cfp(2) + (int)lds_word;
	exit_guest(magic == 0x2badb002 ? 0x10 : 0x11);
}
