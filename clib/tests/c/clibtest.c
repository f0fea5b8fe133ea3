/*
 * The C test of this project's librumpclient: built with cc against clib/include and the
 * library, run against the real server by tests/clib.rs. Usage: clibtest CASE; exit 0 on
 * success, else a message on stderr. RUMP_SERVER names the server.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rump/rumpclient.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpdefs.h>

#define FAIL(...) do { fprintf(stderr, "clibtest: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)
#define CHECK(c) do { if (!(c)) FAIL("%s:%d: %s (errno %d)", __FILE__, __LINE__, #c, errno); } while (0)

static const int hostname_mib[] = { 1, 10 }; /* kern.hostname, NetBSD numbers */

static void
init(void)
{
	if (rumpclient_init() == -1)
		FAIL("rumpclient_init: errno %d", errno);
}

/* System calls with pointers in and out, errno as NetBSD's stubs set it. */
static void
t_syscalls(void)
{
	char buf[64], host[128];
	size_t hlen = sizeof(host);
	int fd, p[2];
	pid_t pid;

	init();
	pid = rump_sys_getpid();
	CHECK(pid >= 2);
	CHECK(rump_sys_getppid() == 1);
	CHECK(rump_sys_getuid() == 0);

	fd = rump_sys_open("/tmp/clibtest", RUMP_O_RDWR | RUMP_O_CREAT | RUMP_O_TRUNC, 0644);
	CHECK(fd >= 3);
	CHECK(errno == 0);
	CHECK(rump_sys_write(fd, "hello, rump", 11) == 11);
	CHECK(rump_sys_lseek(fd, 7, 0) == 7);
	memset(buf, 0, sizeof(buf));
	CHECK(rump_sys_read(fd, buf, sizeof(buf)) == 4);
	CHECK(strcmp(buf, "rump") == 0);
	CHECK(rump_sys_close(fd) == 0);

	/* errno is the NetBSD number the kernel sent */
	CHECK(rump_sys_open("/nonexistent/x", RUMP_O_RDONLY) == -1);
	CHECK(errno == RUMP_ENOENT);
	CHECK(rump_sys_close(999) == -1 && errno == RUMP_EBADF);
	CHECK(rump_sys_mkdir("/tmp", 0755) == -1 && errno == RUMP_EEXIST);
	CHECK(rump_sys_rmdir("/tmp/clibtest") == -1 && errno == RUMP_ENOTDIR);
	CHECK(rump_sys_unlink("/tmp/clibtest") == 0 && errno == 0);

	/* __sysctl: COPYIN of the MIB, COPYOUT of the value and its length */
	CHECK(rump_sys___sysctl(hostname_mib, 2, host, &hlen, NULL, 0) == 0);
	CHECK(hlen == strlen(host) + 1 && strncmp(host, "rump-", 5) == 0);

	/* pipe: two descriptors back in retval */
	CHECK(rump_sys_pipe(p) == 0 && p[0] >= 0 && p[1] > p[0]);
	CHECK(rump_sys_write(p[1], "xy", 2) == 2);
	CHECK(rump_sys_read(p[0], buf, 2) == 2 && memcmp(buf, "xy", 2) == 0);

	/* the generic entry point */
	register_t rv[2] = { -1, -1 };
	CHECK(rumpclient_syscall(20, NULL, 0, rv) == 0);
	CHECK(rv[0] == pid && rv[1] == 1);
	uint64_t slot = 999;
	CHECK(rumpclient_syscall(6, &slot, sizeof(slot), rv) == RUMP_EBADF);
	CHECK(rumpclient_syscall(511, NULL, 0, rv) == RUMP_ENOSYS);
}

/* Several threads calling at once over the one connection. */
#define NTHREADS 8
#define NCALLS 300
static pid_t mainpid;

static void *
worker(void *arg)
{
	char name[32], back[32];
	long id = (long)arg;
	int fd, i;

	snprintf(name, sizeof(name), "/tmp/thr%ld", id);
	fd = rump_sys_open(name, RUMP_O_RDWR | RUMP_O_CREAT, 0600);
	if (fd == -1)
		FAIL("thread %ld: open errno %d", id, errno);
	for (i = 0; i < NCALLS; i++) {
		if (rump_sys_getpid() != mainpid)
			FAIL("thread %ld: getpid", id);
		if (rump_sys_pwrite(fd, name, strlen(name), 0) != (ssize_t)strlen(name))
			FAIL("thread %ld: pwrite errno %d", id, errno);
		memset(back, 0, sizeof(back));
		if (rump_sys_pread(fd, back, sizeof(back), 0) != (ssize_t)strlen(name) ||
		    strcmp(back, name) != 0)
			FAIL("thread %ld: pread got %s", id, back);
	}
	rump_sys_close(fd);
	return NULL;
}

