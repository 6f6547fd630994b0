/*
 * fair_queue.c — the I/O scheduler's policy: a token bucket that keeps the
 * disk's own queue short, and share-proportional choice between classes by
 * virtual time. fair_queue.h explains the model; this file is all of it.
 *
 * Two clocks run here, and they should not be confused:
 *
 *   - the bucket counts *disk nanoseconds*: the time the modelled disk
 *     needs for a request. It fills at one token per nanosecond of real (or
 *     virtual) time, because that is how fast the disk gets through work.
 *   - each class's *virtual time* counts disk nanoseconds divided by the
 *     class's shares. It says nothing about when; it only orders classes.
 *
 * The bucket decides *when* the next request may go, the virtual times
 * decide *which* one. The io_queue calls sc_fq_dispatch() until it returns
 * NULL, submits what it got, and sleeps until sc_fq_next_ready() or the
 * next completion.
 *
 * Lab 08 hands the five small functions marked below to students.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "disk/fair_queue.h"

#define NS_PER_SEC UINT64_C(1000000000)
#define NO_CLASS   UINT32_MAX

/* When the floor reaches this, every virtual time moves back by the floor;
 * only their differences matter. A class with 1 share gets there after
 * about 53 days of disk time. */
#define REBASE_AT (UINT64_C(1) << 62)

enum { E_IDLE = 0, E_QUEUED = 1, E_IN_FLIGHT = 2 };

/* ---- the token bucket (lab 08) ------------------------------------------- */

/*
 * The bucket's level at time `now`, without changing it: the tokens it held
 * at last_refill plus one per nanosecond since, but never more than the
 * burst (a disk left idle does not bank its idle time). A `now` at or before
 * last_refill adds nothing. Tokens may be below zero (after a request bigger
 * than the burst); they climb back at the same rate.
 */
static int64_t bucket_level(const struct sc_fair_queue *fq, uint64_t now)
{
    /* LAB 08 BEGIN: tokens + elapsed ns, capped at the burst; no time passes if now <= last */
    if (now <= fq->last_refill)
        return fq->tokens;
    uint64_t elapsed = now - fq->last_refill;
    uint64_t room = (uint64_t)(fq->burst - fq->tokens); /* tokens <= burst always */
    if (elapsed >= room)
        return fq->burst;
    return fq->tokens + (int64_t)elapsed;
    /* LAB 08 END: return (void)now, fq->burst; */
}

/*
 * How many tokens the bucket must hold for a request of this cost to leave:
 * its cost, or the whole burst for a request that costs more than the burst
 * (it could never find its cost in the bucket; waiting for a full one is
 * the most that can be asked of it).
 */
static int64_t bucket_need(const struct sc_fair_queue *fq, uint64_t cost)
{
    /* LAB 08 BEGIN: the cost, but no more than the burst (a big request goes when it is full) */
    return (int64_t)cost < fq->burst ? (int64_t)cost : fq->burst;
    /* LAB 08 END: return (void)fq, (void)cost, 0; */
}

/* Bring the bucket's level up to `now`. */
static void bucket_refill(struct sc_fair_queue *fq, uint64_t now)
{
    fq->tokens = bucket_level(fq, now);
    if (now > fq->last_refill)
        fq->last_refill = now;
}

/* ---- the fair queue (lab 08) --------------------------------------------- */

/*
 * Which class goes next (fq->active is not 0): the one with queued requests
 * and the least virtual time; among equals, the lowest id. Idle classes are
 * not candidates, whatever their virtual time. The order of ids is the only
 * tie-break: never an address, so every run chooses alike.
 */
static unsigned pick_class(const struct sc_fair_queue *fq)
{
    /* LAB 08 BEGIN: least vtime among the active classes, lowest id on a tie */
    unsigned best = NO_CLASS;
    for (uint32_t m = fq->active; m; m &= m - 1) {
        unsigned id = (unsigned)__builtin_ctz(m);
        if (best == NO_CLASS || fq->cls[id].vtime < fq->cls[best].vtime)
            best = id;
    }
    return best;
    /* LAB 08 END: return (unsigned)__builtin_ctz(fq->active); */
}

/*
 * Class `id` dispatched a request of `cost` disk ns: its virtual time grows
 * by cost * SC_FQ_VTIME_SCALE / shares. Multiply first (a cost is at most
 * 2^40 and the scale 1000, so the product fits), or small costs round away.
 */
static void charge(struct sc_fair_queue *fq, unsigned id, uint64_t cost)
{
    /* LAB 08 BEGIN: vtime += cost scaled by SC_FQ_VTIME_SCALE / shares */
    fq->cls[id].vtime += cost * SC_FQ_VTIME_SCALE / fq->cls[id].shares;
    /* LAB 08 END: (void)fq, (void)id, (void)cost; */
}

