/* compress: compresses each 4 KiB page of a file the way makedumpfile
 * stores a compressed kdump's pages, with the real libraries: LZO1X-1
 * (makedumpfile -l) or raw snappy (-p). Usage: compress lzo|snappy IN OUT.
 * OUT holds, for each page, a 4-byte little-endian length and the
 * compressed bytes. Built and run by vmm/core's tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lzo/lzo1x.h>
#include <snappy-c.h>

int main(int argc, char **argv) {
	if (argc != 4 || lzo_init() != LZO_E_OK)
		return 2;
	FILE *in = fopen(argv[2], "rb"), *out = fopen(argv[3], "wb");
	if (!in || !out)
		return 2;
	static unsigned char page[4096], buf[8192], wrk[LZO1X_1_MEM_COMPRESS];
	while (fread(page, 1, sizeof page, in) == sizeof page) {
		size_t n = sizeof buf;
		if (!strcmp(argv[1], "lzo")) {
			lzo_uint ln = sizeof buf;
			if (lzo1x_1_compress(page, sizeof page, buf, &ln, wrk) != LZO_E_OK)
				return 1;
			n = ln;
		} else if (snappy_compress((const char *)page, sizeof page, (char *)buf, &n) != SNAPPY_OK) {
			return 1;
		}
		unsigned char len[4] = {n, n >> 8, n >> 16, n >> 24};
		fwrite(len, 1, 4, out);
		fwrite(buf, 1, n, out);
	}
	return fclose(out) ? 1 : 0;
}
