/*
 * rump/rump.h: for programs that include it only for the RUMP_ constants (rump.halt does).
 * This librumpclient is a client library: the in-process rump kernel interfaces NetBSD's
 * header also declares (rump_init, rump_schedule, ...) are not provided.
 */
#ifndef _RUMP_RUMP_H_
#define _RUMP_RUMP_H_

#include <sys/types.h>
#include <rump/rumpdefs.h>

#endif /* _RUMP_RUMP_H_ */
