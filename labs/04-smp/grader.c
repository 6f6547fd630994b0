/*
 * grader.c — lab 04: the SPSC ring with batched publication (core/ring.c).
 *
 * Three kinds of checks, from the closest look to the widest:
 *
 *   1. the ring alone, on one thread: FIFO order, wrap-around, capacity,
 *      staging and publishing, the pop limit, and a model check of random
 *      operations against a list;
 *   2. the ring between two raw pthreads on two CPUs: a producer pushes
 *      sequence numbers and publishes at random points, a consumer pops with
 *      random limits and checks that every item arrives once, in order, with
 *      the data it points to;
 *   3. the ring inside seacore: shards send each other thousands of
 *      sc_smp_submit_to() calls (scattered, in bursts larger than a ring, and
 *      relayed across shards) whose every message and answer crosses your
 *      ring. The simulator sweeps many seeds; the real machine runs a few
 *      configurations, some of which make the shards sleep between messages.
 *
 * Every check tells its story with tr_step; a failing T_CHECK prints the last
 * steps. Random choices come from fixed seeds (the real machine adds its own
 * timing), so a failure in the first two parts repeats exactly.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ring.h"
#include "core/smp.h"
#include "tests/harness.h"

/* ---- helpers -------------------------------------------------------------- */

/* A small PRNG for the checks that run outside seacore (xorshift64*). */
static uint64_t rnd_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static unsigned rnd_below(uint64_t *s, unsigned n)
{
    return (unsigned)(rnd_next(s) % n);
}

/* Items are the numbers 1, 2, 3... stored in the pointer itself. */
#define ITEM(v)  ((void *)(uintptr_t)(v))
#define VALUE(p) ((unsigned long)(uintptr_t)(p))

static void make_ring(struct sc_ring *r, size_t capacity)
{
    int rc = sc_ring_init(r, capacity);
    tr_step("sc_ring_init(capacity %zu) -> %d", capacity, rc);
    T_CHECK(rc == 0, "sc_ring_init(%zu) should return 0, not %d (this part is given)", capacity,
            rc);
}

/* Push v; the ring must take it. */
static void push_ok(struct sc_ring *r, unsigned long v)
{
    bool ok = sc_ring_push(r, ITEM(v));
    T_CHECK(ok,
            "sc_ring_push(%lu) returned false, but the ring has room (%zu staged, "
            "capacity %zu)",
            v, sc_ring_staged(r), sc_ring_capacity(r));
}

/* A pop must find nothing: every published item is out already. */
static void pop_none(struct sc_ring *r, const char *why)
{
    void *out[16];
    size_t got = sc_ring_pop(r, out, 16);
    tr_step("sc_ring_pop(max 16) -> %zu item(s)", got);
    T_CHECK(got == 0, "sc_ring_pop should take nothing (%s), yet it took %zu item(s)%s%lu", why,
            got, got ? ", the first being " : "", got ? VALUE(out[0]) : 0ul);
}

/*
 * Pop until n items have come out (max at a time); they must be first,
 * first + 1, ... A pop may take fewer than max even when more are published:
 * the consumer may judge what is visible from its cached copy of tail. But
 * it must not say "nothing" while published items wait.
 */
static void drain_expect(struct sc_ring *r, size_t max, unsigned long first, size_t n)
{
    void *out[1100];
    ck_assert(max > 0 && max < 1100);
    size_t got = 0;
    while (got < n) {
        size_t k = sc_ring_pop(r, out, max);
        tr_step("sc_ring_pop(max %zu) -> %zu item(s)", max, k);
        T_CHECK(k > 0, "sc_ring_pop returned 0 while %zu published item(s) were waiting", n - got);
        T_CHECK(k <= max, "sc_ring_pop(max %zu) took %zu items", max, k);
        for (size_t i = 0; i < k; i++)
            T_CHECK(got + i < n && VALUE(out[i]) == first + got + i,
                    "sc_ring_pop returned item %lu where %s was due: the ring is FIFO, and it "
                    "returns only what was pushed and published",
                    VALUE(out[i]), got + i < n ? "the next pushed item" : "nothing more");
        tr_step("  items %lu..%lu", first + got, first + got + k - 1);
        got += k;
    }
}

/* ---- 1. the ring alone ---------------------------------------------------- */

START_TEST(fifo_order)
{
    tr_reset();
    tr_step("fifo_order: items come out in the order they went in");
    struct sc_ring r;
    make_ring(&r, 16);
    tr_step("push 1..10, publish");
    for (unsigned long v = 1; v <= 10; v++)
        push_ok(&r, v);
    T_CHECK(sc_ring_publish(&r), "sc_ring_publish should return true: 10 items were staged");
    drain_expect(&r, 32, 1, 10);
    tr_step("push 11..13, publish, push 14, publish");
    for (unsigned long v = 11; v <= 13; v++)
        push_ok(&r, v);
    T_CHECK(sc_ring_publish(&r), "sc_ring_publish should return true: 3 items were staged");
    push_ok(&r, 14);
    T_CHECK(sc_ring_publish(&r), "sc_ring_publish should return true: item 14 was staged");
    drain_expect(&r, 32, 11, 4);
    pop_none(&r, "all 14 items came out already");
    sc_ring_destroy(&r);
}
END_TEST

