/*
 * test_memory.c — the per-shard allocator: random sequences against a
 * model, frees that cross shards (and threads), shutdown with frees in
 * flight, exhaustion, injected failures, the libc overrides, the options.
 *
 * In sanitizer builds the allocator is bypassed (the C library serves
 * everything): the model tests still run (they check the API's promises),
 * the tests about the shards' own memory are skipped.
 */
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/memory.h"
#include "core/smp.h"
#include "tests/harness.h"

#ifdef SC_SAN
#define BYPASSED 1
#else
#define BYPASSED 0
#endif

static int world_i; /* index into t_backends */

static struct sc_config cfg_for(unsigned shards)
{
    struct sc_config cfg = t_config(t_backends[world_i]);
    cfg.smp = shards;
    cfg.sim_defer_ready_pct = cfg.sim_shuffle_pct = cfg.sim_preempt_pct = 10;
    cfg.stall_threshold_ns = 2000000000ull; /* 4 shards share 2 CPUs here: no stall reports */
    return cfg;
}

static int run_cfg(struct sc_config *cfg, sc_main_fn fn, void *arg)
{
    tr_step("run on %u shard(s), %s world", cfg->smp, t_backend_names[world_i]);
    return sc_run(cfg, fn, arg, 0, NULL);
}

static _Atomic int failures; /* checks that failed on a shard (any thread) */
static char fail_msg[256];

#define S_CHECK(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (atomic_fetch_add(&failures, 1) == 0)                                               \
                snprintf(fail_msg, sizeof fail_msg, __VA_ARGS__);                                  \
        }                                                                                          \
    } while (0)

static void reset_failures(void)
{
    atomic_store(&failures, 0);
    fail_msg[0] = 0;
}

/* ---- random sequences against a model ---- */

#define LIVE 200

struct block {
    unsigned char *p;
    size_t size, align;
    unsigned char tag;
};

static size_t random_size(void)
{
    uint64_t r = sc_random_below(100);
    if (r < 60)
        return (size_t)sc_random_below(257); /* tiny, including 0 */
    if (r < 85)
        return 257 + (size_t)sc_random_below(1024 * 4); /* a few KiB */
    if (r < 97)
        return (size_t)sc_random_below(20000);      /* around the small/large border */
    return 16384 + (size_t)sc_random_below(300000); /* large */
}

static void fill(struct block *b)
{
    memset(b->p, b->tag, b->size);
}

static bool intact(const struct block *b, size_t upto)
{
    for (size_t i = 0; i < upto; i++)
        if (b->p[i] != b->tag)
            return false;
    return true;
}

/* Runs on each shard: one synchronous sequence, so nothing else allocates
 * meanwhile and the shard's counters can be compared exactly. */
