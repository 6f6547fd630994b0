/*
 * sim_applog.c — the crash sweep of the append-only log (apps/applog):
 * power cuts at seeded times, with disk faults, and recovery after each.
 *
 * Per seed:
 *   1. an empty disk; a power cut is planned at a seeded time (0.2-8.2 ms; a run takes about 5-10);
 *   2. the app: 2-5 writer fibers append 20-60 records each (seeded sizes,
 *      1 byte to a whole block, seeded pauses), some waiting for each
 *      acknowledgement, some not, while the disk fails 2% of requests with
 *      EIO (--sim-disk-eio-ppm to change it); the run goes on past the cut,
 *      and acknowledgements after it are ignored, as nobody would hear them;
 *   3. reboot (sim/simdisk.h: torn and reordered unflushed writes, names
 *      not synced may vanish), then recovery in a new run, which appends 5
 *      more records; reboot again and recover again.
 *
 * Invariants:
 *   - every record acknowledged before the cut is recovered, intact;
 *   - every record recovered is exactly one that was appended with that
 *     seq (its length and contents; no torn record, nothing stale);
 *   - recovered seqs run 1, 2, 3... with no gap;
 *   - the second recovery finds the first one's records plus the 5 new.
 *
 * The sweep must be able to fail. SIM_APPLOG_BROKEN=ack makes the log
 * acknowledge a record once written, before the flush; =crc makes recovery
 * skip the checksum. scripts/sim-sweep.sh runs both and expects failures.
 *
 *   build/bin/sim_applog --seed 17      one seed (`make sim SIM=sim_applog SEED=17`)
 *   build/bin/sim_applog --sweep 300    seeds 1..300, each run twice: same trace hash
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/applog/log.h"
#include "core/seacore.h"
#include "disk/file.h"
#include "sim/simdisk.h"
#include "tests/sim/sweep.h"

#define PATH        "applog/log"
#define MAX_WRITERS 5
#define MAX_RECORDS (MAX_WRITERS * 60 + 64)
#define EXTRA       5

struct rec {
    uint32_t len;
    uint64_t hash;
};

static struct {
    struct applog_opts opts; /* from SIM_APPLOG_BROKEN */
    uint64_t seed, crash_t;
    struct rec sent[MAX_RECORDS + 1];  /* the app's run: seq -> what was appended */
    struct rec extra[MAX_RECORDS + 1]; /* the first recovery's appends */
    uint64_t ack_t[MAX_RECORDS + 1];   /* when it was acknowledged (0: never) */
    uint64_t nsent, acked, failed, pending;
    struct rec got[MAX_RECORDS + 1]; /* what a recovery found */
    uint64_t ngot, nfirst;
    int violations;
    struct applog_stats app_st;
    struct sc_sim_disk_stats disk_st;
} T;

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "INVARIANT (seed %" PRIu64 ", cut at %" PRIu64 " ns): %s\n", T.seed, T.crash_t,
            msg);
    T.violations++;
}