START_TEST(exactly_capacity_fits)
{
    tr_reset();
    tr_step("exactly_capacity_fits: a ring of 8 takes 8 items, no more and no fewer");
    struct sc_ring r;
    make_ring(&r, 8);
    tr_step("push 1..8 without publishing (staged items take room too)");
    for (unsigned long v = 1; v <= 8; v++)
        push_ok(&r, v);
    T_CHECK(sc_ring_staged(&r) == 8, "8 items should be staged, not %zu", sc_ring_staged(&r));
    bool ok = sc_ring_push(&r, ITEM(99));
    tr_step("push a 9th -> %s", ok ? "true" : "false");
    T_CHECK(!ok, "a ring of 8 holding 8 items is full: sc_ring_push must return false");
    T_CHECK(sc_ring_staged(&r) == 8, "a refused push stages nothing: %zu staged, not 8",
            sc_ring_staged(&r));
    T_CHECK(sc_ring_publish(&r), "sc_ring_publish should return true: 8 items were staged");
    ok = sc_ring_push(&r, ITEM(99));
    tr_step("published; push again -> %s", ok ? "true" : "false");
    T_CHECK(!ok, "the ring is still full after publishing: sc_ring_push must return false");
    drain_expect(&r, 3, 1, 3);
    tr_step("3 slots are free again: push 9, 10, 11, then a 4th");
    for (unsigned long v = 9; v <= 11; v++)
        push_ok(&r, v);
    ok = sc_ring_push(&r, ITEM(99));
    T_CHECK(!ok, "after popping 3 of 8 and pushing 3, the ring is full again; the 4th push "
                 "must return false");
    T_CHECK(sc_ring_publish(&r), "sc_ring_publish should return true: 3 items were staged");
    drain_expect(&r, 16, 4, 8);
    pop_none(&r, "all 11 items came out already");
    sc_ring_destroy(&r);

    tr_step("a ring of 2, then a ring of 1024, filled from empty");
    size_t caps[2] = {2, 1024};
    for (int k = 0; k < 2; k++) {
        make_ring(&r, caps[k]);
        for (unsigned long v = 1; v <= caps[k]; v++)
            push_ok(&r, v);
        T_CHECK(!sc_ring_push(&r, ITEM(0)), "a ring of %zu holding %zu items must refuse a push",
                caps[k], caps[k]);
        T_CHECK(sc_ring_publish(&r), "sc_ring_publish should return true");
        drain_expect(&r, caps[k], 1, caps[k]);
        pop_none(&r, "every item came out already");
        sc_ring_destroy(&r);
    }
}
END_TEST

START_TEST(staged_items_invisible_until_publish)
{
    tr_reset();
    tr_step("staged_items_invisible_until_publish: the consumer sees a batch only when it is "
            "published");
    struct sc_ring r;
    make_ring(&r, 16);
    tr_step("push 1, 2, 3 without publishing");
    for (unsigned long v = 1; v <= 3; v++)
        push_ok(&r, v);
    T_CHECK(sc_ring_staged(&r) == 3, "3 items should be staged, not %zu", sc_ring_staged(&r));
    T_CHECK(!sc_ring_readable(&r), "staged items must not be visible: sc_ring_readable() says "
                                   "true before any publish");
    pop_none(&r, "items 1..3 are staged, not published");
    T_CHECK(sc_ring_publish(&r), "sc_ring_publish should return true: 3 items were staged");
    T_CHECK(sc_ring_staged(&r) == 0, "nothing should be staged after a publish, yet %zu are",
            sc_ring_staged(&r));
    T_CHECK(sc_ring_readable(&r), "after a publish, sc_ring_readable() should be true");
    tr_step("published; now push 4 and 5 without publishing");
    push_ok(&r, 4);
    push_ok(&r, 5);
    drain_expect(&r, 16, 1, 3);
    T_CHECK(!sc_ring_readable(&r), "items 4 and 5 are only staged: sc_ring_readable() should be "
                                   "false");
    pop_none(&r, "items 4 and 5 are staged, not published");
    T_CHECK(sc_ring_publish(&r), "sc_ring_publish should return true: 2 items were staged");
    drain_expect(&r, 16, 4, 2);
    pop_none(&r, "all 5 items came out already");
    sc_ring_destroy(&r);
}
END_TEST

