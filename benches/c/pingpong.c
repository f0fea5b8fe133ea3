/*
 * pingpong: the floor under any sp client's null call on this machine — two host processes
 * passing a 32-byte message back and forth over a unix socketpair, no rump server, no
 * protocol. What one round trip costs in host system calls and wake-ups alone; a client
 * that waits for each answer cannot call faster than this (docs/benchmarks.md, "The C
 * library's null call vs NetBSD's librumpclient").
 *
 *   cc -O2 benches/c/pingpong.c -o pingpong
 *   ./pingpong block [secs]              both sides sleep in poll until the message is there
 *   ./pingpong spin [secs]               both sides spin on non-blocking reads (no sleeping)
 *   taskset -c 0 ./pingpong block [secs] both on one CPU (the pinned shape)
 *
 * Prints "pingpong <mode>: <n> round trips in <s> s: <rate>/s, p50 <us> us".
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int spin;

/* Reads one 32-byte message (the peer writes exactly that). */
static int
get(int fd, char *b)
{
	if (!spin) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (poll(&p, 1, -1) != 1)
			return -1;
		return recv(fd, b, 32, 0) == 32 ? 0 : -1;
	}
	for (;;) {
		ssize_t n = recv(fd, b, 32, MSG_DONTWAIT);

		if (n == 32)
			return 0;
		if (n >= 0)
			return -1;
	}
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
	double secs = argc > 2 ? atof(argv[2]) : 2.0, t0, t, c0, c1;
	double *lat = malloc(NSAMPLES * sizeof(*lat));
	unsigned long n = 0;
	char b[32];
	int sv[2];
	pid_t pid;

	if (argc < 2 || (strcmp(argv[1], "block") != 0 && strcmp(argv[1], "spin") != 0) ||
	    lat == NULL) {
		fprintf(stderr, "usage: pingpong block|spin [secs]\n");
		return 2;
	}
	spin = strcmp(argv[1], "spin") == 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 1;
	memset(b, 0, sizeof(b));
	if ((pid = fork()) == 0) {
		/* The echo peer: answers until it gets a message starting with 1. */
		while (get(sv[1], b) == 0 && b[0] == 0)
			if (send(sv[1], b, 32, 0) != 32)
				break;
		_exit(0);
	}
	t0 = now();
	c0 = t0;
	do {
		for (int i = 0; i < 256; i++, c0 = c1) {
			if (send(sv[0], b, 32, 0) != 32 || get(sv[0], b) != 0)
				return 1;
			c1 = now();
			if (n + i < NSAMPLES)
				lat[n + i] = c1 - c0;
		}
		n += 256;
		t = now();
	} while (t < t0 + secs);
	b[0] = 1;
	send(sv[0], b, 32, 0);
	waitpid(pid, NULL, 0);
	if (n > NSAMPLES)
		n = NSAMPLES;
	qsort(lat, n, sizeof(*lat), cmp);
	printf("pingpong %s: %lu round trips in %.2f s: %.0f/s, p50 %.2f us\n", argv[1], n,
	    t - t0, n / (t - t0), lat[n / 2] * 1e6);
	return 0;
}
