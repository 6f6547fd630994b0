/*
 * bench_coord.c — what the coordination primitives of chapter 6 cost, next
 * to what a thread-based program would use for the same job, in one run.
 *
 * Three measurements, each beside its peers:
 *
 *   coord.sem_uncontended   sc_sem_wait(1) on a semaphore with units (a ready
 *                           future: no allocation, no task) + sc_sem_signal(1):
 *                           ns per pair. Peers, same thread, also uncontended:
 *                           posix.sem_wait_post (sem_wait + sem_post on a
 *                           POSIX semaphore) and pthread.mutex_lock_unlock.
 *   coord.sem_handoff       two loops on one shard hand a turn back and forth
 *                           through two semaphores (A waits on ping and
 *                           signals pong; B the reverse): every handoff is a
 *                           wait that had to queue (a waiter record), its
 *                           wake-up, and a continuation run as a task. ns per
 *                           handoff. Peer: pthread.condvar_pingpong, the same
 *                           handoff between two threads with a mutex and a
 *                           condition variable — what a thread-per-task design
 *                           pays (a futex wake and a thread switch, across
 *                           cores or not, as the scheduler decides).
 *   coord.pipe_throughput   a producer loop writes integers into an sc_pipe of
 *                           128 and a consumer loop reads them until the end
 *                           of the stream, on one shard: Mitems/s. Peer:
 *                           pthread.bounded_buffer, a ring of 128 behind a
 *                           mutex and two condition variables, one producer
 *                           thread and one consumer thread.
 *
 * Output: the common BENCH lines (bench/README.md). For time units ratio =
 * peer_value / value, for throughput ratio = value / peer_value: above 1
 * means seacore is better.
 *
 * How it runs. Each round starts one real seacore run (sc_run, one shard,
 * SC_BACKEND_REAL) that times the three seacore measurements, then runs the
 * peers on plain threads in the same process; the value is the median of the
 * rounds (7, or 3 with --quick, which also shrinks every batch). Every batch
 * checks its result (counts, sums, return codes); a wrong one fails the run.
 * The peers' threads are not pinned; seacore's shard is (the real engine
 * pins it). On a machine where other work shares the CPUs the thread peers
 * suffer most: their handoffs wait for the scheduler. Treat the ratios as
 * orders of magnitude, not as fine measurements.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "core/seacore.h"

struct settings {
    int rounds;
    uint64_t uncontended_ops;
    uint64_t handoffs;
    uint64_t pipe_items;
    uint64_t peer_handoffs; /* thread handoffs are slow: fewer of them */
};

static const struct settings full_settings = {7, 2000000, 200000, 2000000, 100000};
static const struct settings quick_settings = {3, 200000, 20000, 200000, 5000};

#define PIPE_CAP 128

static const struct settings *set;
static volatile uint64_t sink;
static int failed;

static void fail(const char *what)
{
    fprintf(stderr, "bench_coord: check failed: %s\n", what);
    failed = 1;
}

enum { M_UNCONTENDED, M_HANDOFF, M_PIPE, N_MEAS };
enum { P_SEM_POST, P_MUTEX, P_CONDVAR, P_BOUNDED, N_PEERS };

static double sc_val[N_MEAS][MAX_ROUNDS];
static double peer_val[N_PEERS][MAX_ROUNDS];

/* ------------------------------------------------------------------ */
/* seacore                                                              */
/* ------------------------------------------------------------------ */

static struct sc_sem sem, ping, pong;
static struct sc_pipe pipe_;
static uint64_t left_a, left_b, got_items, got_sum, t0;
static int round_i;

static void uncontended(void)
{
    sc_sem_init(&sem, 1);
    uint64_t n = set->uncontended_ops, ok = 0;
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        struct sc_future f = sc_sem_wait(&sem, 1);
        ok += (uint64_t)(f.gen == 0 && f.err == 0); /* ready: nothing to consume */
        sc_sem_signal(&sem, 1);
    }
    uint64_t end = now_ns();
    if (ok != n || sc_sem_available(&sem) != 1)
        fail("sem_uncontended: every wait ready, units back");
    sc_val[M_UNCONTENDED][round_i] = (double)(end - start) / (double)n;
}

static struct sc_future a_turn(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    sc_sem_signal(&pong, 1);
    return sc_make_ready(--left_a ? SC_CONTINUE : SC_STOP);
}

static struct sc_future a_body(void *cap)
{
    (void)cap;
    return sc_then(sc_sem_wait(&ping, 1), a_turn, NULL, 0);
}

static struct sc_future b_turn(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    sc_sem_signal(&ping, 1);
    return sc_make_ready(--left_b ? SC_CONTINUE : SC_STOP);
}

