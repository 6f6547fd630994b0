/*
 * test_fair_queue.c — the I/O scheduler's core (disk/fair_queue.c) through
 * its API: prices from a disk model, bad input, the entry's life (queued,
 * in flight, cancelled), the counters, the virtual-time rebase, and a long
 * seeded run of random calls checked against invariants at every step.
 *
 * The fair queue takes the time as an argument, so these tests move the
 * clock by hand and need no world. Lab 08's grader checks the policy's
 * exact answers; these check everything around it.
 */
#include <errno.h>
#include <string.h>

#include "disk/fair_queue.h"
#include "tests/harness.h"

#define US UINT64_C(1000)
#define MS UINT64_C(1000000)

/* A disk like a fast SATA SSD: 100k/50k IOPS, 1 GB/s reads, 500 MB/s writes. */
static const struct sc_disk_model ssd = {.read_iops = 100000,
                                         .write_iops = 50000,
                                         .read_bw = 1000000000,
                                         .write_bw = 500000000,
                                         .latency_goal_ns = 0};

static struct sc_fair_queue fq;

static void init_ssd(uint64_t now)
{
    int r = sc_fq_init(&fq, &ssd, now);
    T_CHECK(r == 0, "sc_fq_init(ssd) returned %d", r);
}

static void expect_cost(unsigned dir, uint64_t len, uint64_t want)
{
    uint64_t got = sc_fq_cost(&fq, dir, len);
    tr_step("cost(%s, %llu bytes) = %llu", dir == SC_IO_READ ? "read" : "write",
            (unsigned long long)len, (unsigned long long)got);
    T_CHECK(got == want, "a %s of %llu bytes should cost %llu disk ns, not %llu",
            dir == SC_IO_READ ? "read" : "write", (unsigned long long)len, (unsigned long long)want,
            (unsigned long long)got);
}

/* ---- prices --------------------------------------------------------------- */

START_TEST(cost_from_the_model)
{
    tr_reset();
    init_ssd(0);
    tr_step("model: 100k read IOPS, 50k write IOPS, 1 GB/s reads, 500 MB/s writes");
    expect_cost(SC_IO_READ, 4096, 10000 + 4096);      /* one op + 4096 ns of bytes */
    expect_cost(SC_IO_WRITE, 4096, 20000 + 8192);     /* writes: slower both ways */
    expect_cost(SC_IO_WRITE, 131072, 20000 + 262144); /* 128 KiB at 500 MB/s */
    expect_cost(SC_IO_READ, 0, 10000);                /* an empty request is still an op */
    expect_cost(SC_IO_READ, 1, 10000 + 1);            /* 1 byte: 1 ns, rounded down */
    expect_cost(SC_IO_WRITE, 3, 20000 + 6);
    expect_cost(SC_IO_READ, UINT64_C(1) << 30, 10000 + 1073741824); /* 1 GiB: 1.07 s */
    expect_cost(SC_IO_READ, UINT64_C(1) << 41, SC_FQ_MAX_COST);     /* 2200 s: saturates */
}
END_TEST

START_TEST(cost_rounding_and_limits)
{
    tr_reset();
    struct sc_disk_model m = {.read_iops = 3,
                              .write_iops = 2000000000, /* faster than 1 op per ns */
                              .read_bw = 7,
                              .write_bw = UINT64_C(1) << 62,
                              .latency_goal_ns = 1};
    int r = sc_fq_init(&fq, &m, 0);
    T_CHECK(r == 0, "init returned %d", r);
    tr_step("model: 3 read IOPS, 2e9 write IOPS, 7 B/s reads, 2^62 B/s writes");
    expect_cost(SC_IO_READ, 0, 333333333);               /* 1e9 / 3, rounded down */
    expect_cost(SC_IO_READ, 10, 333333333 + 1428571428); /* + 10e9 / 7, rounded down */
    expect_cost(SC_IO_WRITE, 0, 1);                      /* 0 + 0: at least 1 */
    expect_cost(SC_IO_WRITE, 4096, 1);
    expect_cost(SC_IO_READ, UINT64_C(1) << 40, SC_FQ_MAX_COST); /* saturates */
    expect_cost(SC_IO_READ, UINT64_MAX, SC_FQ_MAX_COST);        /* len * 1e9 needs 128 bits */
    T_CHECK(sc_fq_cost(&fq, 2, 4096) == UINT64_MAX, "direction 2 is not a direction");
    T_CHECK(sc_fq_cost(NULL, SC_IO_READ, 4096) == UINT64_MAX, "a NULL queue has no prices");
}
END_TEST

