/*
 * reactor.c — one shard's machinery, shared by both worlds: the task queue,
 * timers (the heap itself is in timer.c), pollers, preemption, the clock and
 * randomness seams, the trace hash and the statistics.
 *
 * The loop that drives these pieces belongs to the engine: core/engine_real.c
 * sleeps in epoll_wait, sim/engine.c jumps virtual time. Both call the same
 * sc__run_timers / sc__run_tasks / sc__run_pollers below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/future_impl.h"
#include "core/loop.h"
#include "core/mem_impl.h"
#include "core/shard_impl.h"

__thread struct sc__shard *sc__cur __attribute__((tls_model("initial-exec")));
__thread volatile sig_atomic_t sc__preempt __attribute__((tls_model("initial-exec")));

/* ---- randomness: xoshiro256** seeded through splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sc__rng_seed(uint64_t st[4], uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        st[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sc__rng_next(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sc_random(void)
{
    return sc__rng_next(sc__shard()->rng);
}

uint64_t sc_random_below(uint64_t bound)
{
    if (bound == 0)
        return 0;
    /* Lemire's multiply-shift; the tiny bias is irrelevant at 64 bits. */
    return (uint64_t)(((unsigned __int128)sc_random() * bound) >> 64);
}

/* ---- the trace hash ---- */

void sc__trace_mix(struct sc__shard *s, uint64_t v)
{
    uint64_t x = v ^ s->trace;
    s->trace = splitmix64(&x);
}

void sc_trace(uint64_t event)
{
    sc__trace_mix(sc__shard(), event ^ 0x7472616365ull /* "trace" */);
}

uint64_t sc_trace_hash(void)
{
    return sc__shard()->trace;
}

/* ---- the world-facing seams ---- */

uint64_t sc_now(void)
{
    struct sc__shard *s = sc__shard();
    return s->engine->now(s);
}

bool sc_is_simulated(void)
{
    return sc__shard()->engine->simulated;
}

uint64_t sc_seed(void)
{
    return sc__shard()->cfg.seed;
}

bool sc__need_preempt_slow(void)
{
    struct sc__shard *s = sc__shard();
    return s && s->engine->need_preempt(s);
}

void sc__tsan_poll_quota(void)
{
    struct sc__shard *s = sc__shard();
    if (s && !s->engine->simulated && s->engine->now(s) - s->batch_start >= s->cfg.task_quota_ns)
        sc__preempt = 1;
}

/* ---- the task queues: one FIFO per scheduling group ---- */

/* Group g got its first queued task: it joins the choice. Its wait for the
 * CPU starts now, unless its own slice is running (it just re-queued). */
static void group_wake(struct sc__shard *s, unsigned g)
{
    struct sc__sched *sc = &s->sched;
    struct sc__sched_acct *a = &sc->acct[g];
    sc->active |= 1u << g;
    if (g == sc->running)
        return;
    uint32_t gen = sc__sched_gen(g);
    if (a->gen != gen) /* the slot was reused by a new group: fresh accounts */
        *a = (struct sc__sched_acct){.gen = gen};
    sc__sched_wake(sc, g);
    a->ready_since = s->engine->now(s);
}

void sc__task_enqueue(struct sc__shard *s, struct sc_task *t)
{
    struct sc__sched_queue *q = &s->sched.q[t->group];
    t->next = NULL;
    t->seq = (uint32_t)++s->task_seq;
    if (q->tail) {
        q->tail->next = t;
    } else {
        q->head = t;
        group_wake(s, t->group);
    }
    q->tail = t;
    q->len++;
}

void sc_task_schedule(struct sc_task *t)
{
    struct sc__shard *s = sc__shard();
    t->group = s->sched.current;
    sc__task_enqueue(s, t);
}

/* Take the k-th task of group g's queue (0 = the head, the FIFO choice).
 * Only the simulator asks for k > 0, and only within a small window. */
static struct sc_task *dequeue(struct sc__shard *s, unsigned g, uint64_t k)
{
    struct sc__sched_queue *q = &s->sched.q[g];
    struct sc_task *prev = NULL, *t = q->head;
    while (k-- && t->next) {
        prev = t;
        t = t->next;
    }
    if (prev)
        prev->next = t->next;
    else
        q->head = t->next;
    if (q->tail == t)
        q->tail = prev;
    q->len--;
    return t;
}

/* Run group g's tasks until its queue is empty or the quota is spent
 * (then *preempted is set). Returns how many ran. */