static struct sc_future model_on_shard(void *cap)
{
    (void)cap;
    struct block live[LIVE] = {0};
    unsigned nlive = 0;
    struct sc_memory_stats before, after;
    sc_memory_stats(&before);
    for (int op = 0; op < 4000; op++) {
        uint64_t kind = sc_random_below(10);
        if (nlive < LIVE && (kind < 4 || nlive == 0)) { /* alloc, maybe aligned */
            struct block b = {.size = random_size(), .align = 16};
            b.tag = (unsigned char)(1 + sc_random_below(255));
            if (kind == 0) {
                b.align = (size_t)1 << (4 + sc_random_below(kind == 0 ? 10 : 4)); /* 16..8K */
                if (sc_random_below(20) == 0)
                    b.align = (size_t)1 << 21; /* a 2 MiB boundary */
                b.p = sc_aligned_alloc(b.align, b.size);
            } else if (kind == 1) {
                b.p = sc_calloc(1, b.size);
                for (size_t i = 0; b.p && i < b.size; i++)
                    S_CHECK(b.p[i] == 0, "calloc(%zu) byte %zu is %u", b.size, i, b.p[i]);
            } else {
                b.p = sc_malloc(b.size);
            }
            S_CHECK(b.p != NULL, "allocation of %zu (align %zu) failed", b.size, b.align);
            if (!b.p)
                break;
            S_CHECK(((uintptr_t)b.p & (b.align - 1)) == 0, "%p is not %zu-aligned", (void *)b.p,
                    b.align);
            S_CHECK(sc_usable_size(b.p) >= b.size, "usable %zu < asked %zu", sc_usable_size(b.p),
                    b.size);
            fill(&b);
            live[nlive++] = b;
        } else if (kind < 7 && nlive) { /* realloc */
            struct block *b = &live[sc_random_below(nlive)];
            size_t nsize = random_size();
            unsigned char *q = sc_realloc(b->p, nsize);
            if (nsize == 0) { /* freed */
                S_CHECK(q == NULL, "realloc to 0 returned %p", (void *)q);
                *b = live[--nlive];
                continue;
            }
            S_CHECK(q != NULL, "realloc %zu -> %zu failed", b->size, nsize);
            if (!q)
                break;
            b->p = q;
            S_CHECK(intact(b, b->size < nsize ? b->size : nsize), "realloc %zu -> %zu lost data",
                    b->size, nsize);
            b->size = nsize;
            b->align = 16;
            S_CHECK(((uintptr_t)q & 15) == 0, "realloc result %p not 16-aligned", (void *)q);
            fill(b);
        } else if (nlive) { /* free */
            unsigned i = (unsigned)sc_random_below(nlive);
            S_CHECK(intact(&live[i], live[i].size), "block of %zu overwritten (overlap?)",
                    live[i].size);
            sc_free(live[i].p);
            live[i] = live[--nlive];
        }
        if (op % 500 == 0) /* everything still holds its own pattern: no overlap */
            for (unsigned i = 0; i < nlive; i++)
                S_CHECK(intact(&live[i], live[i].size), "block %u (%zu B) overwritten", i,
                        live[i].size);
    }
    for (unsigned i = 0; i < nlive; i++) {
        S_CHECK(intact(&live[i], live[i].size), "block %u overwritten at the end", i);
        sc_free(live[i].p);
    }
    sc_memory_stats(&after);
    S_CHECK(after.bypassed == BYPASSED, "bypassed is %d", after.bypassed);
    S_CHECK(after.small_objects == before.small_objects &&
                after.large_allocs == before.large_allocs,
            "shard %u: objects %llu -> %llu, large %llu -> %llu after freeing everything",
            sc_this_shard(), (unsigned long long)before.small_objects,
            (unsigned long long)after.small_objects, (unsigned long long)before.large_allocs,
            (unsigned long long)after.large_allocs);
    S_CHECK(after.bypassed || after.bytes_in_use + after.bytes_free == after.bytes_total,
            "in use %llu + free %llu != total %llu", (unsigned long long)after.bytes_in_use,
            (unsigned long long)after.bytes_free, (unsigned long long)after.bytes_total);
    return sc_make_ready(0);
}

static struct sc_future model_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_smp_invoke_on_all(model_on_shard, NULL, 0);
}

START_TEST(random_sequences_match_the_model)
{
    tr_reset();
    world_i = _i % 2;
    for (unsigned n = 1; n <= 4; n++) {
        reset_failures();
        struct sc_config cfg = cfg_for(n);
        cfg.seed = 11 + n;
        int rc = run_cfg(&cfg, model_main, NULL);
        T_CHECK(rc == 0 && failures == 0, "%d failed check(s), first: %s (exit %d)", failures,
                fail_msg, rc);
    }
}
END_TEST

/* ---- frees that cross shards ---- */

#define PER_SHARD 3000
#define PER_MSG   30

struct hand_over {
    void *p[PER_MSG];
    unsigned n;
};

static struct sc_future free_here(void *cap)
{
    struct hand_over *h = cap;
    for (unsigned i = 0; i < h->n; i++) {
        S_CHECK(((unsigned char *)h->p[i])[0] == 0xab, "a handed-over block lost its contents");
        sc_free(h->p[i]);
    }
    return sc_make_ready(0);
}

static struct sc_future send_one(void *cap, size_t i)
{
    (void)cap, (void)i;
    struct hand_over h = {.n = PER_MSG};
    for (unsigned k = 0; k < PER_MSG; k++) {
        size_t size = 16 + (size_t)sc_random_below(k % 10 == 0 ? 40000 : 600);
        h.p[k] = sc_malloc(size);
        S_CHECK(h.p[k] != NULL, "malloc(%zu) failed", size);
        if (!h.p[k])
            return sc_make_ready(0);
        memset(h.p[k], 0xab, size);
    }
    unsigned n = sc_shard_count();
    unsigned to = (sc_this_shard() + 1 + (unsigned)sc_random_below(n - 1)) % n;
    return SC_SUBMIT_TO(to, free_here, h);
}

