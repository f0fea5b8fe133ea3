/*
 * getpid_loop: the C library's null-call rate. One thread, one connection: rumpclient_init(),
 * then rump_sys_getpid() in a loop for the given seconds (default 3, after a 0.3 s warm-up);
 * prints "getpid_loop: <calls> calls in <s> s: <rate> calls/s". Builds against any
 * librumpclient with NetBSD's headers (ours or NetBSD's): docs/benchmarks.md.
 *
 *   cc -O2 -I<prefix>/include getpid_loop.c -L<prefix>/lib -lrumpclient -o getpid_loop
 *   RUMP_SERVER=unix:///tmp/rump.sock ./getpid_loop 5
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <rump/rumpclient.h>
#include <rump/rump_syscalls.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3.0;
	double t0, t, end;
	unsigned long n = 0;
	pid_t pid;

	if (rumpclient_init() != 0) {
		perror("rumpclient_init");
		return 1;
	}
	pid = rump_sys_getpid();
	if (pid <= 0) {
		fprintf(stderr, "getpid_loop: getpid returned %d\n", (int)pid);
		return 1;
	}
	for (end = now() + 0.3; now() < end;)
		(void)rump_sys_getpid();
	t0 = now();
	end = t0 + secs;
	do {
		/* Check the clock every 256 calls. */
		for (int i = 0; i < 256; i++) {
			if (rump_sys_getpid() != pid) {
				fprintf(stderr, "getpid_loop: wrong pid\n");
				return 1;
			}
		}
		n += 256;
		t = now();
	} while (t < end);
	printf("getpid_loop: %lu calls in %.2f s: %.0f calls/s\n", n, t - t0, n / (t - t0));
	return 0;
}
