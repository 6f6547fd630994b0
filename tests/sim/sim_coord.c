/*
 * sim_coord.c — a simulation test of the coordination primitives: on every
 * shard, random producers stream items through a small pipe to random
 * consumers; each item received starts a piece of work that takes units of
 * a semaphore in one of four ways (with_semaphore, a timed wait, try_wait,
 * an abortable wait), holds them for a random time, and gives them back. A
 * gate counts the producers, another the work in flight; an abort source
 * fires at a random moment. 1 to 3 shards (chosen by the seed), each with
 * its own primitives, under the simulator's perturbations.
 *
 * Invariants checked at the end of every run, on every shard:
 *   - every item written was read exactly once (none lost, none duplicated);
 *   - each consumer sees each producer's items in the order they were written;
 *   - the semaphore's units are conserved: units held by work plus units
 *     available never exceed the total, and at the end all are back, with
 *     nobody waiting;
 *   - every wait ended as its kind allows (timed waits may time out, abortable
 *     ones may be cancelled, try_wait may be refused; nothing else fails);
 *   - no failed future is left unhandled (the sweep driver checks it).
 *
 *   build/bin/sim_coord --seed 17      one seed (`make sim SIM=sim_coord SEED=17`)
 *   build/bin/sim_coord --sweep 300    seeds 1..300, each run twice: same trace hash
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/seacore.h"
#include "tests/sim/sweep.h"

#define MAX_SHARDS 3
#define MAXP       4   /* producers per shard */
#define MAXC       3   /* consumers per shard */
#define MAXITEMS   200 /* items per producer */

struct shard_state {
    struct sc_pipe pipe;
    struct sc_sem sem;
    struct sc_gate producers; /* each producer is inside until it wrote everything */
    struct sc_gate work;      /* each piece of work is inside until it ended */
    struct sc_abort_source as;
    int np, nc, items;
    uint64_t units;
    int64_t held; /* units held by work right now */
    uint32_t next_seq[MAXC][MAXP];
    uint8_t seen[MAXP][MAXITEMS];
    uint64_t received, done, failed_on_purpose, timed_out, cancelled, refused;
    int violations;
};

static struct shard_state state[MAX_SHARDS];

static struct shard_state *me(void)
{
    return &state[sc_this_shard()];
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "INVARIANT (shard %u, seed %" PRIu64 "): %s\n", sc_this_shard(), sc_seed(),
            msg);
    me()->violations++;
}

static void check_units(const char *when)
{
    struct shard_state *s = me();
    int64_t avail = sc_sem_available(&s->sem);
    if (s->held < 0 || (uint64_t)s->held > s->units || avail < 0 ||
        (uint64_t)(avail + s->held) > s->units)
        violation("%s: %" PRId64 " units held + %" PRId64 " available > %" PRIu64, when, s->held,
                  avail, s->units);
}

static struct sc_future nap(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_sleep(SC_US(sc_random_below(20)));
}

/* ---- work: take units, hold them a while, give them back ---- */

struct work {
    uint64_t k;  /* units */
    uint64_t ns; /* how long to hold them */
    bool fail;   /* end with an error (with_semaphore must still give the units back) */
    bool signal; /* give the units back ourselves (not with_semaphore) */
};

static struct sc_future release(void *cap, intptr_t v)
{
    (void)v;
    const struct work *w = cap;
    struct shard_state *s = me();
    s->held -= (int64_t)w->k;
    check_units("release");
    if (w->signal && sc_sem_signal(&s->sem, w->k) != 0)
        violation("signal refused");
    if (w->fail)
        return sc_make_error(-EIO);
    return sc_make_ready(0);
}

static struct sc_future hold(void *cap, intptr_t v)
{
    (void)v;
    const struct work *w = cap;
    struct shard_state *s = me();
    s->held += (int64_t)w->k;
    check_units("hold");
    return sc_then(sc_sleep(w->ns), release, w, sizeof *w);
}

