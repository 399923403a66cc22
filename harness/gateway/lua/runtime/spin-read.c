/*
 * Line reads for the harness's LuaJIT workers that wait for the harness's answer by polling for
 * a while before sleeping in the kernel. On a virtual machine a process that blocks lets its
 * vCPU halt, and waking it again costs tens to hundreds of microseconds, paid twice per round
 * trip. The lines are assembled here, in C, so the Lua side allocates exactly one string per
 * line whatever the timing (its heap, and with it pairs() order, must not depend on timing).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char *buf;
static size_t cap, start, end;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * The next line from fd (without its newline), valid until the next call; NULL at end of input
 * or on an error. While nothing has arrived it polls for up to spin_us microseconds (yielding
 * the CPU to any other runnable process between polls), then blocks.
 */
const char *harness_read_line(int fd, long spin_us, size_t *len) {
  for (;;) {
    char *nl = buf ? memchr(buf + start, '\n', end - start) : NULL;
    if (nl) {
      const char *line = buf + start;
      *len = (size_t)(nl - line);
      start = (size_t)(nl - buf) + 1;
      return line;
    }
    if (start > 0) {
      memmove(buf, buf + start, end - start);
      end -= start;
      start = 0;
    }
    if (end == cap) {
      size_t ncap = cap ? cap * 2 : 65536;
      char *nbuf = realloc(buf, ncap);
      if (!nbuf) return NULL;
      buf = nbuf;
      cap = ncap;
    }
    ssize_t n = -1;
    if (spin_us > 0) {
      long long deadline = now_ns() + spin_us * 1000LL;
      do {
        n = recv(fd, buf + end, cap - end, MSG_DONTWAIT);
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
        sched_yield();
      } while (now_ns() < deadline);
    }
    if (n < 0) {
      do n = read(fd, buf + end, cap - end);
      while (n < 0 && errno == EINTR);
    }
    if (n <= 0) return NULL;
    end += (size_t)n;
  }
}
