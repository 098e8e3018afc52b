/*
 * libclockrate: an LD_PRELOAD library that makes a process' wall clock run at
 * $LOCK_CLOCK_RATE times real speed (1.005 = 0.5% fast), counted from the
 * moment the library is initialised (before main):
 *
 *     fake(t) = t0 + (t - t0) * rate
 *
 * Built into the integration-test Redis image by scripts/redis-image.sh and
 * used by integration.WithClockRate. Redis 7 expires keys and measures its
 * own timeouts with its wall clock (gettimeofday), so a master with rate 1.05
 * expires a 2000 ms key after about 1905 ms of real time.
 *
 * Faked: clock_gettime(CLOCK_REALTIME and CLOCK_REALTIME_COARSE),
 * gettimeofday, time, timespec_get(TIME_UTC). Everything else stays real:
 * CLOCK_MONOTONIC (Redis' event loop and timers), sleeps and poll/epoll
 * timeouts. An unset or empty LOCK_CLOCK_RATE means rate 1 (pass-through);
 * an invalid one makes the process exit with status 111 and a message.
 *
 * Why not libfaketime: Debian's redis-server is linked with jemalloc, which
 * calls clock_gettime and pthread_cond_init while holding its initialisation
 * lock; libfaketime (0.9.10) initialises itself on that first call and
 * allocates (failing dlsym, sem_open), re-entering jemalloc, so redis-server
 * deadlocks before main (libfaketime issues #130, #327, #478). This library
 * allocates nothing, takes no lock and intercepts only the clock readers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define NS_PER_S 1000000000LL

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);

/* Written once by the constructor (the process is single-threaded then) and
 * only read afterwards. Calls made before it ran (other libraries'
 * constructors, jemalloc's initialisation) get the real time through raw
 * system calls. */
static clock_gettime_fn next_clock_gettime; /* libc's, with the vDSO fast path */
static gettimeofday_fn next_gettimeofday;
static int active;                          /* rate != 1 */
static double rate = 1.0;
static int64_t t0;                          /* real CLOCK_REALTIME at init, ns */

static int real_clock_gettime(clockid_t clk, struct timespec *ts) {
  if (next_clock_gettime != NULL) return next_clock_gettime(clk, ts);
  return (int)syscall(SYS_clock_gettime, clk, ts);
}

static int64_t scale_ns(int64_t real) {
  if (!active) return real;
  return t0 + (int64_t)((double)(real - t0) * rate);
}

static void scale_timespec(struct timespec *ts) {
  int64_t ns = scale_ns((int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec);
  ts->tv_sec = (time_t)(ns / NS_PER_S);
  ts->tv_nsec = (long)(ns % NS_PER_S);
}

EXPORT int clock_gettime(clockid_t clk, struct timespec *ts) {
  int rc = real_clock_gettime(clk, ts);
  if (rc == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE)) scale_timespec(ts);
  return rc;
}

EXPORT int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
  int rc = next_gettimeofday != NULL ? next_gettimeofday(tv, tz)
                                     : (int)syscall(SYS_gettimeofday, tv, tz);
  if (rc == 0 && active) { /* tv is declared nonnull by glibc */
    int64_t ns = scale_ns((int64_t)tv->tv_sec * NS_PER_S + (int64_t)tv->tv_usec * 1000);
    tv->tv_sec = (time_t)(ns / NS_PER_S);
    tv->tv_usec = (suseconds_t)((ns % NS_PER_S) / 1000);
  }
  return rc;
}

EXPORT time_t time(time_t *out) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
  if (out != NULL) *out = ts.tv_sec;
  return ts.tv_sec;
}

EXPORT int timespec_get(struct timespec *ts, int base) {
  if (base != TIME_UTC || clock_gettime(CLOCK_REALTIME, ts) != 0) return 0;
  return base;
}

static void die(const char *msg, const char *val) {
  static const char prefix[] = "libclockrate: ";
  (void)!write(2, prefix, sizeof prefix - 1);
  (void)!write(2, msg, strlen(msg));
  if (val != NULL) (void)!write(2, val, strlen(val));
  (void)!write(2, "\n", 1);
  _exit(111);
}

__attribute__((constructor)) static void clockrate_init(void) {
  const char *s = getenv("LOCK_CLOCK_RATE");
  if (s != NULL && *s != '\0') {
    char *end;
    double r = strtod(s, &end); /* the C locale: setlocale has not run yet */
    if (end == s || *end != '\0' || !(r > 0) || r > 1e6)
      die("LOCK_CLOCK_RATE must be a number > 0 (and <= 1e6), got ", s);
    rate = r;
  }
  struct timespec ts;
  if (syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts) != 0) die("clock_gettime failed", NULL);
  t0 = (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
  next_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
  next_gettimeofday = (gettimeofday_fn)dlsym(RTLD_NEXT, "gettimeofday");
  active = rate != 1.0;
}
