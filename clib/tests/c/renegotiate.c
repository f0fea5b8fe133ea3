/*
 * renegotiate: a program whose connections are each made anew — after a lost connection
 * (rumpclient_setconnretry), in a rumpclient_fork child, in a rumpclient_exec'd image — and
 * which opens a path on each. tests/clib_renegotiate.rs runs it against a scripted server
 * that checks every new connection asks for the sp fast path again (docs/sp-fastpath.md) and
 * that the open then carries its path; and against our real server, where the results must be
 * what they are without the fast path. Exit status 0 and "ok" on success, else the number of
 * the failed check.
 *
 * Descriptors are numbered as our server numbers them (the scripted server answers the same):
 *   renegotiate reconnect   open /a (3), closefrom(3) drops the connection, open /b (3: a new
 *                           process)
 *   renegotiate fork        open /a (3), rumpclient_fork; the child opens /child (4: the
 *                           forked process has 3); the parent waits for it
 *   renegotiate exec        open /a (3), rumpclient_exec of itself as "exec-child", which
 *                           opens /exec (4: the same process)
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rump/rumpclient.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpdefs.h>

/* Opens `path` (created) and returns the descriptor. */
static int
op(const char *path)
{
	return rump_sys_open(path, RUMP_O_RDWR | RUMP_O_CREAT, 0644);
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int st;
	pid_t pid;

	if (rumpclient_init() != 0)
		return 1;
	if (strcmp(mode, "reconnect") == 0) {
		/* Long enough for a test, short enough that a broken one does not hang. */
		rumpclient_setconnretry(20);
		if (op("/a") != 3)
			return 2;
		closefrom(3);
		if (op("/b") != 3)
			return 3;
	} else if (strcmp(mode, "fork") == 0) {
		if (op("/a") != 3)
			return 2;
		pid = rumpclient_fork();
		if (pid == -1)
			return 4;
		if (pid == 0)
			_exit(op("/child") == 4 ? 0 : 1);
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 5;
	} else if (strcmp(mode, "exec") == 0) {
		char *nargv[] = { argv[0], "exec-child", NULL };
		extern char **environ;

		if (op("/a") != 3)
			return 2;
		rumpclient_exec(argv[0], nargv, environ);
		return 6;
	} else if (strcmp(mode, "exec-child") == 0) {
		if (op("/exec") != 4)
			return 7;
	} else {
		return 8;
	}
	printf("ok\n");
	return 0;
}
