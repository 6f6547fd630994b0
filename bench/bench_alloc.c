/*
 * bench_alloc.c — seacore's per-shard allocator beside glibc malloc,
 * jemalloc, mimalloc and tcmalloc, in the same run.
 *
 * The workloads are written against malloc/free alone, so every allocator
 * runs the very same code:
 *
 *   alloc.hot_pair_<size>   malloc(size) then free(), again and again, on one
 *                           thread; ns per pair, for 16, 64, 256 and 1024 B.
 *   alloc.batch             allocate 10000 objects of mixed sizes (16..1024 B,
 *                           a fixed pseudo-random sequence), then free them
 *                           all in a shuffled order; ns per alloc+free.
 *   alloc.cross_free        thread A allocates 64-byte objects and hands them
 *                           to thread B through a ring; B frees them (memory
 *                           owned by A, freed on B); M frees/s.
 *   alloc.larson            larson-like churn on two threads: each keeps
 *                           1000 slots, and each step replaces a random slot
 *                           with a new object of a random size (16..1024 B);
 *                           one old object in eight is handed to the other
 *                           thread to free; M steps/s over both threads.
 *   alloc.peak_rss          a single-threaded program shaped like a server's
 *                           life: grow to ~96 MiB of mixed objects (16 B to
 *                           256 KiB), free half at random, grow again, free
 *                           most; the process's peak RSS in MiB
 *                           (getrusage ru_maxrss), engine included.
 *
 * How the allocators are swapped. A program linked with seacore gets
 * seacore's malloc on its shards, and that cannot be undone by LD_PRELOAD
 * (the definition sits in the executable, which the dynamic linker searches
 * first). So the workloads are compiled twice from this file:
 *   build/bench/bench_alloc       linked with libseacore: the parent, and the
 *                                 seacore child (workloads on the shards of a
 *                                 real run: --smp 2, one shard per CPU);
 *   build/bench/alloc_peer        (-DBENCH_ALLOC_SYS) linked with nothing but
 *                                 libc and pthreads: the peer child, run with
 *                                 LD_PRELOAD=libjemalloc.so.2, libmimalloc.so.2
 *                                 or libtcmalloc_minimal.so.4, or nothing
 *                                 (glibc). The workloads run on plain pthreads
 *                                 pinned to the same two CPUs.
 * Each (allocator, workload) pair runs in a fresh child process, so each
 * starts from an empty heap and peak RSS is that workload's alone. Every
 * child checks that the allocator it was given is the one answering (the
 * preloaded library's own symbol resolves; seacore's arena grew) and fails
 * otherwise.
 *
 * Two-thread workloads hand pointers over a small SPSC ring of our own (the
 * same code for everyone). On seacore each thread's loop runs as a chain of
 * sc_repeat() bodies of a few hundred steps, so the reactor runs between
 * them: that is where frees sent home by the other shard are taken back.
 *
 * Output: BENCH lines (bench/README.md). Time units and MiB: ratio =
 * peer_value / value; throughput: ratio = value / peer_value. Above 1 means
 * seacore is better. Values are medians over rounds (7, or 3 with --quick);
 * a round runs every allocator once per workload, interleaved.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

#ifndef BENCH_ALLOC_SYS
#include "core/seacore.h"
#endif

/* ---- workload parameters ---- */

struct params {
    uint64_t hot_iters;   /* pairs per hot_pair size */
    unsigned batch_n;     /* objects per batch */
    unsigned batch_reps;  /* batches */
    uint64_t cross_items; /* objects handed A -> B */
    uint64_t larson_steps;/* steps per thread */
    unsigned rss_scale;   /* MiB of the first growth phase */
};

static struct params P_FULL = {4000000, 10000, 60, 4000000, 3000000, 96};
static struct params P_QUICK = {400000, 10000, 6, 300000, 300000, 16};
static struct params P;

static const size_t HOT_SIZES[] = {16, 64, 256, 1024};
#define N_HOT (sizeof HOT_SIZES / sizeof HOT_SIZES[0])

static inline void keep(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory"); /* the compiler may not drop the pair */
}

