/*
 * ch04_roundtrip.c — chapter 4: what a message between shards costs, and
 * what an idle shard costs.
 *
 *   make && build/bin/ch04_roundtrip [--backend sim|real] [--smp N]
 *        [--round-trips N] [--idle-ms N] [--poll-mode]
 *
 * Shard 0 talks to shard 1 four ways:
 *   1. one call at a time, back to back: the latency of a round trip while
 *      both shards are busy polling;
 *   2. a thousand calls in flight at once: the cost per call when messages
 *      travel in batches;
 *   3. one call every 2 ms: shard 1 falls asleep between calls, so each call
 *      must wake it up first (unless --poll-mode);
 *   4. nothing at all for --idle-ms: how much CPU the idle shards burn.
 * In the simulator the times are virtual (the cost model of chapter 3, not a
 * measurement) and an idle shard costs nothing at all; the checks are the
 * same: every call is answered with the right value.
 *
 * This program reads the process's CPU time with getrusage(), outside the
 * seams, to measure part 4; app code should not.
 * Exit status 0 if every call was answered correctly, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "core/seacore.h"

static long round_trips = 20000;
static long idle_ms = 50;
static int failures;

static void expect(bool ok, const char *what)
{
    printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
    if (!ok)
        failures++;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort lat[0..n) and print its median and 99th percentile in microseconds. */
static void print_latency(const char *what, uint64_t *lat, size_t n)
{
    qsort(lat, n, sizeof *lat, cmp_u64);
    printf("  %s: median %.2f us, 99th percentile %.2f us, best %.2f us\n", what,
           (double)lat[n / 2] / 1e3, (double)lat[n * 99 / 100] / 1e3, (double)lat[0] / 1e3);
}

static struct sc_smp_stats stats_before;

static void stats_mark(void)
{
    sc_smp_stats(&stats_before);
}

/* What shard 0 sent since stats_mark(). */
static void stats_print(void)
{
    struct sc_smp_stats now;
    sc_smp_stats(&now);
    unsigned long long sent = now.sent - stats_before.sent;
    unsigned long long batches = now.batches - stats_before.batches;
    printf("  shard 0 sent %llu messages in %llu publications (%.1f per batch), woke shard 1 "
           "%llu times\n",
           sent, batches, batches ? (double)sent / (double)batches : 0.0,
           now.wakeups - stats_before.wakeups);
}

/* The other side: runs on shard 1. */
static struct sc_future echo_plus_one(void *cap)
{
    return sc_make_ready(*(intptr_t *)cap + 1);
}

/* ---- 1 and 3: one call at a time --------------------------------------- */

static struct {
    uint64_t *lat;
    size_t n, i;
    uint64_t pause_ns; /* sleep before each call (part 3) */
    uint64_t t0;
    unsigned wrong;
} seq;

static struct sc_future seq_back(void *cap, intptr_t v)
{
    (void)cap;
    seq.lat[seq.i] = sc_now() - seq.t0;
    if (v != (intptr_t)seq.i + 1)
        seq.wrong++;
    seq.i++;
    return sc_make_ready(seq.i == seq.n ? SC_STOP : SC_CONTINUE);
}

static struct sc_future seq_call(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    intptr_t x = (intptr_t)seq.i;
    seq.t0 = sc_now();
    return sc_then(SC_SUBMIT_TO(1, echo_plus_one, x), seq_back, NULL, 0);
}

static struct sc_future seq_body(void *cap)
{
    (void)cap;
    if (seq.pause_ns)
        return sc_then(sc_sleep(seq.pause_ns), seq_call, NULL, 0);
    return seq_call(NULL, 0);
}

static struct sc_future one_at_a_time(size_t n, uint64_t pause_ns)
{
    free(seq.lat);
    seq.lat = malloc(n * sizeof *seq.lat);
    if (!seq.lat)
        return sc_make_error(-ENOMEM);
    seq.n = n;
    seq.i = 0;
    seq.pause_ns = pause_ns;
    seq.wrong = 0;
    stats_mark();
    return sc_repeat(seq_body, NULL, 0);
}

/* ---- 2. many calls in flight -------------------------------------------- */

#define IN_FLIGHT 1000
#define WAVES     50

static struct {
    unsigned wave;
    intptr_t sum_wrong;
    uint64_t t0;
} many;