/* ---- bad input ------------------------------------------------------------- */

#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        tr_step("%s -> %d", #call, r_);                                                            \
        T_CHECK(r_ == (want), "%s returned %d, expected %s", #call, r_, #want);                    \
    } while (0)

START_TEST(init_rejects_bad_models)
{
    tr_reset();
    struct sc_disk_model m = ssd;
    EXPECT(sc_fq_init(NULL, &m, 0), -EINVAL);
    EXPECT(sc_fq_init(&fq, NULL, 0), -EINVAL);
    uint64_t *rates[4] = {&m.read_iops, &m.write_iops, &m.read_bw, &m.write_bw};
    for (int i = 0; i < 4; i++) {
        m = ssd;
        *rates[i] = 0;
        tr_step("rate %d set to 0", i);
        EXPECT(sc_fq_init(&fq, &m, 0), -EINVAL);
    }
    m = ssd;
    m.latency_goal_ns = SC_FQ_MAX_LATENCY_GOAL_NS + 1;
    EXPECT(sc_fq_init(&fq, &m, 0), -EINVAL);
    m.latency_goal_ns = SC_FQ_MAX_LATENCY_GOAL_NS;
    EXPECT(sc_fq_init(&fq, &m, 0), 0);
    struct sc_fq_stats st;
    EXPECT(sc_fq_stats(&fq, 0, &st), 0);
    T_CHECK(st.burst == (int64_t)SC_FQ_MAX_LATENCY_GOAL_NS && st.tokens == st.burst,
            "a fresh queue's bucket is full at the goal: burst %lld, tokens %lld",
            (long long)st.burst, (long long)st.tokens);
    m.latency_goal_ns = 0;
    EXPECT(sc_fq_init(&fq, &m, 0), 0);
    EXPECT(sc_fq_stats(&fq, 0, &st), 0);
    T_CHECK(st.burst == (int64_t)SC_FQ_DEFAULT_LATENCY_GOAL_NS, "goal 0 means the default");
}
END_TEST

START_TEST(classes_and_null_arguments)
{
    tr_reset();
    init_ssd(0);
    EXPECT(sc_fq_add_class(NULL, 10), -EINVAL);
    EXPECT(sc_fq_add_class(&fq, 0), -EINVAL);
    EXPECT(sc_fq_add_class(&fq, SC_FQ_MAX_SHARES + 1), -EINVAL);
    EXPECT(sc_fq_add_class(&fq, 1), 0);
    EXPECT(sc_fq_add_class(&fq, SC_FQ_MAX_SHARES), 1);
    EXPECT(sc_fq_set_shares(&fq, 1, 0), -EINVAL);
    EXPECT(sc_fq_set_shares(&fq, 2, 10), -EINVAL); /* not added yet */
    EXPECT(sc_fq_set_shares(NULL, 0, 10), -EINVAL);
    EXPECT(sc_fq_set_shares(&fq, 0, 77), 0);
    struct sc_fq_class_stats cs;
    EXPECT(sc_fq_class_stats(&fq, 0, &cs), 0);
    T_CHECK(cs.shares == 77, "class 0 should have 77 shares now, not %u", cs.shares);
    EXPECT(sc_fq_class_stats(&fq, 2, &cs), -EINVAL);
    EXPECT(sc_fq_class_stats(&fq, 0, NULL), -EINVAL);
    EXPECT(sc_fq_class_stats(NULL, 0, &cs), -EINVAL);
    EXPECT(sc_fq_stats(&fq, 0, NULL), -EINVAL);
    EXPECT(sc_fq_stats(NULL, 0, NULL), -EINVAL);
    EXPECT(sc_fq_queue(&fq, NULL), -EINVAL);
    EXPECT(sc_fq_queue(NULL, NULL), -EINVAL);
    EXPECT(sc_fq_complete(&fq, NULL, 0), -EINVAL);
    EXPECT(sc_fq_cancel(&fq, NULL), -EINVAL);
    T_CHECK(sc_fq_dispatch(NULL, 0) == NULL, "dispatch(NULL) is NULL");
    T_CHECK(sc_fq_next_ready(NULL, 0) == UINT64_MAX, "next_ready(NULL) is UINT64_MAX");
    for (int i = 2; i < SC_FQ_MAX_CLASSES; i++)
        EXPECT(sc_fq_add_class(&fq, 5), i);
    EXPECT(sc_fq_add_class(&fq, 5), -ENOSPC);
    sc_fq_destroy(&fq);
    sc_fq_destroy(NULL);
    init_ssd(0);
    EXPECT(sc_fq_add_class(&fq, 5), 0); /* a re-initialised queue starts over */
}
END_TEST

