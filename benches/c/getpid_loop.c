/*
 * getpid_loop: the C library's null-call rate. One thread, one connection: rumpclient_init(),
 * then rump_sys_getpid() in a loop for the given seconds (default 3, after a 0.3 s warm-up);
 * prints "getpid_loop: <calls> calls in <s> s: <rate> calls/s", then the 10th, 50th and 90th
 * percentiles of the single calls' times (the median is steadier than the rate on a shared,
 * loaded machine: preemptions move the rate and the tail, rarely the median). Builds against
 * any librumpclient with NetBSD's headers (ours or NetBSD's): docs/benchmarks.md.
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

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define NSAMPLES (1 << 22)

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3.0;
	double t0, t, end;
	unsigned long n = 0, ns = 0;
	double *lat = malloc(NSAMPLES * sizeof(*lat));
	pid_t pid;

	if (lat == NULL)
		return 1;
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
		double c0 = now(), c1;

		for (int i = 0; i < 256; i++, c0 = c1) {
			if (rump_sys_getpid() != pid) {
				fprintf(stderr, "getpid_loop: wrong pid\n");
				return 1;
			}
			c1 = now();
			if (ns < NSAMPLES)
				lat[ns++] = c1 - c0;
		}
		n += 256;
		t = now();
	} while (t < end);
	printf("getpid_loop: %lu calls in %.2f s: %.0f calls/s\n", n, t - t0, n / (t - t0));
	qsort(lat, ns, sizeof(*lat), cmp);
	printf("getpid_loop: per call p10 %.2f us, p50 %.2f us, p90 %.2f us\n",
	    lat[ns / 10] * 1e6, lat[ns / 2] * 1e6, lat[ns * 9 / 10] * 1e6);
	return 0;
}
