package adapter

import "time"

// SetProgressAfter sets how long work runs before progress is shown, and
// returns a function that restores it.
func SetProgressAfter(d time.Duration) func() {
	old := progressAfter
	progressAfter = d
	return func() { progressAfter = old }
}