/* ---- an entry's life ------------------------------------------------------- */

START_TEST(entry_life_and_cancel)
{
    tr_reset();
    init_ssd(0);
    int a = sc_fq_add_class(&fq, 100), b = sc_fq_add_class(&fq, 100);
    T_CHECK(a == 0 && b == 1, "classes 0 and 1, got %d and %d", a, b);
    struct sc_fq_entry e[5];
    for (int i = 0; i < 5; i++)
        sc_fq_entry_init(&e[i], 0, SC_IO_READ, 4096 * (uint64_t)(i + 1));
    struct sc_fq_entry bad;
    sc_fq_entry_init(&bad, 2, SC_IO_READ, 4096);
    EXPECT(sc_fq_queue(&fq, &bad), -EINVAL); /* no class 2 */
    bad.class_id = 0;
    bad.dir = 9;
    EXPECT(sc_fq_queue(&fq, &bad), -EINVAL);

    for (int i = 0; i < 5; i++)
        EXPECT(sc_fq_queue(&fq, &e[i]), 0);
    EXPECT(sc_fq_queue(&fq, &e[2]), -EBUSY);
    T_CHECK(e[1].cost == sc_fq_cost(&fq, SC_IO_READ, 8192), "queueing prices the entry");
    tr_step("queued e0..e4 in class 0; cancel e2 (middle), e4 (tail), e0 (head)");
    EXPECT(sc_fq_cancel(&fq, &e[2]), 0);
    EXPECT(sc_fq_cancel(&fq, &e[2]), -EINVAL); /* not queued any more */
    EXPECT(sc_fq_cancel(&fq, &e[4]), 0);
    EXPECT(sc_fq_cancel(&fq, &e[0]), 0);
    struct sc_fq_entry *x = sc_fq_dispatch(&fq, 0);
    T_CHECK(x == &e[1], "after the cancels e1 is the head");
    EXPECT(sc_fq_cancel(&fq, &e[1]), -EBUSY); /* in flight: too late */
    EXPECT(sc_fq_queue(&fq, &e[1]), -EBUSY);
    EXPECT(sc_fq_queue(&fq, &e[4]), 0); /* a cancelled entry may be queued again, at the tail */
    x = sc_fq_dispatch(&fq, 0);
    T_CHECK(x == &e[3], "e3 next (it was queued before e4 came back)");
    x = sc_fq_dispatch(&fq, 0);
    T_CHECK(x == &e[4], "then e4: the tail was fixed when e4 was cancelled the first time");
    T_CHECK(sc_fq_dispatch(&fq, 0) == NULL, "nothing left");
    T_CHECK(sc_fq_next_ready(&fq, 0) == UINT64_MAX, "nothing queued: never ready");

    tr_step("cancel the only request of a class: the class goes idle");
    EXPECT(sc_fq_queue(&fq, &e[0]), 0);
    EXPECT(sc_fq_cancel(&fq, &e[0]), 0);
    T_CHECK(sc_fq_dispatch(&fq, 0) == NULL, "the class is idle again");
    T_CHECK(sc_fq_next_ready(&fq, 0) == UINT64_MAX, "idle: never ready");

    tr_step("complete e1, e3, e4; completing twice is an error");
    EXPECT(sc_fq_complete(&fq, &e[1], 10), 0);
    EXPECT(sc_fq_complete(&fq, &e[1], 10), -EINVAL);
    EXPECT(sc_fq_complete(&fq, &e[0], 10), -EINVAL); /* idle, never dispatched */
    EXPECT(sc_fq_complete(&fq, &e[3], 10), 0);
    EXPECT(sc_fq_complete(&fq, &e[4], 10), 0);
    EXPECT(sc_fq_queue(&fq, &e[1]), 0); /* completed entries may be reused */
    EXPECT(sc_fq_cancel(&fq, &e[1]), 0);

    tr_step("an entry marked queued but in no queue of ours is refused by cancel");
    struct sc_fq_entry stray;
    sc_fq_entry_init(&stray, 1, SC_IO_READ, 4096);
    stray.state = 1;
    EXPECT(sc_fq_cancel(&fq, &stray), -EINVAL);
}
END_TEST

