//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps a guest image or initrd read-only instead of reading it:
// a 340 MB vmlinux costs only the pages the loader touches (its loadable
// segments and headers), not its DWARF. release unmaps it; the bytes must
// not be used after.
func mapFile(path string) (data []byte, release func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() == 0 {
		return []byte{}, func() {}, nil
	}
	if int64(int(st.Size())) != st.Size() {
		return nil, nil, fmt.Errorf("%s is too large to map (%d bytes)", path, st.Size())
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return b, func() { _ = syscall.Munmap(b) }, nil
}