/*
 * Class `id` was idle and has just been given a request (its bit in
 * fq->active is not set yet). It earns nothing for the time it was idle:
 * if its virtual time is below the floor (the virtual time the last
 * dispatched class had when it was picked), it starts at the floor. A class
 * that is above the floor keeps its virtual time: idling pays no debt.
 */
static void class_wake(struct sc_fair_queue *fq, unsigned id)
{
    /* LAB 08 BEGIN: no credit for idleness: start no lower than fq->floor */
    if (fq->cls[id].vtime < fq->floor)
        fq->cls[id].vtime = fq->floor;
    /* LAB 08 END: (void)fq, (void)id; */
}

/* ---- the rest is given --------------------------------------------------- */

static void rebase(struct sc_fair_queue *fq)
{
    uint64_t base = fq->floor;
    for (unsigned i = 0; i < fq->nclasses; i++)
        fq->cls[i].vtime = fq->cls[i].vtime > base ? fq->cls[i].vtime - base : 0;
    fq->floor = 0;
}

static bool shares_ok(unsigned shares)
{
    return shares >= 1 && shares <= SC_FQ_MAX_SHARES;
}

int sc_fq_init(struct sc_fair_queue *fq, const struct sc_disk_model *m, uint64_t now)
{
    if (!fq || !m || !m->read_iops || !m->write_iops || !m->read_bw || !m->write_bw ||
        m->latency_goal_ns > SC_FQ_MAX_LATENCY_GOAL_NS)
        return -EINVAL;
    memset(fq, 0, sizeof *fq);
    fq->ns_per_op[SC_IO_READ] = NS_PER_SEC / m->read_iops;
    fq->ns_per_op[SC_IO_WRITE] = NS_PER_SEC / m->write_iops;
    fq->bw[SC_IO_READ] = m->read_bw;
    fq->bw[SC_IO_WRITE] = m->write_bw;
    fq->burst = (int64_t)(m->latency_goal_ns ? m->latency_goal_ns : SC_FQ_DEFAULT_LATENCY_GOAL_NS);
    fq->tokens = fq->burst; /* an idle disk: the first burst may go at once */
    fq->last_refill = now;
    return 0;
}

void sc_fq_destroy(struct sc_fair_queue *fq)
{
    if (fq)
        memset(fq, 0, sizeof *fq);
}

int sc_fq_add_class(struct sc_fair_queue *fq, unsigned shares)
{
    if (!fq || !shares_ok(shares))
        return -EINVAL;
    if (fq->nclasses == SC_FQ_MAX_CLASSES)
        return -ENOSPC;
    unsigned id = fq->nclasses++;
    memset(&fq->cls[id], 0, sizeof fq->cls[id]);
    fq->cls[id].shares = shares;
    return (int)id;
}

int sc_fq_set_shares(struct sc_fair_queue *fq, unsigned id, unsigned shares)
{
    if (!fq || id >= fq->nclasses || !shares_ok(shares))
        return -EINVAL;
    fq->cls[id].shares = shares;
    return 0;
}

uint64_t sc_fq_cost(const struct sc_fair_queue *fq, unsigned dir, uint64_t len)
{
    if (!fq || dir > SC_IO_WRITE)
        return UINT64_MAX;
    /* len * 1e9 overflows 64 bits past 18 GB: multiply in 128. */
    unsigned __int128 bytes_ns = (unsigned __int128)len * NS_PER_SEC / fq->bw[dir];
    unsigned __int128 cost = bytes_ns + fq->ns_per_op[dir];
    if (cost > SC_FQ_MAX_COST)
        return SC_FQ_MAX_COST;
    return cost ? (uint64_t)cost : 1; /* free requests would never move a virtual time */
}

int sc_fq_queue(struct sc_fair_queue *fq, struct sc_fq_entry *e)
{
    if (!fq || !e || e->class_id >= fq->nclasses || e->dir > SC_IO_WRITE)
        return -EINVAL;
    if (e->state == E_QUEUED || e->state == E_IN_FLIGHT)
        return -EBUSY;
    unsigned id = e->class_id;
    struct sc_fq_class *c = &fq->cls[id];
    e->cost = sc_fq_cost(fq, e->dir, e->len);
    e->next = NULL;
    e->state = E_QUEUED;
    if (c->tail)
        c->tail->next = e;
    else
        c->head = e;
    c->tail = e;
    c->queued++;
    if (!(fq->active & (UINT32_C(1) << id))) {
        class_wake(fq, id);
        fq->active |= UINT32_C(1) << id;
    }
    return 0;
}

/* Unlink class id's head (queued requests only). */
static struct sc_fq_entry *pop_head(struct sc_fair_queue *fq, unsigned id)
{
    struct sc_fq_class *c = &fq->cls[id];
    struct sc_fq_entry *e = c->head;
    c->head = e->next;
    if (!c->head) {
        c->tail = NULL;
        fq->active &= ~(UINT32_C(1) << id);
    }
    e->next = NULL;
    c->queued--;
    return e;
}