START_TEST(counters_add_up)
{
    tr_reset();
    init_ssd(0);
    int a = sc_fq_add_class(&fq, 1000), b = sc_fq_add_class(&fq, 100);
    static struct sc_fq_entry e[40];
    uint64_t bytes[2] = {0, 0}, cost[2] = {0, 0};
    for (int i = 0; i < 40; i++) {
        int cls = i % 2 ? b : a;
        sc_fq_entry_init(&e[i], (unsigned)cls, cls ? SC_IO_WRITE : SC_IO_READ,
                         4096 * (uint64_t)(1 + i % 5));
        EXPECT(sc_fq_queue(&fq, &e[i]), 0);
    }
    struct sc_fq_stats st;
    sc_fq_stats(&fq, 0, &st);
    T_CHECK(st.queued == 40 && st.in_flight == 0, "40 queued, none in flight (got %llu, %llu)",
            (unsigned long long)st.queued, (unsigned long long)st.in_flight);
    struct sc_fq_entry *out[40];
    unsigned n = 0;
    uint64_t now = 0;
    while (n < 40) {
        struct sc_fq_entry *x = sc_fq_dispatch(&fq, now);
        if (!x) {
            now = sc_fq_next_ready(&fq, now);
            T_CHECK(now != UINT64_MAX, "requests are queued, so some time must be ready");
            continue;
        }
        bytes[x->class_id] += x->len;
        cost[x->class_id] += x->cost;
        out[n++] = x;
    }
    uint64_t flight_cost = 0;
    for (unsigned i = 0; i < 40; i++)
        flight_cost += out[i]->cost;
    sc_fq_stats(&fq, now, &st);
    T_CHECK(st.queued == 0 && st.in_flight == 40 && st.in_flight_cost == flight_cost,
            "all in flight: queued %llu, in flight %llu (cost %llu, want %llu)",
            (unsigned long long)st.queued, (unsigned long long)st.in_flight,
            (unsigned long long)st.in_flight_cost, (unsigned long long)flight_cost);
    for (unsigned i = 0; i < 25; i++)
        EXPECT(sc_fq_complete(&fq, out[i], now), 0);
    for (int c = 0; c < 2; c++) {
        struct sc_fq_class_stats cs;
        sc_fq_class_stats(&fq, (unsigned)c, &cs);
        unsigned done = 0;
        for (unsigned i = 0; i < 25; i++)
            done += out[i]->class_id == (unsigned)c;
        tr_step("class %d: dispatched %llu, completed %llu, in flight %llu, bytes %llu, cost "
                "%llu",
                c, (unsigned long long)cs.dispatched, (unsigned long long)cs.completed,
                (unsigned long long)cs.in_flight, (unsigned long long)cs.bytes,
                (unsigned long long)cs.cost);
        T_CHECK(cs.dispatched == 20 && cs.completed == done && cs.in_flight == 20 - done &&
                    cs.queued == 0 && cs.bytes == bytes[c] && cs.cost == cost[c],
                "class %d's counters do not add up (want 20 dispatched, %u completed, bytes "
                "%llu, cost %llu)",
                c, done, (unsigned long long)bytes[c], (unsigned long long)cost[c]);
    }
    sc_fq_stats(&fq, now, &st);
    T_CHECK(st.in_flight == 15, "15 still in flight, not %llu", (unsigned long long)st.in_flight);
}
END_TEST

/*
 * Virtual times grow for ever; when the floor passes 2^62 every class moves
 * back by the same amount. Two 1-share classes dispatching the most
 * expensive requests there are cross that line after about 4200
 * dispatches (2^40 * 1000 each): they must keep taking turns across it.
 */
