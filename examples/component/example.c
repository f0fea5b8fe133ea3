/*
 * An example external component for rump_server (include/rump_component.h).
 *
 *   cc -shared -fPIC -I include -o libexample.so examples/component/example.c
 *   rump_server -lrumpvfs -l ./libexample.so unix:///tmp/rump.sock
 *
 * It adds two system calls and, when EXAMPLE_ETFS_FILE names a host file, an etfs key:
 *   210 rot13(const char *in, size_t inlen, char *out, size_t outlen): out = rot13(in),
 *       returns the length;
 *   211 counter(): returns how often it has been called since the component was loaded;
 *   /example/file: EXAMPLE_ETFS_FILE as a regular file;
 *   file-system type "examplefs": mount("examplefs", dir, 0, NULL, 0) gives a tmpfs holding
 *       README, dir/ and dir/link -> ../README.
 * Its fini refuses the unload (EBUSY) while EXAMPLE_PIN is set in the environment.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rump_component.h"

#ifndef EXAMPLE_ABI
#define EXAMPLE_ABI RUMP_COMPONENT_ABI_VERSION
#endif

static atomic_long calls;

static int
rot13(void *cookie, const uint64_t args[8], const void *in, size_t in_len, void *out,
    size_t *out_len, int64_t retval[2])
{
	const unsigned char *s = in;
	unsigned char *d = out;
	size_t n = in_len < args[3] ? in_len : args[3];

	(void)cookie;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (c >= 'a' && c <= 'z')
			c = 'a' + (c - 'a' + 13) % 26;
		else if (c >= 'A' && c <= 'Z')
			c = 'A' + (c - 'A' + 13) % 26;
		d[i] = c;
	}
	*out_len = n;
	retval[0] = (int64_t)n;
	return 0;
}

static int
counter(void *cookie, const uint64_t args[8], const void *in, size_t in_len, void *out,
    size_t *out_len, int64_t retval[2])
{
	(void)cookie; (void)args; (void)in; (void)in_len; (void)out; (void)out_len;
	retval[0] = atomic_fetch_add(&calls, 1) + 1;
	return 0;
}

static const char readme[] = "Hello from the example component.\n";

static int
populate(void *cookie, const struct rump_populate *p)
{
	int error;

	(void)cookie;
	if ((error = p->add_file(p->ctx, "README", 0444, readme, sizeof(readme) - 1)) != 0)
		return error;
	if ((error = p->mkdir(p->ctx, "dir", 0755)) != 0)
		return error;
	return p->symlink(p->ctx, "dir/link", "../README");
}

static int
example_init(const struct rump_registrar *r)
{
	struct rump_syscall_desc d_rot13 = {
		.number = 210, .in_ptr_arg = 0, .in_len_arg = 1,
		.out_ptr_arg = 2, .out_len_arg = 3, .max_len = 65536, .fn = rot13,
	};
	struct rump_syscall_desc d_counter = {
		.number = 211, .in_ptr_arg = -1, .in_len_arg = -1,
		.out_ptr_arg = -1, .out_len_arg = -1, .fn = counter,
	};
	const char *file = getenv("EXAMPLE_ETFS_FILE");
	int error;

	if ((error = r->add_syscall(r->ctx, &d_rot13)) != 0)
		return error;
	if ((error = r->add_syscall(r->ctx, &d_counter)) != 0)
		return error;
	if ((error = r->add_fstype(r->ctx, "examplefs", populate, NULL)) != 0)
		return error;
	if (file != NULL && *file != '\0' &&
	    (error = r->add_etfs(r->ctx, "/example/file", file, RUMP_ETFS_REG, 0, UINT64_MAX)) != 0)
		return error;
	r->log(r->ctx, "example component ready: syscalls 210 (rot13) and 211 (counter)");
	return 0;
}

static int
example_fini(void)
{
	return getenv("EXAMPLE_PIN") != NULL ? 16 /* EBUSY */ : 0;
}

const struct rump_component rump_component_v1 = {
	.abi_version = EXAMPLE_ABI,
	.name = "example",
	.init = example_init,
	.fini = example_fini,
};