static struct sc_future spray(void *cap)
{
    (void)cap;
    return sc_parallel_for_each(PER_SHARD / PER_MSG, send_one, NULL, 0);
}

static struct sc_future spray_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_smp_invoke_on_all(spray, NULL, 0);
}

/* Counters of shards [0, n) summed. */
struct totals {
    uint64_t sent, received, small, large;
};

static struct totals totals_of(unsigned n)
{
    struct totals t = {0};
    for (unsigned i = 0; i < n; i++) {
        struct sc_memory_stats st;
        T_CHECK(sc_memory_stats_of(i, &st) == 0, "stats of shard %u", i);
        t.sent += st.foreign_frees_sent;
        t.received += st.foreign_frees_received;
        t.small += st.small_objects;
        t.large += st.large_allocs;
    }
    return t;
}

static void check_balanced(unsigned n, struct totals a, struct totals b, uint64_t min_sent)
{
    tr_step("sent %llu -> %llu, received %llu -> %llu, small %llu -> %llu, large %llu -> %llu",
            (unsigned long long)a.sent, (unsigned long long)b.sent, (unsigned long long)a.received,
            (unsigned long long)b.received, (unsigned long long)a.small,
            (unsigned long long)b.small, (unsigned long long)a.large, (unsigned long long)b.large);
    (void)n;
    if (BYPASSED)
        return;
    T_CHECK(b.sent - a.sent >= min_sent, "expected at least %llu foreign frees",
            (unsigned long long)min_sent);
    T_CHECK(b.sent - a.sent == b.received - a.received, "sent != received: something is lost");
    T_CHECK(b.small == a.small && b.large == a.large, "objects not back to the baseline");
}

START_TEST(cross_shard_frees_go_home)
{
    tr_reset();
    world_i = _i % 2;
    for (unsigned n = 2; n <= 4; n++) {
        reset_failures();
        struct totals a = totals_of(n);
        struct sc_config cfg = cfg_for(n);
        int rc = run_cfg(&cfg, spray_main, NULL);
        T_CHECK(rc == 0 && failures == 0, "%d failed check(s), first: %s (exit %d)", failures,
                fail_msg, rc);
        check_balanced(n, a, totals_of(n), (uint64_t)n * PER_SHARD);
    }
}
END_TEST

/* The run ends while frees are still batched on the freeing shard. */
static struct sc_future make_on_1(void *cap)
{
    (void)cap;
    struct hand_over *h = sc_malloc(sizeof *h);
    if (!h)
        return sc_make_error(-ENOMEM);
    h->n = 7;
    for (unsigned k = 0; k < h->n; k++)
        h->p[k] = sc_malloc(24 + 5000 * k); /* small and large */
    return sc_make_ready((intptr_t)h);
}

static struct sc_future free_and_quit(void *cap, intptr_t v)
{
    (void)cap;
    struct hand_over *h = (struct hand_over *)v;
    for (unsigned i = 0; i < h->n; i++)
        sc_free(h->p[i]); /* fewer than a batch: nothing need be sent before the run ends */
    sc_free(h);
    return sc_make_ready(0);
}

static struct sc_future quit_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_then(sc_smp_submit_to(1, make_on_1, NULL, 0), free_and_quit, NULL, 0);
}

START_TEST(shutdown_with_frees_in_flight)
{
    tr_reset();
    world_i = _i % 2;
    for (int round = 0; round < 20; round++) {
        struct totals a = totals_of(2);
        struct sc_config cfg = cfg_for(2);
        cfg.seed = (uint64_t)round + 1;
        T_CHECK(run_cfg(&cfg, quit_main, NULL) == 0, "run failed");
        check_balanced(2, a, totals_of(2), 8);
    }
}
END_TEST

/* ---- frees from a thread that is not a shard (real world) ---- */

#define THREAD_FREES 5000

struct thread_job {
    void **p;
    _Atomic bool go, done;
    pthread_t t;
};

static void *free_all(void *arg)
{
    struct thread_job *j = arg;
    while (!atomic_load(&j->go))
        sched_yield();
    for (unsigned i = 0; i < THREAD_FREES; i++)
        free(j->p[i]); /* the libc entry point: arena pointers go home from any thread */
    sc_free(j->p);
    atomic_store(&j->done, true);
    return NULL;
}