static struct sc_future b_body(void *cap)
{
    (void)cap;
    return sc_then(sc_sem_wait(&pong, 1), b_turn, NULL, 0);
}

static struct sc_future handoff_done(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    uint64_t end = now_ns();
    if (left_a || left_b || sc_sem_available(&ping) != 1 || sc_sem_available(&pong) != 0)
        fail("sem_handoff: turns and units");
    /* each loop turn is two handoffs: A -> B and B -> A */
    sc_val[M_HANDOFF][round_i] = (double)(end - t0) / (double)(2 * set->handoffs);
    return sc_make_ready(0);
}

static struct sc_future handoff(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    sc_sem_init(&ping, 1);
    sc_sem_init(&pong, 0);
    left_a = left_b = set->handoffs;
    t0 = now_ns();
    struct sc_future fs[2] = {sc_repeat(a_body, NULL, 0), sc_repeat(b_body, NULL, 0)};
    return sc_then(sc_when_all_succeed(fs, 2), handoff_done, NULL, 0);
}

static struct sc_future written(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future produce(void *cap)
{
    uint64_t *next = cap;
    if (*next == set->pipe_items) {
        sc_pipe_close_writer(&pipe_);
        return sc_make_ready(SC_STOP);
    }
    return sc_then(sc_pipe_write(&pipe_, (uintptr_t)(*next)++), written, NULL, 0);
}

static struct sc_future got(void *cap, intptr_t v, int err)
{
    (void)cap;
    if (err == SC_EEOF)
        return sc_make_ready(SC_STOP);
    if (err)
        return sc_make_error(err);
    got_items++;
    got_sum += (uint64_t)v;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future consume(void *cap)
{
    (void)cap;
    return sc_then_wrapped(sc_pipe_read(&pipe_), got, NULL, 0);
}

static struct sc_future pipe_done(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    uint64_t end = now_ns();
    uint64_t n = set->pipe_items;
    if (got_items != n || got_sum != n * (n - 1) / 2)
        fail("pipe_throughput: items read and their sum");
    sc_pipe_destroy(&pipe_);
    sc_val[M_PIPE][round_i] = (double)n / ((double)(end - t0) / 1e9) / 1e6;
    return sc_make_ready(0);
}

static struct sc_future pipe_run(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    if (sc_pipe_init(&pipe_, PIPE_CAP) != 0)
        return sc_make_error(-ENOMEM);
    got_items = got_sum = 0;
    uint64_t next = 0;
    t0 = now_ns();
    struct sc_future fs[2] = {sc_repeat(produce, &next, sizeof next), sc_repeat(consume, NULL, 0)};
    return sc_then(sc_when_all_succeed(fs, 2), pipe_done, NULL, 0);
}

static struct sc_future seacore_round(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    uncontended();
    /* a fresh task quota for each timed part */
    struct sc_future f = sc_then(sc_yield(), handoff, NULL, 0);
    f = sc_then(f, pipe_run, NULL, 0);
    return f;
}

/* ------------------------------------------------------------------ */
/* Peers                                                                */
/* ------------------------------------------------------------------ */

static void peer_sem_post(void)
{
    sem_t s;
    sem_init(&s, 0, 1);
    uint64_t n = set->uncontended_ops, ok = 0;
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        ok += (uint64_t)(sem_wait(&s) == 0);
        sem_post(&s);
    }
    uint64_t end = now_ns();
    int v = 0;
    sem_getvalue(&s, &v);
    if (ok != n || v != 1)
        fail("posix.sem_wait_post");
    sem_destroy(&s);
    peer_val[P_SEM_POST][round_i] = (double)(end - start) / (double)n;
}

static void peer_mutex(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    uint64_t n = set->uncontended_ops, ok = 0;
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        ok += (uint64_t)(pthread_mutex_lock(&m) == 0);
        pthread_mutex_unlock(&m);
    }
    uint64_t end = now_ns();
    if (ok != n)
        fail("pthread.mutex_lock_unlock");
    peer_val[P_MUTEX][round_i] = (double)(end - start) / (double)n;
}

/* Two threads take turns: `turn` says whose it is. */
static struct {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int turn;
    uint64_t n;
} pp = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void *pingpong_thread(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (uint64_t i = 0; i < pp.n; i++) {
        pthread_mutex_lock(&pp.m);
        while (pp.turn != me)
            pthread_cond_wait(&pp.cv, &pp.m);
        pp.turn = 1 - me;
        pthread_cond_broadcast(&pp.cv);
        pthread_mutex_unlock(&pp.m);
    }
    return NULL;
}

