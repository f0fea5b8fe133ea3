#define atomic_inc_uint(p) __atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST)
#define membar_consumer() __atomic_thread_fence(__ATOMIC_SEQ_CST)