START_TEST(publish_false_when_nothing_new)
{
    tr_reset();
    tr_step("publish_false_when_nothing_new: publish says whether it made anything visible");
    struct sc_ring r;
    make_ring(&r, 4);
    bool p = sc_ring_publish(&r);
    tr_step("publish on a new ring -> %s", p ? "true" : "false");
    T_CHECK(!p, "publishing a new, empty ring should return false");
    push_ok(&r, 1);
    p = sc_ring_publish(&r);
    tr_step("push 1, publish -> %s", p ? "true" : "false");
    T_CHECK(p, "publishing a staged item should return true");
    p = sc_ring_publish(&r);
    tr_step("publish again -> %s", p ? "true" : "false");
    T_CHECK(!p, "a second publish with nothing staged since should return false");
    drain_expect(&r, 4, 1, 1);
    T_CHECK(!sc_ring_publish(&r), "publishing after a pop, with nothing staged, should return "
                                  "false");
    tr_step("fill the ring (push 2..5), publish, then a refused push and a publish");
    for (unsigned long v = 2; v <= 5; v++)
        push_ok(&r, v);
    T_CHECK(sc_ring_publish(&r), "publishing 4 staged items should return true");
    T_CHECK(!sc_ring_push(&r, ITEM(6)), "the ring of 4 is full: push must return false");
    T_CHECK(!sc_ring_publish(&r), "a refused push stages nothing: publish should return false");
    drain_expect(&r, 4, 2, 4);
    pop_none(&r, "all 5 items came out already");
    sc_ring_destroy(&r);
}
END_TEST

START_TEST(pop_respects_max)
{
    tr_reset();
    tr_step("pop_respects_max: pop takes at most max items and writes no more than it takes");
    struct sc_ring r;
    make_ring(&r, 16);
    for (unsigned long v = 1; v <= 10; v++)
        push_ok(&r, v);
    T_CHECK(sc_ring_publish(&r), "publish should return true");
    tr_step("10 items published");
    void *out[16];
    size_t maxes[5] = {3, 0, 1, 4, 16};
    size_t expect[5] = {3, 0, 1, 4, 2};
    unsigned long next = 1;
    for (int k = 0; k < 5; k++) {
        for (int i = 0; i < 16; i++)
            out[i] = ITEM(0xdead);
        size_t n = sc_ring_pop(&r, out, maxes[k]);
        tr_step("sc_ring_pop(max %zu) -> %zu", maxes[k], n);
        T_CHECK(n == expect[k],
                "sc_ring_pop(max %zu) with %lu visible items should take %zu, "
                "not %zu",
                maxes[k], 11 - next, expect[k], n);
        for (size_t i = 0; i < n; i++)
            T_CHECK(VALUE(out[i]) == next + i, "item %zu is %lu, expected %lu", i, VALUE(out[i]),
                    next + i);
        for (size_t i = n; i < 16; i++)
            T_CHECK(VALUE(out[i]) == 0xdead,
                    "sc_ring_pop(max %zu) took %zu items but wrote out[%zu] too", maxes[k], n, i);
        next += n;
    }
    sc_ring_destroy(&r);
}
END_TEST

/*
 * A model check: 4000 random operations on a ring of 8, against a list of
 * what is staged and what is published. Every answer must match the model.
 * Items go through the ring hundreds of times its capacity, so its indices
 * wrap around the slots again and again.
 */
START_TEST(wraps_around_many_times)
{
    tr_reset();
    uint64_t seed = 0x5eed04;
    tr_step("wraps_around_many_times: 4000 random operations on a ring of 8 (seed %llx)",
            (unsigned long long)seed);
    struct sc_ring r;
    make_ring(&r, 8);
    unsigned long next_push = 1; /* the next item to push */
    unsigned long next_pop = 1;  /* the next item pop must return */
    unsigned long published = 1; /* items < published are visible */
    void *out[8];
    for (int op = 1; op <= 4000; op++) {
        unsigned what = rnd_below(&seed, 10);
        unsigned long in_ring = next_push - next_pop;
        if (what < 5) {
            bool room = in_ring < 8;
            bool ok = sc_ring_push(&r, ITEM(next_push));
            tr_step("op %d: push %lu -> %s (%lu in the ring)", op, next_push, ok ? "true" : "false",
                    in_ring);
            T_CHECK(ok == room, "push with %lu of 8 slots taken should return %s", in_ring,
                    room ? "true" : "false");
            if (ok)
                next_push++;
        } else if (what < 7) {
            bool fresh = next_push != published;
            bool p = sc_ring_publish(&r);
            tr_step("op %d: publish -> %s (%lu staged)", op, p ? "true" : "false",
                    next_push - published);
            T_CHECK(p == fresh, "publish with %lu item(s) staged should return %s",
                    next_push - published, fresh ? "true" : "false");
            published = next_push;
        } else {
            size_t max = rnd_below(&seed, 9);
            unsigned long visible = published - next_pop;
            size_t most = visible < max ? visible : max;
            size_t n = sc_ring_pop(&r, out, max);
            tr_step("op %d: pop(max %zu) -> %zu (%lu visible)", op, max, n, visible);
            /* At most min(max, visible); at least one if that is not 0 (a
             * pop may judge from its cached tail and take fewer). */
            T_CHECK(n <= most && (n > 0 || most == 0),
                    "pop(max %zu) with %lu visible item(s) took %zu: it should take at least 1 "
                    "and at most %zu",
                    max, visible, n, most);
            for (size_t i = 0; i < n; i++)
                T_CHECK(VALUE(out[i]) == next_pop + i,
                        "pop returned %lu where %lu was due: an item was lost, repeated or read "
                        "from a stale slot",
                        VALUE(out[i]), next_pop + i);
            next_pop += n;
        }
        T_CHECK(sc_ring_staged(&r) == next_push - published,
                "sc_ring_staged() says %zu, but %lu item(s) are staged", sc_ring_staged(&r),
                next_push - published);
    }
    tr_step("%lu items went through the ring: %lu times its capacity", next_pop - 1,
            (next_pop - 1) / 8);
    T_CHECK(next_pop > 8 * 100, "only %lu items went through: too few to test the wrap-around",
            next_pop - 1);
    sc_ring_destroy(&r);
}
END_TEST

