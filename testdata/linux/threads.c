// A process of three threads for the Linux-awareness tests' guest (built
// static by the test, run by its /init): tasks walks a process's threads
// (signal->thread_head), each with its own pid, the process's tgid and a
// name of its own.
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *worker(void *arg) {
	char name[16];
	snprintf(name, sizeof name, "drgn-worker-%ld", (long)arg);
	pthread_setname_np(pthread_self(), name);
	for (;;)
		pause();
	return NULL;
}

int main(void) {
	pthread_t t[2];
	for (long i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, worker, (void *)(i + 1));
	for (;;)
		pause();
}