static inline uint64_t xs(uint64_t *s) /* xorshift64*: the same sequence everywhere */
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static inline size_t small_size(uint64_t *s)
{
    return 16 + (size_t)(xs(s) % 1009);
}

/* ---- single-threaded workloads ---- */

static double work_hot(size_t size, uint64_t iters)
{
    for (uint64_t i = 0; i < iters / 16; i++) { /* warm */
        void *p = malloc(size);
        keep(p);
        free(p);
    }
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        void *p = malloc(size);
        keep(p);
        free(p);
    }
    return (double)(now_ns() - t0) / (double)iters;
}

static double work_batch(unsigned n, unsigned reps)
{
    void **v = malloc(n * sizeof *v);
    unsigned *order = malloc(n * sizeof *order);
    if (!v || !order)
        return -1;
    uint64_t s = 88172645463325252ull;
    for (unsigned i = 0; i < n; i++)
        order[i] = i;
    for (unsigned i = n - 1; i > 0; i--) {
        unsigned j = (unsigned)(xs(&s) % (i + 1));
        unsigned t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    uint64_t t0 = 0;
    for (unsigned r = 0; r <= reps; r++) {
        if (r == 1)
            t0 = now_ns(); /* round 0 warms */
        for (unsigned i = 0; i < n; i++) {
            v[i] = malloc(small_size(&s));
            if (!v[i])
                return -1;
            *(char *)v[i] = 1;
        }
        for (unsigned i = 0; i < n; i++)
            free(v[order[i]]);
    }
    double ns = (double)(now_ns() - t0) / ((double)n * reps);
    free(order);
    free(v);
    return ns;
}

/* Peak RSS of a server-shaped life, in MiB. */
static double work_rss(unsigned mib)
{
    size_t target = (size_t)mib << 20;
    size_t cap = target / 16;
    void **v = calloc(cap, sizeof *v);
    size_t *sz = calloc(cap, sizeof *sz);
    if (!v || !sz)
        return -1;
    uint64_t s = 0x9E3779B97F4A7C15ull;
    size_t n = 0, live = 0;
    for (int phase = 0; phase < 3; phase++) {
        size_t goal = phase == 2 ? target / 2 : target;
        while (live < goal && n < cap) {
            uint64_t r = xs(&s);
            size_t size = r % 64 == 0 ? 4096 + (size_t)(xs(&s) % (256 * 1024)) : small_size(&s) * (1 + r % 4);
            v[n] = malloc(size);
            if (!v[n])
                return -1;
            memset(v[n], (int)r, size);
            sz[n++] = size;
            live += size;
        }
        /* free half (then, in the last phase, nine tenths) at random */
        unsigned keep_in_10 = phase == 2 ? 1 : 5;
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            if (xs(&s) % 10 < keep_in_10) {
                v[w] = v[i];
                sz[w++] = sz[i];
            } else {
                free(v[i]);
                live -= sz[i];
            }
        }
        n = w;
    }
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    free(sz);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* ---- the hand-over ring (SPSC, batched publish) ---- */

#define RING_SLOTS 1024
#define RING_BATCH 16

struct hring {
    _Alignas(64) _Atomic uint64_t head; /* consumer position */
    _Alignas(64) _Atomic uint64_t tail; /* producer position (published) */
    _Alignas(64) uint64_t ptail;        /* producer: staged */
    uint64_t phead_cache;
    _Alignas(64) void *slot[RING_SLOTS];
};

static bool hr_push(struct hring *r, void *p)
{
    if (r->ptail - r->phead_cache == RING_SLOTS) {
        r->phead_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (r->ptail - r->phead_cache == RING_SLOTS)
            return false;
    }
    r->slot[r->ptail++ % RING_SLOTS] = p;
    if (r->ptail % RING_BATCH == 0)
        atomic_store_explicit(&r->tail, r->ptail, memory_order_release);
    return true;
}

static void hr_flush(struct hring *r)
{
    atomic_store_explicit(&r->tail, r->ptail, memory_order_release);
}

/* Pop up to max items; returns how many. */
static unsigned hr_pop(struct hring *r, void **out, unsigned max)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    unsigned k = 0;
    while (h != t && k < max)
        out[k++] = r->slot[h++ % RING_SLOTS];
    if (k)
        atomic_store_explicit(&r->head, h, memory_order_release);
    return k;
}

