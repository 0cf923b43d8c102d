package symbols

import "syscall"

// release tells the kernel this process is done with a span of the
// mapping for now: its pages leave the process's resident set (they stay
// in the page cache, and a later touch maps them again). Indexing a
// 200 MB .debug_info this way keeps the peak RSS to a few units.
func release(m []byte, off, n int) {
	if n <= 0 || off < 0 || off+n > len(m) {
		return
	}
	const page = 4096
	start := (off + page - 1) &^ (page - 1)
	end := (off + n) &^ (page - 1)
	if end > start {
		syscall.Madvise(m[start:end], syscall.MADV_DONTNEED)
	}
}
