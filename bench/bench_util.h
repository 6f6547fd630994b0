/*
 * bench_util.h — what every benchmark here shares: the clock it times with
 * and the median of its rounds. Header-only, so each bench_*.c stays one
 * program the Makefile builds on its own.
 */
#ifndef SC_BENCH_UTIL_H
#define SC_BENCH_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Most rounds a benchmark may run (medians are taken over them). */
#define MAX_ROUNDS 15

/* Wall time in ns (CLOCK_MONOTONIC). */
static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n), n <= MAX_ROUNDS; v is left as it was. */
static inline double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

#endif