static uint64_t fnv(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* ---- the app ---- */

struct writer {
    struct applog *log;
    int records;
};

static struct sc_future acked(void *cap, intptr_t v, int err)
{
    (void)cap;
    T.pending--;
    if (err) {
        T.failed++;
        return sc_make_ready(0);
    }
    if (v <= 0 || (uint64_t)v > T.nsent)
        violation("acknowledged seq %ld was never appended", (long)v);
    else if (sc_now() < T.crash_t)
        T.ack_t[v] = sc_now(); /* after the cut nobody hears it */
    T.acked++;
    return sc_make_ready(0);
}

static struct sc_future writer_fiber(void *cap)
{
    struct writer *w = cap;
    static char data[APPLOG_MAX_PAYLOAD];
    for (int i = 0; i < w->records; i++) {
        sc_await(sc_sleep(sc_random_below(300) * 1000), NULL);
        uint32_t len = sc_random_below(10) < 7 ? 1 + (uint32_t)sc_random_below(200)
                                               : 1 + (uint32_t)sc_random_below(APPLOG_MAX_PAYLOAD);
        for (uint32_t j = 0; j < len; j++)
            data[j] = (char)sc_random();
        uint64_t seq = 0;
        struct sc_future f = applog_append(w->log, data, len, &seq);
        if (sc_future_failed(f)) {
            violation("append refused: %s", sc_strerror(sc_future_get(f, NULL)));
            continue;
        }
        if (seq != T.nsent + 1 || seq > MAX_RECORDS)
            violation("append gave seq %" PRIu64 ", expected %" PRIu64, seq, T.nsent + 1);
        else
            T.sent[seq] = (struct rec){len, fnv(data, len)};
        T.nsent = seq > T.nsent ? seq : T.nsent;
        T.pending++;
        f = sc_then_wrapped(f, acked, NULL, 0);
        if (sc_random_below(2))
            sc_await(f, NULL); /* wait for the acknowledgement */
        else
            sc_future_discard(f);
    }
    return sc_make_ready(0);
}

static struct sc_future app_fiber(void *cap)
{
    (void)cap;
    intptr_t v;
    int rc = sc_await(applog_open(PATH, &T.opts, NULL, NULL), &v);
    if (rc < 0) {
        /* an EIO during open is allowed: nothing was acknowledged */
        return sc_make_ready(0);
    }
    struct applog *log = (struct applog *)v;
    int nw = 2 + (int)sc_random_below(MAX_WRITERS - 1);
    struct sc_future fs[MAX_WRITERS];
    for (int i = 0; i < nw; i++) {
        struct writer w = {log, 20 + (int)sc_random_below(41)};
        fs[i] = SC_THREAD_SPAWN(writer_fiber, w, NULL);
    }
    rc = sc_await(sc_when_all_succeed(fs, (size_t)nw), NULL);
    if (rc < 0)
        violation("a writer failed: %s", sc_strerror(rc));
    applog_stats(log, &T.app_st);
    rc = sc_await(applog_close(log), NULL);
    if (rc < 0)
        violation("close failed: %s", sc_strerror(rc));
    if (T.pending)
        violation("%" PRIu64 " appends never resolved", T.pending);
    return sc_make_ready(0);
}

static struct sc_future app_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    T.seed = sc_seed();
    T.crash_t = SC_US(200 + sc_random_below(8000));
    sc_sim_disk_crash_at(T.crash_t);
    return sc_thread_spawn(app_fiber, NULL, 0, NULL);
}

/* ---- recovery ---- */

static void found(void *arg, uint64_t seq, const void *data, uint32_t len)
{
    (void)arg;
    if (seq != T.ngot + 1) {
        violation("recovery gave seq %" PRIu64 " after %" PRIu64, seq, T.ngot);
        return;
    }
    if (seq > MAX_RECORDS) {
        violation("recovery gave seq %" PRIu64 ", more than were ever appended", seq);
        return;
    }
    T.got[seq] = (struct rec){len, fnv(data, len)};
    T.ngot = seq;
}

static struct sc_future recover_fiber(void *cap)
{
    bool append = *(bool *)cap;
    T.ngot = 0;
    intptr_t v;
    int rc = sc_await(applog_open(PATH, &T.opts, found, NULL), &v);
    if (rc < 0) {
        violation("recovery failed: %s", sc_strerror(rc));
        return sc_make_ready(0);
    }
    struct applog *log = (struct applog *)v;
    char data[64];
    for (int i = 0; append && i < EXTRA; i++) {
        uint32_t len = 1 + (uint32_t)sc_random_below(sizeof data);
        for (uint32_t j = 0; j < len; j++)
            data[j] = (char)sc_random();
        uint64_t seq = 0;
        rc = sc_await(applog_append(log, data, len, &seq), NULL);
        if (rc < 0 || seq > MAX_RECORDS)
            violation("append after recovery: %s", sc_strerror(rc));
        else
            T.extra[seq] = (struct rec){len, fnv(data, len)};
    }
    rc = sc_await(applog_close(log), NULL);
    if (rc < 0)
        violation("close after recovery: %s", sc_strerror(rc));
    return sc_make_ready(0);
}

static struct sc_future recover_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    return sc_thread_spawn(recover_fiber, arg, sizeof(bool), NULL);
}

static int run_recovery(bool append)
{
    struct sc_config cfg;
    sc_config_default(&cfg);
    cfg.backend = SC_BACKEND_SIM;
    cfg.seed = T.seed;
    cfg.seed_given = true;
    cfg.quiet = true;
    cfg.smp = 1;
    struct sc_run_result r;
    int rc = sc_run_ex(&cfg, recover_main, &append, 0, NULL, &r);
    if (rc || r.unhandled_errors)
        violation("recovery run: exit %d, %" PRIu64 " unhandled errors", rc, r.unhandled_errors);
    return rc;
}