static uint64_t run_slice(struct sc__shard *s, unsigned g, bool *preempted)
{
    const struct sc__engine *e = s->engine;
    struct sc__sched_queue *q = &s->sched.q[g];
    uint64_t n = 0;
    for (;;) {
        struct sc_task *t = dequeue(s, g, e->pick_task ? e->pick_task(s, q->len) : 0);
        if (e->on_task)
            e->on_task(s, t->seq);
        s->tasks_started++;
        s->running_task = 1;
        t->run(t);
        s->running_task = 0;
        s->stats.tasks_run++;
        n++;
        if (!q->head)
            return n;
        if (sc_need_preempt()) {
            *preempted = true;
            return n;
        }
    }
}

/*
 * Step 2 of a reactor turn: run queued tasks, one group's slice at a time,
 * until every queue is empty or the quota is spent. core/sched.c chooses
 * the group; here the slice's CPU time is measured with the engine's clock
 * (virtual in the simulator), read once per group switch, and charged.
 */
bool sc__run_tasks(struct sc__shard *s)
{
    struct sc__sched *sc = &s->sched;
    if (!sc->active)
        return false;
    uint32_t saved = sc->current;
    uint64_t t0 = s->engine->now(s);
    for (;;) {
        unsigned g = sc__sched_pick(sc);
        struct sc__sched_acct *a = &sc->acct[g];
        if (t0 > a->ready_since && t0 - a->ready_since > a->max_wait_ns)
            a->max_wait_ns = t0 - a->ready_since;
        a->slices++;
        sc->running = g;
        sc->current = g;
        bool preempted = false;
        uint64_t n = run_slice(s, g, &preempted);
        uint64_t t1 = s->engine->now(s);
        a->tasks_run += n;
        a->runtime_ns += t1 - t0;
        sc__sched_charge(sc, g, t1 - t0, sc__sched_shares(g));
        sc->running = SC__SCHED_NONE;
        if (sc->q[g].head) /* cut short: it waits again from now */
            a->ready_since = t1;
        else
            sc->active &= ~(1u << g);
        t0 = t1;
        /* As before groups existed: the quota is checked only while tasks remain. */
        if (preempted || (sc->active && sc_need_preempt())) {
            s->stats.preemptions++;
            break;
        }
        if (!sc->active)
            break;
    }
    sc->current = saved;
    return true;
}

/* ---- timers: the API over the heap in timer.c ---- */

/* The batch of expired timers is a doubly linked list in the shard, so that
 * a callback may cancel (and free) any timer still waiting in it. */
static void batch_unlink(struct sc__timer_heap *th, struct sc_timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        th->batch_head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        th->batch_tail = t->prev;
    th->expiring--;
    t->index = SC_TIMER_IDLE;
}

void sc_timer_init(struct sc_timer *t, sc_timer_fn fn, void *arg)
{
    t->deadline = 0;
    t->seq = 0;
    t->index = SC_TIMER_IDLE;
    t->group = 0;
    t->fn = fn;
    t->arg = arg;
}

int sc_timer_arm(struct sc_timer *t, uint64_t deadline)
{
    if (t->index != SC_TIMER_IDLE)
        return -EBUSY;
    struct sc__shard *s = sc__shard();
    struct sc__timer_heap *th = &s->timers;
    t->deadline = deadline;
    t->seq = ++th->next_seq;
    t->group = s->sched.current;
    return sc__timer_heap_push(th, t);
}

int sc_timer_arm_in(struct sc_timer *t, uint64_t delay)
{
    uint64_t now = sc_now();
    uint64_t deadline = now + delay < now ? UINT64_MAX : now + delay;
    return sc_timer_arm(t, deadline);
}

bool sc_timer_cancel(struct sc_timer *t)
{
    struct sc__timer_heap *th = &sc__shard()->timers;
    if (t->index == SC_TIMER_IDLE)
        return false;
    if (t->index == SC_TIMER_EXPIRING) { /* expired, waiting in this turn's batch */
        batch_unlink(th, t);
        return true;
    }
    sc__timer_heap_remove(th, t);
    return true;
}

bool sc_timer_armed(const struct sc_timer *t)
{
    return t->index != SC_TIMER_IDLE;
}

size_t sc_timer_count(void)
{
    struct sc__timer_heap *th = &sc__shard()->timers;
    return th->len + th->expiring;
}

uint64_t sc__next_deadline(struct sc__shard *s)
{
    struct sc_timer *t = sc__timer_heap_top(&s->timers);
    return t ? t->deadline : UINT64_MAX;
}

