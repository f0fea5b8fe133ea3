//! NetBSD syscall numbers (sys/kern/syscalls.master; netbsd-abi.md §3), named as `SYS_*`.
//!
//! Names follow NetBSD's `<sys/syscall.h>` (`SYS___fstat50` for `__fstat50`).
#![allow(non_upper_case_globals)]

/// Number of syscall slots (`SYS_NSYSENT`); numbers at or above give `ENOSYS`.
pub const SYS_NSYSENT: u32 = 512;
/// Most argument slots a syscall takes (`SYS_MAXSYSARGS`).
pub const SYS_MAXSYSARGS: usize = 8;

/// `read`.
pub const SYS_read: u32 = 3;
/// `write`.
pub const SYS_write: u32 = 4;
/// `open`.
pub const SYS_open: u32 = 5;
/// `close`.
pub const SYS_close: u32 = 6;
/// `link`.
pub const SYS_link: u32 = 9;
/// `unlink`.
pub const SYS_unlink: u32 = 10;
/// `chdir`.
pub const SYS_chdir: u32 = 12;
/// `fchdir`.
pub const SYS_fchdir: u32 = 13;
/// `chmod`.
pub const SYS_chmod: u32 = 15;
/// `chflags`.
pub const SYS_chflags: u32 = 34;
/// `fchflags`.
pub const SYS_fchflags: u32 = 35;
/// `fktrace`.
pub const SYS_fktrace: u32 = 288;
/// `lchflags`.
pub const SYS_lchflags: u32 = 304;
/// `chown`.
pub const SYS_chown: u32 = 16;
/// `getpid`.
pub const SYS_getpid: u32 = 20;
/// `unmount`.
pub const SYS_unmount: u32 = 22;
/// `setuid`.
pub const SYS_setuid: u32 = 23;
/// `getuid`.
pub const SYS_getuid: u32 = 24;
/// `geteuid`.
pub const SYS_geteuid: u32 = 25;
/// `access`.
pub const SYS_access: u32 = 33;
/// `sync`.
pub const SYS_sync: u32 = 36;
/// `getppid`.
pub const SYS_getppid: u32 = 39;
/// `dup`.
pub const SYS_dup: u32 = 41;
/// `pipe`.
pub const SYS_pipe: u32 = 42;
/// `getegid`.
pub const SYS_getegid: u32 = 43;
/// `ktrace`.
pub const SYS_ktrace: u32 = 45;
/// `getgid`.
pub const SYS_getgid: u32 = 47;
/// `__getlogin`.
pub const SYS___getlogin: u32 = 49;
/// `__setlogin`.
pub const SYS___setlogin: u32 = 50;
/// `ioctl`.
pub const SYS_ioctl: u32 = 54;
/// `symlink`.
pub const SYS_symlink: u32 = 57;
/// `readlink`.
pub const SYS_readlink: u32 = 58;
/// `umask`.
pub const SYS_umask: u32 = 60;
/// `chroot`.
pub const SYS_chroot: u32 = 61;
/// `getgroups`.
pub const SYS_getgroups: u32 = 79;
/// `setgroups`.
pub const SYS_setgroups: u32 = 80;
/// `getpgrp`.
pub const SYS_getpgrp: u32 = 81;
/// `setpgid`.
pub const SYS_setpgid: u32 = 82;
/// `dup2`.
pub const SYS_dup2: u32 = 90;
/// `getrandom`.
pub const SYS_getrandom: u32 = 91;
/// `fcntl`.
pub const SYS_fcntl: u32 = 92;
/// `fsync`.
pub const SYS_fsync: u32 = 95;
/// `readv`.
pub const SYS_readv: u32 = 120;
/// `writev`.
pub const SYS_writev: u32 = 121;
/// `fchown`.
pub const SYS_fchown: u32 = 123;
/// `fchmod`.
pub const SYS_fchmod: u32 = 124;
/// `setreuid`.
pub const SYS_setreuid: u32 = 126;
/// `setregid`.
pub const SYS_setregid: u32 = 127;
/// `rename`.
pub const SYS_rename: u32 = 128;
/// `flock`.
pub const SYS_flock: u32 = 131;
/// `mkfifo`.
pub const SYS_mkfifo: u32 = 132;
/// `mkdir`.
pub const SYS_mkdir: u32 = 136;
/// `rmdir`.
pub const SYS_rmdir: u32 = 137;
/// `setsid`.
pub const SYS_setsid: u32 = 147;
/// `pread`.
pub const SYS_pread: u32 = 173;
/// `pwrite`.
pub const SYS_pwrite: u32 = 174;
/// `setgid`.
pub const SYS_setgid: u32 = 181;
/// `setegid`.
pub const SYS_setegid: u32 = 182;
/// `seteuid`.
pub const SYS_seteuid: u32 = 183;
/// `pathconf`.
pub const SYS_pathconf: u32 = 191;
/// `fpathconf`.
pub const SYS_fpathconf: u32 = 192;
/// `getrlimit`.
pub const SYS_getrlimit: u32 = 194;
/// `setrlimit`.
pub const SYS_setrlimit: u32 = 195;
/// `lseek`.
pub const SYS_lseek: u32 = 199;
/// `truncate`.
pub const SYS_truncate: u32 = 200;
/// `ftruncate`.
pub const SYS_ftruncate: u32 = 201;
/// `__sysctl`.
pub const SYS___sysctl: u32 = 202;
/// `getpgid`.
pub const SYS_getpgid: u32 = 207;
/// `reboot`.
pub const SYS_reboot: u32 = 208;
/// `poll`.
pub const SYS_poll: u32 = 209;
/// `fdatasync`.
pub const SYS_fdatasync: u32 = 241;
/// `modctl`.
pub const SYS_modctl: u32 = 246;
/// `__posix_rename`.
pub const SYS___posix_rename: u32 = 270;
/// `lchmod`.
pub const SYS_lchmod: u32 = 274;
/// `lchown`.
pub const SYS_lchown: u32 = 275;
/// `__posix_chown`.
pub const SYS___posix_chown: u32 = 283;
/// `__posix_fchown`.
pub const SYS___posix_fchown: u32 = 284;
/// `__posix_lchown`.
pub const SYS___posix_lchown: u32 = 285;
/// `getsid`.
pub const SYS_getsid: u32 = 286;
/// `preadv`.
pub const SYS_preadv: u32 = 289;
/// `pwritev`.
pub const SYS_pwritev: u32 = 290;
/// `__getcwd`.
pub const SYS___getcwd: u32 = 296;
/// `issetugid`.
pub const SYS_issetugid: u32 = 305;
/// `kqueue`.
pub const SYS_kqueue: u32 = 344;
/// `fsync_range`.
pub const SYS_fsync_range: u32 = 354;
/// `getvfsstat`.
pub const SYS_getvfsstat: u32 = 356;
/// `statvfs1`.
pub const SYS_statvfs1: u32 = 357;
/// `fstatvfs1`.
pub const SYS_fstatvfs1: u32 = 358;
/// `extattrctl`.
pub const SYS_extattrctl: u32 = 360;
/// `extattr_set_file`.
pub const SYS_extattr_set_file: u32 = 361;
/// `extattr_get_file`.
pub const SYS_extattr_get_file: u32 = 362;
/// `extattr_delete_file`.
pub const SYS_extattr_delete_file: u32 = 363;
/// `extattr_set_fd`.
pub const SYS_extattr_set_fd: u32 = 364;
/// `extattr_get_fd`.
pub const SYS_extattr_get_fd: u32 = 365;
/// `extattr_delete_fd`.
pub const SYS_extattr_delete_fd: u32 = 366;
/// `extattr_set_link`.
pub const SYS_extattr_set_link: u32 = 367;
/// `extattr_get_link`.
pub const SYS_extattr_get_link: u32 = 368;
/// `extattr_delete_link`.
pub const SYS_extattr_delete_link: u32 = 369;
/// `extattr_list_fd`.
pub const SYS_extattr_list_fd: u32 = 370;
/// `extattr_list_file`.
pub const SYS_extattr_list_file: u32 = 371;
/// `extattr_list_link`.
pub const SYS_extattr_list_link: u32 = 372;
/// `__getdents30`.
pub const SYS___getdents30: u32 = 390;
/// `__mount50`.
pub const SYS___mount50: u32 = 410;
/// `__posix_fadvise50`.
pub const SYS___posix_fadvise50: u32 = 416;
/// `__select50` (select with a 64-bit `struct timeval`).
pub const SYS___select50: u32 = 417;
/// `__gettimeofday50`.
pub const SYS___gettimeofday50: u32 = 418;
/// `__utimes50`.
pub const SYS___utimes50: u32 = 420;
/// `__futimes50`.
pub const SYS___futimes50: u32 = 423;
/// `__lutimes50`.
pub const SYS___lutimes50: u32 = 424;
/// `__clock_gettime50`.
pub const SYS___clock_gettime50: u32 = 427;
/// `__clock_getres50`.
pub const SYS___clock_getres50: u32 = 429;
/// `__nanosleep50`.
pub const SYS___nanosleep50: u32 = 430;
/// `__kevent50` (40-byte `struct kevent`; NetBSD 10 keeps it as `compat_100`).
pub const SYS___kevent50: u32 = 435;
/// `__pselect50`.
pub const SYS___pselect50: u32 = 436;
/// `__pollts50`.
pub const SYS___pollts50: u32 = 437;
/// `__stat50`.
pub const SYS___stat50: u32 = 439;
/// `__fstat50`.
pub const SYS___fstat50: u32 = 440;
/// `__lstat50`.
pub const SYS___lstat50: u32 = 441;
/// `__mknod50`.
pub const SYS___mknod50: u32 = 450;
/// `pipe2`.
pub const SYS_pipe2: u32 = 453;
/// `dup3`.
pub const SYS_dup3: u32 = 454;
/// `kqueue1`.
pub const SYS_kqueue1: u32 = 455;
/// `linkat`.
pub const SYS_linkat: u32 = 457;
/// `renameat`.
pub const SYS_renameat: u32 = 458;
/// `mkfifoat`.
pub const SYS_mkfifoat: u32 = 459;
/// `mknodat`.
pub const SYS_mknodat: u32 = 460;
/// `mkdirat`.
pub const SYS_mkdirat: u32 = 461;
/// `faccessat`.
pub const SYS_faccessat: u32 = 462;
/// `fchmodat`.
pub const SYS_fchmodat: u32 = 463;
/// `fchownat`.
pub const SYS_fchownat: u32 = 464;
/// `fstatat`.
pub const SYS_fstatat: u32 = 466;
/// `utimensat`.
pub const SYS_utimensat: u32 = 467;
/// `openat`.
pub const SYS_openat: u32 = 468;
/// `readlinkat`.
pub const SYS_readlinkat: u32 = 469;
/// `symlinkat`.
pub const SYS_symlinkat: u32 = 470;
/// `unlinkat`.
pub const SYS_unlinkat: u32 = 471;
/// `futimens`.
pub const SYS_futimens: u32 = 472;
/// `clock_nanosleep`.
pub const SYS_clock_nanosleep: u32 = 477;
/// `posix_fallocate`.
pub const SYS_posix_fallocate: u32 = 479;
/// `fdiscard`.
pub const SYS_fdiscard: u32 = 480;
/// `__getvfsstat90`.
pub const SYS___getvfsstat90: u32 = 483;
/// `__statvfs190`.
pub const SYS___statvfs190: u32 = 484;
/// `__fstatvfs190`.
pub const SYS___fstatvfs190: u32 = 485;
/// `lpathconf`.
pub const SYS_lpathconf: u32 = 499;
/// `__kevent100` (NetBSD 10: 72-byte `struct kevent` with `ext[4]`).
pub const SYS___kevent100: u32 = 501;
/// `__dup3100`.
pub const SYS___dup3100: u32 = 505;