struct thread_state {
    struct thread_job job;
    struct sc_memory_stats before;
    int polls;
};

static struct sc_future wait_thread(void *cap);

static struct sc_future check_thread(void *cap, intptr_t v)
{
    (void)v;
    struct thread_state *st = *(struct thread_state **)cap;
    if (!atomic_load(&st->job.done) || st->polls < 2) {
        st->polls += atomic_load(&st->job.done);
        return wait_thread(cap);
    }
    pthread_join(st->job.t, NULL);
    struct sc_memory_stats after;
    sc_memory_stats(&after);
    if (!after.bypassed) {
        S_CHECK(
            after.foreign_frees_received - st->before.foreign_frees_received >= THREAD_FREES,
            "received %llu frees from the thread, expected %d",
            (unsigned long long)(after.foreign_frees_received - st->before.foreign_frees_received),
            THREAD_FREES);
        /* (<=: joining the thread may free glibc's records of it too) */
        S_CHECK(after.small_objects <= st->before.small_objects,
                "objects %llu -> %llu after the thread freed them all",
                (unsigned long long)st->before.small_objects,
                (unsigned long long)after.small_objects);
    }
    return sc_make_ready(0);
}

static struct sc_future wait_thread(void *cap)
{
    return sc_then(sc_sleep(SC_MS(1)), check_thread, cap, sizeof(struct thread_state *));
}

static struct sc_future start_thread(void *cap, intptr_t v)
{
    (void)v;
    struct thread_state *st = *(struct thread_state **)cap;
    st->job.p = sc_malloc(THREAD_FREES * sizeof(void *));
    for (unsigned i = 0; i < THREAD_FREES; i++)
        st->job.p[i] = sc_malloc(8 + i % 500);
    atomic_init(&st->job.done, false);
    atomic_init(&st->job.go, false);
    /* (glibc allocates the thread's records here, on the shard) */
    S_CHECK(pthread_create(&st->job.t, NULL, free_all, &st->job) == 0, "pthread_create");
    sc_memory_stats(&st->before); /* the frees must bring it back to here, less the blocks */
    st->before.small_objects -= THREAD_FREES;
    atomic_store(&st->job.go, true);
    return wait_thread(cap);
}

static struct sc_future thread_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    /* a first sleep: the shard's timer heap is allocated before the baseline */
    return sc_then(sc_sleep(SC_MS(1)), start_thread, &arg, sizeof arg);
}

START_TEST(frees_from_a_plain_thread)
{
    tr_reset();
    world_i = 1; /* threads belong to the real world */
    reset_failures();
    struct thread_state st = {0};
    struct sc_config cfg = cfg_for(1);
    T_CHECK(run_cfg(&cfg, thread_main, &st) == 0 && failures == 0, "%d failed, first: %s", failures,
            fail_msg);
}
END_TEST

/* ---- exhaustion: NULL, the shard goes on, and recovers ---- */

static struct sc_future exhaust_after(void *cap, intptr_t v)
{
    (void)v;
    void **blocks = *(void ***)cap;
    sc_free(blocks);
    void *p = sc_malloc(300000);
    S_CHECK(p != NULL, "after a sleep, the shard allocates again");
    sc_free(p);
    return sc_make_ready(0);
}

