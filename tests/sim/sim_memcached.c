/*
 * sim_memcached.c — a simulation test of seacore-memcached: the server on
 * 1 to 4 shards, checking clients (apps/memcached/demo.c) on every shard,
 * the simulator's schedule perturbations and network faults (connection
 * resets and stalls, unless the command line sets its own), and, on every
 * third seed, a memory limit small enough that the LRU evicts.
 *
 * Invariants (demo.h has the details): every acknowledged write reads back
 * intact until evicted or expired, and only one of ours; multi-key gets
 * answer in request order; shared counters count every acknowledged incr
 * once; garbage gets an error and the connection goes on. Then the server
 * stops cleanly: every connection's fiber ends, every item is freed.
 *
 *   build/bin/sim_memcached --seed 17        one seed
 *   build/bin/sim_memcached --sweep 300      seeds 1..300, each run twice
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/memcached/conn.h"
#include "apps/memcached/demo.h"
#include "apps/memcached/shard.h"
#include "core/seacore.h"
#include "tests/sim/sweep.h"

#define MAX_SHARDS 4

static struct mc_demo_report report;
static struct mc_config config;

static unsigned smp_for_seed(uint64_t seed)
{
    return 1 + (unsigned)(seed % MAX_SHARDS);
}

static struct sc_future workload(void *cap)
{
    (void)cap;
    uint64_t seed = sc_seed();
    config = (struct mc_config){
        /* every third seed: 40 KiB for everything, so the LRU must evict */
        .memory_limit = seed % 3 == 0 ? 40 * 1024 : 64u << 20,
        .max_item_size = 1 << 20,
        .max_inflight = 1 + (unsigned)(seed % 7) * 4, /* 1..25: backpressure often bites */
        .track_evictions = true,
    };
    int err = sc_await(mc_service_start(&config), NULL);
    struct sc_inet_addr addr = {.ip = 0, .port = 11211};
    if (!err)
        err = sc_await(mc_server_start(&addr), NULL);
    if (err) {
        fprintf(stderr, "sim_memcached: cannot start: %s\n", sc_strerror(err));
        return sc_make_ready(1);
    }
    struct mc_demo_opts o = {
        .clients = 2 + (unsigned)sc_random_below(5),
        .ops = 120,
        /* few keys, many rewrites of each; more when the LRU is to evict */
        .keys = seed % 3 == 0 ? 64 : 8 + (unsigned)sc_random_below(24),
        .counters = 2,
        .depth = 1 + (unsigned)sc_random_below(8),
        .port = mc_server_port(),
        .big_values = true,
        .garbage = true,
    };
    err = sc_await(mc_demo_run(&o, &report), NULL);
    int stop_err = sc_await(mc_server_stop(), NULL);
    int svc_err = sc_await(mc_service_stop(), NULL);
    if (err || stop_err || svc_err) {
        fprintf(stderr, "sim_memcached: run %s, stop %s, service stop %s\n", sc_strerror(err),
                sc_strerror(stop_err), sc_strerror(svc_err));
        return sc_make_ready(1);
    }
    sc_trace(report.ops ^ (report.hits << 16) ^ (report.misses << 32));
    return sc_make_ready(report.violations ? 1 : 0);
}

static struct sc_future sim_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    memset(&report, 0, sizeof report);
    struct sc_thread_attr attr = {.stack_size = 64 * 1024};
    return sc_thread_spawn(workload, NULL, 0, &attr);
}

static void print_report(void)
{
    uint64_t evictions = 0;
    for (unsigned s = 0; s < MAX_SHARDS; s++)
        evictions += report.shard_evictions[s];
    printf("sim_memcached: %" PRIu64 " requests, %" PRIu64 " hits, %" PRIu64 " misses (%" PRIu64
           " excused), %" PRIu64 " evictions, %" PRIu64 " unanswered, %" PRIu64
           " reconnects, %" PRIu64 " violations; p99 %.1f us\n",
           report.ops, report.hits, report.misses, report.excused_misses, evictions,
           report.unanswered, report.reconnects, report.violations, (double)report.p99_ns / 1e3);
}

int main(int argc, char **argv)
{
    static const struct sim_test t = {
        .name = "sim_memcached",
        .about = "seacore-memcached under checking clients, network faults and evictions",
        .main = sim_main,
        .max_smp = MAX_SHARDS,
        .smp_for_seed = smp_for_seed,
        .report = print_report,
    };
    /* Network faults on by default: resets and stalls, unless asked otherwise. */
    char **args = calloc((size_t)argc + 5, sizeof *args);
    if (!args)
        return 1;
    int n = 0;
    bool reset = false, stall = false;
    for (int i = 0; i < argc; i++) {
        reset |= strncmp(argv[i], "--sim-net-reset-ppm", 19) == 0;
        stall |= strncmp(argv[i], "--sim-net-stall-ppm", 19) == 0;
        args[n++] = argv[i];
    }
    if (!reset)
        args[n++] = "--sim-net-reset-ppm=2000";
    if (!stall)
        args[n++] = "--sim-net-stall-ppm=1000";
    args[n] = NULL;
    int rc = sim_test_main(&t, n, args);
    free(args);
    return rc;
}
