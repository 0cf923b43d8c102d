package session

// taskThreads is the tasks-as-threads view (see TaskThreads).
type taskThreads struct {
	stale bool
}