static struct sc_future exhaust_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    enum { MAXB = 4096 };
    void **blocks = calloc(MAXB, sizeof *blocks); /* glibc's or ours: either frees */
    unsigned nb = 0, failed_large = 0, failed_small = 0;
    struct sc_memory_stats st;
    sc_memory_stats(&st);
    if (st.bypassed) {
        free(blocks);
        return sc_make_ready(0);
    }
    while (nb < MAXB && (blocks[nb] = sc_malloc(256 * 1024)))
        nb++;
    failed_large = nb < MAXB;
    while (nb < MAXB && (blocks[nb] = sc_malloc(1000)))
        nb++;
    failed_small = nb < MAXB;
    errno = 0;
    void *m = malloc(100000);
    S_CHECK(m == NULL && errno == ENOMEM, "malloc() past the budget: %p, errno %d", m, errno);
    sc_memory_stats(&st);
    S_CHECK(failed_large && failed_small, "a 16 MiB shard never ran out (%u blocks)", nb);
    S_CHECK(st.alloc_failures >= 2, "failures counted: %llu",
            (unsigned long long)st.alloc_failures);
    S_CHECK(st.bytes_in_use <= st.bytes_total, "in use %llu > budget %llu",
            (unsigned long long)st.bytes_in_use, (unsigned long long)st.bytes_total);
    S_CHECK(st.bytes_in_use + 512 * 1024 > st.bytes_total, "gave up with %llu of %llu bytes in use",
            (unsigned long long)st.bytes_in_use, (unsigned long long)st.bytes_total);
    for (unsigned i = 0; i < nb; i++)
        sc_free(blocks[i]);
    void *again = sc_malloc(4 << 20);
    S_CHECK(again != NULL, "after freeing, 4 MiB fit again");
    sc_free(again);
    /* and the shard still runs continuations */
    return sc_then(sc_sleep(SC_MS(1)), exhaust_after, &blocks, sizeof blocks);
}

START_TEST(exhaustion_is_an_error_not_a_crash)
{
    tr_reset();
    world_i = _i % 2;
    reset_failures();
    struct sc_config cfg = cfg_for(1);
    cfg.memory = 16 << 20;
    T_CHECK(run_cfg(&cfg, exhaust_main, NULL) == 0 && failures == 0, "%d failed, first: %s",
            failures, fail_msg);
}
END_TEST

/* ---- free memory goes back to the OS between tasks, not inside free() ---- */

struct purge_state {
    uint64_t released0;
    int turns;
};

static struct sc_future purge_again(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future purge_turn(void *cap)
{
    struct purge_state *ps = *(struct purge_state **)cap;
    struct sc_memory_stats st;
    sc_memory_stats(&st);
    if (st.bytes_released > ps->released0) {
        S_CHECK(st.bytes_free_dirty <= (8u << 20), "after the purge %llu bytes stay backed",
                (unsigned long long)st.bytes_free_dirty);
        return sc_make_ready(SC_STOP);
    }
    if (++ps->turns > 200) {
        S_CHECK(false, "200 sleeps of 100 us after freeing 32 MiB, nothing went back to the OS");
        return sc_make_ready(SC_STOP);
    }
    /* a sleep ends the reactor turn (a yield may not: the turn runs on) */
    return sc_then(sc_sleep(SC_US(100)), purge_again, NULL, 0);
}

static struct sc_future purge_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    static struct purge_state ps;
    ps = (struct purge_state){0};
    struct sc_memory_stats st;
    sc_memory_stats(&st);
    if (st.bypassed)
        return sc_make_ready(0);
    ps.released0 = st.bytes_released;
    enum { N = 32 };
    void *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = sc_malloc(1 << 20);
        S_CHECK(b[i] != NULL, "1 MiB block %d", i);
        if (b[i])
            memset(b[i], 1, 1 << 20);
    }
    for (int i = 0; i < N; i++)
        sc_free(b[i]);
    /* inside this task nothing is released yet: freeing stays cheap */
    sc_memory_stats(&st);
    S_CHECK(st.bytes_released == ps.released0, "free() itself released %llu bytes",
            (unsigned long long)(st.bytes_released - ps.released0));
    S_CHECK(st.bytes_free_dirty >= (28u << 20), "32 MiB freed, only %llu bytes free and backed",
            (unsigned long long)st.bytes_free_dirty);
    struct purge_state *p = &ps;
    return sc_repeat(purge_turn, &p, sizeof p);
}

START_TEST(free_memory_is_purged_between_tasks)
{
    tr_reset();
    world_i = _i % 2;
    reset_failures();
    struct sc_config cfg = cfg_for(1);
    T_CHECK(run_cfg(&cfg, purge_main, NULL) == 0 && failures == 0, "%d failed, first: %s", failures,
            fail_msg);
}
END_TEST

/* ---- injected failures: by seed, deterministic ---- */

static uint64_t fail_pattern;
static unsigned fail_count;

static struct sc_future inject_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    fail_pattern = 1469598103934665603ull;
    fail_count = 0;
    for (unsigned i = 0; i < 2000; i++) {
        void *p = sc_malloc(64);
        fail_pattern = (fail_pattern ^ (p == NULL)) * 1099511628211ull;
        fail_count += p == NULL;
        sc_trace(p == NULL);
        sc_free(p);
    }
    return sc_make_ready(0);
}