/* ---- 2. two threads ------------------------------------------------------- */

#ifdef SC_SAN
#define STRESS_ITEMS 200000ul /* sanitizers slow everything down 10-50 times */
#else
#define STRESS_ITEMS 2000000ul
#endif
#define STRESS_STUCK_NS 3000000000ull /* no progress for this long: something is wrong */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct stress {
    struct sc_ring r;
    unsigned long n;
    unsigned long *payload; /* item i points at payload[i], which holds i * 3 + 1 */
    _Atomic int stop;       /* set by either side when it gives up */
    /* the consumer's verdict, read after the join */
    unsigned long received;
    bool bad;               /* an item arrived wrong: */
    unsigned long bad_at;   /*   which item was due */
    unsigned long bad_item; /*   which one came (~0: a pointer outside the items) */
    unsigned long bad_data; /*   what it held */
    bool stuck;
};

static void *stress_consumer(void *arg)
{
    struct stress *st = arg;
    uint64_t seed = 0xc0ffee;
    void *out[64];
    uint64_t quiet_since = 0;
    unsigned spins = 0;
    while (st->received < st->n && !atomic_load_explicit(&st->stop, memory_order_relaxed)) {
        size_t n = sc_ring_pop(&st->r, out, 1 + rnd_below(&seed, 64));
        if (n == 0) {
            /* an empty ring is normal; an empty ring for seconds is not */
            if (++spins % 4096 == 0) {
                uint64_t now = mono_ns();
                if (!quiet_since)
                    quiet_since = now;
                else if (now - quiet_since > STRESS_STUCK_NS) {
                    st->stuck = true;
                    atomic_store(&st->stop, 1);
                }
            }
            continue;
        }
        quiet_since = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned long k = st->received;
            unsigned long *p = out[i];
            if (p != &st->payload[k] || *p != k * 3 + 1) {
                st->bad = true;
                st->bad_at = k;
                st->bad_item = p >= st->payload && p < st->payload + st->n
                                   ? (unsigned long)(p - st->payload)
                                   : ~0ul;
                st->bad_data = st->bad_item != ~0ul ? *p : 0;
                atomic_store(&st->stop, 1);
                return NULL;
            }
            st->received++;
        }
    }
    return NULL;
}

/* Push n items into a ring of the given capacity from this thread while a
 * second thread pops them; publish at random points (on average every
 * `every` pushes) and whenever the ring is full. */