static void
t_threads(void)
{
	pthread_t t[NTHREADS];
	long i;

	init();
	mainpid = rump_sys_getpid();
	for (i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
	for (i = 0; i < NTHREADS; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
}

/* rumpclient_fork: a new rump process sharing the parent's descriptors. */
static void
t_fork(void)
{
	char buf[8];
	int p[2], status;
	pid_t parent, child;

	init();
	parent = rump_sys_getpid();
	CHECK(rump_sys_pipe(p) == 0);
	switch ((child = rumpclient_fork())) {
	case -1:
		FAIL("rumpclient_fork: errno %d", errno);
	case 0:
		if (rump_sys_getpid() == parent || rump_sys_getpid() < 2)
			FAIL("child pid");
		if (rump_sys_write(p[1], "fork", 4) != 4)
			FAIL("child write errno %d", errno);
		_exit(0);
	default:
		CHECK(rump_sys_read(p[0], buf, 4) == 4 && memcmp(buf, "fork", 4) == 0);
		CHECK(waitpid(child, &status, 0) == child);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		CHECK(rump_sys_getpid() == parent);
	}

	/* the same in steps, with a forged cookie: ESRCH, as NetBSD's INVALID_PREFORK */
	struct rumpclient_fork *rf = rumpclient_prefork();
	CHECK(rf != NULL);
	((uint32_t *)(void *)rf)[3] ^= 1;
	switch ((child = fork())) {
	case 0:
		_exit(rumpclient_fork_init(rf) == -1 && errno == ESRCH ? 0 : 1);
	default:
		CHECK(waitpid(child, &status, 0) == child);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* the parent's connection is untouched */
	CHECK(rump_sys_getpid() == parent);

	/* vfork: the child borrows our memory, the parent gets its connection back */
	switch ((child = rumpclient_vfork())) {
	case -1:
		FAIL("rumpclient_vfork: errno %d", errno);
	case 0:
		_exit(rump_sys_getpid() != parent && rump_sys_getpid() >= 2 ? 0 : 1);
	default:
		CHECK(waitpid(child, &status, 0) == child);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		CHECK(rump_sys_getpid() == parent);
	}
}

/* rumpclient_exec: the new image keeps the rump process (pid, descriptors without
 * close-on-exec) on the same connection. */
static void
t_exec(const char *self)
{
	char a1[16], a2[16], a3[16];
	int keep, drop;

	init();
	keep = rump_sys_open("/dev/null", RUMP_O_RDWR);
	drop = rump_sys_open("/dev/null", RUMP_O_RDWR);
	CHECK(keep >= 0 && drop >= 0);
	CHECK(rump_sys_fcntl(drop, 2 /* F_SETFD */, 1 /* FD_CLOEXEC */) == 0);
	snprintf(a1, sizeof(a1), "%d", (int)rump_sys_getpid());
	snprintf(a2, sizeof(a2), "%d", keep);
	snprintf(a3, sizeof(a3), "%d", drop);
	char *argv[] = { (char *)self, "exec-child", a1, a2, a3, NULL };
	extern char **environ;
	rumpclient_exec(self, argv, environ);
	FAIL("rumpclient_exec: errno %d", errno);
}

static void
t_exec_child(char **argv)
{
	init();
	CHECK(getenv("RUMPCLIENT__EXECFD") == NULL);
	CHECK(rump_sys_getpid() == atoi(argv[2]));
	CHECK(rump_sys_write(atoi(argv[3]), "x", 1) == 1);
	CHECK(rump_sys_write(atoi(argv[4]), "x", 1) == -1 && errno == RUMP_EBADF);
}

/* Reconnect: the program closes our socket; with a retry policy the next call runs in a
 * new process, without one it fails with ENOTCONN. */
static void
t_reconnect(void)
{
	pid_t before, after;

	init();
	before = rump_sys_getpid();
	closefrom(3);
	CHECK(rump_sys_getpid() == -1);
	CHECK(rump_sys_close(0) == -1 && errno == ENOTCONN);

	rumpclient_setconnretry(RUMPCLIENT_RETRYCONN_INFTIME);
	after = rump_sys_getpid();
	CHECK(after >= 2 && after != before);
	closefrom(3);
	CHECK(rump_sys_getpid() > after);
}

/* RAISE: a write on a pipe without reader fails with EPIPE and SIGPIPE is raised in the
 * program, its handler running when the call returns. */
static volatile sig_atomic_t got_sigpipe;
static void
on_sigpipe(int sig)
{
	(void)sig;
	got_sigpipe++;
}

static void
t_raise(void)
{
	int p[2];

	init();
	CHECK(signal(SIGPIPE, on_sigpipe) != SIG_ERR);
	CHECK(rump_sys_pipe(p) == 0);
	CHECK(rump_sys_close(p[0]) == 0);
	CHECK(got_sigpipe == 0);
	CHECK(rump_sys_write(p[1], "x", 1) == -1 && errno == RUMP_EPIPE);
	CHECK(got_sigpipe == 1);
}

/* The default SIGPIPE action kills the program, as it would natively. */
static void
t_sigpipe_default(void)
{
	int p[2];

	init();
	CHECK(rump_sys_pipe(p) == 0);
	CHECK(rump_sys_close(p[0]) == 0);
	rump_sys_write(p[1], "x", 1);
	FAIL("still alive after SIGPIPE");
}

/* rumpclient_daemon: the daemon runs as a new rump process sharing our descriptors; it
 * records its result in a rump file that "daemon-check" reads. */
static void
t_daemon(void)
{
	char msg[64];
	pid_t before;
	int fd, n;

	init();
	before = rump_sys_getpid();
	fd = rump_sys_open("/tmp/daemon-result", RUMP_O_RDWR | RUMP_O_CREAT | RUMP_O_TRUNC, 0644);
	CHECK(fd >= 0);
	if (rumpclient_daemon(1, 1) == -1)
		FAIL("rumpclient_daemon: errno %d", errno);
	n = snprintf(msg, sizeof(msg), "%s", rump_sys_getpid() != before ? "ok" : "same pid");
	rump_sys_write(fd, msg, n);
	rump_sys_close(fd);
	exit(0);
}

static void
t_daemon_check(void)
{
	char buf[16];
	int fd, i;

	init();
	for (i = 0; i < 500; i++) {
		memset(buf, 0, sizeof(buf));
		fd = rump_sys_open("/tmp/daemon-result", RUMP_O_RDONLY);
		CHECK(fd >= 0);
		rump_sys_read(fd, buf, sizeof(buf) - 1);
		rump_sys_close(fd);
		if (buf[0] != '\0')
			break;
		usleep(10000);
	}
	if (strcmp(buf, "ok") != 0)
		FAIL("daemon result '%s'", buf);
}

/* Without RUMP_SERVER: ENOENT; calls before init: ENOTCONN. */
static void
t_noserver(void)
{
	CHECK(rump_sys_getpid() == -1);
	CHECK(rump_sys_close(0) == -1 && errno == ENOTCONN);
	unsetenv("RUMP_SERVER");
	CHECK(rumpclient_init() == -1 && errno == ENOENT);
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		FAIL("usage: clibtest case");
	if (strcmp(argv[1], "syscalls") == 0)
		t_syscalls();
	else if (strcmp(argv[1], "threads") == 0)
		t_threads();
	else if (strcmp(argv[1], "fork") == 0)
		t_fork();
	else if (strcmp(argv[1], "exec") == 0)
		t_exec(argv[0]);
	else if (strcmp(argv[1], "exec-child") == 0 && argc == 5)
		t_exec_child(argv);
	else if (strcmp(argv[1], "reconnect") == 0)
		t_reconnect();
	else if (strcmp(argv[1], "raise") == 0)
		t_raise();
	else if (strcmp(argv[1], "sigpipe-default") == 0)
		t_sigpipe_default();
	else if (strcmp(argv[1], "daemon") == 0)
		t_daemon();
	else if (strcmp(argv[1], "daemon-check") == 0)
		t_daemon_check();
	else if (strcmp(argv[1], "noserver") == 0)
		t_noserver();
	else
		FAIL("unknown case %s", argv[1]);
	printf("ok %s\n", argv[1]);
	return 0;
}
