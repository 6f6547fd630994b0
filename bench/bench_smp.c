/*
 * bench_smp.c — what crossing from one core to another costs: seacore's SPSC
 * ring and sc_smp_submit_to() beside Concurrency Kit's ck_ring and DPDK's
 * rte_ring, and beside the floor (one cache line bouncing between the cores),
 * all in the same process run, between the same two CPUs (the first two the
 * process may use: CPU 0 -> CPU 1 here).
 *
 *   smp.ring_throughput     items/s through one ring, producer on CPU A,
 *                           consumer on CPU B taking up to 32 at a time.
 *                           The producer makes every item visible on its own
 *                           (sc_ring: push + publish). Peers: ck_ring.spsc
 *                           (ck_ring_enqueue_spsc / dequeue_spsc),
 *                           rte_ring.sp_sc (rte_ring_sp_enqueue /
 *                           rte_ring_sc_dequeue_burst; RING_F_SP_ENQ|SC_DEQ).
 *   smp.ring_throughput_batched
 *                           the same, the producer handing over 16 items at a
 *                           time (sc_ring: 16 pushes, one publish — what
 *                           core/smp.c does). Peers: rte_ring.burst16
 *                           (rte_ring_sp_enqueue_burst of 16) and
 *                           ck_ring.spsc (ck has no batch enqueue: its best is
 *                           one item at a time).
 *   smp.cacheline_pingpong  the floor: a word in one cache line, written in
 *                           turn by A and B; ns per round trip.
 *   smp.ring_roundtrip      one item A -> B through a ring, and back through a
 *                           second ring; ns per round trip. Peers: the floor,
 *                           ck_ring.spsc, rte_ring.sp_sc doing the same.
 *   smp.submit_to_roundtrip a whole sc_smp_submit_to() round trip between two
 *                           shards of a real run (sc_run, --smp 2,
 *                           --poll-mode), one call in flight: the main
 *                           function loops submit, wait, repeat (sc_repeat).
 *                           Peers (for scale): the floor, and the bare rings'
 *                           round trips above.
 *   smp.submit_to_batched   calls/s with 64 calls in flight (64 sc_repeat
 *                           chains started by sc_parallel_for_each). Peers:
 *                           the same request/reply pipeline on bare rings,
 *                           64 in flight, replies sent back a batch at a time:
 *                           c.sc_ring_rpc, ck_ring.spsc_rpc, rte_ring.burst_rpc.
 *
 * Output, one line per (measurement, peer) on stdout:
 *
 *   BENCH name=<n> value=<v> unit=<u> [peer=<p> peer_value=<v> ratio=<r>]
 *
 * Time units (ns/roundtrip): ratio = peer_value / value. Throughput units
 * (Mitems/s, Mcalls/s): ratio = value / peer_value. Either way a ratio above
 * 1 means seacore is better. Peers named c.* are floors, not competitors.
 * Notes (targets, skipped peers) go to stderr.
 *
 * How it runs. The ring, floor and peer measurements use two raw pthreads,
 * started pinned to CPU A and CPU B for each run and meeting at a spinning
 * barrier before the clock starts: this measures the rings alone. The
 * submit_to measurements start a real seacore run (sc_run) per run, whose two
 * shards are pinned to the same two CPUs; a short warm-up phase comes first
 * inside each. Every run lasts a fixed time (the side that owns the clock
 * looks at it every few thousand items or every 64 round trips, then sends an
 * end marker). A round runs every implementation once, one after the other
 * (interleaved, so that drift hits all alike); a warm-up round comes first;
 * each value is the median of 7 rounds (3 with --quick).
 *
 * Spinning. Every wait in the raw runs is the same loop with a pause
 * instruction, for seacore's ring and the peers alike. The shards of the
 * seacore run poll without sleeping (--poll-mode).
 *
 * Honesty. Every item carries its sequence number and every consumer checks
 * that all arrive, once, in order (the submit_to side checks on the target
 * shard); a wrong one fails the run. seacore's ring functions live in a
 * separate library (no LTO), as an app would call them; the peers' rings are
 * inline functions in their headers, which helps them.
 *
 * Under ThreadSanitizer the ck_ring and rte_ring peers are skipped: their
 * ordering is inline assembly and compiler barriers, which TSan cannot see,
 * so it would report races that are not there. If DPDK's EAL cannot start,
 * the rte_ring peers are skipped with a note.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ck_ring.h> /* all inline: nothing to link */

/* DPDK's headers need `pkg-config --cflags libdpdk` (bench/README.md says
 * what the Makefile adds for this program). Built without them, the
 * rte_ring peers are left out and the rest still runs. */