static void stress_run(size_t capacity, unsigned long n, unsigned every)
{
    struct stress *st = calloc(1, sizeof *st);
    ck_assert_msg(st != NULL, "out of memory");
    st->n = n;
    st->payload = malloc(n * sizeof *st->payload);
    ck_assert_msg(st->payload != NULL, "out of memory");
    make_ring(&st->r, capacity);
    atomic_init(&st->stop, 0);
    tr_step("two threads: %lu items through a ring of %zu, a publish every ~%u pushes and "
            "whenever it is full",
            n, capacity, every);
    uint64_t t0 = mono_ns();
    pthread_t consumer;
    T_CHECK(pthread_create(&consumer, NULL, stress_consumer, st) == 0, "pthread_create failed");
    uint64_t seed = 0xfeed + capacity;
    bool producer_stuck = false;
    unsigned long pushed = 0;
    while (pushed < n && !atomic_load_explicit(&st->stop, memory_order_relaxed)) {
        st->payload[pushed] = pushed * 3 + 1; /* written before the push: publish covers it */
        if (!sc_ring_push(&st->r, &st->payload[pushed])) {
            /* full: publish what is staged and wait for the consumer */
            sc_ring_publish(&st->r);
            uint64_t since = mono_ns();
            unsigned spins = 0;
            while (!sc_ring_push(&st->r, &st->payload[pushed])) {
                if (atomic_load_explicit(&st->stop, memory_order_relaxed))
                    break;
                if (++spins % 4096 == 0 && mono_ns() - since > STRESS_STUCK_NS) {
                    producer_stuck = true;
                    atomic_store(&st->stop, 1);
                    break;
                }
            }
            if (producer_stuck || atomic_load_explicit(&st->stop, memory_order_relaxed))
                break;
        }
        pushed++;
        if (rnd_below(&seed, every) == 0)
            sc_ring_publish(&st->r);
    }
    sc_ring_publish(&st->r);
    pthread_join(consumer, NULL);
    double ms = (double)(mono_ns() - t0) / 1e6;
    tr_step("pushed %lu, the consumer received %lu, in %.1f ms (%.1f ns per item)", pushed,
            st->received, ms, ms * 1e6 / (double)(st->received ? st->received : 1));
    T_CHECK(!producer_stuck, "the producer found the ring full for 3 s while the consumer was "
                             "popping: push never sees the slots that pop frees");
    T_CHECK(!st->bad,
            "item #%lu arrived wrong: the consumer got %s%lu (holding %lu) where item #%lu "
            "(holding %lu) was due. Lost, repeated, or read from a slot before the producer "
            "wrote it? Publish with a release store after the slots are written, and load "
            "tail with acquire before reading them",
            st->bad_at, st->bad_item == ~0ul ? "a pointer outside the items, not #" : "item #",
            st->bad_item == ~0ul ? 0 : st->bad_item, st->bad_data, st->bad_at, st->bad_at * 3 + 1);
    T_CHECK(!st->stuck,
            "the consumer saw an empty ring for 3 s after %lu of %lu items: "
            "published items never became visible to it",
            st->received, n);
    T_CHECK(st->received == n, "the consumer received %lu of %lu items", st->received, n);
    sc_ring_destroy(&st->r);
    free(st->payload);
    free(st);
}

START_TEST(two_threads_in_order)
{
    tr_reset();
    tr_step("two_threads_in_order: a producer and a consumer thread, raw pthreads");
    stress_run(4, STRESS_ITEMS / 4, 3);  /* tiny: full and empty all the time */
    stress_run(64, STRESS_ITEMS, 16);    /* the size of a batch */
    stress_run(1024, STRESS_ITEMS, 200); /* large batches */
}
END_TEST

/* ---- 3. inside seacore: cross-shard calls ----------------------------------- */

#define MAXS    3   /* shards at most */
#define SCATTER 150 /* calls each shard sends to random other shards */
#define BURST   600 /* calls each shard sends its neighbour from one task (> 256: overflow) */

/* What one shard knows. Each row is written only by its own shard during a
 * run; the grader reads all rows after the run has ended. */
struct book {
    _Alignas(64) uint64_t sent[MAXS]; /* calls this shard sent to each shard */
    uint64_t answered[MAXS];          /* answers that came back from each shard */
    uint64_t received[MAXS];          /* calls this shard ran, from each shard */
    uint64_t expect[MAXS];            /* the next sequence number due from each sender */
    _Atomic uint64_t progress;        /* messages handled: the watchdog reads it */
    uint64_t quiet_polls;             /* the simulator's watchdog */
    unsigned violations;
    char first[200]; /* the first violation, in words */
    struct sc_smp_stats stats;
    struct sc_future burst[BURST];
};

static struct book books[MAXS];

/* Note a broken rule. Shards other than 0 run on threads of their own in
 * the real world, where a failing check cannot stop the test; the grader
 * looks at the notes after the run. */
static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
    struct book *bk = &books[sc_this_shard()];
    if (bk->violations++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(bk->first, sizeof bk->first, fmt, ap);
        va_end(ap);
    }
}