bool sc__run_timers(struct sc__shard *s, uint64_t now)
{
    /* First take every expired timer out of the heap, in firing order, then
     * fire them. A callback that arms a timer with a past deadline (even its
     * own) puts it back in the heap for the next turn, as reactor.h promises:
     * a timer re-arming itself in the past can never hold this loop, and the
     * tasks and other timers behind it, forever. The loop holds no pointer
     * to a timer across a callback: each one may cancel or free the others. */
    struct sc__timer_heap *th = &s->timers;
    struct sc_timer *t;
    while ((t = sc__timer_heap_top(th)) && t->deadline <= now) {
        sc__timer_heap_remove(th, t);
        t->index = SC_TIMER_EXPIRING;
        t->next = NULL;
        t->prev = th->batch_tail;
        if (th->batch_tail)
            th->batch_tail->next = t;
        else
            th->batch_head = t;
        th->batch_tail = t;
        th->expiring++;
    }
    bool fired = th->batch_head != NULL;
    uint32_t saved = s->sched.current;
    while ((t = th->batch_head)) {
        batch_unlink(th, t);
        if (s->engine->on_task)
            s->engine->on_task(s, t->seq | (1ull << 63)); /* timers trace apart from tasks */
        s->tasks_started++;
        s->running_task = 1;
        s->sched.current = t->group; /* what the callback starts runs in the arming group */
        t->fn(t->arg);
        s->running_task = 0;
        s->stats.timers_fired++;
    }
    s->sched.current = saved;
    return fired;
}

/* ---- pollers ---- */

int sc_poller_add(sc_poll_fn fn, void *arg)
{
    struct sc__shard *s = sc__shard();
    for (uint32_t i = 0; i < s->npollers; i++) {
        if (!s->pollers[i].fn) {
            s->pollers[i] = (struct sc__poller){fn, arg};
            s->active_pollers++;
            return (int)i;
        }
    }
    if (s->npollers == s->pollers_cap) {
        uint32_t ncap = s->pollers_cap ? s->pollers_cap * 2 : 8;
        struct sc__poller *np = realloc(s->pollers, ncap * sizeof *np);
        if (!np)
            return -ENOMEM;
        s->pollers = np;
        s->pollers_cap = ncap;
    }
    s->pollers[s->npollers] = (struct sc__poller){fn, arg};
    s->active_pollers++;
    return (int)s->npollers++;
}

int sc_poller_remove(int handle)
{
    struct sc__shard *s = sc__shard();
    if (handle < 0 || (uint32_t)handle >= s->npollers || !s->pollers[handle].fn)
        return -ENOENT;
    s->pollers[handle].fn = NULL;
    s->active_pollers--;
    return 0;
}

bool sc__run_pollers(struct sc__shard *s)
{
    bool busy = false;
    for (uint32_t i = 0; i < s->npollers; i++)
        if (s->pollers[i].fn && s->pollers[i].fn(s->pollers[i].arg))
            busy = true;
    s->stats.polls++;
    return busy;
}

/* ---- statistics ---- */

void sc_reactor_stats(struct sc_reactor_stats *out)
{
    struct sc__shard *s = sc__shard();
    *out = s->stats;
    out->tasks_queued = 0;
    for (unsigned g = 0; g < SC_SCHED_MAX_GROUPS; g++)
        out->tasks_queued += s->sched.q[g].len;
    out->pool_bytes = s->pool.bytes;
    out->pool_allocs = s->pool.live;
}

/* ---- shard life cycle ---- */

/* Independent PRNG streams derive from one seed: the app's stream and the
 * simulator's perturbation stream never disturb each other. */
enum { STREAM_APP = 1, STREAM_SCHED = 2 };

static uint64_t stream_seed(uint64_t seed, unsigned shard, unsigned stream)
{
    uint64_t x = seed ^ ((uint64_t)shard << 32) ^ stream;
    return splitmix64(&x);
}

int sc__shard_init(struct sc__shard *s, unsigned id, const struct sc__engine *e,
                   const struct sc_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->id = id;
    s->engine = e;
    s->cfg = *cfg;
    s->ledger.free_head = UINT32_MAX;
    sc__pool_init(&s->pool);
    sc__rng_seed(s->rng, stream_seed(cfg->seed, id, STREAM_APP));
    sc__rng_seed(s->sched_rng, stream_seed(cfg->seed, id, STREAM_SCHED));
    s->trace = cfg->seed;
    s->sched.running = SC__SCHED_NONE;
    return sc__smp_shard_init(s, sc__world ? sc__world->n : 1);
}

int sc__shard_on_fini(struct sc__shard *s, void (*fn)(struct sc__shard *s))
{
    for (unsigned i = 0; i < s->nfini_hooks; i++)
        if (s->fini_hooks[i].fn == fn)
            return 0;
    if (s->nfini_hooks == sizeof s->fini_hooks / sizeof s->fini_hooks[0])
        return -ENOSPC;
    s->fini_hooks[s->nfini_hooks++].fn = fn;
    return 0;
}

