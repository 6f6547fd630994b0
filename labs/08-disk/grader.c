/*
 * grader.c — lab 08: the fair queue and its token bucket (disk/fair_queue.c).
 *
 * The student writes five small functions of the I/O scheduler's core: the
 * bucket's level at a time (refill, capped at the burst), what a request
 * needs from the bucket (its cost, or a full bucket for a big one), which
 * class goes next (least virtual time, lowest id on a tie), what a dispatch
 * costs a class (virtual time), and no credit for idleness (the floor).
 *
 * The fair queue takes time as a number, so almost every check drives it by
 * hand, on a clock the check moves itself: the answers are exact, and need
 * no world. They go from the closest look to the widest:
 *
 *   1. the bucket alone: one class, requests of round costs, a clock moved
 *      nanosecond by nanosecond where it matters;
 *   2. the choice between classes, with a burst so large that the bucket
 *      never gets in the way: the order of dispatches, exactly;
 *   3. both together, against a fake disk that works at exactly the model's
 *      rate: what the disk holds, how busy it is kept, the shares;
 *   4. the fair queue on a shard, in both worlds, driven by sc_now() and
 *      timers, as the io_queue drives it.
 *
 * Most checks use a "unit" disk model: 1e9 IOPS and 1e9 bytes/s both ways,
 * so that a request of len bytes costs len + 1 disk ns (one ns for the
 * operation, one per byte), and costs are easy to pick.
 *
 * Every check tells its story with tr_step; a failing T_CHECK prints it,
 * then says what was expected and what happened.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reactor.h"
#include "disk/fair_queue.h"
#include "tests/harness.h"

#define US UINT64_C(1000)
#define MS UINT64_C(1000000)

/* Start the story of one check. */
static void begin(const char *name, int w)
{
    tr_reset();
    if (w < 0)
        tr_step("%s (the fair queue alone, on a clock moved by hand)", name);
    else
        tr_step("%s, %s world", name, t_backend_names[w]);
}

/* A deterministic generator: the same choices on every run (xorshift64*). */
static uint64_t rng_state;
static void rng_seed(uint64_t s)
{
    rng_state = s * UINT64_C(0x9E3779B97F4A7C15) + 1;
}
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545F4914F6CDD1D);
}
static uint64_t rng_below(uint64_t n)
{
    return rng() % n;
}

/* ---- requests ------------------------------------------------------------- */

#define NREQ 16384

/* A request as the io_queue would hold one: the entry, plus what we check. */
struct req {
    struct sc_fq_entry e;
    unsigned cls;
    unsigned seq; /* order of queueing within its class */
};

/* Slots are handed out in a ring: a check never has NREQ requests alive. */
static struct req reqs[NREQ];
static unsigned nreq;
static unsigned seq_of_class[SC_FQ_MAX_CLASSES];

static struct req *req_of(struct sc_fq_entry *e)
{
    return SC_CONTAINER_OF(e, struct req, e);
}

static void reqs_reset(void)
{
    nreq = 0;
    memset(seq_of_class, 0, sizeof seq_of_class);
}

/* The unit model: a request of len bytes costs len + 1 ns. */
static struct sc_disk_model unit_model(uint64_t goal)
{
    return (struct sc_disk_model){.read_iops = 1000000000,
                                  .write_iops = 1000000000,
                                  .read_bw = 1000000000,
                                  .write_bw = 1000000000,
                                  .latency_goal_ns = goal};
}

static void setup(struct sc_fair_queue *fq, const struct sc_disk_model *m, uint64_t now)
{
    int r = sc_fq_init(fq, m, now);
    T_CHECK(r == 0, "sc_fq_init returned %d (this part is given)", r);
    reqs_reset();
}

static unsigned add_class(struct sc_fair_queue *fq, unsigned shares)
{
    int id = sc_fq_add_class(fq, shares);
    T_CHECK(id >= 0, "sc_fq_add_class(%u) returned %d (this part is given)", shares, id);
    return (unsigned)id;
}

/* Queue a request of class cls with the given length; returns it. */
static struct req *queue_len(struct sc_fair_queue *fq, unsigned cls, enum sc_io_dir dir,
                             uint64_t len)
{
    struct req *r = &reqs[nreq++ % NREQ];
    r->cls = cls;
    r->seq = seq_of_class[cls]++;
    sc_fq_entry_init(&r->e, cls, dir, len);
    int rc = sc_fq_queue(fq, &r->e);
    T_CHECK(rc == 0, "sc_fq_queue returned %d for a request of class %u (this part is given)", rc,
            cls);
    return r;
}

/* With the unit model: queue a read that costs exactly `cost` disk ns. */
static struct req *queue_cost(struct sc_fair_queue *fq, unsigned cls, uint64_t cost)
{
    struct req *r = queue_len(fq, cls, SC_IO_READ, cost - 1);
    T_CHECK(r->e.cost == cost,
            "a %llu-byte read should cost %llu on the unit model, not %llu "
            "(this part is given)",
            (unsigned long long)(cost - 1), (unsigned long long)cost,
            (unsigned long long)r->e.cost);
    return r;
}

/* Dispatch at `now` until the queue says no; returns how many went. */
static unsigned drain_at(struct sc_fair_queue *fq, uint64_t now, char *order, size_t cap)
{
    unsigned n = 0;
    struct sc_fq_entry *e;
    while (n < NREQ && (e = sc_fq_dispatch(fq, now))) {
        if (order && n + 1 < cap) {
            order[n] = (char)('0' + req_of(e)->cls);
            order[n + 1] = 0;
        }
        n++;
    }
    return n;
}

static int64_t tokens_at(const struct sc_fair_queue *fq, uint64_t now)
{
    struct sc_fq_stats st;
    sc_fq_stats(fq, now, &st);
    return st.tokens;
}

static uint64_t vtime_of(const struct sc_fair_queue *fq, unsigned cls)
{
    struct sc_fq_class_stats st;
    sc_fq_class_stats(fq, cls, &st);
    return st.vtime;
}

static void expect_none(struct sc_fair_queue *fq, uint64_t now, const char *why)
{
    struct sc_fq_entry *e = sc_fq_dispatch(fq, now);
    tr_step("dispatch at t=%llu -> %s", (unsigned long long)now, e ? "a request" : "nothing");
    T_CHECK(!e, "at t=%llu nothing should be dispatched (%s), but a request of cost %llu was",
            (unsigned long long)now, why, (unsigned long long)e->cost);
}

static struct sc_fq_entry *expect_one(struct sc_fair_queue *fq, uint64_t now, const char *why)
{
    struct sc_fq_entry *e = sc_fq_dispatch(fq, now);
    tr_step("dispatch at t=%llu -> %s", (unsigned long long)now, e ? "a request" : "nothing");
    T_CHECK(e,
            "at t=%llu a request should be dispatched (%s), but sc_fq_dispatch returned NULL "
            "(the bucket holds %lld)",
            (unsigned long long)now, why, (long long)tokens_at(fq, now));
    return e;
}

/* ---- 1. the bucket ------------------------------------------------------- */