static void made_progress(void)
{
    struct book *bk = &books[sc_this_shard()];
    atomic_store_explicit(&bk->progress,
                          atomic_load_explicit(&bk->progress, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* A call from one shard to another. seq numbers the calls of one ordered
 * pair (from, to) in the order they were submitted: the ring is FIFO, so the
 * receiver must see 0, 1, 2, ... from each sender. */
struct msg {
    unsigned from, to;
    uint64_t seq;
    unsigned relay; /* hops still to go before answering */
    unsigned nap_us;
};

static intptr_t answer_of(const struct msg *m)
{
    return (intptr_t)(m->seq * 8 + m->to * 2 + 1);
}

static struct sc_future send_call(unsigned to, unsigned relay);

static struct sc_future relay_done(void *cap, intptr_t v)
{
    (void)v;
    return sc_make_ready(answer_of(cap));
}

static struct sc_future on_call(void *cap)
{
    struct msg m = *(struct msg *)cap;
    unsigned me = sc_this_shard();
    struct book *bk = &books[me];
    if (me != m.to)
        violation("a call for shard %u ran on shard %u", m.to, me);
    else if (m.seq != bk->expect[m.from])
        violation("shard %u -> %u: call #%llu arrived when #%llu was due (lost, repeated or "
                  "reordered)",
                  m.from, m.to, (unsigned long long)m.seq, (unsigned long long)bk->expect[m.from]);
    bk->expect[m.from] = m.seq + 1;
    bk->received[m.from]++;
    made_progress();
    if (m.relay) {
        unsigned n = sc_shard_count();
        unsigned next = (me + 1 + (unsigned)sc_random_below(n - 1)) % n;
        return SC_THEN(send_call(next, m.relay - 1), relay_done, m);
    }
    if (m.nap_us) /* answer later: the answer leaves from a different task */
        return SC_THEN(sc_sleep(SC_US(m.nap_us)), relay_done, m);
    return sc_make_ready(answer_of(&m));
}

static struct sc_future on_answer(void *cap, intptr_t v)
{
    const struct msg *m = cap;
    unsigned me = sc_this_shard();
    if (me != m->from)
        violation("the answer to a call from shard %u arrived on shard %u", m->from, me);
    else if (v != answer_of(m))
        violation("shard %u -> %u: call #%llu was answered with %lld, not %lld", m->from, m->to,
                  (unsigned long long)m->seq, (long long)v, (long long)answer_of(m));
    books[me].answered[m->to]++;
    made_progress();
    return sc_make_ready(0);
}

static struct sc_future send_call(unsigned to, unsigned relay)
{
    unsigned me = sc_this_shard();
    struct msg m = {me, to, books[me].sent[to]++, relay, 0};
    if (!relay && sc_random_below(16) == 0)
        m.nap_us = 1 + (unsigned)sc_random_below(30);
    return SC_THEN(SC_SUBMIT_TO(to, on_call, m), on_answer, m);
}

static unsigned other_shard(void)
{
    unsigned n = sc_shard_count();
    return (sc_this_shard() + 1 + (unsigned)sc_random_below(n - 1)) % n;
}

static struct sc_future scatter_now(void *cap, intptr_t v)
{
    (void)v;
    unsigned relay = *(unsigned *)cap;
    return send_call(other_shard(), relay);
}

static struct sc_future scatter_one(void *cap, size_t i)
{
    (void)cap;
    unsigned relay = i % 10 == 3 ? 1 + (unsigned)sc_random_below(3) : 0;
    /* now and then, wait a little first, so that traffic comes in waves */
    struct sc_future f = i % 25 == 0 ? sc_sleep(SC_US(sc_random_below(50))) : sc_make_ready(0);
    return SC_THEN(f, scatter_now, relay);
}

/* One task sends more calls to one shard than its ring holds. */
static struct sc_future burst_now(void)
{
    struct book *bk = &books[sc_this_shard()];
    unsigned to = (sc_this_shard() + 1) % sc_shard_count();
    for (int i = 0; i < BURST; i++)
        bk->burst[i] = send_call(to, 0);
    return sc_when_all_succeed(bk->burst, BURST);
}

static struct sc_future traffic_here(void *cap)
{
    (void)cap;
    struct sc_future parts[2] = {
        sc_parallel_for_each(SCATTER, scatter_one, NULL, 0),
        burst_now(),
    };
    return sc_when_all_succeed(parts, 2);
}

static struct sc_future save_stats(void *cap)
{
    (void)cap;
    sc_smp_stats(&books[sc_this_shard()].stats);
    return sc_make_ready(0);
}

static struct sc_future unanswered_here(void *cap)
{
    (void)cap;
    struct book *bk = &books[sc_this_shard()];
    intptr_t left = 0;
    for (unsigned j = 0; j < MAXS; j++)
        left += (intptr_t)(bk->sent[j] - bk->answered[j]);
    return sc_make_ready(left);
}

static intptr_t add(intptr_t a, intptr_t b)
{
    return a + b;
}

static struct sc_future after_count(void *cap, intptr_t left)
{
    (void)cap;
    if (left)
        violation("map_reduce counted %lld calls without an answer", (long long)left);
    return sc_smp_invoke_on_all(save_stats, NULL, 0);
}

static struct sc_future after_traffic(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then(sc_smp_map_reduce(unanswered_here, add, 0, NULL, 0), after_count, NULL, 0);
}

/* The watchdogs. A broken ring does not crash seacore: messages wait
 * forever, and the run would never end. Instead, the grader gives up when
 * no message has been handled anywhere for a long time. */
static uint64_t total_progress(void)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < MAXS; i++)
        t += atomic_load_explicit(&books[i].progress, memory_order_relaxed);
    return t;
}

static void stuck(const char *how)
{
    unsigned long long sent = 0, received = 0, answered = 0;
    for (unsigned i = 0; i < MAXS; i++)
        for (unsigned j = 0; j < MAXS; j++) {
            sent += books[i].sent[j];
            received += books[i].received[j];
            answered += books[i].answered[j];
        }
    tr_step("stuck (%s): %llu calls sent, %llu received, %llu answered", how, sent, received,
            answered);
    T_CHECK(false,
            "the cross-shard calls stopped moving (%s) with %llu of %llu calls received and "
            "%llu answered: messages are stuck in a ring (pushed but never published, or "
            "published but never popped, or a full ring that never frees its slots)",
            how, received, sent, answered);
}

/* Simulator: every shard polls once per step; all shards share one thread. */
static uint64_t sim_last_progress;

static bool sim_watchdog(void *arg)
{
    (void)arg;
    struct book *bk = &books[sc_this_shard()];
    uint64_t p = total_progress();
    if (p != sim_last_progress) {
        sim_last_progress = p;
        for (unsigned i = 0; i < MAXS; i++)
            books[i].quiet_polls = 0;
    } else if (++bk->quiet_polls > 200000) {
        stuck("200000 simulator steps of one shard without a message handled");
    }
    return false;
}

static struct sc_future install_sim_watchdog(void *cap)
{
    (void)cap;
    return sc_make_ready(sc_poller_add(sim_watchdog, NULL) >= 0 ? 0 : -ENOMEM);
}

/* Real machine: a timer on shard 0 (the grader's own thread) every 20 ms. A
 * timer, not a poller, so that the shards may still go to sleep. */
static struct {
    struct sc_timer t;
    uint64_t last;
    unsigned quiet;
} real_wd;

static void real_watchdog(void *arg)
{
    (void)arg;
    uint64_t p = total_progress();
    if (p != real_wd.last) {
        real_wd.last = p;
        real_wd.quiet = 0;
    } else if (++real_wd.quiet >= 150) {
        stuck("3 s of real time without a message handled");
    }
    sc_timer_arm_in(&real_wd.t, SC_MS(20));
}

static struct sc_future disarm(void *cap, intptr_t v, int err)
{
    (void)cap;
    if (!sc_is_simulated())
        sc_timer_cancel(&real_wd.t);
    return err ? sc_make_error(err) : sc_make_ready(v);
}

static struct sc_future start_traffic(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then(sc_smp_invoke_on_all(traffic_here, NULL, 0), after_traffic, NULL, 0);
}

static struct sc_future traffic_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    memset(books, 0, sizeof books);
    struct sc_future ready;
    if (sc_is_simulated()) {
        /* shard 0's watchdog at once, the others' through the rings */
        sim_last_progress = 0;
        if (sc_poller_add(sim_watchdog, NULL) < 0)
            return sc_make_error(-ENOMEM);
        ready = sc_smp_invoke_on_others(install_sim_watchdog, NULL, 0);
    } else {
        real_wd.last = 0;
        real_wd.quiet = 0;
        sc_timer_init(&real_wd.t, real_watchdog, NULL);
        sc_timer_arm_in(&real_wd.t, SC_MS(20));
        ready = sc_make_ready(0);
    }
    return sc_then_wrapped(sc_then(ready, start_traffic, NULL, 0), disarm, NULL, 0);
}