static struct sc_future call_i(void *cap, size_t i)
{
    (void)cap;
    intptr_t x = (intptr_t)i;
    return SC_SUBMIT_TO(1, echo_plus_one, x);
}

static intptr_t sum(void *cap, intptr_t acc, intptr_t v)
{
    (void)cap;
    return acc + v;
}

static struct sc_future wave_done(void *cap, intptr_t total)
{
    (void)cap;
    /* sum over i < IN_FLIGHT of (i + 1) */
    if (total != (intptr_t)IN_FLIGHT * (IN_FLIGHT + 1) / 2)
        many.sum_wrong++;
    return sc_make_ready(++many.wave == WAVES ? SC_STOP : SC_CONTINUE);
}

static struct sc_future wave(void *cap)
{
    (void)cap;
    return sc_then(sc_map_reduce(IN_FLIGHT, call_i, sum, 0, NULL, 0), wave_done, NULL, 0);
}

/* ---- 4. idle -------------------------------------------------------------- */

static uint64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static struct {
    uint64_t cpu0, wall0;
} idle;

static struct sc_future idle_done(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    double wall = (double)(sc_now() - idle.wall0);
    if (sc_is_simulated()) {
        printf("  %.0f ms of virtual time went by; the simulator jumped the clock, so no CPU "
               "was spent waiting\n",
               wall / 1e6);
    } else {
        double cpu = (double)(cpu_ns() - idle.cpu0);
        printf("  %u shards idle for %.0f ms used %.1f ms of CPU: %.1f%% of one core\n",
               sc_shard_count(), wall / 1e6, cpu / 1e6, 100.0 * cpu / wall);
    }
    free(seq.lat);
    seq.lat = NULL;
    return sc_make_ready(failures ? 1 : 0);
}

static struct sc_future part4(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    print_latency("a round trip that must wake shard 1", seq.lat, seq.n);
    stats_print();
    expect(seq.wrong == 0, "every call answered with its number + 1");
    printf("4. nobody calls anybody for %ld ms\n", idle_ms);
    idle.cpu0 = cpu_ns();
    idle.wall0 = sc_now();
    return sc_then(sc_sleep(SC_MS(idle_ms)), idle_done, NULL, 0);
}

static struct sc_future part3(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    double ns = (double)(sc_now() - many.t0) / (IN_FLIGHT * WAVES);
    printf("  %d calls in %d waves: %.0f ns per call\n", IN_FLIGHT * WAVES, WAVES, ns);
    stats_print();
    expect(many.sum_wrong == 0, "every wave's answers add up");
    printf("3. one call every 2 ms, 20 times (shard 1 falls asleep in between)\n");
    return sc_then(one_at_a_time(20, SC_MS(2)), part4, NULL, 0);
}

static struct sc_future part2(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    print_latency("round trip", seq.lat, seq.n);
    stats_print();
    expect(seq.wrong == 0, "every call answered with its number + 1");
    printf("2. %d calls in flight at once, %d times\n", IN_FLIGHT, WAVES);
    many.wave = 0;
    many.sum_wrong = 0;
    many.t0 = sc_now();
    stats_mark();
    return sc_then(sc_repeat(wave, NULL, 0), part3, NULL, 0);
}

static struct sc_future roundtrip_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (sc_shard_count() < 2) {
        printf("one shard: no message crosses between shards; run with --smp 2\n");
        return sc_make_ready(0);
    }
    if (round_trips < 1 || idle_ms < 0)
        return sc_make_error(-EINVAL);
    printf("%s world, %u shards%s\n", sc_is_simulated() ? "sim" : "real", sc_shard_count(),
           sc_is_simulated() ? " (times are virtual: a cost model, not a measurement)" : "");
    printf("1. %ld calls from shard 0 to shard 1, one at a time\n", round_trips);
    return sc_then(one_at_a_time((size_t)round_trips, 0), part2, NULL, 0);
}

int main(int argc, char **argv)
{
    static const struct sc_app_opt opts[] = {
        {"round-trips", SC_OPT_INT, &round_trips, "N: calls in part 1 (20000)"},
        {"idle-ms", SC_OPT_INT, &idle_ms, "N: how long part 4 stays idle (50)"},
        {0},
    };
    return sc_app_run_opts(argc, argv, "Cross-shard round trips, batches, wake-ups, idle CPU.",
                           opts, roundtrip_main, NULL);
}
