/* buildrump's portability header: nothing needed on glibc for these programs. */