static uint64_t inject_run(uint64_t seed, uint64_t *trace)
{
    struct sc_config cfg = t_config(SC_BACKEND_SIM);
    cfg.seed = seed;
    cfg.sim_alloc_fail_ppm = 50000; /* 5% */
    struct sc_run_result r;
    T_CHECK(sc_run_ex(&cfg, inject_main, NULL, 0, NULL, &r) == 0, "run failed");
    *trace = r.trace_hash;
    tr_step("seed %llu: %u of 2000 failed, pattern %016llx", (unsigned long long)seed, fail_count,
            (unsigned long long)fail_pattern);
    return fail_pattern;
}

START_TEST(injected_failures_follow_the_seed)
{
    tr_reset();
    if (BYPASSED)
        return;
    uint64_t t1, t2, t3;
    uint64_t a = inject_run(7, &t1), b = inject_run(7, &t2);
    T_CHECK(fail_count > 40 && fail_count < 200, "5%% of 2000 should fail, %u did", fail_count);
    T_CHECK(a == b && t1 == t2, "same seed: different failures or trace");
    uint64_t c = inject_run(8, &t3);
    T_CHECK(c != a, "another seed should fail other allocations");
}
END_TEST

/* ---- the libc overrides ---- */

static void *free_in_thread(void *p)
{
    free(p);
    return NULL;
}

static struct sc_future libc_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    bool system = *(bool *)arg;
    struct sc_memory_stats a, b;
    sc_memory_stats(&a);
    char *s = strdup("a string that glibc copies with malloc");
    void *m = malloc(100);
    sc_memory_stats(&b);
    S_CHECK(s && m && strcmp(s, "a string that glibc copies with malloc") == 0, "strdup");
    S_CHECK(malloc_usable_size(m) >= 100, "malloc_usable_size %zu", malloc_usable_size(m));
    if (!b.bypassed)
        S_CHECK(b.small_objects - a.small_objects == (system ? 0u : 2u),
                "--malloc=%s: %llu new objects in the shard's memory",
                system ? "system" : "seacore",
                (unsigned long long)(b.small_objects - a.small_objects));
    FILE *f = fopen("/proc/self/status", "r");
    S_CHECK(f != NULL, "fopen");
    char *line = NULL;
    size_t cap = 0;
    int lines = 0;
    while (f && getline(&line, &cap, f) > 0)
        lines++;
    S_CHECK(lines > 3, "getline read %d lines", lines);
    free(line);
    if (f)
        fclose(f);
    void *r = realloc(m, 5000);
    S_CHECK(r != NULL, "realloc");
    void *al = NULL;
    S_CHECK(posix_memalign(&al, 4096, 100) == 0 && ((uintptr_t)al & 4095) == 0, "posix_memalign");
    free(al);
    void *al2 = aligned_alloc(512, 512);
    S_CHECK(al2 && ((uintptr_t)al2 & 511) == 0, "aligned_alloc");
    free(al2);
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, r) == 0)
        pthread_join(t, NULL); /* freed from a thread that is not a shard */
    else
        free(r);
    free(s);
    return sc_make_ready(0);
}

START_TEST(libc_functions_land_in_the_arena)
{
    tr_reset();
    world_i = 1;
    for (int system = 0; system <= 1; system++) {
        reset_failures();
        struct sc_config cfg = cfg_for(1);
        cfg.system_malloc = system;
        bool arg = system;
        T_CHECK(run_cfg(&cfg, libc_main, &arg) == 0 && failures == 0, "%d failed, first: %s",
                failures, fail_msg);
    }
}
END_TEST

/* ---- the API's edges, off a shard and on ---- */

static struct sc_future edges_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    errno = 0;
    S_CHECK(sc_aligned_alloc(48, 10) == NULL && errno == EINVAL, "align 48 is refused");
    S_CHECK(sc_aligned_alloc(0, 10) == NULL, "align 0 is refused");
    S_CHECK(sc_calloc(SIZE_MAX / 2, 3) == NULL, "calloc overflow is refused");
    S_CHECK(sc_realloc(sc_malloc(10), 0) == NULL, "realloc to 0 frees");
    sc_free(NULL);
    S_CHECK(sc_usable_size(NULL) == 0, "usable size of NULL");
    void *big = sc_aligned_alloc(1 << 21, 10);
    S_CHECK(big && ((uintptr_t)big & ((1 << 21) - 1)) == 0, "2 MiB alignment");
    sc_free(big);
    void *z = sc_malloc(0);
    S_CHECK(z != NULL && sc_usable_size(z) >= 1, "malloc(0) is a unique pointer");
    sc_free(z);
    return sc_make_ready(0);
}

