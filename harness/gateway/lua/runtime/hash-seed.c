/*
 * LD_PRELOAD for the harness's LuaJIT workers: getrandom() (and syscall(SYS_getrandom)) answer
 * bytes drawn from HARNESS_HASH_SEED instead of the kernel. LuaJIT seeds its string hash from
 * them, which decides pairs() order over tables such as the health-check pools; a seed thus
 * replays one order byte for byte, and different seeds explore different orders.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/types.h>

static uint64_t state;
static int seeded;

static void fill(void *buf, size_t len) {
  if (!seeded) {
    const char *s = getenv("HARNESS_HASH_SEED");
    state = (s ? strtoull(s, 0, 10) : 0) ^ 0x9e3779b97f4a7c15ULL;
    seeded = 1;
  }
  unsigned char *p = buf;
  for (size_t i = 0; i < len; i++) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    p[i] = (unsigned char)(state >> 24);
  }
}

ssize_t getrandom(void *buf, size_t len, unsigned int flags) {
  (void)flags;
  fill(buf, len);
  return (ssize_t)len;
}

long syscall(long n, ...) {
  va_list ap;
  va_start(ap, n);
  long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
  long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
  va_end(ap);
  if (n == SYS_getrandom) {
    fill((void *)a1, (size_t)a2);
    return a2;
  }
  static long (*real)(long, ...);
  if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  return real(n, a1, a2, a3, a4, a5, a6);
}
