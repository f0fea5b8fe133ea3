/* Linux shims for NetBSD-isms in NetBSD's test programs (not part of the library). */
#define _GNU_SOURCE 1
#include <stdlib.h>
#include <string.h>
#ifndef __arraycount
#define __arraycount(a) (sizeof(a) / sizeof((a)[0]))
#endif
#define __dead __attribute__((__noreturn__))
static inline void nb_setprogname(const char *p) { (void)p; }
#define setprogname nb_setprogname
#include <unistd.h>
#define __RCSID(x)