static void peer_condvar(void)
{
    pp.turn = 0;
    pp.n = set->peer_handoffs;
    pthread_t a, b;
    uint64_t start = now_ns();
    if (pthread_create(&a, NULL, pingpong_thread, (void *)0) != 0 ||
        pthread_create(&b, NULL, pingpong_thread, (void *)1) != 0) {
        fail("pthread.condvar_pingpong: threads");
        exit(1);
    }
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    uint64_t end = now_ns();
    if (pp.turn != 0)
        fail("pthread.condvar_pingpong: turns");
    peer_val[P_CONDVAR][round_i] = (double)(end - start) / (double)(2 * pp.n);
}

static struct {
    pthread_mutex_t m;
    pthread_cond_t not_full, not_empty;
    uintptr_t buf[PIPE_CAP];
    size_t head, len;
    uint64_t n, sum;
} bb = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0, 0};

static void *bb_producer(void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < bb.n; i++) {
        pthread_mutex_lock(&bb.m);
        while (bb.len == PIPE_CAP)
            pthread_cond_wait(&bb.not_full, &bb.m);
        bb.buf[(bb.head + bb.len) % PIPE_CAP] = (uintptr_t)i;
        if (bb.len++ == 0)
            pthread_cond_signal(&bb.not_empty);
        pthread_mutex_unlock(&bb.m);
    }
    return NULL;
}

static void *bb_consumer(void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < bb.n; i++) {
        pthread_mutex_lock(&bb.m);
        while (bb.len == 0)
            pthread_cond_wait(&bb.not_empty, &bb.m);
        bb.sum += bb.buf[bb.head];
        bb.head = (bb.head + 1) % PIPE_CAP;
        if (bb.len-- == PIPE_CAP)
            pthread_cond_signal(&bb.not_full);
        pthread_mutex_unlock(&bb.m);
    }
    return NULL;
}

static void peer_bounded(void)
{
    bb.head = bb.len = 0;
    bb.sum = 0;
    bb.n = set->pipe_items;
    pthread_t p, c;
    uint64_t start = now_ns();
    if (pthread_create(&p, NULL, bb_producer, NULL) != 0 ||
        pthread_create(&c, NULL, bb_consumer, NULL) != 0) {
        fail("pthread.bounded_buffer: threads");
        exit(1);
    }
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    uint64_t end = now_ns();
    if (bb.sum != bb.n * (bb.n - 1) / 2)
        fail("pthread.bounded_buffer: sum");
    peer_val[P_BOUNDED][round_i] = (double)bb.n / ((double)(end - start) / 1e9) / 1e6;
}

/* ------------------------------------------------------------------ */
/* Driver                                                               */
/* ------------------------------------------------------------------ */

static void line(const char *name, const char *unit, double v, const char *peer, double pv,
                 bool time_unit)
{
    printf("BENCH name=%s value=%.2f unit=%s peer=%s peer_value=%.2f ratio=%.2f\n", name, v, unit,
           peer, pv, time_unit ? pv / v : v / pv);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_coord [--quick] [--help]\n"
                 "  semaphore wait/signal and pipe throughput on one seacore shard, beside\n"
                 "  POSIX semaphores, pthread mutexes and condition variables (see the\n"
                 "  comment at the top of bench/bench_coord.c)\n"
                 "  --quick   3 short rounds (a smoke test, noisy)\n");
}

int main(int argc, char **argv)
{
    set = &full_settings;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            set = &quick_settings;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bench_coord: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    struct sc_config cfg;
    sc_config_default(&cfg);
    cfg.backend = SC_BACKEND_REAL;
    cfg.smp = 1;
    cfg.quiet = true;
    fprintf(stderr, "# bench_coord: median of %d rounds\n", set->rounds);
    for (round_i = 0; round_i < set->rounds; round_i++) {
        if (sc_run(&cfg, seacore_round, NULL, 0, NULL) != 0) {
            fprintf(stderr, "bench_coord: the seacore run failed\n");
            return 1;
        }
        peer_sem_post();
        peer_mutex();
        peer_condvar();
        peer_bounded();
    }
    if (failed)
        return 1;
    int r = set->rounds;
    double unc = median(sc_val[M_UNCONTENDED], r), hand = median(sc_val[M_HANDOFF], r),
           pipe = median(sc_val[M_PIPE], r);
    line("coord.sem_uncontended", "ns/op", unc, "posix.sem_wait_post",
         median(peer_val[P_SEM_POST], r), true);
    line("coord.sem_uncontended", "ns/op", unc, "pthread.mutex_lock_unlock",
         median(peer_val[P_MUTEX], r), true);
    line("coord.sem_handoff", "ns/handoff", hand, "pthread.condvar_pingpong",
         median(peer_val[P_CONDVAR], r), true);
    line("coord.pipe_throughput", "Mitems/s", pipe, "pthread.bounded_buffer",
         median(peer_val[P_BOUNDED], r), false);
    sink += 1;
    return 0;
}