static struct sc_future work_ended(void *cap, intptr_t v, int err)
{
    (void)v;
    int mode = *(int *)cap;
    struct shard_state *s = me();
    if (!err)
        s->done++;
    else if (err == -EIO && mode == 0)
        s->failed_on_purpose++;
    else if (err == SC_ETIMEDOUT && mode == 1)
        s->timed_out++;
    else if (err == -EAGAIN && mode == 2)
        s->refused++;
    else if (err == -ECANCELED && mode == 3)
        s->cancelled++;
    else
        violation("work of kind %d ended with %d (%s)", mode, err, sc_strerror(err));
    return sc_make_ready(0);
}

/* Inside the work gate: one piece of work, its kind drawn at random. */
static struct sc_future work(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct shard_state *s = me();
    int mode = (int)sc_random_below(4);
    struct work w = {
        .k = 1 + sc_random_below(s->units),
        .ns = SC_US(sc_random_below(30)),
        .fail = mode == 0 && sc_random_below(4) == 0,
        .signal = mode != 0,
    };
    struct sc_future f;
    switch (mode) {
    case 0:
        f = SC_WITH_SEMAPHORE(&s->sem, w.k, hold, w);
        break;
    case 1:
        f = SC_THEN(sc_sem_wait_for(&s->sem, w.k, SC_US(1 + sc_random_below(60))), hold, w);
        break;
    case 2:
        f = sc_sem_try_wait(&s->sem, w.k) ? hold(&w, 0) : sc_make_error(-EAGAIN);
        break;
    default:
        f = SC_THEN(sc_sem_wait_abortable(&s->sem, w.k, &s->as), hold, w);
        break;
    }
    return SC_THEN_WRAPPED(f, work_ended, mode);
}

/* ---- producers and consumers ---- */

struct producer {
    int p;
    uint32_t seq;
};