struct sc_fq_entry *sc_fq_dispatch(struct sc_fair_queue *fq, uint64_t now)
{
    if (!fq)
        return NULL;
    bucket_refill(fq, now);
    if (!fq->active)
        return NULL;
    unsigned id = pick_class(fq);
    if (id >= fq->nclasses || !(fq->active & (UINT32_C(1) << id)))
        return NULL; /* not a class with queued requests: a broken pick (lab 08) */
    struct sc_fq_class *c = &fq->cls[id];
    if (fq->tokens < bucket_need(fq, c->head->cost))
        return NULL; /* the chosen request waits; nobody overtakes it */
    struct sc_fq_entry *e = pop_head(fq, id);
    e->state = E_IN_FLIGHT;
    fq->tokens -= (int64_t)e->cost;
    /* The floor follows the class picked, as it was when picked: a class
     * that wakes later competes as if queued just before this dispatch. */
    if (c->vtime > fq->floor)
        fq->floor = c->vtime;
    charge(fq, id, e->cost);
    c->in_flight++;
    c->dispatched++;
    c->bytes += e->len;
    c->cost += e->cost;
    fq->in_flight++;
    fq->in_flight_cost += e->cost;
    if (fq->floor >= REBASE_AT)
        rebase(fq);
    return e;
}

int sc_fq_complete(struct sc_fair_queue *fq, struct sc_fq_entry *e, uint64_t now)
{
    if (!fq || !e || e->state != E_IN_FLIGHT || e->class_id >= fq->nclasses)
        return -EINVAL;
    bucket_refill(fq, now); /* keeps the level current; completions add no tokens */
    struct sc_fq_class *c = &fq->cls[e->class_id];
    e->state = E_IDLE;
    c->in_flight--;
    c->completed++;
    fq->in_flight--;
    fq->in_flight_cost -= e->cost;
    return 0;
}

int sc_fq_cancel(struct sc_fair_queue *fq, struct sc_fq_entry *e)
{
    if (!fq || !e || e->class_id >= fq->nclasses)
        return -EINVAL;
    if (e->state == E_IN_FLIGHT)
        return -EBUSY;
    if (e->state != E_QUEUED)
        return -EINVAL;
    struct sc_fq_class *c = &fq->cls[e->class_id];
    struct sc_fq_entry *prev = NULL, *p = c->head;
    while (p && p != e) {
        prev = p;
        p = p->next;
    }
    if (!p)
        return -EINVAL; /* marked queued, but not in this queue: not ours */
    if (!prev) {
        pop_head(fq, e->class_id);
    } else {
        prev->next = e->next;
        if (c->tail == e)
            c->tail = prev;
        e->next = NULL;
        c->queued--;
    }
    e->state = E_IDLE;
    return 0;
}

uint64_t sc_fq_next_ready(const struct sc_fair_queue *fq, uint64_t now)
{
    if (!fq || !fq->active)
        return UINT64_MAX;
    unsigned id = pick_class(fq);
    if (id >= fq->nclasses || !(fq->active & (UINT32_C(1) << id)))
        return UINT64_MAX; /* a broken pick (lab 08) */
    const struct sc_fq_entry *e = fq->cls[id].head;
    int64_t need = bucket_need(fq, e->cost);
    if (bucket_level(fq, now) >= need)
        return now;
    /* Short: the bucket gains one token per ns from the later of now and
     * the last refill. */
    uint64_t from = now > fq->last_refill ? now : fq->last_refill;
    int64_t short_by = need - bucket_level(fq, from);
    return short_by > 0 ? from + (uint64_t)short_by : from;
}

int sc_fq_class_stats(const struct sc_fair_queue *fq, unsigned id, struct sc_fq_class_stats *out)
{
    if (!fq || !out || id >= fq->nclasses)
        return -EINVAL;
    const struct sc_fq_class *c = &fq->cls[id];
    *out = (struct sc_fq_class_stats){
        .shares = c->shares,
        .queued = c->queued,
        .in_flight = c->in_flight,
        .dispatched = c->dispatched,
        .completed = c->completed,
        .bytes = c->bytes,
        .cost = c->cost,
        .vtime = c->vtime,
    };
    return 0;
}

int sc_fq_stats(const struct sc_fair_queue *fq, uint64_t now, struct sc_fq_stats *out)
{
    if (!fq || !out)
        return -EINVAL;
    uint64_t queued = 0;
    for (unsigned i = 0; i < fq->nclasses; i++)
        queued += fq->cls[i].queued;
    *out = (struct sc_fq_stats){
        .tokens = bucket_level(fq, now),
        .burst = fq->burst,
        .queued = queued,
        .in_flight = fq->in_flight,
        .in_flight_cost = fq->in_flight_cost,
        .floor = fq->floor,
    };
    return 0;
}