/* After a run: every call of every pair was sent, received and answered
 * exactly once; no violation was seen. */
static void audit(unsigned n, bool simulated)
{
    unsigned long long total = 0, overflowed = 0, batches = 0, wakeups = 0;
    for (unsigned i = 0; i < n; i++) {
        T_CHECK(books[i].violations == 0, "on shard %u: %s (%u violation(s) in all)", i,
                books[i].first, books[i].violations);
        for (unsigned j = 0; j < n; j++) {
            if (i == j)
                continue;
            unsigned long long s = books[i].sent[j], r = books[j].received[i],
                               a = books[i].answered[j];
            T_CHECK(s == r && s == a,
                    "shard %u -> %u: %llu calls sent, %llu received, %llu answered: each must "
                    "be received and answered exactly once",
                    i, j, s, r, a);
            total += s;
        }
        overflowed += books[i].stats.overflowed;
        batches += books[i].stats.batches;
        wakeups += books[i].stats.wakeups;
    }
    tr_step("  %llu calls, all answered; %llu publications, %llu overflowed, %llu wake-ups", total,
            batches, overflowed, wakeups);
    T_CHECK(total >= (unsigned long long)n * (SCATTER + BURST),
            "only %llu calls were counted, fewer than were sent", total);
    if (simulated)
        T_CHECK(overflowed > 0,
                "a burst of %d calls from one task must fill a ring of 256 in the simulator, "
                "yet nothing overflowed: does sc_ring_push refuse items when the ring is full?",
                BURST);
}

static void run_traffic(struct sc_config *cfg, struct sc_run_result *res)
{
    int code = sc_run_ex(cfg, traffic_main, NULL, 0, NULL, res);
    T_CHECK(code == 0, "the run should end with exit code 0, not %d", code);
    T_CHECK(res->unhandled_errors == 0, "%llu failed futures were never handled",
            (unsigned long long)res->unhandled_errors);
    audit(cfg->smp, cfg->backend == SC_BACKEND_SIM);
}

