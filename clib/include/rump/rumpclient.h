/*
 * rump/rumpclient.h: the client side of the rump sysproxy protocol, source- and
 * binary-compatible with NetBSD's librumpclient (same functions, types and constants).
 *
 * Part of this project's librumpclient (clib/, docs/librumpclient.md).
 */
#ifndef _RUMP_RUMPCLIENT_H_
#define _RUMP_RUMPCLIENT_H_

#include <sys/types.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque to callers; starts with the 16-byte PREFORK cookie. */
struct rumpclient_fork;

/* Connects to $RUMP_SERVER (once per host process). 0, or -1 with errno. */
int rumpclient_init(void);
/* Runs system call `sysnum` with the `dlen`-byte argument block `data` (8-byte slots).
 * Returns 0 or an errno (a NetBSD one from the kernel); stores the two return values. */
int rumpclient_syscall(int sysnum, const void *data, size_t dlen, register_t *retval);

/* Fork in steps: prefork before the host fork, fork_init in the child; fork_cancel if the
 * host fork failed; fork_vparent in the parent of a vfork whose child ran fork_init. */
struct rumpclient_fork *rumpclient_prefork(void);
int rumpclient_fork_init(struct rumpclient_fork *);
void rumpclient_fork_cancel(struct rumpclient_fork *);
void rumpclient_fork_vparent(struct rumpclient_fork *);

/* Host fork() with the rump process forked too; -1 with errno on failure. */
pid_t rumpclient_fork(void);
/* execve() keeping the rump process (same pid) for the new image. */
int rumpclient_exec(const char *, char *const [], char *const []);
/* daemon(3) keeping the rump process. */
int rumpclient_daemon(int, int);

/* What to do when the connection to the server is lost: a number of seconds to keep
 * trying, or one of these. The default, 0, fails the call with ENOTCONN. */
#define RUMPCLIENT_RETRYCONN_INFTIME ((time_t)-1)
#define RUMPCLIENT_RETRYCONN_ONCE ((time_t)-2)
#define RUMPCLIENT_RETRYCONN_DIE ((time_t)-3)
void rumpclient_setconnretry(time_t);

/* For librumphijack: the program is about to close or dup2 over *fdp (or close all from
 * *fdp on); moves the client's own descriptors out of the way. */
enum rumpclient_closevariant {
	RUMPCLIENT_CLOSE_CLOSE,
	RUMPCLIENT_CLOSE_DUP2,
	RUMPCLIENT_CLOSE_FCLOSEM
};
int rumpclient__closenotify(int *, enum rumpclient_closevariant);

/*
 * rumpclient_vfork(): must expand in the caller's frame, since a vfork child borrows it.
 * The child claims the prepared process; the parent, whose memory the child shared, gets
 * its own connection state back with rumpclient_fork_vparent.
 */
#if defined(__GNUC__)
#define __RUMPCLIENT_INLINE static inline __attribute__((__always_inline__, __returns_twice__))
#else
#define __RUMPCLIENT_INLINE static inline
#endif

__RUMPCLIENT_INLINE pid_t
rumpclient__dofork(pid_t (*hostfork)(void))
{
	struct rumpclient_fork *prepared;
	volatile int inchild = 0;
	pid_t pid;

	prepared = rumpclient_prefork();
	if (prepared == NULL)
		return -1;
	pid = hostfork();
	if (pid == -1) {
		rumpclient_fork_cancel(prepared);
	} else if (pid == 0) {
		inchild = 1;
		if (rumpclient_fork_init(prepared) == -1)
			pid = -1;
	} else if (inchild) {
		/* vfork: the child ran in our memory and replaced the state */
		rumpclient_fork_vparent(prepared);
	}
	return pid;
}

#define rumpclient_vfork() rumpclient__dofork(vfork)

#ifdef __cplusplus
}
#endif

#endif /* _RUMP_RUMPCLIENT_H_ */
