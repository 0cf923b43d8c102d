//go:build !linux

package symbols

// release is a no-op where madvise is not at hand: the pages stay
// resident until the kernel reclaims them.
func release(m []byte, off, n int) {}