#if __has_include(<rte_ring.h>)
#define HAVE_DPDK 1
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>
#include <rte_ring.h>
#else
#define HAVE_DPDK 0
struct rte_ring;
#endif

#include "core/ring.h"
#include "bench/bench_util.h"
#include "core/seacore.h"

#if defined(SC_TSAN) || defined(__SANITIZE_THREAD__)
#define PEERS_UNDER_TSAN 0 /* see the header comment */
#else
#define PEERS_UNDER_TSAN 1
#endif

/* ------------------------------------------------------------------ */
/* Settings and helpers                                                 */
/* ------------------------------------------------------------------ */

#define MAX_IMPLS  5
#define RING_SIZE  256  /* core/smp.c's SMP_RING_CAPACITY: every ring here has it */
#define POP_MAX    32   /* core/smp.c's SMP_POP_MAX: consumers take up to this many */
#define BATCH      16   /* core/smp.c's SMP_BATCH: the batched producer's batch */
#define IN_FLIGHT  64   /* calls in flight in the batched submit_to and rpc runs */
#define TP_CHECK   4096 /* throughput: items between two looks at the clock */
#define RT_CHECK   64   /* round trips between two looks at the clock */
/* Items are sequence numbers from 1 up; this one ends a run. Not NULL: a
 * ring may reserve NULL to mean an empty slot. */
#define END_MARK ((void *)UINTPTR_MAX)

struct settings {
    int rounds;      /* timed rounds; the value is their median */
    uint64_t run_ns; /* how long one implementation runs per round */
};

static const struct settings full_settings = {7, 100000000};
static const struct settings quick_settings = {3, 10000000};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_smp: check failed: %s\n", what);
    return -EPROTO;
}

/* The two CPUs: A is the producer / caller / shard 0, B the consumer / callee / shard 1. */
static int cpu_a, cpu_b;
static bool dpdk_up; /* EAL started: the rte_ring peers can run */

/* ------------------------------------------------------------------ */
/* Three SPSC rings behind one small interface                          */
/* ------------------------------------------------------------------ */

enum ring_kind { RING_SC, RING_CK, RING_RTE };

struct xring {
    enum ring_kind kind;
    struct sc_ring *sc;
    struct ck_ring *ck;
    struct ck_ring_buffer *ck_buf;
    struct rte_ring *rte;
};

static void xring_close(struct xring *r)
{
    if (r->sc) {
        sc_ring_destroy(r->sc);
        free(r->sc);
    }
    free(r->ck);
    free(r->ck_buf);
#if HAVE_DPDK
    if (r->rte)
        rte_ring_free(r->rte);
#endif
    memset(r, 0, sizeof *r);
}

static int xring_open(struct xring *r, enum ring_kind kind, const char *name)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    switch (kind) {
    case RING_SC:
        r->sc = aligned_alloc(64, sizeof *r->sc);
        if (!r->sc)
            return -ENOMEM;
        if (sc_ring_init(r->sc, RING_SIZE) != 0) {
            free(r->sc);
            r->sc = NULL;
            return -ENOMEM;
        }
        return 0;
    case RING_CK:
        r->ck = aligned_alloc(64, (sizeof *r->ck + 63) & ~(size_t)63);
        r->ck_buf = aligned_alloc(64, RING_SIZE * sizeof *r->ck_buf);
        if (!r->ck || !r->ck_buf) {
            xring_close(r);
            return -ENOMEM;
        }
        memset(r->ck_buf, 0, RING_SIZE * sizeof *r->ck_buf);
        ck_ring_init(r->ck, RING_SIZE);
        return 0;
    case RING_RTE:
#if HAVE_DPDK
        r->rte = rte_ring_create(name, RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
        return r->rte ? 0 : -rte_errno;
#else
        (void)name;
        return -ENOTSUP;
#endif
    }
    return -EINVAL;
}

/* Producer: make items[0..n) visible to the consumer, in order, waiting
 * while the ring is full. One item is each ring's single call; more is its
 * batch call (sc_ring: n pushes and one publish; rte_ring: enqueue_burst;
 * ck_ring has none, so n enqueues). */
static inline void x_send(struct xring *r, void **items, size_t n)
{
    switch (r->kind) {
    case RING_SC:
        for (size_t i = 0; i < n; i++) {
            while (!sc_ring_push(r->sc, items[i])) {
                sc_ring_publish(r->sc); /* full: let the consumer see what is staged */
                cpu_relax();
            }
        }
        sc_ring_publish(r->sc);
        break;
    case RING_CK:
        for (size_t i = 0; i < n; i++)
            while (!ck_ring_enqueue_spsc(r->ck, r->ck_buf, items[i]))
                cpu_relax();
        break;
    case RING_RTE:
#if HAVE_DPDK
        if (n == 1) {
            while (rte_ring_sp_enqueue(r->rte, items[0]) != 0)
                cpu_relax();
            break;
        }
        for (size_t done = 0; done < n;) {
            unsigned k =
                rte_ring_sp_enqueue_burst(r->rte, items + done, (unsigned)(n - done), NULL);
            done += k;
            if (!k)
                cpu_relax();
        }
#endif
        break;
    }
}