START_TEST(vtimes_rebase)
{
    tr_reset();
    struct sc_disk_model m = {1000000000, 1000000000, 1000000000, 1000000000, 750 * US};
    T_CHECK(sc_fq_init(&fq, &m, 0) == 0, "init");
    int a = sc_fq_add_class(&fq, 1), b = sc_fq_add_class(&fq, 1);
    static struct sc_fq_entry e[2][4];
    for (int k = 0; k < 4; k++) {
        sc_fq_entry_init(&e[0][k], (unsigned)a, SC_IO_WRITE, SC_FQ_MAX_COST);
        sc_fq_entry_init(&e[1][k], (unsigned)b, SC_IO_WRITE, SC_FQ_MAX_COST);
        sc_fq_queue(&fq, &e[0][k]);
        sc_fq_queue(&fq, &e[1][k]);
    }
    uint64_t now = 0, max_floor = 0;
    unsigned got[2] = {0, 0}, rebased = 0;
    int last = -1, repeats = 0;
    for (int i = 0; i < 9000; i++) {
        now = sc_fq_next_ready(&fq, now);
        struct sc_fq_entry *x = sc_fq_dispatch(&fq, now);
        T_CHECK(x, "dispatch %d at next_ready returned NULL", i);
        T_CHECK(x->cost == SC_FQ_MAX_COST, "the cost should saturate at 2^40");
        got[x->class_id]++;
        repeats += (int)x->class_id == last;
        last = (int)x->class_id;
        sc_fq_complete(&fq, x, now);
        sc_fq_queue(&fq, x);
        struct sc_fq_stats st;
        sc_fq_stats(&fq, now, &st);
        if (st.floor < max_floor)
            rebased++;
        max_floor = st.floor;
    }
    tr_step("9000 dispatches of 2^40 ns at 1 share each: a %u, b %u; %u rebase(s); %d repeats",
            got[0], got[1], rebased, repeats);
    T_CHECK(rebased >= 1, "the floor should have crossed 2^62 and been rebased");
    T_CHECK(got[0] == 4500 && got[1] == 4500 && repeats == 0,
            "two equal classes must alternate across the rebase: a %u, b %u, %d repeats", got[0],
            got[1], repeats);
    uint64_t va, vb;
    struct sc_fq_class_stats cs;
    sc_fq_class_stats(&fq, 0, &cs);
    va = cs.vtime;
    sc_fq_class_stats(&fq, 1, &cs);
    vb = cs.vtime;
    T_CHECK(va < (UINT64_C(1) << 63) && vb < (UINT64_C(1) << 63),
            "vtimes should stay well inside 64 bits: %llu, %llu", (unsigned long long)va,
            (unsigned long long)vb);
}
END_TEST

/* ---- a long random run ------------------------------------------------------ */

/*
 * 20000 random steps (queue, cancel, dispatch until NULL, complete, move
 * the clock, change shares) on four classes, with a model-independent
 * ledger kept beside the queue. After every step:
 *   - the counters match the ledger (queued, in flight, their cost);
 *   - the bucket never holds more than the burst;
 *   - every dispatch came from a class with queued requests and the least
 *     virtual time (lowest id on a tie), and was that class's oldest
 *     request still queued;
 *   - the work handed out since the start is at most the burst plus the
 *     time since the start (every request here is below the burst).
 */
#define RN 512

static uint64_t rng_state = 88;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545F4914F6CDD1D);
}

