//go:build unix

package symbols

import (
	"os"
	"syscall"
)

// mapFile maps a regular file read-only. The mapping is private and
// never written; its pages are the kernel's page cache, read on first
// touch.
func mapFile(f *os.File, size int64) ([]byte, bool) {
	if size <= 0 || int64(int(size)) != size {
		return nil, false
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, false
	}
	return b, true
}

func unmapFile(b []byte) { syscall.Munmap(b) }

// release tells the kernel this process is done with a span of the
// mapping for now: its pages leave the process's resident set (they stay
// in the page cache, and a later touch maps them again). Indexing a
// 200 MB .debug_info this way keeps the peak RSS to a few CUs.
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