#define END_MARK ((void *)1)

/* ---- two-thread workloads, as step functions both runners drive ---- */

/* cross_free: A produces, B frees. A step does up to `chunk` units of work
 * and returns true when its side is finished. */
struct cross {
    struct hring ring;
    uint64_t items, made;
    bool a_done, b_done;
    uint64_t t0, t1;
};

/* When the ring is full, A waits for B: spinning on a plain thread, giving
 * the reactor a turn on a shard (return at once, the caller yields). */
static bool cross_step_a(struct cross *c, unsigned chunk, bool spin)
{
    for (unsigned k = 0; k < chunk && c->made < c->items; k++) {
        void *p = malloc(64);
        if (!p)
            abort();
        *(uint64_t *)p = c->made;
        while (!hr_push(&c->ring, p)) {
            if (!spin) {
                free(p);
                hr_flush(&c->ring);
                return false;
            }
            __builtin_ia32_pause();
        }
        c->made++;
    }
    if (c->made == c->items && !c->a_done) {
        if (!hr_push(&c->ring, END_MARK)) {
            hr_flush(&c->ring);
            return false;
        }
        hr_flush(&c->ring);
        c->a_done = true;
    }
    return c->a_done;
}

static bool cross_step_b(struct cross *c, unsigned chunk)
{
    void *buf[64];
    for (unsigned k = 0; k < chunk && !c->b_done;) {
        unsigned got = hr_pop(&c->ring, buf, 64);
        if (!got) {
            __builtin_ia32_pause();
            k++;
            continue;
        }
        for (unsigned i = 0; i < got; i++) {
            if (buf[i] == END_MARK) {
                c->b_done = true;
                c->t1 = now_ns();
            } else {
                free(buf[i]);
            }
        }
        k += got;
    }
    return c->b_done;
}

/* larson: two sides, each with slots; a victim is freed at home or handed to
 * the other side (one in eight) */
#define LARSON_SLOTS 1000

struct larson_side {
    void *slot[LARSON_SLOTS];
    uint64_t rng, steps;
    bool done;
};

struct larson {
    struct larson_side side[2];
    struct hring ring[2]; /* ring[i]: side i -> side 1-i */
    uint64_t goal;
    _Atomic int finished;
};

static void larson_init(struct larson *l, uint64_t goal)
{
    l->goal = goal;
    for (int i = 0; i < 2; i++)
        l->side[i].rng = 0x1234567ull * (uint64_t)(i + 1);
}

static void larson_fill(struct larson *l, int i)
{
    struct larson_side *s = &l->side[i];
    for (unsigned k = 0; k < LARSON_SLOTS; k++)
        s->slot[k] = malloc(small_size(&s->rng));
}

static void larson_drain(struct larson *l, int i)
{
    void *buf[64];
    unsigned got;
    while ((got = hr_pop(&l->ring[1 - i], buf, 64)) > 0)
        for (unsigned k = 0; k < got; k++)
            if (buf[k] != END_MARK)
                free(buf[k]);
}

/* returns true when this side and the other are both finished */
static bool larson_step(struct larson *l, int i, unsigned chunk)
{
    struct larson_side *s = &l->side[i];
    for (unsigned k = 0; k < chunk && s->steps < l->goal; k++, s->steps++) {
        uint64_t r = xs(&s->rng);
        unsigned slot = (unsigned)(r % LARSON_SLOTS);
        void *old = s->slot[slot];
        if ((r >> 32) % 8 == 0 && hr_push(&l->ring[i], old)) {
            /* handed over */
        } else {
            free(old);
        }
        void *p = malloc(small_size(&s->rng));
        if (!p)
            abort();
        *(char *)p = (char)r;
        s->slot[slot] = p;
        if ((k & 63) == 0)
            larson_drain(l, i);
    }
    hr_flush(&l->ring[i]);
    larson_drain(l, i);
    if (s->steps == l->goal && !s->done) {
        s->done = true;
        atomic_fetch_add(&l->finished, 1);
    }
    return atomic_load(&l->finished) == 2;
}