static struct sc_future next(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future produce(void *cap)
{
    struct producer *pr = cap;
    struct shard_state *s = me();
    if (pr->seq == (uint32_t)s->items) {
        if (sc_gate_leave(&s->producers) != 0)
            violation("producer %d left a gate it was not in", pr->p);
        return sc_make_ready(SC_STOP);
    }
    uintptr_t item = ((uintptr_t)pr->p << 16) | pr->seq++;
    struct sc_future f = sc_pipe_write(&s->pipe, item);
    if (sc_random_below(4) == 0)
        f = sc_then(f, nap, NULL, 0);
    return sc_then(f, next, NULL, 0);
}

static struct sc_future got(void *cap, intptr_t v, int err)
{
    int c = *(int *)cap;
    struct shard_state *s = me();
    if (err == SC_EEOF)
        return sc_make_ready(SC_STOP);
    if (err) {
        violation("consumer %d: read failed with %d", c, err);
        return sc_make_ready(SC_STOP);
    }
    unsigned p = (unsigned)((uintptr_t)v >> 16), seq = (unsigned)((uintptr_t)v & 0xffff);
    if (p >= (unsigned)s->np || seq >= (unsigned)s->items) {
        violation("consumer %d: item %#lx was never written", c, (unsigned long)v);
        return sc_make_ready(SC_STOP);
    }
    if (s->seen[p][seq]++)
        violation("item %u/%u read twice", p, seq);
    if (seq < s->next_seq[c][p])
        violation("consumer %d: producer %u's item %u after %u", c, p, seq, s->next_seq[c][p] - 1);
    s->next_seq[c][p] = seq + 1;
    s->received++;
    sc_trace((uint64_t)v);
    struct sc_future w = sc_with_gate(&s->work, work, NULL, 0);
    if (sc_future_failed(w))
        violation("work refused: %d", sc_future_get(w, NULL));
    else
        sc_future_discard(w); /* work_ended handles every outcome; errors here are bugs */
    if (sc_random_below(3) == 0)
        return sc_then(sc_sleep(SC_US(sc_random_below(15))), next, NULL, 0);
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future consume(void *cap)
{
    return sc_then_wrapped(sc_pipe_read(&me()->pipe), got, cap, sizeof(int));
}

static struct sc_future end_of_stream(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    if (sc_pipe_close_writer(&me()->pipe) != 0)
        violation("the writer closed twice");
    return sc_make_ready(0);
}

static struct sc_future abort_now(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    sc_abort_request(&me()->as);
    return sc_make_ready(0);
}

/* ---- the verdict ---- */

static struct sc_future verdict(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct shard_state *s = me();
    for (int p = 0; p < s->np; p++)
        for (int i = 0; i < s->items; i++)
            if (s->seen[p][i] != 1)
                violation("item %d/%d read %d times", p, i, s->seen[p][i]);
    uint64_t ended = s->done + s->failed_on_purpose + s->timed_out + s->refused + s->cancelled;
    if (ended != s->received)
        violation("%" PRIu64 " pieces of work ended, %" PRIu64 " started", ended, s->received);
    if (s->held != 0 || sc_sem_available(&s->sem) != (int64_t)s->units ||
        sc_sem_waiters(&s->sem) != 0)
        violation("units not all back: held %" PRId64 ", available %" PRId64 " of %" PRIu64
                  ", %zu waiting",
                  s->held, sc_sem_available(&s->sem), s->units, sc_sem_waiters(&s->sem));
    if (sc_pipe_size(&s->pipe) != 0)
        violation("items left in the pipe");
    sc_pipe_destroy(&s->pipe);
    return s->violations ? sc_make_error(-EPROTO) : sc_make_ready(0);
}

static struct sc_future all_read(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then(sc_gate_close(&me()->work), verdict, NULL, 0);
}

static struct sc_future shard_workload(void *cap)
{
    (void)cap;
    struct shard_state *s = me();
    memset(s, 0, sizeof *s);
    s->np = 1 + (int)sc_random_below(MAXP);
    s->nc = 1 + (int)sc_random_below(MAXC);
    s->items = 20 + (int)sc_random_below(MAXITEMS - 20 + 1);
    s->units = 1 + sc_random_below(4);
    if (sc_pipe_init(&s->pipe, 1 + sc_random_below(8)) != 0)
        return sc_make_error(-ENOMEM);
    sc_sem_init(&s->sem, s->units);
    sc_gate_init(&s->producers);
    sc_gate_init(&s->work);
    sc_abort_init(&s->as);
    sc_future_ignore(sc_then(sc_sleep(SC_US(sc_random_below(3000))), abort_now, NULL, 0));

    struct sc_future fs[MAXP + MAXC + 1];
    size_t n = 0;
    for (int p = 0; p < s->np; p++) {
        struct producer pr = {p, 0};
        sc_gate_enter(&s->producers);
        fs[n++] = sc_repeat(produce, &pr, sizeof pr);
    }
    fs[n++] = sc_then(sc_gate_close(&s->producers), end_of_stream, NULL, 0);
    for (int c = 0; c < s->nc; c++)
        fs[n++] = sc_repeat(consume, &c, sizeof c);
    return sc_then(sc_when_all_succeed(fs, n), all_read, NULL, 0);
}

static struct sc_future coord_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_smp_invoke_on_all(shard_workload, NULL, 0);
}

static unsigned smp_for_seed(uint64_t seed)
{
    return 1 + (unsigned)(seed % MAX_SHARDS);
}

static void report(void)
{
    const struct shard_state *s = &state[0];
    printf("sim_coord (shard 0): producers=%d consumers=%d items=%d units=%" PRIu64
           " received=%" PRIu64 " done=%" PRIu64 " failed=%" PRIu64 " timed_out=%" PRIu64
           " refused=%" PRIu64 " cancelled=%" PRIu64 "\n",
           s->np, s->nc, s->items, s->units, s->received, s->done, s->failed_on_purpose,
           s->timed_out, s->refused, s->cancelled);
}

int main(int argc, char **argv)
{
    static const struct sim_test t = {
        .name = "sim_coord",
        .about = "Producers, consumers and workers over pipes, semaphores and gates.",
        .main = coord_main,
        .max_smp = MAX_SHARDS,
        .smp_for_seed = smp_for_seed,
        .report = report,
    };
    return sim_test_main(&t, argc, argv);
}