START_TEST(api_edges)
{
    tr_reset();
    /* off a shard: the C library, through the same API */
    void *p = sc_malloc(100);
    T_CHECK(p && sc_usable_size(p) >= 100, "sc_malloc off a shard");
    p = sc_realloc(p, 200000);
    T_CHECK(p != NULL, "sc_realloc off a shard");
    sc_free(p);
    struct sc_memory_stats st;
    T_CHECK(sc_memory_stats_of(100000, &st) == -EINVAL, "stats of a shard out of range");
    world_i = _i % 2;
    reset_failures();
    struct sc_config cfg = cfg_for(2);
    T_CHECK(run_cfg(&cfg, edges_main, NULL) == 0 && failures == 0, "%d failed, first: %s", failures,
            fail_msg);
}
END_TEST

/* ---- options ---- */

static int parse(const char *a, const char *b, struct sc_config *cfg)
{
    char *argv[] = {"prog", (char *)a, (char *)b, NULL};
    int argc = b ? 3 : 2;
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w"); /* the messages are for users, not for this test */
    int r = sc_config_parse(&argc, argv, cfg, NULL, NULL);
    fclose(stderr);
    stderr = saved;
    tr_step("parse %s %s -> %d", a, b ? b : "", r);
    return r;
}

START_TEST(memory_options)
{
    tr_reset();
    struct sc_config c;
    T_CHECK(parse("--memory", "4G", &c) == 0 && c.memory == 4ull << 30, "--memory 4G");
    T_CHECK(parse("--memory=512m", NULL, &c) == 0 && c.memory == 512ull << 20, "--memory=512m");
    T_CHECK(parse("--memory", "1048576", &c) == 0 && c.memory == 1 << 20, "plain bytes");
    T_CHECK(parse("--memory", "0", &c) == -EINVAL, "zero is refused");
    T_CHECK(parse("--memory", "12X", &c) == -EINVAL, "a bad suffix is refused");
    T_CHECK(parse("--memory", "4GB", &c) == -EINVAL, "junk after the suffix is refused");
    T_CHECK(parse("--memory", "-1G", &c) == -EINVAL, "a sign is refused");
    T_CHECK(parse("--memory", "99999999T", &c) == -EINVAL, "absurd sizes are refused");
    T_CHECK(parse("--reserve-memory", "2G", &c) == 0 && c.reserve_memory == 2ull << 30,
            "--reserve-memory");
    T_CHECK(parse("--malloc", "system", &c) == 0 && c.system_malloc, "--malloc system");
    T_CHECK(parse("--malloc", "seacore", &c) == 0 && !c.system_malloc, "--malloc seacore");
    T_CHECK(parse("--malloc", "jemalloc", &c) == -EINVAL, "--malloc jemalloc is refused");
    T_CHECK(parse("--sim-alloc-fail-ppm", "100", &c) == 0 && c.sim_alloc_fail_ppm == 100, "ppm");
    T_CHECK(parse("--sim-alloc-fail-ppm", "1000001", &c) == -EINVAL, "ppm > 1e6 is refused");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("memory");
    TCase *tc = tcase_create("memory");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, random_sequences_match_the_model, 0, 2);
    tcase_add_loop_test(tc, cross_shard_frees_go_home, 0, 2);
    tcase_add_loop_test(tc, shutdown_with_frees_in_flight, 0, 2);
    tcase_add_test(tc, frees_from_a_plain_thread);
    tcase_add_loop_test(tc, exhaustion_is_an_error_not_a_crash, 0, 2);
    tcase_add_loop_test(tc, free_memory_is_purged_between_tasks, 0, 2);
    tcase_add_test(tc, injected_failures_follow_the_seed);
    tcase_add_test(tc, libc_functions_land_in_the_arena);
    tcase_add_loop_test(tc, api_edges, 0, 2);
    tcase_add_test(tc, memory_options);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