static void larson_free_all(struct larson *l, int i)
{
    larson_drain(l, i);
    for (unsigned k = 0; k < LARSON_SLOTS; k++)
        free(l->side[i].slot[k]);
}

/* ---- results a child reports ---- */

static void report(const char *key, double v)
{
    printf("R %s %.6f\n", key, v);
}

enum work { W_HOT, W_BATCH, W_CROSS, W_LARSON, W_RSS, W_N };
static const char *const WORK_NAME[W_N] = {"hot", "batch", "cross", "larson", "rss"};

static int cpu_a = 0, cpu_b = 1;

#ifdef BENCH_ALLOC_SYS
/* ---- the peer child: plain pthreads ---- */

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *cross_b_thread(void *arg)
{
    pin(cpu_b);
    while (!cross_step_b(arg, 4096)) {
    }
    return NULL;
}

struct larson_arg {
    struct larson *l;
    int side;
};

static void *larson_thread(void *arg)
{
    struct larson_arg *a = arg;
    pin(a->side == 0 ? cpu_a : cpu_b);
    larson_fill(a->l, a->side);
    while (!larson_step(a->l, a->side, 256)) {
    }
    return NULL;
}

/* Which allocator answers malloc in this process? */
static const char *allocator_name(void)
{
    if (dlsym(RTLD_DEFAULT, "mallctl"))
        return "jemalloc";
    if (dlsym(RTLD_DEFAULT, "mi_version"))
        return "mimalloc";
    if (dlsym(RTLD_DEFAULT, "tc_malloc"))
        return "tcmalloc";
    return "glibc";
}

