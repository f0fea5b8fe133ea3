/*
 * fastpath: system calls whose arguments the kernel copies in (a path, write data, an iovec
 * array and its buffers, two paths), checked for their results; run by tests/clib_fastpath.rs
 * with and without the sp fast path, against our server and a scripted one. Exit status 0 and
 * "ok" on success, else the number of the failed check.
 */
#include <sys/uio.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rump/rumpclient.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpdefs.h>

int
main(void)
{
	struct iovec iov[3] = {{"wide ", 5}, {"", 0}, {"world", 5}};
	char buf[32];
	int fd;

	if (rumpclient_init() != 0)
		return 1;
	fd = rump_sys_open("/fastpath.txt", RUMP_O_RDWR | RUMP_O_CREAT | RUMP_O_TRUNC, 0644);
	if (fd < 0)
		return 2;
	if (rump_sys_write(fd, "hello ", 6) != 6)
		return 3;
	if (rump_sys_writev(fd, iov, 3) != 10)
		return 4;
	if (rump_sys_pwrite(fd, "W", 1, 6) != 1)
		return 5;
	memset(buf, 0, sizeof(buf));
	if (rump_sys_pread(fd, buf, sizeof(buf), 0) != 16 || strcmp(buf, "hello Wide world") != 0)
		return 6;
	if (rump_sys_rename("/fastpath.txt", "/fastpath2.txt") != 0)
		return 7;
	if (rump_sys_open("/fastpath.txt", RUMP_O_RDONLY) != -1 || errno != RUMP_ENOENT)
		return 8;
	if (rump_sys_unlink("/fastpath2.txt") != 0 || rump_sys_close(fd) != 0)
		return 9;
	printf("ok\n");
	return 0;
}