/*
 * Burst 750 us, requests of 100 us each. The bucket starts full: 7 go at
 * once and 50 us of tokens are left. The 8th needs 50 us more: one token a
 * nanosecond, so not at t0 + 49999, and at t0 + 50000. The clock starts at
 * 5 s, not 0: the refill counts the time since the last refill, not since 0.
 */
START_TEST(bucket_refills_one_token_per_ns)
{
    begin("bucket_refills_one_token_per_ns", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(750 * US);
    const uint64_t t0 = 5000 * MS;
    setup(&fq, &m, t0);
    unsigned a = add_class(&fq, 100);
    for (int i = 0; i < 20; i++)
        queue_cost(&fq, a, 100 * US);
    tr_step("burst 750 us, clock at 5 s; 20 requests of 100 us queued in one class");

    unsigned n = drain_at(&fq, t0, NULL, 0);
    tr_step("dispatch at t0 until NULL: %u went", n);
    T_CHECK(n == 7,
            "the bucket starts full (750 us of tokens): exactly 7 requests of 100 us fit at "
            "once, but %u were dispatched",
            n);
    T_CHECK(tokens_at(&fq, t0) == 50 * (int64_t)US,
            "after 7 requests of 100 us from a full 750 us bucket, 50000 tokens are left, "
            "not %lld",
            (long long)tokens_at(&fq, t0));
    uint64_t ready = sc_fq_next_ready(&fq, t0);
    tr_step("sc_fq_next_ready(t0) = t0 + %lld", (long long)(ready - t0));
    T_CHECK(ready == t0 + 50 * US,
            "the 8th request needs 50 us more tokens, at one a ns: ready at t0 + 50000, not "
            "t0 + %lld",
            (long long)(ready - t0));
    expect_none(&fq, t0 + 50 * US - 1, "one token short: 99999 in the bucket, 100000 needed");
    expect_one(&fq, t0 + 50 * US, "exactly 100000 tokens now");
    T_CHECK(tokens_at(&fq, t0 + 50 * US) == 0, "the bucket should be empty now, not hold %lld",
            (long long)tokens_at(&fq, t0 + 50 * US));
    expect_none(&fq, t0 + 150 * US - 1, "the bucket was empty at t0 + 50 us");
    expect_one(&fq, t0 + 150 * US, "100 us after it was empty");
    n = drain_at(&fq, t0 + 400 * US, NULL, 0);
    tr_step("dispatch at t0 + 400 us until NULL: %u went", n);
    T_CHECK(n == 2, "250 us after the bucket was last empty, 2 requests of 100 us fit, not %u", n);
}
END_TEST

/*
 * A disk left idle does not bank its idle time: after 10 s with nothing
 * queued, the bucket holds the burst (750 us), not 10 s of tokens. Of 100
 * requests queued then, 7 go; an hour later, still 750 us of tokens.
 */
START_TEST(bucket_capped_at_burst)
{
    begin("bucket_capped_at_burst", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(750 * US);
    setup(&fq, &m, 0);
    unsigned a = add_class(&fq, 1000);
    const uint64_t t = 10000 * MS;
    T_CHECK(tokens_at(&fq, t) == 750 * (int64_t)US,
            "after 10 s idle the bucket should hold its burst, 750000 tokens, not %lld",
            (long long)tokens_at(&fq, t));
    for (int i = 0; i < 100; i++)
        queue_cost(&fq, a, 100 * US);
    tr_step("idle 10 s, then 100 requests of 100 us queued");
    unsigned n = drain_at(&fq, t, NULL, 0);
    tr_step("dispatch at 10 s until NULL: %u went", n);
    T_CHECK(n == 7,
            "after any idle time the bucket holds at most the burst (750 us): 7 requests of "
            "100 us may go, but %u went. A bucket that banks idle time lets a burst of work "
            "flood the disk's own queue, which is what it is there to prevent",
            n);
    const uint64_t later = t + UINT64_C(3600) * 1000 * MS;
    T_CHECK(tokens_at(&fq, later) == 750 * (int64_t)US,
            "an hour later the bucket should hold 750000 tokens (the burst), not %lld",
            (long long)tokens_at(&fq, later));
    n = drain_at(&fq, later, NULL, 0);
    T_CHECK(n == 7, "an hour later, again 7 requests of 100 us should fit, not %u", n);
}
END_TEST

/*
 * A clock value earlier than one already seen (a caller's mistake) counts
 * as no time passing: it must neither refill the bucket (an unsigned
 * now - last would be a huge number) nor move the refill point back.
 */
START_TEST(bucket_time_going_back_adds_nothing)
{
    begin("bucket_time_going_back_adds_nothing", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(750 * US);
    const uint64_t t0 = 1000 * MS;
    setup(&fq, &m, t0);
    unsigned a = add_class(&fq, 1000);
    for (int i = 0; i < 20; i++)
        queue_cost(&fq, a, 100 * US);
    unsigned n = drain_at(&fq, t0, NULL, 0);
    tr_step("20 requests of 100 us, burst 750 us: %u went at t0 = 1 s (50 us left)", n);
    T_CHECK(n == 7, "7 requests should fit in the full bucket at t0, not %u", n);
    T_CHECK(tokens_at(&fq, t0 - MS) == 50 * (int64_t)US,
            "asked about t0 - 1 ms (before the last refill), the bucket should hold its 50000 "
            "tokens, not %lld: a time in the past adds nothing",
            (long long)tokens_at(&fq, t0 - MS));
    expect_none(&fq, t0 - MS, "a time before the last refill adds no tokens");
    expect_none(&fq, 0, "time 0, long before the last refill, adds no tokens either");
    expect_none(&fq, t0 + 50 * US - 1, "the refill still counts from t0");
    expect_one(&fq, t0 + 50 * US, "50 us after t0");
}
END_TEST

/*
 * A request that costs more than the burst can never find its cost in the
 * bucket. It goes when the bucket is full, and drives it below zero: the
 * requests after it wait until the disk has had time for it. Burst 750 us:
 * 100 us, then 2 ms, then 100 us. The first leaves 650 us; the big one waits
 * until the bucket is full again (100 us later), then leaves -1250 us; the
 * last needs 1350 us more.
 */
START_TEST(big_request_goes_when_full)
{
    begin("big_request_goes_when_full", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(750 * US);
    setup(&fq, &m, 0);
    unsigned a = add_class(&fq, 1000);
    queue_cost(&fq, a, 100 * US);
    queue_cost(&fq, a, 2 * MS);
    queue_cost(&fq, a, 100 * US);
    tr_step("burst 750 us; queued 100 us, 2 ms, 100 us in one class");
    expect_one(&fq, 0, "the first request, 100 us, from a full bucket");
    expect_none(&fq, 0, "the 2 ms request needs a full bucket, and 650 us is not full");
    uint64_t ready = sc_fq_next_ready(&fq, 0);
    T_CHECK(ready == 100 * US,
            "the 2 ms request goes when the bucket is full again: at 100000, not %llu "
            "(sc_fq_next_ready)",
            (unsigned long long)ready);
    expect_none(&fq, 100 * US - 1, "the bucket is one token short of full");
    struct sc_fq_entry *e = expect_one(&fq, 100 * US, "the bucket is full: the big one may go");
    T_CHECK(e->cost == 2 * MS,
            "the request dispatched should be the 2 ms one (FIFO), not one "
            "of cost %llu",
            (unsigned long long)e->cost);
    int64_t tok = tokens_at(&fq, 100 * US);
    T_CHECK(tok == 750 * (int64_t)US - 2 * (int64_t)MS,
            "a full 750 us bucket that pays 2 ms holds -1250000 tokens, not %lld: the debt is "
            "what makes later requests wait for the disk",
            (long long)tok);
    ready = sc_fq_next_ready(&fq, 100 * US);
    T_CHECK(ready == 1450 * US,
            "the last 100 us request needs 1350 us of refill after the debt: ready at "
            "1450000, not %llu",
            (unsigned long long)ready);
    expect_none(&fq, 1450 * US - 1, "still in debt");
    expect_one(&fq, 1450 * US, "debt paid, 100 us in the bucket");
}
END_TEST

/*
 * A stream of small requests in a class with 1000 shares, and one request
 * four times the burst in a class with 100 shares: the big one must still
 * go, and soon. It wakes at the floor, so its class is chosen next; from
 * then on nothing overtakes it, and the bucket is full at most a burst plus
 * one small request later.
 */
START_TEST(big_request_not_starved)
{
    begin("big_request_not_starved", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(750 * US);
    setup(&fq, &m, 0);
    unsigned a = add_class(&fq, 1000);
    unsigned b = add_class(&fq, 100);
    struct req *big = NULL;
    uint64_t now = 0, big_at = 0, queued_at = MS;
    int64_t debt_after = 0;
    unsigned queued_a = 0, steps = 0;
    tr_step("class a (1000 shares): 100 us requests, always 4 queued; class b (100 shares): "
            "one 3 ms request queued at 1 ms; burst 750 us");
    while (steps++ < 20000 && now < 200 * MS) {
        while (queued_a < 4) {
            queue_cost(&fq, a, 100 * US);
            queued_a++;
        }
        if (!big && now >= queued_at)
            big = queue_cost(&fq, b, 3 * MS);
        struct sc_fq_entry *e;
        while ((e = sc_fq_dispatch(&fq, now))) {
            if (req_of(e)->cls == a) {
                queued_a--;
            } else {
                big_at = now;
                debt_after = tokens_at(&fq, now);
            }
        }
        if (big_at)
            break;
        uint64_t next = sc_fq_next_ready(&fq, now);
        now = next > now ? next : now + 1;
        if (!big && now > queued_at)
            now = queued_at;
    }
    tr_step("the 3 ms request went at %llu ns (queued at %llu)", (unsigned long long)big_at,
            (unsigned long long)queued_at);
    T_CHECK(big_at, "the 3 ms request never went in 200 ms: a request bigger than the burst "
                    "must go when the bucket is full, or it starves");
    T_CHECK(big_at <= queued_at + 750 * US + 100 * US,
            "the 3 ms request was queued at 1 ms and went at %llu: it wakes at the floor (so "
            "its class is chosen first) and waits for a full bucket, at most 850 us",
            (unsigned long long)big_at);
    T_CHECK(debt_after == 750 * (int64_t)US - 3 * (int64_t)MS,
            "after the 3 ms request left a full bucket, the bucket should hold -2250000, not "
            "%lld",
            (long long)debt_after);
}
END_TEST

/* ---- 2. the choice between classes -------------------------------------- */

/*
 * Three classes with 100, 1000 and 500 shares, 30 requests of 10 us each,
 * a burst of 60 s (the bucket never says no). A dispatch adds 10 us *
 * 1000 / shares to its class: 100000, 10000 and 20000. All start at 0: the
 * tie goes 0, then 1, then 2; then class 1 twice for each of class 2's,
 * ties going to 1, until at 100000 all three tie again and class 0 goes.
 */
START_TEST(least_vtime_first)
{
    begin("least_vtime_first", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(SC_FQ_MAX_LATENCY_GOAL_NS);
    setup(&fq, &m, 0);
    unsigned c0 = add_class(&fq, 100), c1 = add_class(&fq, 1000), c2 = add_class(&fq, 500);
    add_class(&fq, 1); /* class 3: never queued, vtime 0, must never be chosen */
    for (int i = 0; i < 30; i++) {
        queue_cost(&fq, c0, 10 * US);
        queue_cost(&fq, c1, 10 * US);
        queue_cost(&fq, c2, 10 * US);
    }
    tr_step("classes 0 (100 shares), 1 (1000), 2 (500) with 30 requests of 10 us each; class "
            "3 idle");
    char order[24] = "";
    for (int i = 0; i < 17; i++) {
        struct sc_fq_entry *e = sc_fq_dispatch(&fq, 0);
        T_CHECK(e, "dispatch %d returned NULL with 60 requests queued and a 60 s burst", i);
        order[i] = (char)('0' + req_of(e)->cls);
    }
    tr_step("the first 17 dispatches came from classes \"%s\"", order);
    T_CHECK(strcmp(order, "01211211211211210") == 0,
            "the first 17 dispatches should come from classes \"01211211211211210\" (least "
            "vtime first, the lowest id on a tie, each dispatch adding cost * 1000 / shares), "
            "not \"%s\"",
            order);
    T_CHECK(vtime_of(&fq, c0) == 200000 && vtime_of(&fq, c1) == 100000 &&
                vtime_of(&fq, c2) == 100000,
            "after those 17 dispatches the vtimes should be 200000, 100000, 100000, not %llu, "
            "%llu, %llu",
            (unsigned long long)vtime_of(&fq, c0), (unsigned long long)vtime_of(&fq, c1),
            (unsigned long long)vtime_of(&fq, c2));
}
END_TEST

/* Equal shares, queued in reverse id order: ids decide, not queueing order. */
START_TEST(ties_go_to_lowest_id)
{
    begin("ties_go_to_lowest_id", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(SC_FQ_MAX_LATENCY_GOAL_NS);
    setup(&fq, &m, 0);
    for (int i = 0; i < 4; i++)
        add_class(&fq, 250);
    for (int c = 3; c >= 0; c--)
        queue_cost(&fq, (unsigned)c, 10 * US);
    tr_step("4 classes of 250 shares; one 10 us request queued in 3, 2, 1, 0 (that order)");
    char order[16] = "";
    unsigned n = drain_at(&fq, 0, order, sizeof order);
    tr_step("dispatched from classes \"%s\"", order);
    T_CHECK(n == 4 && strcmp(order, "0123") == 0,
            "equal vtimes: the lowest id goes first, whatever the order of queueing; the "
            "dispatches should be \"0123\", not \"%s\"",
            order);
    for (int c = 3; c >= 0; c--) {
        queue_cost(&fq, (unsigned)c, 10 * US);
        queue_cost(&fq, (unsigned)c, 10 * US);
    }
    tr_step("two more each, queued 3, 3, 2, 2, 1, 1, 0, 0");
    n = drain_at(&fq, 0, order, sizeof order);
    tr_step("dispatched from classes \"%s\"", order);
    T_CHECK(n == 8 && strcmp(order, "01230123") == 0,
            "with equal shares and equal costs the classes take turns in id order: "
            "\"01230123\", not \"%s\"",
            order);
}
END_TEST

/* One request in class `cls`, dispatched alone: what did it add to the vtime?
 * The clock moves far ahead each time, so the bucket is always full. */
static uint64_t charge_clock;

static void expect_charge(struct sc_fair_queue *fq, unsigned cls, uint64_t cost, uint64_t want)
{
    queue_cost(fq, cls, cost);
    uint64_t before = vtime_of(fq, cls);
    struct sc_fq_class_stats st;
    sc_fq_class_stats(fq, cls, &st);
    charge_clock += 2 * SC_FQ_MAX_COST;
    struct sc_fq_entry *e = sc_fq_dispatch(fq, charge_clock);
    T_CHECK(e, "a lone request of class %u was not dispatched (a full bucket)", cls);
    uint64_t after = vtime_of(fq, cls);
    tr_step("class %u (%u shares) dispatched %llu ns: vtime %llu -> %llu", cls, st.shares,
            (unsigned long long)cost, (unsigned long long)before, (unsigned long long)after);
    T_CHECK(after - before == want,
            "a request of %llu disk ns in a class of %u shares should add %llu to its vtime "
            "(cost * %u / shares, multiplied first, in 64 bits), not %lld",
            (unsigned long long)cost, st.shares, (unsigned long long)want, SC_FQ_VTIME_SCALE,
            (long long)(after - before));
}

START_TEST(charge_scaled_by_shares)
{
    begin("charge_scaled_by_shares", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(SC_FQ_MAX_LATENCY_GOAL_NS);
    setup(&fq, &m, 0);
    charge_clock = 0;
    unsigned c[6];
    static const unsigned shares[6] = {1000, 100, 1, 300, 7, 1};
    for (int i = 0; i < 6; i++)
        c[i] = add_class(&fq, shares[i]);
    expect_charge(&fq, c[0], 1000, 1000);        /* the most shares: plain ns */
    expect_charge(&fq, c[1], 1000, 10000);       /* a tenth of the shares */
    expect_charge(&fq, c[2], 1000, 1000000);     /* one share */
    expect_charge(&fq, c[3], 14096, 46986);      /* not 14096 / 300 * 1000 = 46000 */
    expect_charge(&fq, c[4], 5 * MS, 714285714); /* 5e9 does not fit in 32 bits */
    expect_charge(&fq, c[5], SC_FQ_MAX_COST, SC_FQ_MAX_COST * 1000); /* 2^40 * 1000 */
    tr_step("set class 1's shares to 250; its next 500 ns should add 2000");
    int r = sc_fq_set_shares(&fq, c[1], 250);
    T_CHECK(r == 0, "sc_fq_set_shares returned %d (this part is given)", r);
    expect_charge(&fq, c[1], 500, 2000);
    T_CHECK(vtime_of(&fq, c[0]) >= 1000,
            "class 0 lost virtual time when other classes dispatched (%llu)",
            (unsigned long long)vtime_of(&fq, c[0]));
}
END_TEST

/* Random sizes, three classes, queueing and dispatching interleaved: each
 * class's requests leave in the order they came. */
START_TEST(fifo_within_class)
{
    begin("fifo_within_class", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(750 * US);
    setup(&fq, &m, 0);
    for (int i = 0; i < 3; i++)
        add_class(&fq, i == 0 ? 1000 : i == 1 ? 300 : 40);
    rng_seed(8);
    unsigned next_seq[3] = {0, 0, 0}, out = 0, in = 0;
    uint64_t now = 0;
    tr_step("600 requests of 1 to 200 us in classes of 1000, 300 and 40 shares, queued in a "
            "random order between dispatches");
    for (unsigned step = 0; step < 100000 && out < 600; step++) {
        unsigned burst = in < 600 ? (unsigned)rng_below(8) : 0;
        for (unsigned k = 0; k < burst && in < 600; k++, in++)
            queue_cost(&fq, (unsigned)rng_below(3), 1 + rng_below(200 * US));
        struct sc_fq_entry *e;
        while ((e = sc_fq_dispatch(&fq, now))) {
            struct req *r = req_of(e);
            T_CHECK(r->seq == next_seq[r->cls],
                    "class %u dispatched its request #%u while #%u (queued earlier) was still "
                    "waiting: within a class, requests leave first in, first out",
                    r->cls, r->seq, next_seq[r->cls]);
            next_seq[r->cls]++;
            out++;
        }
        now += rng_below(150 * US);
    }
    tr_step("dispatched %u of 600 (%u, %u, %u per class)", out, next_seq[0], next_seq[1],
            next_seq[2]);
    T_CHECK(out == 600, "only %u of 600 requests were dispatched", out);
}
END_TEST

/*
 * Two busy classes, 1000 and 100 shares, requests of equal cost (10 us):
 * the 100-share class's vtime grows 10 times as fast, and the two never
 * drift apart by more than one charge (100000). Over 11000 dispatches
 * that leaves exactly one way: 10000 and 1000.
 */
START_TEST(shares_1000_to_100_equal_costs)
{
    begin("shares_1000_to_100_equal_costs", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(SC_FQ_MAX_LATENCY_GOAL_NS);
    setup(&fq, &m, 0);
    unsigned a = add_class(&fq, 1000), b = add_class(&fq, 100);
    unsigned got[2] = {0, 0};
    for (int i = 0; i < 20; i++) {
        queue_cost(&fq, a, 10 * US);
        queue_cost(&fq, b, 10 * US);
    }
    tr_step("a (1000 shares) and b (100 shares), always 20 requests of 10 us queued; 11000 "
            "dispatches");
    for (int i = 0; i < 11000; i++) {
        struct sc_fq_entry *e = sc_fq_dispatch(&fq, 0);
        T_CHECK(e, "dispatch %d returned NULL with both classes busy", i);
        unsigned cls = req_of(e)->cls;
        got[cls]++;
        queue_cost(&fq, cls, 10 * US);
    }
    tr_step("a got %u dispatches, b got %u", got[a], got[b]);
    T_CHECK(got[a] == 10000 && got[b] == 1000,
            "with 1000:100 shares and equal costs, 11000 dispatches split exactly 10000:1000 "
            "(the vtimes never drift apart by more than one charge), not %u:%u",
            got[a], got[b]);
}
END_TEST

/*
 * A class that idled earns nothing. a (100 shares) runs alone for 1000
 * requests of 10 us: its vtime reaches 1000 * 100000 = 1e8, and the floor
 * (a's vtime when it was last picked) is 1e8 - 100000. Then b (1000
 * shares, brand new, vtime 0) queues: it must start at the floor, not at
 * 0. So b goes first (it is just below a), and then the two share 10:1:
 * of the next 110 dispatches b gets 100 and a 10. Had b kept its 0, it
 * would take all 110 and more: 1000 requests in a row.
 */
START_TEST(idle_class_earns_no_credit)
{
    begin("idle_class_earns_no_credit", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(SC_FQ_MAX_LATENCY_GOAL_NS);
    setup(&fq, &m, 0);
    unsigned a = add_class(&fq, 100), b = add_class(&fq, 1000), d = add_class(&fq, 1000);
    for (int i = 0; i < 1000; i++)
        queue_cost(&fq, a, 10 * US);
    unsigned n = drain_at(&fq, 0, NULL, 0);
    tr_step("a (100 shares) dispatched %u requests of 10 us alone: vtime %llu", n,
            (unsigned long long)vtime_of(&fq, a));
    T_CHECK(n == 1000 && vtime_of(&fq, a) == 100000000,
            "a alone: 1000 requests of 10 us at 100 shares should go and bring its vtime to "
            "100000000 (sent %u, vtime %llu)",
            n, (unsigned long long)vtime_of(&fq, a));
    for (int i = 0; i < 300; i++)
        queue_cost(&fq, a, 10 * US);
    for (int i = 0; i < 200; i++)
        queue_cost(&fq, b, 10 * US);
    tr_step("queued 300 more in a, then 200 in b (1000 shares, never active before): b's vtime "
            "is %llu",
            (unsigned long long)vtime_of(&fq, b));
    T_CHECK(vtime_of(&fq, b) == 99900000,
            "b was idle while a ran: when it queues, its vtime should be raised to the floor, "
            "99900000 (a's vtime when a was last picked, before that dispatch was charged), "
            "not %llu",
            (unsigned long long)vtime_of(&fq, b));
    char order[128] = "";
    n = 0;
    unsigned got[2] = {0, 0};
    for (int i = 0; i < 110; i++) {
        struct sc_fq_entry *e = sc_fq_dispatch(&fq, 0);
        T_CHECK(e, "dispatch returned NULL with both classes busy");
        got[req_of(e)->cls == b]++;
        order[i] = (char)('0' + req_of(e)->cls);
    }
    tr_step("the next 110 dispatches: a %u, b %u (\"%.24s...\")", got[0], got[1], order);
    T_CHECK(order[0] == '0' + (char)b,
            "b, at the floor, is just below a: b's request should go first, but class %c's did",
            order[0]);
    T_CHECK(got[1] == 100 && got[0] == 10,
            "from the floor, b (1000 shares) and a (100 shares) split 110 dispatches 100:10, "
            "not %u:%u. A b that kept its vtime of 0 would take them all",
            got[1], got[0]);

    /* Debt is kept: d runs one huge request, idles, and wakes above the floor. */
    queue_cost(&fq, d, 1000 * MS);
    drain_at(&fq, 0, NULL, 0);
    uint64_t vd = vtime_of(&fq, d);
    struct sc_fq_stats st;
    sc_fq_stats(&fq, 0, &st);
    tr_step("d (1000 shares) dispatched one 1 s request and idles: vtime %llu, floor %llu",
            (unsigned long long)vd, (unsigned long long)st.floor);
    T_CHECK(vd > st.floor,
            "d's vtime (%llu) should be above the floor (%llu) after its 1 s "
            "request",
            (unsigned long long)vd, (unsigned long long)st.floor);
    queue_cost(&fq, d, 10 * US);
    T_CHECK(vtime_of(&fq, d) == vd,
            "d woke with vtime %llu above the floor %llu: it should keep it (idling pays no "
            "debt), but now has %llu",
            (unsigned long long)vd, (unsigned long long)st.floor,
            (unsigned long long)vtime_of(&fq, d));
}
END_TEST

/* ---- 3. against a fake disk ---------------------------------------------- */

/*
 * sc_fq_next_ready must tell the truth: whatever the state, at the time it
 * names (and not one ns before) a request can be dispatched. Random costs,
 * a tenth of them bigger than the burst, random times of asking.
 */
START_TEST(next_ready_tells_the_truth)
{
    begin("next_ready_tells_the_truth", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(750 * US);
    setup(&fq, &m, 7 * MS);
    for (int i = 0; i < 3; i++)
        add_class(&fq, i == 0 ? 900 : i == 1 ? 90 : 9);
    rng_seed(80);
    uint64_t now = 7 * MS;
    unsigned went = 0, waited = 0;
    tr_step("3 classes (900, 90, 9 shares); 3000 rounds of: queue a few requests of 1 us to "
            "2.25 ms, ask sc_fq_next_ready, try one ns early and on time");
    for (int round = 0; round < 3000; round++) {
        for (unsigned k = rng_below(3); k > 0; k--) {
            uint64_t cost =
                rng_below(10) == 0 ? 750 * US + rng_below(1500 * US) : 1 * US + rng_below(200 * US);
            queue_cost(&fq, (unsigned)rng_below(3), cost);
        }
        uint64_t t = sc_fq_next_ready(&fq, now);
        struct sc_fq_stats st;
        sc_fq_stats(&fq, now, &st);
        if (st.queued == 0) {
            T_CHECK(t == UINT64_MAX,
                    "nothing queued: sc_fq_next_ready should say UINT64_MAX, "
                    "not %llu",
                    (unsigned long long)t);
            now += rng_below(100 * US);
            continue;
        }
        T_CHECK(t >= now && t != UINT64_MAX,
                "with %llu requests queued at t=%llu, sc_fq_next_ready said %llu",
                (unsigned long long)st.queued, (unsigned long long)now, (unsigned long long)t);
        if (t > now) {
            waited++;
            T_CHECK(!sc_fq_dispatch(&fq, t - 1),
                    "round %d: sc_fq_next_ready said %llu, but a request went at %llu, one ns "
                    "earlier (the bucket held %lld)",
                    round, (unsigned long long)t, (unsigned long long)(t - 1),
                    (long long)tokens_at(&fq, t - 1));
        }
        T_CHECK(sc_fq_dispatch(&fq, t),
                "round %d: sc_fq_next_ready said %llu, but nothing went then (the bucket held "
                "%lld)",
                round, (unsigned long long)t, (long long)tokens_at(&fq, t));
        went++;
        now = t + rng_below(30 * US);
    }
    tr_step("%u dispatches on the named time, %u of them after a wait", went, waited);
    T_CHECK(waited > 100,
            "only %u of %u dispatches had to wait for the bucket: with requests "
            "of up to 2.25 ms and a 750 us burst, most should",
            waited, went);
}
END_TEST

/*
 * A fake disk that works exactly as the model says: one request at a time,
 * each for its cost. Its backlog is the work handed to it and not yet done.
 * Tokens plus backlog never grow (a dispatch moves cost from one to the
 * other; time adds to the bucket what it takes from the backlog) except
 * while the disk idles, and then only up to the burst. So:
 *   - the backlog never exceeds the burst (all requests here are smaller);
 *   - while both classes stay busy, the disk never idles: a full bucket
 *     means an empty disk, and a request would have gone;
 *   - after 100 ms of idling, a burst of 500 requests still meets a bucket
 *     of 750 us, not of 100 ms.
 * Phase 1: two busy classes (1000 and 100 shares; 4 KiB reads and 128 KiB
 * writes on a realistic model) for 200 ms. Phase 2: 100 ms idle. Phase 3:
 * 500 requests queued at once.
 */
static uint64_t disk_free_at, disk_idle, max_backlog;
static struct {
    struct sc_fq_entry *e;
    uint64_t end; /* when the disk finishes it */
} disk_q[NREQ];
static unsigned disk_head, disk_tail;
static const char *disk_phase;

/* The disk takes a request at `now`: it starts when the disk is free. */
static void disk_take(struct sc_fq_entry *e, uint64_t now)
{
    if (disk_free_at < now) {
        disk_idle += now - disk_free_at;
        disk_free_at = now;
    }
    disk_free_at += e->cost;
    disk_q[disk_tail % NREQ].e = e;
    disk_q[disk_tail++ % NREQ].end = disk_free_at;
    if (disk_free_at - now > max_backlog)
        max_backlog = disk_free_at - now;
    T_CHECK(disk_free_at - now <= 750 * US,
            "%s: at t=%llu the fake disk (working at the model's rate) was handed a request that "
            "brought its backlog to %llu ns of work: the bucket must keep it at most the burst, "
            "750000. (An idle disk banks no more than the burst; a request leaves only when the "
            "bucket holds its cost.)",
            disk_phase, (unsigned long long)now, (unsigned long long)(disk_free_at - now));
}

/* Complete, in order, what the disk has finished by `now`. */
static void disk_run(struct sc_fair_queue *fq, uint64_t now)
{
    while (disk_head != disk_tail && disk_q[disk_head % NREQ].end <= now) {
        int r = sc_fq_complete(fq, disk_q[disk_head % NREQ].e, disk_q[disk_head % NREQ].end);
        disk_head++;
        T_CHECK(r == 0, "sc_fq_complete returned %d (this part is given)", r);
    }
}

START_TEST(disk_holds_at_most_the_burst)
{
    begin("disk_holds_at_most_the_burst", -1);
    struct sc_fair_queue fq;
    const struct sc_disk_model m = {.read_iops = 100000,
                                    .write_iops = 20000,
                                    .read_bw = 2000000000,
                                    .write_bw = 1000000000,
                                    .latency_goal_ns = 750 * US};
    setup(&fq, &m, 0);
    unsigned a = add_class(&fq, 1000), b = add_class(&fq, 100);
    const uint64_t rd = sc_fq_cost(&fq, SC_IO_READ, 4096),
                   wr = sc_fq_cost(&fq, SC_IO_WRITE, 131072);
    tr_step("model: 100k/20k IOPS, 2/1 GB/s, burst 750 us: a 4 KiB read costs %llu, a 128 KiB "
            "write %llu",
            (unsigned long long)rd, (unsigned long long)wr);
    disk_free_at = disk_idle = max_backlog = 0;
    disk_head = disk_tail = 0;
    uint64_t now = 0, cost[2] = {0, 0}, idle_in_phase1 = 0;
    unsigned queued[2] = {0, 0}, steps = 0;
    /* phase 1: both busy for 200 ms */
    disk_phase = "phase 1 (both classes busy)";
    while (now < 200 * MS && steps++ < 1000000) {
        while (queued[0] < 100) {
            queue_len(&fq, a, SC_IO_READ, 4096);
            queued[0]++;
        }
        while (queued[1] < 100) {
            queue_len(&fq, b, SC_IO_WRITE, 131072);
            queued[1]++;
        }
        struct sc_fq_entry *e;
        while ((e = sc_fq_dispatch(&fq, now))) {
            unsigned cls = req_of(e)->cls;
            queued[cls]--;
            cost[cls] += e->cost;
            disk_take(e, now);
        }
        disk_run(&fq, now);
        uint64_t next = sc_fq_next_ready(&fq, now);
        now = next > now ? next : now + 1;
    }
    idle_in_phase1 = disk_idle;
    T_CHECK(now >= 200 * MS,
            "phase 1 stopped at t=%llu after a million rounds of dispatch and "
            "sc_fq_next_ready: the time it names should be one at which a request can go",
            (unsigned long long)now);
    tr_step("phase 1, 200 ms busy: a dispatched %llu ns of work, b %llu; the disk idled %llu "
            "ns; its backlog peaked at %llu",
            (unsigned long long)cost[a], (unsigned long long)cost[b],
            (unsigned long long)idle_in_phase1, (unsigned long long)max_backlog);
    T_CHECK(idle_in_phase1 <= 2 * MS,
            "with both classes busy the disk idled %llu ns of 200 ms: the bucket refills one "
            "token per ns, so it should let the disk work all the time (<= 2 ms idle)",
            (unsigned long long)idle_in_phase1);
    uint64_t diff = cost[a] > 10 * cost[b] ? cost[a] - 10 * cost[b] : 10 * cost[b] - cost[a];
    T_CHECK(diff <= 10 * wr + 1000,
            "over 200 ms a (1000 shares) should get 10 times b's (100 shares) disk time, give "
            "or take one of b's charges (%llu): a got %llu, b %llu",
            (unsigned long long)(10 * wr), (unsigned long long)cost[a],
            (unsigned long long)cost[b]);

    /* phase 2: let the queued requests drain, then idle for 100 ms */
    disk_phase = "phase 2 (draining)";
    for (unsigned k = 0; k < 100000; k++) {
        struct sc_fq_entry *e;
        while ((e = sc_fq_dispatch(&fq, now)))
            disk_take(e, now);
        uint64_t next = sc_fq_next_ready(&fq, now);
        if (next == UINT64_MAX)
            break;
        now = next > now ? next : now + 1;
    }
    now += 100 * MS;
    disk_run(&fq, now);
    tr_step("drained, then 100 ms idle; t=%llu", (unsigned long long)now);

    /* phase 3: 500 requests at once */
    disk_phase = "phase 3 (500 requests queued at once after 100 ms idle)";
    max_backlog = 0;
    for (int i = 0; i < 250; i++) {
        queue_len(&fq, a, SC_IO_READ, 4096);
        queue_len(&fq, b, SC_IO_WRITE, 131072);
    }
    unsigned first = 0, total = 0;
    for (unsigned k = 0; k < 100000 && total < 500; k++) {
        struct sc_fq_entry *e;
        while ((e = sc_fq_dispatch(&fq, now))) {
            disk_take(e, now);
            total++;
        }
        if (k == 0)
            first = total;
        disk_run(&fq, now);
        uint64_t next = sc_fq_next_ready(&fq, now);
        if (next == UINT64_MAX)
            break;
        now = next > now ? next : now + 1;
    }
    tr_step("phase 3: 500 requests queued at once after the idle time: %u went at once; %u "
            "in all; backlog peaked at %llu",
            first, total, (unsigned long long)max_backlog);
    T_CHECK(total == 500, "only %u of the 500 requests went", total);
}
END_TEST

/* The same calls give the same answers, wherever the entries live in memory. */
static uint64_t run_workload(struct req *slots, int stride, char *trace, size_t cap)
{
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(500 * US);
    int r = sc_fq_init(&fq, &m, 0);
    T_CHECK(r == 0, "sc_fq_init returned %d", r);
    for (int i = 0; i < 4; i++)
        add_class(&fq, i == 0 ? 1000 : i == 1 ? 500 : i == 2 ? 500 : 13);
    rng_seed(808);
    uint64_t h = UINT64_C(1469598103934665603), now = 0;
    unsigned used = 0, n = 0, seq[4] = {0, 0, 0, 0};
    for (int round = 0; round < 2000; round++) {
        for (unsigned k = rng_below(3); k > 0 && used < 2000; k--) {
            struct req *q = &slots[stride * (int)used++];
            q->cls = (unsigned)rng_below(4);
            q->seq = seq[q->cls]++;
            sc_fq_entry_init(&q->e, q->cls, rng_below(2) ? SC_IO_WRITE : SC_IO_READ,
                             rng_below(300 * US));
            sc_fq_queue(&fq, &q->e);
        }
        struct sc_fq_entry *e;
        while ((e = sc_fq_dispatch(&fq, now))) {
            struct req *q = req_of(e);
            h = (h ^ (q->cls * 100000u + q->seq)) * UINT64_C(1099511628211);
            h = (h ^ now) * UINT64_C(1099511628211);
            if (n + 1 < cap) {
                trace[n++] = (char)('0' + q->cls);
                trace[n] = 0;
            }
        }
        now += rng_below(200 * US);
    }
    return h;
}

START_TEST(same_calls_same_answers)
{
    begin("same_calls_same_answers", -1);
    static struct req low_to_high[2000], high_to_low[2000];
    static char t1[4096], t2[4096];
    uint64_t h1 = run_workload(low_to_high, 1, t1, sizeof t1);
    uint64_t h2 = run_workload(&high_to_low[1999], -1, t2, sizeof t2);
    tr_step("a seeded workload run twice, entries at rising then at falling addresses: "
            "hashes %016llx and %016llx",
            (unsigned long long)h1, (unsigned long long)h2);
    size_t i = 0;
    while (t1[i] && t1[i] == t2[i])
        i++;
    T_CHECK(h1 == h2 && strcmp(t1, t2) == 0,
            "the same calls gave different dispatches (first difference at dispatch %zu: "
            "class %c, then class %c): the choice must depend on vtimes and ids only, never on "
            "where an entry lives in memory or on anything else",
            i, t1[i] ? t1[i] : '-', t2[i] ? t2[i] : '-');
}
END_TEST

/* Bad input gets an error, not a crash (this part is mostly given). */
START_TEST(bad_input_rejected)
{
    begin("bad_input_rejected", -1);
    struct sc_fair_queue fq;
    struct sc_disk_model m = unit_model(0);
    struct sc_disk_model zero = m;
    zero.write_bw = 0;
    int r;
#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        r = (call);                                                                                \
        tr_step("%s -> %d", #call, r);                                                             \
        T_CHECK(r == (want), "%s should return %s (%d), not %d", #call, #want, (want), r);         \
    } while (0)
    EXPECT(sc_fq_init(&fq, &zero, 0), -EINVAL);
    EXPECT(sc_fq_init(&fq, NULL, 0), -EINVAL);
    EXPECT(sc_fq_init(&fq, &m, 0), 0);
    struct sc_fq_stats st;
    sc_fq_stats(&fq, 0, &st);
    T_CHECK(st.burst == (int64_t)SC_FQ_DEFAULT_LATENCY_GOAL_NS,
            "a model with latency_goal_ns 0 should get the default burst (750 us), not %lld",
            (long long)st.burst);
    EXPECT(sc_fq_add_class(&fq, 0), -EINVAL);
    EXPECT(sc_fq_add_class(&fq, SC_FQ_MAX_SHARES + 1), -EINVAL);
    for (int i = 0; i < SC_FQ_MAX_CLASSES; i++)
        T_CHECK(sc_fq_add_class(&fq, 1 + (unsigned)i) == i, "class %d was not given id %d", i, i);
    EXPECT(sc_fq_add_class(&fq, 10), -ENOSPC);
    EXPECT(sc_fq_set_shares(&fq, SC_FQ_MAX_CLASSES, 10), -EINVAL);
    EXPECT(sc_fq_set_shares(&fq, 0, 0), -EINVAL);
    struct sc_fq_entry e;
    sc_fq_entry_init(&e, SC_FQ_MAX_CLASSES, SC_IO_READ, 4096);
    EXPECT(sc_fq_queue(&fq, &e), -EINVAL);
    sc_fq_entry_init(&e, 0, SC_IO_READ, 4096);
    e.dir = 7;
    EXPECT(sc_fq_queue(&fq, &e), -EINVAL);
    sc_fq_entry_init(&e, 0, SC_IO_READ, 4096);
    EXPECT(sc_fq_complete(&fq, &e, 0), -EINVAL);
    EXPECT(sc_fq_queue(&fq, &e), 0);
    EXPECT(sc_fq_queue(&fq, &e), -EBUSY);
    T_CHECK(sc_fq_dispatch(&fq, 0) == &e, "the one queued request should be dispatched");
    EXPECT(sc_fq_complete(&fq, &e, 0), 0);
    EXPECT(sc_fq_complete(&fq, &e, 0), -EINVAL);
    T_CHECK(sc_fq_dispatch(&fq, 0) == NULL, "an empty queue dispatches nothing");
    T_CHECK(sc_fq_next_ready(&fq, 0) == UINT64_MAX, "an empty queue is never ready (UINT64_MAX)");
#undef EXPECT
}
END_TEST

/* ---- 4. on a shard, both worlds ------------------------------------------ */

/*
 * The io_queue's loop in miniature: 200 4 KiB reads (1000 shares) and 200
 * 128 KiB writes (100 shares) queued at once; a timer pumps the queue at
 * sc_now() and re-arms itself at sc_fq_next_ready(); a fake disk completes
 * each request when the model says (one timer each). In either world: all
 * 400 complete, each class in FIFO order, the shares hold while both are
 * busy (they do not depend on time), and the work handed out by time t is
 * never more than the burst plus the time since the start (the bucket's
 * promise, whatever the clock does).
 */
#define PUMP_N 400

static struct {
    struct sc_fair_queue fq;
    struct sc_timer pump;
    struct sc_promise done;
    struct {
        struct sc_fq_entry e;
        struct sc_timer t;
        unsigned cls, seq;
    } r[PUMP_N];
    uint64_t t0, burst, disk_free_at, handed, worst_over, cost[2];
    unsigned next_seq[2], completed, dispatched[2];
    int64_t split_diff; /* cost[a] - 10 cost[b] when a's last request went */
    bool fifo_broken, split_seen;
    int error;
} P;

static void pump_complete(void *arg)
{
    struct sc_fq_entry *e = arg;
    int r = sc_fq_complete(&P.fq, e, sc_now());
    if (r && !P.error)
        P.error = r;
    if (++P.completed == PUMP_N)
        sc_promise_set_value(&P.done, 0);
}

static void pump_fire(void *arg)
{
    (void)arg;
    uint64_t now = sc_now();
    struct sc_fq_entry *e;
    while ((e = sc_fq_dispatch(&P.fq, now))) {
        unsigned i = (unsigned)(SC_CONTAINER_OF(e, __typeof__(P.r[0]), e) - P.r);
        unsigned cls = P.r[i].cls;
        if (P.r[i].seq != P.next_seq[cls])
            P.fifo_broken = true;
        P.next_seq[cls]++;
        P.dispatched[cls]++;
        P.cost[cls] += e->cost;
        if (cls == 0 && P.dispatched[0] == PUMP_N / 2 && P.dispatched[1] < PUMP_N / 2) {
            P.split_seen = true;
            P.split_diff = (int64_t)P.cost[0] - 10 * (int64_t)P.cost[1];
        }
        P.handed += e->cost;
        uint64_t allowed = P.burst + (now - P.t0);
        if (P.handed > allowed && P.handed - allowed > P.worst_over)
            P.worst_over = P.handed - allowed;
        P.disk_free_at = (P.disk_free_at > now ? P.disk_free_at : now) + e->cost;
        sc_timer_init(&P.r[i].t, pump_complete, e);
        int r = sc_timer_arm(&P.r[i].t, P.disk_free_at);
        if (r && !P.error)
            P.error = r;
    }
    uint64_t next = sc_fq_next_ready(&P.fq, now);
    if (next != UINT64_MAX) {
        int r = sc_timer_arm(&P.pump, next);
        if (r && !P.error)
            P.error = r;
    }
}

static struct sc_future pump_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    const struct sc_disk_model m = {.read_iops = 100000,
                                    .write_iops = 20000,
                                    .read_bw = 2000000000,
                                    .write_bw = 1000000000,
                                    .latency_goal_ns = 750 * US};
    memset(&P, 0, sizeof P);
    P.t0 = sc_now();
    if (sc_fq_init(&P.fq, &m, P.t0) || sc_fq_add_class(&P.fq, 1000) != 0 ||
        sc_fq_add_class(&P.fq, 100) != 1)
        return sc_make_ready(3);
    struct sc_fq_stats st;
    sc_fq_stats(&P.fq, P.t0, &st);
    P.burst = (uint64_t)st.burst;
    for (unsigned i = 0; i < PUMP_N; i++) {
        unsigned cls = i % 2;
        P.r[i].cls = cls;
        P.r[i].seq = i / 2;
        sc_fq_entry_init(&P.r[i].e, cls, cls ? SC_IO_WRITE : SC_IO_READ, cls ? 131072 : 4096);
        if (sc_fq_queue(&P.fq, &P.r[i].e))
            return sc_make_ready(4);
    }
    sc_promise_init(&P.done);
    sc_timer_init(&P.pump, pump_fire, NULL);
    pump_fire(NULL);
    return sc_promise_get_future(&P.done);
}

START_TEST(pump_on_a_shard)
{
    begin("pump_on_a_shard", _i);
    struct sc_config cfg = t_config(t_backends[_i]);
    cfg.smp = 1;
    tr_step("200 reads of 4 KiB (1000 shares) and 200 writes of 128 KiB (100 shares) queued at "
            "once; a timer pumps at sc_now() and sleeps until sc_fq_next_ready()");
    int code = sc_run(&cfg, pump_main, NULL, 0, NULL);
    tr_step("the run ended with exit code %d; %u completed; error %d; %u reads, %u writes went",
            code, P.completed, P.error, P.dispatched[0], P.dispatched[1]);
    T_CHECK(code == 0 && P.error == 0 && P.completed == PUMP_N,
            "every request should be dispatched and completed (exit %d, error %d, %u of %d)", code,
            P.error, P.completed, PUMP_N);
    T_CHECK(!P.fifo_broken, "a class's requests left out of the order they were queued in");
    tr_step("work handed out beyond burst + elapsed time: at worst %llu ns",
            (unsigned long long)P.worst_over);
    T_CHECK(P.worst_over == 0,
            "by some time t the queue had handed out %llu ns more work than the burst plus the "
            "time since the start: the bucket refills one token per ns and holds at most the "
            "burst",
            (unsigned long long)P.worst_over);
    uint64_t wr = sc_fq_cost(&P.fq, SC_IO_WRITE, 131072);
    tr_step("when the last read went: reads %llu ns, writes %llu ns (reads - 10 x writes = "
            "%lld)",
            (unsigned long long)P.cost[0], (unsigned long long)P.cost[1], (long long)P.split_diff);
    T_CHECK(P.split_seen && P.split_diff <= (int64_t)(10 * wr) &&
                P.split_diff >= -(int64_t)(10 * wr),
            "while both classes were busy the reads (1000 shares) should get 10 times the "
            "writes' (100 shares) disk time, give or take one write's charge (%llu): "
            "reads - 10 x writes was %lld%s",
            (unsigned long long)(10 * wr), (long long)P.split_diff,
            P.split_seen ? "" : " (the writes finished first)");
}
END_TEST

/* ---- the suite ------------------------------------------------------------ */

static Suite *suite(void)
{
    Suite *s = suite_create("lab 08: the fair queue and its token bucket");
    TCase *bucket = tcase_create("bucket");
    tcase_set_timeout(bucket, 10);
    tcase_add_test(bucket, bucket_refills_one_token_per_ns);
    tcase_add_test(bucket, bucket_capped_at_burst);
    tcase_add_test(bucket, bucket_time_going_back_adds_nothing);
    tcase_add_test(bucket, big_request_goes_when_full);
    tcase_add_test(bucket, big_request_not_starved);
    suite_add_tcase(s, bucket);

    TCase *classes = tcase_create("classes");
    tcase_set_timeout(classes, 10);
    tcase_add_test(classes, least_vtime_first);
    tcase_add_test(classes, ties_go_to_lowest_id);
    tcase_add_test(classes, charge_scaled_by_shares);
    tcase_add_test(classes, fifo_within_class);
    tcase_add_test(classes, shares_1000_to_100_equal_costs);
    tcase_add_test(classes, idle_class_earns_no_credit);
    suite_add_tcase(s, classes);

    TCase *disk = tcase_create("disk");
    tcase_set_timeout(disk, 20);
    tcase_add_test(disk, next_ready_tells_the_truth);
    tcase_add_test(disk, disk_holds_at_most_the_burst);
    tcase_add_test(disk, same_calls_same_answers);
    tcase_add_test(disk, bad_input_rejected);
    suite_add_tcase(s, disk);

    TCase *shard = tcase_create("shard");
    tcase_set_timeout(shard, 20);
    tcase_add_loop_test(shard, pump_on_a_shard, 0, 2);
    suite_add_tcase(s, shard);
    return s;
}

int main(void)
{
    return t_main(suite());
}
