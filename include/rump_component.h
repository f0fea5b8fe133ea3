/*
 * rump_component.h: the C ABI of external components for this rump_server.
 *
 * A component is a shared library (cc -shared -fPIC) that exports one data symbol,
 *
 *     const struct rump_component rump_component_v1 = { ... };
 *
 * and is loaded with `rump_server -l /path/libfoo.so`, with `-m /path/libfoo.so`, or by a
 * client with modctl(MODCTL_LOAD) of a path that an etfs key of the operator maps to it.
 * After the kernel has booted the server calls `init` once with a registrar; everything the
 * component adds goes through it. `fini` (optional) is called by modctl(MODCTL_UNLOAD); it
 * returns 0 to allow the unload (the library is then closed) or a NetBSD errno, e.g. EBUSY.
 *
 * Versioning: `abi_version` must equal RUMP_COMPONENT_ABI_VERSION of the server, else the
 * load fails with "ABI version N, server has M". Fields are only ever appended; a new field
 * means a new version.
 *
 * Threading: callbacks may be called from any of the server's loop threads, concurrently.
 * They must not block for long (they run on the thread that serves other clients too).
 *
 * Errors are NetBSD errno values (EINVAL 22, EEXIST 17, EFAULT 14, ENOSPC 28, ...).
 */
#ifndef RUMP_COMPONENT_H
#define RUMP_COMPONENT_H

#include <stddef.h>
#include <stdint.h>

#define RUMP_COMPONENT_ABI_VERSION 1

/* A system call implemented by a component. The kernel copies `in_len` bytes from the
 * client's address in argument `in_ptr_arg` (length from argument `in_len_arg`, at most
 * `max_len`) before the call and, after a successful call, copies `*out_len` bytes to the
 * client's address in `out_ptr_arg` (room from `out_len_arg`, at most `max_len`). A slot set
 * to -1 means no such buffer. Return 0 and set retval[0] (and retval[1]), or an errno. */
typedef int (*rump_syscall_fn)(void *cookie, const uint64_t args[8],
    const void *in, size_t in_len, void *out, size_t *out_len, int64_t retval[2]);

struct rump_syscall_desc {
	int32_t number;		/* NetBSD syscall number: 210-219 are free for this */
	int32_t in_ptr_arg;	/* argument slot of the input buffer's address, or -1 */
	int32_t in_len_arg;	/* argument slot of its length, or -1 */
	int32_t out_ptr_arg;	/* argument slot of the output buffer's address, or -1 */
	int32_t out_len_arg;	/* argument slot of its length, or -1 */
	uint32_t max_len;	/* largest buffer either way (at most 1 MiB) */
	rump_syscall_fn fn;
	void *cookie;
};

/* etfs types, as rump_etfs_register(3). */
#define RUMP_ETFS_REG 0
#define RUMP_ETFS_BLK 1
#define RUMP_ETFS_CHR 2

/* Building the initial tree of a component file system (paths are relative to its root). */
struct rump_populate {
	void *ctx;
	int (*mkdir)(void *ctx, const char *path, uint32_t mode);
	int (*add_file)(void *ctx, const char *path, uint32_t mode, const void *data, size_t len);
	int (*symlink)(void *ctx, const char *path, const char *target);
};

/* What `init` may do. `ctx` is the server's; pass it back unchanged. */
struct rump_registrar {
	uint32_t abi_version;	/* RUMP_COMPONENT_ABI_VERSION */
	uint32_t reserved;
	void *ctx;
	/* Serve a system call number that the kernel does not implement (EEXIST otherwise). */
	int (*add_syscall)(void *ctx, const struct rump_syscall_desc *desc);
	/* Map [begin, begin+size) of host file `hostpath` at `key` (size UINT64_MAX: to the end),
	 * as rump_pub_etfs_register_withsize; the host file must exist. */
	int (*add_etfs)(void *ctx, const char *key, const char *hostpath, int type,
	    uint64_t begin, uint64_t size);
	/* A file-system type mountable with mount(2) under `name`: a memory file system (tmpfs
	 * semantics, no mount arguments needed) that `populate` fills at each mount through
	 * the `rump_populate` callbacks. */
	int (*add_fstype)(void *ctx, const char *name,
	    int (*populate)(void *cookie, const struct rump_populate *p), void *cookie);
	/* Print a line on the server's console (stdout). */
	void (*log)(void *ctx, const char *line);
};

struct rump_component {
	uint32_t abi_version;	/* RUMP_COMPONENT_ABI_VERSION */
	uint32_t reserved;	/* 0 */
	const char *name;	/* module name (modstat), at most 31 bytes */
	int (*init)(const struct rump_registrar *reg);
	int (*fini)(void);	/* may be NULL: the component cannot be unloaded */
};

#endif /* RUMP_COMPONENT_H */