static int child(const char *impl, enum work w)
{
    if (strcmp(allocator_name(), impl) != 0) {
        fprintf(stderr, "alloc_peer: expected %s, but %s answers malloc\n", impl,
                allocator_name());
        return 1;
    }
    pin(cpu_a);
    switch (w) {
    case W_HOT:
        for (unsigned i = 0; i < N_HOT; i++) {
            char key[32];
            snprintf(key, sizeof key, "hot_%zu", HOT_SIZES[i]);
            report(key, work_hot(HOT_SIZES[i], P.hot_iters));
        }
        break;
    case W_BATCH:
        report("batch", work_batch(P.batch_n, P.batch_reps));
        break;
    case W_CROSS: {
        struct cross *c = calloc(1, sizeof *c);
        c->items = P.cross_items;
        pthread_t t;
        c->t0 = now_ns();
        pthread_create(&t, NULL, cross_b_thread, c);
        while (!cross_step_a(c, 4096, true)) {
        }
        pthread_join(t, NULL);
        report("cross", (double)c->items / (double)(c->t1 - c->t0) * 1e3);
        free(c);
        break;
    }
    case W_LARSON: {
        struct larson *l = calloc(1, sizeof *l);
        larson_init(l, P.larson_steps);
        pthread_t t[2];
        struct larson_arg a[2] = {{l, 0}, {l, 1}};
        uint64_t t0 = now_ns();
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, larson_thread, &a[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        uint64_t t1 = now_ns();
        for (int i = 0; i < 2; i++)
            larson_free_all(l, i);
        report("larson", (double)(2 * l->goal) / (double)(t1 - t0) * 1e3);
        free(l);
        break;
    }
    case W_RSS:
        report("rss", work_rss(P.rss_scale));
        break;
    default:
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* bench_alloc_sys --child IMPL WORK [--quick] [--cpus A,B] */
    if (argc < 4 || strcmp(argv[1], "--child") != 0) {
        fprintf(stderr, "alloc_peer: run by bench_alloc, not by hand\n");
        return 2;
    }
    P = P_FULL;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            P = P_QUICK;
        else if (!strcmp(argv[i], "--cpus") && i + 1 < argc)
            sscanf(argv[++i], "%d,%d", &cpu_a, &cpu_b);
    }
    for (int w = 0; w < W_N; w++)
        if (!strcmp(argv[3], WORK_NAME[w]))
            return child(argv[2], (enum work)w);
    return 2;
}

#else
/* ---- the seacore child: the shards of a real run ---- */

static enum work the_work;

struct cross_cap {
    struct cross *c;
};

static struct sc_future cross_again(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future cross_b_body(void *cap)
{
    struct cross_cap *cc = cap;
    return sc_make_ready(cross_step_b(cc->c, 512) ? SC_STOP : SC_CONTINUE);
}

static struct sc_future cross_b_start(void *cap)
{
    return sc_repeat(cross_b_body, cap, sizeof(struct cross_cap));
}

static struct sc_future cross_a_body(void *cap)
{
    struct cross_cap *cc = cap;
    if (cross_step_a(cc->c, 512, false))
        return sc_make_ready(SC_STOP);
    return sc_then(sc_yield(), cross_again, NULL, 0); /* let the reactor turn */
}

static struct sc_future cross_a_start(void *cap, intptr_t v)
{
    (void)v;
    return sc_repeat(cross_a_body, cap, sizeof(struct cross_cap));
}

static struct sc_future cross_done(void *cap, intptr_t v)
{
    (void)v;
    struct cross_cap *cc = cap;
    report("cross", (double)cc->c->items / (double)(cc->c->t1 - cc->c->t0) * 1e3);
    free(cc->c);
    return sc_make_ready(0);
}

struct larson_cap {
    struct larson *l;
    int side;
    uint64_t t0;
};

static struct sc_future larson_body(void *cap)
{
    struct larson_cap *lc = cap;
    return sc_make_ready(larson_step(lc->l, lc->side, 256) ? SC_STOP : SC_CONTINUE);
}

static struct sc_future larson_start(void *cap)
{
    struct larson_cap *lc = cap;
    larson_fill(lc->l, lc->side);
    return sc_repeat(larson_body, cap, sizeof *lc);
}

static struct sc_future larson_start_then(void *cap, intptr_t v)
{
    (void)v;
    return larson_start(cap);
}

static struct sc_future larson_free_side(void *cap)
{
    struct larson_cap *lc = cap;
    larson_free_all(lc->l, lc->side);
    return sc_make_ready(0);
}

static struct sc_future larson_done(void *cap, intptr_t v)
{
    (void)v;
    struct larson_cap *lc = cap;
    uint64_t t1 = now_ns();
    report("larson", (double)(2 * lc->l->goal) / (double)(t1 - lc->t0) * 1e3);
    struct larson_cap b = *lc;
    b.side = 1;
    larson_free_all(lc->l, 0);
    return sc_smp_submit_to(1, larson_free_side, &b, sizeof b);
}

static struct sc_future larson_end(void *cap, intptr_t v)
{
    (void)v;
    struct larson_cap *lc = cap;
    free(lc->l);
    return sc_make_ready(0);
}

static struct sc_future child_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    switch (the_work) {
    case W_HOT:
        for (unsigned i = 0; i < N_HOT; i++) {
            char key[32];
            snprintf(key, sizeof key, "hot_%zu", HOT_SIZES[i]);
            report(key, work_hot(HOT_SIZES[i], P.hot_iters));
        }
        return sc_make_ready(0);
    case W_BATCH:
        report("batch", work_batch(P.batch_n, P.batch_reps));
        return sc_make_ready(0);
    case W_RSS:
        report("rss", work_rss(P.rss_scale));
        return sc_make_ready(0);
    case W_CROSS: {
        struct cross_cap cc = {calloc(1, sizeof(struct cross))};
        cc.c->items = P.cross_items;
        cc.c->t0 = now_ns();
        struct sc_future fb = sc_smp_submit_to(1, cross_b_start, &cc, sizeof cc);
        /* A starts after a reactor turn, so the request to B is on its way */
        struct sc_future fa = sc_then(sc_yield(), cross_a_start, &cc, sizeof cc);
        struct sc_future both[2] = {fa, fb};
        return sc_then(sc_when_all_succeed(both, 2), cross_done, &cc, sizeof cc);
    }
    case W_LARSON: {
        struct larson_cap lc = {calloc(1, sizeof(struct larson)), 0, 0};
        larson_init(lc.l, P.larson_steps);
        struct larson_cap b = lc;
        b.side = 1;
        lc.t0 = now_ns();
        struct sc_future fb = sc_smp_submit_to(1, larson_start, &b, sizeof b);
        struct sc_future fa = sc_then(sc_yield(), larson_start_then, &lc, sizeof lc);
        struct sc_future both[2] = {fa, fb};
        struct sc_future f = sc_then(sc_when_all_succeed(both, 2), larson_done, &lc, sizeof lc);
        return sc_then(f, larson_end, &lc, sizeof lc);
    }
    default:
        return sc_make_error(EINVAL);
    }
}

static int seacore_child(enum work w)
{
    struct sc_config cfg;
    sc_config_default(&cfg);
    cfg.backend = SC_BACKEND_REAL;
    cfg.smp = 2;
    cfg.quiet = true;
    cfg.stall_threshold_ns = 10ull * 1000 * 1000 * 1000;
    char cpus[32];
    snprintf(cpus, sizeof cpus, "%d,%d", cpu_a, cpu_b);
    cfg.cpuset = cpus;
    the_work = w;
    return sc_run(&cfg, child_main, NULL, 0, NULL);
}

/* ---- the parent ---- */

struct impl {
    const char *name;    /* as reported */
    const char *preload; /* LD_PRELOAD, or NULL */
    bool seacore;
    bool present;
};

static struct impl IMPLS[] = {
    {"seacore", NULL, true, true},
    {"glibc", NULL, false, true},
    {"jemalloc", "libjemalloc.so.2", false, true},
    {"mimalloc", "libmimalloc.so.2", false, true},
    {"tcmalloc", "libtcmalloc_minimal.so.4", false, true},
};
#define N_IMPL (sizeof IMPLS / sizeof IMPLS[0])

/* the measurements, in print order */
struct meas {
    const char *key;  /* as a child reports it */
    const char *name; /* BENCH name */
    const char *unit;
    bool higher_better;
    enum work work;
};

static const struct meas MEAS[] = {
    {"hot_16", "alloc.hot_pair_16", "ns/pair", false, W_HOT},
    {"hot_64", "alloc.hot_pair_64", "ns/pair", false, W_HOT},
    {"hot_256", "alloc.hot_pair_256", "ns/pair", false, W_HOT},
    {"hot_1024", "alloc.hot_pair_1024", "ns/pair", false, W_HOT},
    {"batch", "alloc.batch", "ns/pair", false, W_BATCH},
    {"cross", "alloc.cross_free", "Mfrees/s", true, W_CROSS},
    {"larson", "alloc.larson", "Msteps/s", true, W_LARSON},
    {"rss", "alloc.peak_rss", "MiB", false, W_RSS},
};
#define N_MEAS (sizeof MEAS / sizeof MEAS[0])

static double vals[N_MEAS][N_IMPL][MAX_ROUNDS];
static char self_dir[4096];

/* Run one child; parse its R lines into vals[.][impl][round]. */
static int run_child(unsigned impl, enum work w, int round, bool quick)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        char exe[4200], cpus[32];
        snprintf(cpus, sizeof cpus, "%d,%d", cpu_a, cpu_b);
        const struct impl *im = &IMPLS[impl];
        if (im->seacore)
            snprintf(exe, sizeof exe, "%s/bench_alloc", self_dir);
        else
            snprintf(exe, sizeof exe, "%s/alloc_peer", self_dir);
        if (im->preload)
            setenv("LD_PRELOAD", im->preload, 1);
        else
            unsetenv("LD_PRELOAD");
        char *args[] = {exe,   "--child", (char *)im->name, (char *)WORK_NAME[w],
                        "--cpus", cpus, quick ? "--quick" : NULL, NULL};
        execv(exe, args);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char line[256];
    int got = 0;
    while (f && fgets(line, sizeof line, f)) {
        char key[64];
        double v;
        if (sscanf(line, "R %63s %lf", key, &v) != 2)
            continue;
        for (unsigned m = 0; m < N_MEAS; m++)
            if (!strcmp(MEAS[m].key, key)) {
                vals[m][impl][round] = v;
                got++;
            }
    }
    if (f)
        fclose(f);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || got == 0)
        return -1;
    return 0;
}