void sc__shard_fini(struct sc__shard *s)
{
    /* the layers below core first, newest first: they may free into the
     * pool and the shard's memory, which go last */
    struct sc__shard *prev = sc__cur;
    sc__cur = s;
    while (s->nfini_hooks)
        s->fini_hooks[--s->nfini_hooks].fn(s);
    sc__cur = prev;
    /* Timers still armed belong to their owners, who may arm them again in a
     * later run: leave none pointing into the heap that goes away here. */
    for (uint32_t i = 0; i < s->timers.len; i++)
        s->timers.h[i]->index = SC_TIMER_IDLE;
    sc__thread_shard_fini(s);
    sc__smp_shard_fini(s);
    free(s->timers.h);
    free(s->pollers);
    free(s->ledger.e);
    sc__pool_destroy(&s->pool);
    sc__mem_shard_stop(s); /* last: everything above frees into the shard's memory */
}

struct main_rec {
    struct sc_task task;
    struct sc__waiter done;
    struct sc__shard *shard;
    sc_main_fn fn;
    void *arg;
    int argc;
    char **argv;
};

static void main_done(struct sc__waiter *w, intptr_t value, int err)
{
    struct main_rec *m = SC_CONTAINER_OF(w, struct main_rec, done);
    struct sc__shard *s = m->shard;
    if (err) {
        sc__ledger_log((uintptr_t)value, SC_LOG_ERROR, "the app's main function failed");
        s->exit_code = 1;
    } else {
        s->exit_code = (int)value;
    }
    s->stopping = true;
    sc__pool_free(m, sizeof *m);
}

static void main_run(struct sc_task *t)
{
    struct main_rec *m = SC_CONTAINER_OF(t, struct main_rec, task);
    struct sc_future f = m->fn(m->arg, m->argc, m->argv);
    sc__future_attach(f, &m->done);
}

void sc__shard_start_main(struct sc__shard *s, sc_main_fn fn, void *arg, int argc, char **argv)
{
    struct main_rec *m = sc__pool_alloc(sizeof *m);
    if (!m) {
        sc_log(SC_LOG_ERROR, "out of memory starting the app");
        s->exit_code = 1;
        s->stopping = true;
        return;
    }
    *m = (struct main_rec){.shard = s, .fn = fn, .arg = arg, .argc = argc, .argv = argv};
    m->task.run = main_run;
    m->done.wake = main_done;
    sc_task_schedule(&m->task);
}

/* The run's trace hash: every shard's trace, folded in shard order. */
static uint64_t world_trace(void)
{
    struct sc__world *w = sc__world;
    uint64_t h = w->shards[0]->trace;
    for (unsigned i = 1; i < w->n; i++) {
        uint64_t x = h ^ w->shards[i]->trace;
        h = splitmix64(&x);
    }
    return h;
}

void sc__print_summary(struct sc__shard *s)
{
    struct sc__world *w = sc__world;
    if (s->cfg.quiet)
        return;
    uint64_t tasks = 0, timers = 0, sleeps = 0, stalls = 0, msgs = 0;
    for (unsigned i = 0; i < w->n; i++) {
        tasks += w->shards[i]->stats.tasks_run;
        timers += w->shards[i]->stats.timers_fired;
        sleeps += w->shards[i]->stats.sleeps;
        stalls += w->shards[i]->stats.stalls;
        msgs += w->shards[i]->smp_stats.received;
    }
    if (s->engine->simulated)
        fprintf(stderr,
                "sim: seed=%llu shards=%u virtual_time_ns=%llu tasks=%llu timers=%llu "
                "messages=%llu exit=%d trace=%016llx\n",
                (unsigned long long)s->cfg.seed, w->n, (unsigned long long)s->engine->now(s),
                (unsigned long long)tasks, (unsigned long long)timers, (unsigned long long)msgs,
                s->exit_code, (unsigned long long)world_trace());
    else
        fprintf(stderr,
                "real: seed=%llu shards=%u tasks=%llu timers=%llu messages=%llu sleeps=%llu "
                "stalls=%llu exit=%d\n",
                (unsigned long long)s->cfg.seed, w->n, (unsigned long long)tasks,
                (unsigned long long)timers, (unsigned long long)msgs, (unsigned long long)sleeps,
                (unsigned long long)stalls, s->exit_code);
}

void sc__fill_result(struct sc__shard *s, struct sc_run_result *out)
{
    struct sc__world *w = sc__world;
    if (!out)
        return;
    out->exit_code = s->exit_code;
    out->seed = s->cfg.seed;
    out->trace_hash = world_trace();
    out->end_ns = s->engine->now(s);
    out->tasks_run = 0;
    out->unhandled_errors = 0;
    for (unsigned i = 0; i < w->n; i++) {
        out->tasks_run += w->shards[i]->stats.tasks_run;
        out->unhandled_errors += w->shards[i]->stats.unhandled_errors;
    }
}