#define SWEEP_SEEDS 100

START_TEST(sim_seed_sweep)
{
    tr_reset();
    tr_step("sim_seed_sweep: cross-shard calls on 2 or 3 simulated shards, seeds 1..%d, "
            "--sim-chaos",
            SWEEP_SEEDS);
    static const unsigned step_tasks[4] = {1, 3, 8, 32};
    for (uint64_t seed = 1; seed <= SWEEP_SEEDS; seed++) {
        struct sc_config cfg = t_config(SC_BACKEND_SIM);
        cfg.seed = seed;
        cfg.smp = 2 + (unsigned)(seed % 2);
        cfg.sim_step_tasks = step_tasks[seed % 4];
        cfg.sim_defer_ready_pct = cfg.sim_shuffle_pct = cfg.sim_preempt_pct = 10;
        tr_step("seed %llu: %u shards, --sim-step-tasks %u (replay: the same seed in this check)",
                (unsigned long long)seed, cfg.smp, cfg.sim_step_tasks);
        struct sc_run_result res;
        run_traffic(&cfg, &res);
    }
}
END_TEST

START_TEST(sim_same_seed_same_trace)
{
    tr_reset();
    tr_step("sim_same_seed_same_trace: a seed replays the same run, whatever the ring does");
    for (uint64_t seed = 1; seed <= 3; seed++) {
        uint64_t hash[2];
        for (int k = 0; k < 2; k++) {
            struct sc_config cfg = t_config(SC_BACKEND_SIM);
            cfg.seed = seed;
            cfg.smp = 3;
            cfg.sim_defer_ready_pct = cfg.sim_shuffle_pct = cfg.sim_preempt_pct = 10;
            struct sc_run_result res;
            run_traffic(&cfg, &res);
            hash[k] = res.trace_hash;
        }
        tr_step("seed %llu: trace %016llx, then %016llx", (unsigned long long)seed,
                (unsigned long long)hash[0], (unsigned long long)hash[1]);
        T_CHECK(hash[0] == hash[1], "two runs of seed %llu gave different trace hashes",
                (unsigned long long)seed);
    }
}
END_TEST

START_TEST(real_cross_shard_calls)
{
    tr_reset();
    tr_step("real_cross_shard_calls: the same traffic on real threads, one per shard");
    /* idle poll 0: a shard with nothing to do sleeps at once, so many
     * messages have to wake their receiver (the eventfd handshake). */
    static const struct {
        unsigned smp;
        uint64_t idle_poll_ns;
    } runs[4] = {{2, 200000}, {2, 0}, {3, 0}, {2, 0}};
    for (int k = 0; k < 4; k++) {
        struct sc_config cfg = t_config(SC_BACKEND_REAL);
        cfg.seed = 1 + (uint64_t)k;
        cfg.smp = runs[k].smp;
        cfg.idle_poll_ns = runs[k].idle_poll_ns;
        tr_step("run %d: --backend real --smp %u --idle-poll-time-us %llu", k + 1, cfg.smp,
                (unsigned long long)(cfg.idle_poll_ns / 1000));
        struct sc_run_result res;
        run_traffic(&cfg, &res);
    }
}
END_TEST

/* ---- the suite -------------------------------------------------------------- */

static Suite *suite(void)
{
    Suite *s = suite_create("lab 04: the SPSC ring");
    TCase *ring = tcase_create("ring");
    tcase_set_timeout(ring, 10);
    tcase_add_test(ring, fifo_order);
    tcase_add_test(ring, exactly_capacity_fits);
    tcase_add_test(ring, staged_items_invisible_until_publish);
    tcase_add_test(ring, publish_false_when_nothing_new);
    tcase_add_test(ring, pop_respects_max);
    tcase_add_test(ring, wraps_around_many_times);
    suite_add_tcase(s, ring);

    TCase *threads = tcase_create("threads");
    tcase_set_timeout(threads, 30); /* a stuck ring gives up after 3 s */
    tcase_add_test(threads, two_threads_in_order);
    suite_add_tcase(s, threads);

    /* A simulated shard whose ring says "readable" while pop takes nothing
     * spins without ever reaching a watchdog: the time limit ends it. */
    TCase *sim = tcase_create("sim");
    tcase_set_timeout(sim, 20);
    tcase_add_test(sim, sim_seed_sweep);
    tcase_add_test(sim, sim_same_seed_same_trace);
    suite_add_tcase(s, sim);

    TCase *real = tcase_create("real");
    tcase_set_timeout(real, 20); /* a stuck run gives up after 3 s */
    tcase_add_test(real, real_cross_shard_calls);
    suite_add_tcase(s, real);
    return s;
}

int main(void)
{
    return t_main(suite());
}
