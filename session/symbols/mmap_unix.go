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

// mapFileWritable maps a regular file read-write and shared: what is
// written goes to the file.
func mapFileWritable(f *os.File, size int64) ([]byte, bool) {
	if size <= 0 || int64(int(size)) != size {
		return nil, false
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, false
	}
	return b, true
}