/* Consumer: take up to max visible items (0 when none). */
static inline size_t x_recv(struct xring *r, void **out, size_t max)
{
    size_t n = 0;
    switch (r->kind) {
    case RING_SC:
        return sc_ring_pop(r->sc, out, max);
    case RING_CK:
        while (n < max && ck_ring_dequeue_spsc(r->ck, r->ck_buf, &out[n]))
            n++;
        return n;
    case RING_RTE:
#if HAVE_DPDK
        return rte_ring_sc_dequeue_burst(r->rte, out, (unsigned)max, NULL);
#else
        break;
#endif
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Two pinned threads meeting at a barrier                              */
/* ------------------------------------------------------------------ */

struct side {
    uint64_t t0, t1, ops;
    const char *bad; /* the first check that failed on this side */
};

struct job {
    _Alignas(64) _Atomic uint64_t flag; /* the ping-pong line, alone */
    _Alignas(64) _Atomic unsigned ready;
    _Atomic bool abandoned; /* one thread could not start: the other leaves at once */
    struct xring fwd;       /* A -> B */
    struct xring back;      /* B -> A */
    unsigned batch;         /* throughput: items per send */
    unsigned window;        /* rpc: calls in flight */
    uint64_t run_ns;
    struct side side[2]; /* written by side A and side B; read after both joined */
};

static struct job job;

/* The start line: both sides spin here, so neither starts the clock while
 * the other is still being scheduled. False: the partner never came. */
static bool meet(struct job *j)
{
    atomic_fetch_add(&j->ready, 1);
    while (atomic_load(&j->ready) < 2) {
        if (atomic_load(&j->abandoned))
            return false;
        cpu_relax();
    }
    return true;
}

static int start_pinned(pthread_t *t, int cpu, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_attr_init(&attr);
    int err = pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    if (!err)
        err = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return -err;
}

static int run_pair(struct job *j, void *(*a)(void *), void *(*b)(void *))
{
    pthread_t ta, tb;
    atomic_store(&j->ready, 0);
    atomic_store(&j->abandoned, false);
    atomic_store(&j->flag, 0);
    memset(j->side, 0, sizeof j->side);
    int err = start_pinned(&tb, cpu_b, b, j);
    if (err)
        return fail("pthread_create (CPU B)");
    err = start_pinned(&ta, cpu_a, a, j);
    if (err) {
        atomic_store(&j->abandoned, true);
        pthread_join(tb, NULL);
        return fail("pthread_create (CPU A)");
    }
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    for (int s = 0; s < 2; s++)
        if (j->side[s].bad)
            return fail(j->side[s].bad);
    return 0;
}

/* ------------------------------------------------------------------ */
/* 1. Throughput: A streams numbered items to B                          */
/* ------------------------------------------------------------------ */

static void *tp_producer(void *arg)
{
    struct job *j = arg;
    void *items[BATCH];
    size_t per = j->batch;
    uintptr_t seq = 1, next_check = TP_CHECK;
    if (!meet(j))
        return NULL;
    uint64_t t0 = now_ns(), deadline = t0 + j->run_ns;
    for (;;) {
        for (size_t i = 0; i < per; i++)
            items[i] = (void *)(seq + i);
        x_send(&j->fwd, items, per);
        seq += per;
        if (seq >= next_check) {
            if (now_ns() >= deadline)
                break;
            next_check = seq + TP_CHECK;
        }
    }
    void *end = END_MARK;
    x_send(&j->fwd, &end, 1);
    j->side[0].t0 = t0;
    j->side[0].ops = seq - 1;
    return NULL;
}

static void *tp_consumer(void *arg)
{
    struct job *j = arg;
    void *got[POP_MAX];
    uintptr_t expect = 1;
    if (!meet(j))
        return NULL;
    for (;;) {
        size_t n = x_recv(&j->fwd, got, POP_MAX);
        if (!n) {
            cpu_relax();
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (got[i] == END_MARK) { /* the clock stops when the last item is in */
                j->side[1].t1 = now_ns();
                j->side[1].ops = expect - 1;
                return NULL;
            }
            if ((uintptr_t)got[i] != expect && !j->side[1].bad)
                j->side[1].bad = "throughput: an item lost, repeated or out of order";
            expect = (uintptr_t)got[i] + 1;
        }
    }
}

/* ------------------------------------------------------------------ */
/* 2. Round trips: A sends numbered requests, B sends each one back       */
/* ------------------------------------------------------------------ */

/* window == 1: one request in flight (a round-trip latency); more: a
 * pipeline that keeps `window` in flight and answers a batch with a batch. */
static void *rpc_client(void *arg)
{
    struct job *j = arg;
    void *buf[IN_FLIGHT > POP_MAX ? IN_FLIGHT : POP_MAX];
    uintptr_t sent = 0, done = 0, next_check = RT_CHECK;
    bool stopping = false;
    if (!meet(j))
        return NULL;
    uint64_t t0 = now_ns(), deadline = t0 + j->run_ns;
    for (unsigned k = 0; k < j->window; k++)
        buf[k] = (void *)++sent;
    x_send(&j->fwd, buf, j->window);
    while (!stopping || done < sent) {
        size_t n = x_recv(&j->back, buf, POP_MAX);
        if (!n) {
            cpu_relax();
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if ((uintptr_t)buf[i] != ++done && !j->side[0].bad)
                j->side[0].bad = "round trip: a reply lost, repeated or out of order";
        if (!stopping && done >= next_check) {
            stopping = now_ns() >= deadline;
            next_check = done + RT_CHECK;
        }
        if (!stopping) {
            for (size_t i = 0; i < n; i++)
                buf[i] = (void *)++sent;
            x_send(&j->fwd, buf, n);
        }
    }
    uint64_t t1 = now_ns();
    void *end = END_MARK;
    x_send(&j->fwd, &end, 1);
    j->side[0] = (struct side){.t0 = t0, .t1 = t1, .ops = done, .bad = j->side[0].bad};
    return NULL;
}

static void *rpc_server(void *arg)
{
    struct job *j = arg;
    void *buf[POP_MAX];
    if (!meet(j))
        return NULL;
    for (;;) {
        size_t n = x_recv(&j->fwd, buf, POP_MAX);
        if (!n) {
            cpu_relax();
            continue;
        }
        bool end = buf[n - 1] == END_MARK;
        if (end)
            n--;
        if (n)
            x_send(&j->back, buf, n);
        if (end)
            return NULL;
    }
}

/* ------------------------------------------------------------------ */
/* 3. The floor: one cache line, written in turn                         */
/* ------------------------------------------------------------------ */

#define PP_STOP UINT64_MAX

static void *pp_a(void *arg)
{
    struct job *j = arg;
    uint64_t v = 1, rounds = 0;
    if (!meet(j))
        return NULL;
    uint64_t t0 = now_ns(), deadline = t0 + j->run_ns;
    for (;;) {
        atomic_store_explicit(&j->flag, v, memory_order_release);
        while (atomic_load_explicit(&j->flag, memory_order_acquire) != v + 1)
            cpu_relax();
        v += 2;
        if (++rounds % RT_CHECK == 0 && now_ns() >= deadline)
            break;
    }
    uint64_t t1 = now_ns();
    atomic_store_explicit(&j->flag, PP_STOP, memory_order_release);
    j->side[0] = (struct side){.t0 = t0, .t1 = t1, .ops = rounds};
    return NULL;
}

static void *pp_b(void *arg)
{
    struct job *j = arg;
    uint64_t expect = 1;
    if (!meet(j))
        return NULL;
    for (;;) {
        uint64_t x = atomic_load_explicit(&j->flag, memory_order_acquire);
        if (x == expect) {
            atomic_store_explicit(&j->flag, x + 1, memory_order_release);
            expect += 2;
        } else if (x == PP_STOP) {
            return NULL;
        } else {
            cpu_relax();
        }
    }
}

/* ------------------------------------------------------------------ */
/* 4. submit_to on a real two-shard run                                 */
/* ------------------------------------------------------------------ */

/* The target's side: each call carries its sequence number, and they must
 * arrive one by one, in order (the ring and the overflow lists are FIFO).
 * Written only by shard 1; read by main() after sc_run() has joined it. */
static struct {
    _Alignas(64) uint64_t served;
    uint64_t bad;
    char pad[48];
} target;

/* The caller's side, shard 0 only. */
struct phase {
    uint64_t run_ns;
    unsigned window; /* calls in flight */
    bool stop;       /* set by the timer */
    uint64_t calls, t0, t1;
    struct sc_timer timer;
};

struct smp_bench {
    struct phase warm, timed;
    uint64_t sent; /* sequence numbers handed out, both phases */
};

static struct smp_bench *smp_b; /* shard 0 only */

static struct sc_future echo(void *cap)
{
    uint64_t seq = *(const uint64_t *)cap;
    if (seq != ++target.served)
        target.bad++;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future chain_step(void *cap)
{
    struct phase *p = *(struct phase **)cap;
    if (p->stop)
        return sc_make_ready(SC_STOP);
    p->calls++;
    uint64_t seq = ++smp_b->sent;
    return SC_SUBMIT_TO(1, echo, seq); /* its value, SC_CONTINUE, keeps the chain going */
}

static struct sc_future chain(void *cap, size_t i)
{
    (void)i;
    return sc_repeat(chain_step, cap, sizeof(struct phase *));
}

static void on_deadline(void *arg)
{
    ((struct phase *)arg)->stop = true;
}

static struct sc_future phase_end(void *cap, intptr_t v)
{
    (void)v;
    struct phase *p = *(struct phase **)cap;
    p->t1 = sc_now();
    return sc_make_ready(0);
}

static struct sc_future phase_run(struct phase *p)
{
    sc_timer_init(&p->timer, on_deadline, p);
    p->stop = false;
    p->calls = 0;
    int err = sc_timer_arm_in(&p->timer, p->run_ns);
    if (err)
        return sc_make_error(err);
    p->t0 = sc_now();
    struct sc_future f = p->window == 1 ? sc_repeat(chain_step, &p, sizeof p)
                                        : sc_parallel_for_each(p->window, chain, &p, sizeof p);
    return SC_THEN(f, phase_end, p);
}

static struct sc_future timed_phase(void *cap, intptr_t v)
{
    (void)v;
    return phase_run(&(*(struct smp_bench **)cap)->timed);
}

static struct sc_future smp_main(void *arg, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct smp_bench *b = arg;
    if (sc_shard_count() != 2)
        return sc_make_error(fail("the seacore run did not get two shards"));
    smp_b = b;
    return SC_THEN(phase_run(&b->warm), timed_phase, b);
}

static char cpuset_arg[32];

/* One seacore run: a warm-up phase, then the timed one. */
static int run_submit(unsigned window, uint64_t run_ns, uint64_t *ops, uint64_t *ns)
{
    struct smp_bench b = {
        .warm = {.run_ns = run_ns / 4, .window = window},
        .timed = {.run_ns = run_ns, .window = window},
    };
    target.served = target.bad = 0;
    struct sc_config cfg;
    sc_config_default(&cfg);
    cfg.backend = SC_BACKEND_REAL;
    cfg.smp = 2;
    cfg.cpuset = cpuset_arg;
    cfg.poll_mode = true;
    cfg.quiet = true;
    int code = sc_run(&cfg, smp_main, &b, 0, NULL);
    if (code != 0)
        return fail("the seacore run failed");
    if (target.bad || target.served != b.sent)
        return fail("submit_to: a call lost, repeated or out of order");
    if (b.warm.calls + b.timed.calls != b.sent || !b.timed.calls)
        return fail("submit_to: calls counted");
    *ops = b.timed.calls;
    *ns = b.timed.t1 - b.timed.t0;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The measurements                                                     */
/* ------------------------------------------------------------------ */

enum how { THROUGHPUT, RPC, PINGPONG, SUBMIT, SAME_AS };

struct impl {
    const char *peer; /* NULL: seacore itself (always impl[0]) */
    enum how how;
    enum ring_kind ring;
    unsigned batch;   /* THROUGHPUT: items per send */
    unsigned window;  /* RPC, SUBMIT: calls in flight */
    int ref_m, ref_i; /* SAME_AS: the value of measurement ref_m's impl ref_i */
    /* filled in by the run */
    bool skipped;
    double v[MAX_ROUNDS];
};

struct measurement {
    const char *name;
    const char *unit;
    bool per_second; /* a throughput (higher is better); else a time */
    struct impl impl[MAX_IMPLS];
};

enum { M_TP, M_TP_BATCHED, M_PINGPONG, M_RING_RT, M_SUBMIT_RT, M_SUBMIT_BATCHED };

static struct measurement measurements[] = {
    [M_TP] =
        {
            .name = "smp.ring_throughput",
            .unit = "Mitems/s",
            .per_second = true,
            .impl =
                {
                    {.how = THROUGHPUT, .ring = RING_SC, .batch = 1},
                    {.peer = "ck_ring.spsc", .how = THROUGHPUT, .ring = RING_CK, .batch = 1},
                    {.peer = "rte_ring.sp_sc", .how = THROUGHPUT, .ring = RING_RTE, .batch = 1},
                },
        },
    [M_TP_BATCHED] =
        {
            .name = "smp.ring_throughput_batched",
            .unit = "Mitems/s",
            .per_second = true,
            .impl =
                {
                    {.how = THROUGHPUT, .ring = RING_SC, .batch = BATCH},
                    {.peer = "rte_ring.burst16",
                     .how = THROUGHPUT,
                     .ring = RING_RTE,
                     .batch = BATCH},
                    {.peer = "ck_ring.spsc", .how = THROUGHPUT, .ring = RING_CK, .batch = BATCH},
                },
        },
    [M_PINGPONG] =
        {
            .name = "smp.cacheline_pingpong",
            .unit = "ns/roundtrip",
            .impl = {{.how = PINGPONG}},
        },
    [M_RING_RT] =
        {
            .name = "smp.ring_roundtrip",
            .unit = "ns/roundtrip",
            .impl =
                {
                    {.how = RPC, .ring = RING_SC, .window = 1},
                    {.peer = "c.cacheline_pingpong", .how = SAME_AS, .ref_m = M_PINGPONG},
                    {.peer = "ck_ring.spsc", .how = RPC, .ring = RING_CK, .window = 1},
                    {.peer = "rte_ring.sp_sc", .how = RPC, .ring = RING_RTE, .window = 1},
                },
        },
    [M_SUBMIT_RT] =
        {
            .name = "smp.submit_to_roundtrip",
            .unit = "ns/roundtrip",
            .impl =
                {
                    {.how = SUBMIT, .window = 1},
                    {.peer = "c.cacheline_pingpong", .how = SAME_AS, .ref_m = M_PINGPONG},
                    {.peer = "c.sc_ring", .how = SAME_AS, .ref_m = M_RING_RT, .ref_i = 0},
                    {.peer = "ck_ring.spsc", .how = SAME_AS, .ref_m = M_RING_RT, .ref_i = 2},
                    {.peer = "rte_ring.sp_sc", .how = SAME_AS, .ref_m = M_RING_RT, .ref_i = 3},
                },
        },
    [M_SUBMIT_BATCHED] =
        {
            .name = "smp.submit_to_batched",
            .unit = "Mcalls/s",
            .per_second = true,
            .impl =
                {
                    {.how = SUBMIT, .window = IN_FLIGHT},
                    {.peer = "c.sc_ring_rpc", .how = RPC, .ring = RING_SC, .window = IN_FLIGHT},
                    {.peer = "ck_ring.spsc_rpc", .how = RPC, .ring = RING_CK, .window = IN_FLIGHT},
                    {.peer = "rte_ring.burst_rpc",
                     .how = RPC,
                     .ring = RING_RTE,
                     .window = IN_FLIGHT},
                },
        },
};

#define N_MEASUREMENTS (sizeof measurements / sizeof measurements[0])

static size_t impl_count(const struct measurement *m)
{
    size_t n = 0;
    while (n < MAX_IMPLS && (n == 0 || m->impl[n].peer))
        n++;
    return n;
}

/* Run one implementation once: ops done in ns nanoseconds. */
static int run_impl(const struct impl *im, uint64_t run_ns, uint64_t *ops, uint64_t *ns)
{
    if (im->how == SUBMIT)
        return run_submit(im->window, run_ns, ops, ns);
    struct job *j = &job;
    j->run_ns = run_ns;
    j->batch = im->batch;
    j->window = im->window;
    int err = 0;
    if (im->how != PINGPONG) {
        err = xring_open(&j->fwd, im->ring, "bench_smp_fwd");
        if (!err)
            err = xring_open(&j->back, im->ring, "bench_smp_back");
        if (err) {
            xring_close(&j->fwd);
            return fail("making the rings");
        }
    }
    switch (im->how) {
    case THROUGHPUT:
        err = run_pair(j, tp_producer, tp_consumer);
        if (!err && j->side[0].ops != j->side[1].ops)
            err = fail("throughput: items sent and received differ");
        *ops = j->side[0].ops;
        *ns = j->side[1].t1 - j->side[0].t0;
        break;
    case RPC:
        err = run_pair(j, rpc_client, rpc_server);
        *ops = j->side[0].ops;
        *ns = j->side[0].t1 - j->side[0].t0;
        break;
    case PINGPONG:
        err = run_pair(j, pp_a, pp_b);
        *ops = j->side[0].ops;
        *ns = j->side[0].t1 - j->side[0].t0;
        break;
    default:
        err = -EINVAL;
    }
    if (im->how != PINGPONG) {
        xring_close(&j->fwd);
        xring_close(&j->back);
    }
    if (!err && (!*ops || !*ns))
        err = fail("a run did nothing");
    return err;
}

static bool peer_available(const struct impl *im)
{
    if (im->how == SAME_AS)
        return !measurements[im->ref_m].impl[im->ref_i].skipped;
    if (im->how != THROUGHPUT && im->how != RPC)
        return true;
    if (im->ring == RING_CK)
        return PEERS_UNDER_TSAN;
    if (im->ring == RING_RTE)
        return PEERS_UNDER_TSAN && dpdk_up;
    return true;
}

/* round 0 is the warm-up; rounds 1..n are kept */
static int run_round(const struct settings *set, int round)
{
    for (size_t k = 0; k < N_MEASUREMENTS; k++) {
        struct measurement *m = &measurements[k];
        for (size_t i = 0; i < impl_count(m); i++) {
            struct impl *im = &m->impl[i];
            if (im->skipped || im->how == SAME_AS)
                continue;
            uint64_t ops = 0, ns = 0;
            int err = run_impl(im, set->run_ns, &ops, &ns);
            if (err)
                return err;
            if (round > 0)
                im->v[round - 1] =
                    m->per_second ? (double)ops * 1e3 / (double)ns : (double)ns / (double)ops;
        }
    }
    /* references copy the values measured in this round */
    for (size_t k = 0; k < N_MEASUREMENTS && round > 0; k++)
        for (size_t i = 0; i < impl_count(&measurements[k]); i++) {
            struct impl *im = &measurements[k].impl[i];
            if (im->how == SAME_AS && !im->skipped)
                im->v[round - 1] = measurements[im->ref_m].impl[im->ref_i].v[round - 1];
        }
    return 0;
}

/* ratio > 1 always means seacore is better: peer/value for times,
 * value/peer for throughputs. */
static void report(const struct measurement *m, int rounds)
{
    double value = median(m->impl[0].v, rounds);
    size_t lines = 0;
    for (size_t i = 1; i < impl_count(m); i++) {
        if (m->impl[i].skipped)
            continue;
        double pv = median(m->impl[i].v, rounds);
        double ratio = m->per_second ? (pv > 0 ? value / pv : 0.0) : (value > 0 ? pv / value : 0.0);
        printf("BENCH name=%s value=%.2f unit=%s peer=%s peer_value=%.2f ratio=%.2f\n", m->name,
               value, m->unit, m->impl[i].peer, pv, ratio);
        lines++;
    }
    if (!lines)
        printf("BENCH name=%s value=%.2f unit=%s\n", m->name, value, m->unit);
    fflush(stdout);
}

/* The median over rounds of a[r] / (k * b[r] + c): rounds interleave the
 * implementations, so a ratio taken within one round cancels drift (a busy
 * neighbour, the hypervisor moving a vCPU) that a ratio of medians keeps. */
static double median_ratio(const double *a, const double *b, double k, double c, int rounds)
{
    double r[MAX_ROUNDS];
    for (int i = 0; i < rounds; i++)
        r[i] = a[i] / (k * b[i] + c);
    return median(r, rounds);
}

/* Say on stderr whether the targets were reached (never asserted). */
static void note_targets(int rounds)
{
    const double *fl = measurements[M_PINGPONG].impl[0].v;
    const double *ring = measurements[M_RING_RT].impl[0].v;
    const double *submit = measurements[M_SUBMIT_RT].impl[0].v;
    double lo = fl[0], hi = fl[0];
    for (int i = 1; i < rounds; i++) {
        lo = fl[i] < lo ? fl[i] : lo;
        hi = fl[i] > hi ? fl[i] : hi;
    }
    fprintf(stderr,
            "# floor: a cache line round trip CPU %d <-> CPU %d takes %.1f ns (%.1f..%.1f)\n",
            cpu_a, cpu_b, median(fl, rounds), lo, hi);
    if (hi > 1.5 * lo)
        fprintf(stderr,
                "# noisy: the floor moved %.1fx between rounds (other work on these CPUs, "
                "or the hypervisor); trust the ratios more than the values\n",
                hi / lo);
    double r = median_ratio(ring, fl, 1.0, 0.0, rounds);
    fprintf(stderr,
            "# target smp.ring_roundtrip <= 1.2x floor: %s (%.2fx, median of per-round "
            "ratios)\n",
            r <= 1.2 ? "reached" : "NOT reached", r);
    double s = median_ratio(submit, fl, 2.0, 30.0, rounds);
    fprintf(stderr,
            "# target smp.submit_to_roundtrip <= 2x floor + 30 ns: %s (%.2fx that bound, "
            "%.2fx the floor)\n",
            s <= 1.0 ? "reached" : "NOT reached", s, median_ratio(submit, fl, 1.0, 0.0, rounds));
}

/* ------------------------------------------------------------------ */
/* DPDK's EAL, the CPUs, main                                           */
/* ------------------------------------------------------------------ */

/* Start the EAL without hugepages, PCI, shared files or telemetry, quiet.
 * It pins the calling thread to its main lcore, so the caller's affinity is
 * put back afterwards (the seacore runs read it to find their CPUs). Its
 * usage text goes to stdout on a bad option: stdout points at stderr
 * meanwhile, so stdout stays BENCH lines only. */
static void dpdk_start(const char *prog)
{
    if (!PEERS_UNDER_TSAN) {
        fprintf(stderr, "# bench_smp: ThreadSanitizer build: ck_ring and rte_ring peers skipped\n");
        return;
    }
#if HAVE_DPDK
    char lcore[16];
    snprintf(lcore, sizeof lcore, "%d", cpu_a);
    char *args[] = {(char *)prog,
                    "--no-huge",
                    "--no-pci",
                    "--no-shconf",
                    "--no-telemetry",
                    "--log-level=*:error",
                    "-m",
                    "8",
                    "-l",
                    lcore,
                    NULL};
    int argc = (int)(sizeof args / sizeof args[0]) - 1;
    cpu_set_t saved;
    bool have_saved = sched_getaffinity(0, sizeof saved, &saved) == 0;
    rte_openlog_stream(stderr);
    fflush(stdout);
    int out = dup(STDOUT_FILENO);
    if (out >= 0)
        dup2(STDERR_FILENO, STDOUT_FILENO);
    int rc = rte_eal_init(argc, args);
    int eal_errno = rte_errno;
    fflush(stdout);
    if (out >= 0) {
        dup2(out, STDOUT_FILENO);
        close(out);
    }
    if (have_saved)
        sched_setaffinity(0, sizeof saved, &saved);
    if (rc < 0) {
        fprintf(stderr, "# bench_smp: DPDK's EAL did not start (%s): rte_ring peers skipped\n",
                rte_strerror(eal_errno));
        return;
    }
    dpdk_up = true;
#else
    (void)prog;
    fprintf(stderr, "# bench_smp: built without DPDK's headers (pkg-config --cflags libdpdk): "
                    "rte_ring peers skipped\n");
#endif
}

static void dpdk_stop(void)
{
#if HAVE_DPDK
    if (dpdk_up)
        rte_eal_cleanup();
#endif
    dpdk_up = false;
}

/* The first two CPUs this process may run on. */
static int pick_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -errno;
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; cpu++) {
        if (!CPU_ISSET(cpu, &set))
            continue;
        if (n++ == 0)
            cpu_a = cpu;
        else
            cpu_b = cpu;
    }
    if (n < 2)
        return -ENODEV;
    snprintf(cpuset_arg, sizeof cpuset_arg, "%d,%d", cpu_a, cpu_b);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_smp [--quick] [--help]\n"
            "\n"
            "Cross-core costs between the first two CPUs: seacore's SPSC ring and\n"
            "sc_smp_submit_to beside ck_ring, DPDK's rte_ring and one bouncing cache line,\n"
            "in the same run. One line per measurement and peer:\n"
            "  BENCH name=<n> value=<v> unit=<u> peer=<p> peer_value=<v> ratio=<r>\n"
            "ratio > 1 means seacore is better (peer/value for ns, value/peer for /s).\n"
            "\n"
            "  smp.ring_throughput          items/s, push + publish per item\n"
            "  smp.ring_throughput_batched  items/s, publish every 16 items\n"
            "  smp.cacheline_pingpong       the floor: ns per round trip of one line\n"
            "  smp.ring_roundtrip           one item there and back through two rings\n"
            "  smp.submit_to_roundtrip      sc_smp_submit_to round trip, one in flight\n"
            "  smp.submit_to_batched        calls/s with %d submit_to calls in flight\n"
            "\n"
            "options:\n"
            "  --quick   short run (under 3 s), same lines, noisier numbers\n"
            "  --help    show this text\n",
            IN_FLIGHT);
}

int main(int argc, char **argv)
{
    const struct settings *set = &full_settings;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            set = &quick_settings;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bench_smp: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (pick_cpus() != 0) {
        fprintf(stderr, "# bench_smp: needs two CPUs to run on; nothing measured\n");
        return 0;
    }
    dpdk_start(argv[0]);
    for (size_t k = 0; k < N_MEASUREMENTS; k++)
        for (size_t i = 0; i < impl_count(&measurements[k]); i++) {
            struct impl *im = &measurements[k].impl[i];
            im->skipped = !peer_available(im);
        }
    fprintf(stderr,
            "# bench_smp: CPU %d -> CPU %d, median of %d rounds of ~%llu ms per "
            "implementation\n",
            cpu_a, cpu_b, set->rounds, (unsigned long long)(set->run_ns / 1000000));
    int err = 0;
    for (int round = 0; round <= set->rounds && !err; round++)
        err = run_round(set, round);
    if (!err) {
        for (size_t k = 0; k < N_MEASUREMENTS; k++)
            report(&measurements[k], set->rounds);
        note_targets(set->rounds);
    }
    dpdk_stop();
    return err ? 1 : 0;
}
