package kvm

import (
	"runtime"
	"time"
)

// spinIters bounds how long the (unlocked) event waiter polls before it
// blocks; it yields every 1024 polls so that other goroutines can run.
const spinIters = 20000

// lockedSpin bounds how long a vCPU's locked thread polls for its next
// command before it blocks. It never yields: on a locked thread
// runtime.Gosched parks the thread and costs a futex round trip, the very
// thing spinning avoids. A stop followed by the next step or request from
// an IDE arrives well within this window.
const lockedSpin = 2 * time.Millisecond

// spinRecv receives from ch, polling for a while before blocking, so that
// a hand-off between a caller and a vCPU's locked OS thread costs well
// under a microsecond while both are busy.
func spinRecv[T any](ch <-chan T) (T, bool) {
	deadline := time.Now().Add(lockedSpin)
	for i := 0; ; i++ {
		select {
		case v, ok := <-ch:
			return v, ok
		default:
		}
		if i%256 == 255 && time.Now().After(deadline) {
			break
		}
	}
	v, ok := <-ch
	return v, ok
}

// yieldSpinRecv is spinRecv for unlocked goroutines.
func yieldSpinRecv[T any](ch <-chan T) (T, bool) {
	for i := 0; i < spinIters; i++ {
		select {
		case v, ok := <-ch:
			return v, ok
		default:
		}
		if i%1024 == 1023 {
			runtime.Gosched()
		}
	}
	v, ok := <-ch
	return v, ok
}
