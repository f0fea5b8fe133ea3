/*
 * threads: N threads × M rounds of system calls at once over the one connection, every
 * result checked, while one more thread is blocked in the kernel (a read of an empty rump
 * pipe) for the whole run and is released at the end — so the receive right passes between
 * threads while an answer is outstanding. Each round: getpid (a null call), writev of two
 * buffers (prefetched on the sp fast path) and pread back, lseek to the end (the size), dup
 * and close, and close(-1) for the thread's own errno. Run by tests/clib_threads.rs with the
 * fast path on and off and with the receive spin on and off. Usage: threads N M; exit 0 and
 * "ok" on success, else a message on stderr.
 */
#define _GNU_SOURCE
#include <sys/uio.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rump/rumpclient.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpdefs.h>

#define FAIL(...) do { fprintf(stderr, "threads: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static pid_t mainpid;
static int rounds;
static int pipefd[2];

static void *
blocker(void *arg)
{
	char c = 0;

	(void)arg;
	if (rump_sys_read(pipefd[0], &c, 1) != 1 || c != 'z')
		FAIL("blocked read: errno %d, got %d", errno, c);
	return NULL;
}

static void *
worker(void *arg)
{
	long id = (long)arg;
	char name[32], a[32], b[32], back[64], want[64];
	int fd, d, i;

	snprintf(name, sizeof(name), "/thr%ld", id);
	fd = rump_sys_open(name, RUMP_O_RDWR | RUMP_O_CREAT | RUMP_O_TRUNC, 0600);
	if (fd == -1)
		FAIL("%ld: open errno %d", id, errno);
	for (i = 0; i < rounds; i++) {
		if (rump_sys_getpid() != mainpid)
			FAIL("%ld.%d: getpid", id, i);
		int na = snprintf(a, sizeof(a), "t%ld:", id);
		int nb = snprintf(b, sizeof(b), "%d;", i);
		struct iovec iov[2] = { { a, (size_t)na }, { b, (size_t)nb } };
		if (rump_sys_pwrite(fd, "", 0, 0) != 0)
			FAIL("%ld.%d: empty pwrite errno %d", id, i, errno);
		if (rump_sys_lseek(fd, 0, 0 /* SEEK_SET */) != 0)
			FAIL("%ld.%d: lseek errno %d", id, i, errno);
		if (rump_sys_writev(fd, iov, 2) != na + nb)
			FAIL("%ld.%d: writev errno %d", id, i, errno);
		snprintf(want, sizeof(want), "%s%s", a, b);
		memset(back, 0, sizeof(back));
		if (rump_sys_pread(fd, back, (size_t)(na + nb), 0) != na + nb ||
		    strcmp(back, want) != 0)
			FAIL("%ld.%d: pread got '%s', want '%s'", id, i, back, want);
		/* The file only grows: its size is at least this round's record. */
		if (rump_sys_lseek(fd, 0, 2 /* SEEK_END */) < na + nb)
			FAIL("%ld.%d: size errno %d", id, i, errno);
		d = rump_sys_dup(fd);
		if (d < 0 || d == fd || rump_sys_close(d) != 0)
			FAIL("%ld.%d: dup/close %d errno %d", id, i, d, errno);
		errno = 0;
		if (rump_sys_close(-1) != -1 || errno != RUMP_EBADF)
			FAIL("%ld.%d: close(-1) errno %d", id, i, errno);
	}
	if (rump_sys_close(fd) != 0)
		FAIL("%ld: close errno %d", id, errno);
	return NULL;
}

int
main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 8;
	pthread_t *t, bt;
	long i;

	rounds = argc > 2 ? atoi(argv[2]) : 200;
	if (nthreads < 1 || rounds < 1 || (t = calloc((size_t)nthreads, sizeof(*t))) == NULL)
		FAIL("usage: threads N M");
	if (rumpclient_init() != 0)
		FAIL("rumpclient_init: errno %d", errno);
	mainpid = rump_sys_getpid();
	if (mainpid < 1 || rump_sys_pipe(pipefd) != 0)
		FAIL("getpid/pipe errno %d", errno);
	if (pthread_create(&bt, NULL, blocker, NULL) != 0)
		FAIL("pthread_create");
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
			FAIL("pthread_create");
	for (i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	if (rump_sys_write(pipefd[1], "z", 1) != 1)
		FAIL("write errno %d", errno);
	pthread_join(bt, NULL);
	printf("ok\n");
	return 0;
}
