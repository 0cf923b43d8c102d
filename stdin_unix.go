//go:build unix

package main

import (
	"os"
	"syscall"
)

// polledStdin returns standard input read through Go's network poller
// when it is a pipe or a socket (an editor's): a read then parks its
// goroutine and frees the processor. A blocking read keeps its processor
// until the runtime's monitor takes it back, up to 10 ms later: while the
// symbols of a kernel are indexed on the other processors, each request
// queued by the read loop waited that long for the worker to run it. A
// terminal is left blocking, as the shell expects it back.
func polledStdin() *os.File {
	var st syscall.Stat_t
	if err := syscall.Fstat(0, &st); err != nil {
		return os.Stdin
	}
	if m := st.Mode & syscall.S_IFMT; m != syscall.S_IFIFO && m != syscall.S_IFSOCK {
		return os.Stdin
	}
	if err := syscall.SetNonblock(0, true); err != nil {
		return os.Stdin
	}
	return os.NewFile(0, "/dev/stdin")
}