static bool same(const struct rec *a, const struct rec *b)
{
    return a->len == b->len && a->hash == b->hash;
}

static void before_run(void)
{
    struct applog_opts opts = T.opts;
    memset(&T, 0, sizeof T);
    T.opts = opts;
    sc_sim_disk_reset();
}

static int after_run(void)
{
    struct applog_opts app_opts = T.opts;
    if (sc_sim_disk_reboot() != 0)
        violation("reboot failed");
    /* the first recovery: what the power cut left */
    T.opts.unsafe_ack_before_flush = false;
    run_recovery(true);
    T.nfirst = T.ngot;
    for (uint64_t s = 1; s <= T.ngot; s++)
        if (s > T.nsent || !same(&T.got[s], &T.sent[s]))
            violation("record %" PRIu64 " recovered with %u bytes that were not appended as it", s,
                      T.got[s].len);
    for (uint64_t s = 1; s <= T.nsent; s++)
        if (T.ack_t[s] && s > T.ngot)
            violation("record %" PRIu64 " was acknowledged at %" PRIu64 " ns (before the cut) and "
                      "is lost (%" PRIu64 " recovered)",
                      s, T.ack_t[s], T.ngot);
    sc_sim_disk_stats(&T.disk_st);
    /* the second: the first one's records, plus the ones it appended */
    if (sc_sim_disk_reboot() != 0)
        violation("second reboot failed");
    struct rec first[MAX_RECORDS + 1];
    memcpy(first, T.got, sizeof first);
    run_recovery(false);
    if (T.ngot != T.nfirst + EXTRA)
        violation("second recovery found %" PRIu64 " records, expected %" PRIu64, T.ngot,
                  T.nfirst + EXTRA);
    for (uint64_t s = 1; s <= T.ngot && s <= T.nfirst + EXTRA; s++)
        if (!same(&T.got[s], s <= T.nfirst ? &first[s] : &T.extra[s]))
            violation("second recovery: record %" PRIu64 " differs", s);
    T.opts = app_opts;
    return T.violations ? 1 : 0;
}

static void report(void)
{
    uint64_t before = 0;
    for (uint64_t s = 1; s <= T.nsent; s++)
        before += T.ack_t[s] != 0;
    printf("sim_applog: cut at %" PRIu64 " ns; appended %" PRIu64 ", acked %" PRIu64
           " (before the cut: %" PRIu64 "), failed %" PRIu64 "; commits %" PRIu64
           ", retries %" PRIu64 "; recovered %" PRIu64 "; reboot: %" PRIu64
           " writes whole, %" PRIu64 " torn, %" PRIu64 " lost; %" PRIu64 " EIO\n",
           T.crash_t, T.nsent, T.acked, before, T.failed, T.app_st.commits, T.app_st.retries,
           T.nfirst, T.disk_st.writes_whole, T.disk_st.writes_torn, T.disk_st.writes_lost,
           T.disk_st.eio);
}

static unsigned one_shard(uint64_t seed)
{
    (void)seed;
    return 1;
}

int main(int argc, char **argv)
{
    const char *broken = getenv("SIM_APPLOG_BROKEN");
    if (broken && !strcmp(broken, "ack"))
        T.opts.unsafe_ack_before_flush = true;
    else if (broken && !strcmp(broken, "crc"))
        T.opts.unsafe_skip_checksum = true;
    else if (broken && *broken) {
        fprintf(stderr, "sim_applog: SIM_APPLOG_BROKEN is ack or crc\n");
        return 2;
    }
    /* disk faults on unless the command line sets them */
    bool eio_given = false;
    for (int i = 1; i < argc; i++)
        eio_given |= !strncmp(argv[i], "--sim-disk-eio-ppm", 18);
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return 1;
    memcpy(args, argv, (size_t)argc * sizeof *args);
    if (!eio_given)
        args[argc++] = "--sim-disk-eio-ppm=20000";
    static const struct sim_test t = {
        .name = "sim_applog",
        .about = "The append-only log under power cuts and disk faults.",
        .main = app_main,
        .max_smp = 1,
        .smp_for_seed = one_shard,
        .report = report,
        .before_run = before_run,
        .after_run = after_run,
    };
    int rc = sim_test_main(&t, argc, args);
    free(args);
    return rc;
}