static bool lib_present(const char *soname)
{
    void *h = dlopen(soname, RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
    if (h) {
        dlclose(h);
        return true;
    }
    /* not loaded yet: look for it without running its constructors in us */
    char path[256];
    snprintf(path, sizeof path, "/usr/lib/x86_64-linux-gnu/%s", soname);
    if (access(path, R_OK) == 0)
        return true;
    snprintf(path, sizeof path, "/usr/lib/aarch64-linux-gnu/%s", soname);
    return access(path, R_OK) == 0;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: bench_alloc [--quick] [--rounds N] [--cpus A,B]\n"
                "seacore's allocator beside glibc, jemalloc, mimalloc and tcmalloc;\n"
                "see bench/README.md\n");
}

int main(int argc, char **argv)
{
    bool quick = false;
    int rounds = 7;
    P = P_FULL;
    if (argc >= 4 && !strcmp(argv[1], "--child")) {
        for (int i = 4; i < argc; i++) {
            if (!strcmp(argv[i], "--quick"))
                P = P_QUICK;
            else if (!strcmp(argv[i], "--cpus") && i + 1 < argc)
                sscanf(argv[++i], "%d,%d", &cpu_a, &cpu_b);
        }
        for (int w = 0; w < W_N; w++)
            if (!strcmp(argv[3], WORK_NAME[w]))
                return seacore_child((enum work)w);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = true;
            rounds = 3;
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > MAX_ROUNDS) {
                fprintf(stderr, "bench_alloc: --rounds must be 1..%d\n", MAX_ROUNDS);
                return 2;
            }
        } else if (!strcmp(argv[i], "--cpus") && i + 1 < argc) {
            if (sscanf(argv[++i], "%d,%d", &cpu_a, &cpu_b) != 2) {
                fprintf(stderr, "bench_alloc: --cpus wants A,B\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bench_alloc: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    ssize_t n = readlink("/proc/self/exe", self_dir, sizeof self_dir - 1);
    if (n <= 0)
        return 1;
    self_dir[n] = 0;
    *strrchr(self_dir, '/') = 0;
    for (unsigned i = 0; i < N_IMPL; i++) {
#ifdef SC_SAN
        /* a sanitizer owns malloc: preloading another allocator would fight it */
        if (IMPLS[i].preload) {
            IMPLS[i].present = false;
            continue;
        }
#endif
        if (IMPLS[i].preload && !lib_present(IMPLS[i].preload)) {
            IMPLS[i].present = false;
            fprintf(stderr, "bench_alloc: %s not installed (%s): skipped\n", IMPLS[i].name,
                    IMPLS[i].preload);
        }
    }

    for (int r = 0; r < rounds; r++)
        for (int w = 0; w < W_N; w++)
            for (unsigned i = 0; i < N_IMPL; i++) {
                if (!IMPLS[i].present)
                    continue;
                if (run_child(i, (enum work)w, r, quick) != 0) {
                    fprintf(stderr, "bench_alloc: %s/%s failed in round %d\n", IMPLS[i].name,
                            WORK_NAME[w], r);
                    return 1;
                }
            }

    for (unsigned m = 0; m < N_MEAS; m++) {
        double v = median(vals[m][0], rounds);
        for (unsigned i = 1; i < N_IMPL; i++) {
            if (!IMPLS[i].present)
                continue;
            double pv = median(vals[m][i], rounds);
            double ratio = MEAS[m].higher_better ? v / pv : pv / v;
            printf("BENCH name=%s value=%.2f unit=%s peer=%s peer_value=%.2f ratio=%.2f\n",
                   MEAS[m].name, v, MEAS[m].unit, IMPLS[i].name, pv, ratio);
        }
    }
    fflush(stdout);
    return 0;
}
#endif