START_TEST(random_calls_keep_the_invariants)
{
    tr_reset();
    const uint64_t t0 = 3 * MS;
    init_ssd(t0);
    for (int c = 0; c < 4; c++)
        sc_fq_add_class(&fq, (unsigned[]){1000, 200, 200, 1}[c]);
    static struct sc_fq_entry e[RN];
    static uint64_t order[RN]; /* queueing order, for FIFO checks */
    static int where[RN];      /* 0 idle, 1 queued, 2 in flight */
    memset(where, 0, sizeof where);
    uint64_t now = t0, handed = 0, stamp = 0, flight_cost = 0;
    unsigned queued = 0, flight = 0, dispatches = 0;
    for (int step = 0; step < 20000; step++) {
        unsigned what = (unsigned)(rng() % 10), i = (unsigned)(rng() % RN);
        if (what < 4 && where[i] == 0) {
            unsigned cls = (unsigned)(rng() % 4);
            sc_fq_entry_init(&e[i], cls, rng() % 3 ? SC_IO_READ : SC_IO_WRITE,
                             4096 * (1 + rng() % 32));
            T_CHECK(sc_fq_queue(&fq, &e[i]) == 0, "step %d: queue failed", step);
            where[i] = 1;
            order[i] = stamp++;
            queued++;
        } else if (what == 4 && where[i] == 1) {
            T_CHECK(sc_fq_cancel(&fq, &e[i]) == 0, "step %d: cancel failed", step);
            where[i] = 0;
            queued--;
        } else if (what == 5 && where[i] == 2) {
            T_CHECK(sc_fq_complete(&fq, &e[i], now) == 0, "step %d: complete failed", step);
            where[i] = 0;
            flight--;
            flight_cost -= e[i].cost;
        } else if (what == 6) {
            sc_fq_set_shares(&fq, (unsigned)(rng() % 4), 1 + (unsigned)(rng() % 1000));
        } else if (what == 7) {
            now += rng() % (300 * US);
        } else if (what >= 8) {
            for (;;) {
                /* what the pick should be, from the outside */
                unsigned want = UINT32_MAX;
                uint64_t least = 0;
                for (unsigned c = 0; c < 4; c++) {
                    struct sc_fq_class_stats cs;
                    sc_fq_class_stats(&fq, c, &cs);
                    if (cs.queued && (want == UINT32_MAX || cs.vtime < least)) {
                        want = c;
                        least = cs.vtime;
                    }
                }
                struct sc_fq_entry *x = sc_fq_dispatch(&fq, now);
                if (!x)
                    break;
                unsigned k = (unsigned)(x - e);
                T_CHECK(k < RN && where[k] == 1, "dispatch returned an entry that was not queued");
                T_CHECK(x->class_id == want,
                        "step %d: dispatched from class %u, but class %u had queued requests "
                        "and the least vtime (%llu)",
                        step, x->class_id, want, (unsigned long long)least);
                for (unsigned j = 0; j < RN; j++)
                    T_CHECK(!(where[j] == 1 && e[j].class_id == x->class_id && order[j] < order[k]),
                            "step %d: class %u sent a request while an older one waited", step,
                            x->class_id);
                where[k] = 2;
                queued--;
                flight++;
                flight_cost += x->cost;
                handed += x->cost;
                dispatches++;
            }
        }
        struct sc_fq_stats st;
        sc_fq_stats(&fq, now, &st);
        T_CHECK(st.queued == queued && st.in_flight == flight && st.in_flight_cost == flight_cost,
                "step %d: the queue counts %llu queued, %llu in flight (cost %llu); the "
                "ledger %u, %u (%llu)",
                step, (unsigned long long)st.queued, (unsigned long long)st.in_flight,
                (unsigned long long)st.in_flight_cost, queued, flight,
                (unsigned long long)flight_cost);
        T_CHECK(st.tokens <= st.burst, "step %d: the bucket holds %lld, above its burst %lld", step,
                (long long)st.tokens, (long long)st.burst);
        T_CHECK(handed <= (uint64_t)st.burst + (now - t0),
                "step %d: %llu ns of work handed out by t0 + %llu with a burst of %lld", step,
                (unsigned long long)handed, (unsigned long long)(now - t0), (long long)st.burst);
        uint64_t ready = sc_fq_next_ready(&fq, now);
        T_CHECK((queued == 0) == (ready == UINT64_MAX),
                "step %d: next_ready says %llu with %u queued", step, (unsigned long long)ready,
                queued);
    }
    tr_step("20000 random steps: %u dispatches, %u still queued, %u in flight", dispatches, queued,
            flight);
    T_CHECK(dispatches > 1000, "the run should dispatch plenty, not %u", dispatches);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fair_queue");
    TCase *tc = tcase_create("api");
    tcase_add_test(tc, cost_from_the_model);
    tcase_add_test(tc, cost_rounding_and_limits);
    tcase_add_test(tc, init_rejects_bad_models);
    tcase_add_test(tc, classes_and_null_arguments);
    tcase_add_test(tc, entry_life_and_cancel);
    tcase_add_test(tc, counters_add_up);
    tcase_add_test(tc, vtimes_rebase);
    tcase_add_test(tc, random_calls_keep_the_invariants);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
