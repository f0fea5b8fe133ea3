/*
 * sockin_floor: the floor under sockin's 4 KiB send+recv on this machine — host threads
 * only, no rump server, no protocol (docs/benchmarks.md, "Issue 15: sockin ... the floor").
 *
 *   cc -O2 -pthread benches/c/sockin_floor.c -o sockin_floor
 *   ./sockin_floor tcp  [threads] [secs]   each thread: a TCP connection on 127.0.0.1
 *                                          (TCP_NODELAY) to an echo thread of its own
 *                                          (as loadtest's sockin-echo peer); an op
 *                                          writes 4 KiB and reads the 4 KiB echoed
 *   ./sockin_floor file [threads] [secs]   each thread: pwrite then pread of 4 KiB at
 *                                          offset 0 of its own file in /dev/shm (tmpfs)
 *
 * Prints "<mode>: <threads> threads: <ops> ops in <s> s: <ops/s> ops/s, <calls/s> calls/s"
 * (an op is two calls in both modes). Default 64 threads (loadtest's 16 x 4), 4 s.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MSG 4096

static atomic_int stop;
static atomic_long total;
static int use_tcp;
static int lfd;
static struct sockaddr_in laddr;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
echo(void *arg)
{
	int s = (int)(long)arg;
	char buf[65536];
	ssize_t n, w, off;

	while ((n = read(s, buf, sizeof buf)) > 0)
		for (off = 0; off < n; off += w)
			if ((w = write(s, buf + off, n - off)) <= 0)
				return NULL;
	return NULL;
}

static void *
worker(void *arg)
{
	char buf[MSG], name[64];
	long ops = 0;
	ssize_t n, got;
	int fd, one = 1;

	memset(buf, 'x', sizeof buf);
	if (use_tcp) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&laddr, sizeof laddr) != 0) {
			perror("connect");
			exit(1);
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	} else {
		snprintf(name, sizeof name, "/dev/shm/sockin_floor.%d.%ld", getpid(),
		    (long)arg);
		fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0) {
			perror(name);
			exit(1);
		}
		unlink(name);
	}
	while (!atomic_load(&stop)) {
		if (use_tcp) {
			if (write(fd, buf, MSG) != MSG)
				break;
			for (got = 0; got < MSG; got += n)
				if ((n = read(fd, buf + got, MSG - got)) <= 0)
					goto out;
		} else {
			if (pwrite(fd, buf, MSG, 0) != MSG || pread(fd, buf, MSG, 0) != MSG)
				break;
		}
		ops++;
	}
out:
	atomic_fetch_add(&total, ops);
	close(fd);
	return NULL;
}

int
main(int argc, char **argv)
{
	int threads = argc > 2 ? atoi(argv[2]) : 64;
	double secs = argc > 3 ? atof(argv[3]) : 4, t0, t1;
	pthread_t *t;
	socklen_t len = sizeof laddr;
	int i, one = 1;

	if (argc < 2 || (strcmp(argv[1], "tcp") != 0 && strcmp(argv[1], "file") != 0)) {
		fprintf(stderr, "usage: sockin_floor tcp|file [threads] [secs]\n");
		return 2;
	}
	use_tcp = strcmp(argv[1], "tcp") == 0;
	if (threads < 1 || threads > 1024)
		threads = 64;
	if (use_tcp) {
		lfd = socket(AF_INET, SOCK_STREAM, 0);
		laddr.sin_family = AF_INET;
		laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(lfd, (struct sockaddr *)&laddr, sizeof laddr) != 0 ||
		    listen(lfd, threads) != 0 ||
		    getsockname(lfd, (struct sockaddr *)&laddr, &len) != 0) {
			perror("listen");
			return 1;
		}
	}
	t = calloc(threads, sizeof *t);
	for (i = 0; i < threads; i++) {
		pthread_create(&t[i], NULL, worker, (void *)(long)i);
		if (use_tcp) {
			pthread_t e;
			int s = accept(lfd, NULL, NULL);

			setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			pthread_create(&e, NULL, echo, (void *)(long)s);
			pthread_detach(e);
		}
	}
	t0 = now();
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&stop, 1);
	for (i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	t1 = now();
	printf("%s: %d threads: %ld ops in %.2f s: %.0f ops/s, %.0f calls/s\n", argv[1],
	    threads, atomic_load(&total), t1 - t0, atomic_load(&total) / (t1 - t0),
	    2 * atomic_load(&total) / (t1 - t0));
	return 0;
}
