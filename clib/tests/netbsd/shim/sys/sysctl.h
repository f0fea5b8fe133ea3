/* NetBSD sysctl MIB numbers used by the tests (the rump kernel's, not Linux's). */
#define CTL_KERN 1
#define KERN_HOSTNAME 10
