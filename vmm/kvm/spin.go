package kvm

import "runtime"

// spinIters bounds how long a receiver polls before it blocks. 20k polls
// are ~100-200 µs: longer than a single step, shorter than a scheduler
// quantum.
const spinIters = 20000

// spinRecv receives from ch, polling for a while before blocking, so that a
// hand-off between a caller and a vCPU's locked OS thread costs well under
// a microsecond while both are busy. It yields every 1024 polls: measured
// on a 2-core host, a spinner that never yields starves the runtime and
// makes single-stepping ~15% slower despite the futex a yield costs on a
// locked thread.
func spinRecv[T any](ch <-chan T) (T, bool) {
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
