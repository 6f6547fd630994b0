/*
 * smp.c — cross-shard queues and the calls built on them.
 *
 * Shard i talks to shard j through rings[i * n + j], whose only producer is
 * i and only consumer is j. A message sent to j is staged in that ring; it
 * becomes visible when the sender publishes, which happens when SMP_BATCH
 * messages are staged or at the end of the sender's reactor turn, whichever
 * comes first. If the ring is full, the message waits in the sender's
 * overflow list for that destination (nothing is dropped, nothing blocks)
 * and moves into the ring as room appears.
 *
 * A request's answer travels back as the same object through the opposite
 * ring, so memory never changes shard: the caller's pool allocated it, the
 * caller's pool frees it.
 *
 * Waking a sleeping shard is the sender's job, and a cheap one when the
 * target is busy: after publishing, one fence and one load of the target's
 * `sleeping` word, which the target writes only when it goes to sleep. The
 * sleeper sets the word, fences, then looks at its rings once more before
 * sleeping: one of the two always sees the other (a Dekker handshake).
 */
#include <stdlib.h>
#include <string.h>

#include "core/future_impl.h"
#include "core/loop.h"
#include "core/mem_impl.h"
#include "core/smp.h"

/*
 * Batch size. Publishing costs a release store and, on the consumer's
 * side, a cache-line transfer of `tail` plus the slots it covers: 16
 * pointers are two cache lines of slots, so one transfer serves 16
 * messages. A larger batch would delay the first message of a burst while
 * the sender keeps working; a turn ends within the task quota anyway, so
 * the end-of-turn flush bounds the delay of a short burst.
 */
#define SMP_BATCH         16
#define SMP_RING_CAPACITY 256 /* per ordered pair; overflow lists absorb bursts beyond */
#define SMP_POP_MAX       32  /* messages taken from one ring per poll */

struct sc__world *sc__world;

/* A full (store-load) fence. TSan does not model atomic_thread_fence, so
 * its builds use a seq_cst read-modify-write, which orders the same way on
 * x86 (a locked instruction) and which TSan understands. */
static inline void full_fence(struct sc__shard *s)
{
#ifdef SC_TSAN
    atomic_fetch_add_explicit(&s->sleeping, 0, memory_order_seq_cst);
#else
    (void)s;
    atomic_thread_fence(memory_order_seq_cst);
#endif
}

int sc__world_init(struct sc__world *w, unsigned n)
{
    memset(w, 0, sizeof *w);
    w->n = n;
    w->shards = calloc(n, sizeof *w->shards);
    w->rings = n > 1 ? aligned_alloc(64, sizeof(struct sc_ring) * n * n) : NULL;
    if (!w->shards || (n > 1 && !w->rings)) {
        free(w->shards);
        free(w->rings);
        return -ENOMEM;
    }
    sc__sched_registry_init(&w->sched); /* from here on, sc__world_destroy() undoes it */
    if (w->rings)
        memset(w->rings, 0, sizeof(struct sc_ring) * n * n); /* slots == NULL: not made */
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < n; j++) {
            if (i == j)
                continue;
            int err = sc_ring_init(&w->rings[i * n + j], SMP_RING_CAPACITY);
            if (err) {
                sc__world_destroy(w); /* frees the rings made so far */
                return err;
            }
        }
    atomic_init(&w->stopping, false);
    atomic_init(&w->idle_forever, 0);
    atomic_init(&w->deadlocked, false);
    return 0;
}

void sc__world_destroy(struct sc__world *w)
{
    if (w->rings)
        for (unsigned i = 0; i < w->n * w->n; i++)
            if (w->rings[i].slots)
                sc_ring_destroy(&w->rings[i]);
    free(w->rings);
    free(w->shards);
    sc__sched_registry_destroy(&w->sched);
    w->rings = NULL;
    w->shards = NULL;
}

int sc__smp_shard_init(struct sc__shard *s, unsigned n)
{
    s->ovf_head = calloc(n, sizeof *s->ovf_head);
    s->ovf_tail = calloc(n, sizeof *s->ovf_tail);
    atomic_init(&s->sleeping, 0);
    if (!s->ovf_head || !s->ovf_tail)
        return -ENOMEM;
    return 0;
}

void sc__smp_shard_fini(struct sc__shard *s)
{
    free(s->ovf_head);
    free(s->ovf_tail);
    s->ovf_head = s->ovf_tail = NULL;
}

static inline struct sc_ring *ring(unsigned from, unsigned to)
{
    return &sc__world->rings[from * sc__world->n + to];
}

/* The wake-up half of the handshake, after a publish to `to`. */
static void maybe_wake(struct sc__shard *from, unsigned to)
{
    struct sc__shard *t = sc__world->shards[to];
    full_fence(t);
    int was;
    if (atomic_load_explicit(&t->sleeping, memory_order_relaxed) &&
        (was = atomic_exchange_explicit(&t->sleeping, 0, memory_order_relaxed))) {
        if (was == 2) /* the waker uncounts it, before anyone can count to n */
            atomic_fetch_sub(&sc__world->idle_forever, 1);
        from->smp_stats.wakeups++;
        from->engine->wake(t);
    }
}

static void publish(struct sc__shard *from, unsigned to)
{
    if (sc_ring_publish(ring(from->id, to))) {
        from->smp_stats.batches++;
        maybe_wake(from, to);
    }
}

void sc__smp_send(struct sc__shard *from, unsigned to, struct sc__smp_msg *m)
{
    struct sc_ring *r = ring(from->id, to);
    from->smp_stats.sent++;
    m->next = NULL;
    if (!from->ovf_head[to] && sc_ring_push(r, m)) {
        if (sc_ring_staged(r) >= SMP_BATCH)
            publish(from, to);
        return;
    }
    /* full (or older messages already wait): keep order, queue locally */
    from->smp_stats.overflowed++;
    if (from->ovf_tail[to])
        from->ovf_tail[to]->next = m;
    else
        from->ovf_head[to] = m;
    from->ovf_tail[to] = m;
}

/* Move waiting messages into the ring while there is room; publish. */
static bool flush_to(struct sc__shard *s, unsigned to)
{
    struct sc_ring *r = ring(s->id, to);
    bool moved = false;
    while (s->ovf_head[to] && sc_ring_push(r, s->ovf_head[to])) {
        s->ovf_head[to] = s->ovf_head[to]->next;
        moved = true;
    }
    if (!s->ovf_head[to])
        s->ovf_tail[to] = NULL;
    publish(s, to);
    return moved;
}

static bool receive_from(struct sc__shard *s, unsigned from)
{
    void *msgs[SMP_POP_MAX];
    size_t n = sc_ring_pop(ring(from, s->id), msgs, SMP_POP_MAX);
    for (size_t i = 0; i < n; i++) {
        struct sc__smp_msg *m = msgs[i];
        if (s->engine->on_task)
            s->engine->on_task(s, ++s->task_seq);
        s->smp_stats.received++;
        s->tasks_started++;
        s->running_task = 1;
        m->run(m);
        s->running_task = 0;
    }
    return n > 0;
}

bool sc__smp_poll(struct sc__shard *s)
{
    struct sc__world *w = sc__world;
    bool busy = false;
    for (unsigned j = 0; w->n > 1 && j < w->n; j++) {
        if (j == s->id)
            continue;
        busy |= receive_from(s, j);
        busy |= flush_to(s, j);
    }
    /* Last, so that what the messages above freed leaves in this turn:
     * frees of other shards' memory go out, frees of ours come back. They
     * never count as work: a shard does not stay awake (or wake) for them,
     * and whatever is left when the run ends goes home then (memory.c). */
    sc__mem_poll(s);
    return busy;
}

bool sc__smp_pending_in(struct sc__shard *s)
{
    struct sc__world *w = sc__world;
    for (unsigned j = 0; j < w->n; j++)
        if (j != s->id && sc_ring_readable(ring(j, s->id)))
            return true;
    return false;
}

bool sc__smp_pending_out(struct sc__shard *s)
{
    struct sc__world *w = sc__world;
    for (unsigned j = 0; j < w->n; j++)
        if (j != s->id && (s->ovf_head[j] || sc_ring_staged(ring(s->id, j))))
            return true;
    return false;
}

/* No message waits in any ring (exact only while every shard sleeps). */
static bool world_quiet(struct sc__world *w)
{
    for (unsigned i = 0; i < w->n; i++)
        for (unsigned j = 0; j < w->n; j++)
            if (i != j && sc_ring_readable(ring(i, j)))
                return false;
    return true;
}

/*
 * A shard that sleeps with no timer armed ("forever", sleeping == 2) counts
 * itself in idle_forever before it sets the word; whoever clears the word
 * from 2 (a waker, the stop, or the shard itself) uncounts it. So when the
 * count is n and no ring holds a message, no shard runs and none will ever
 * be woken: the app is deadlocked, and the run stops instead of hanging.
 */
bool sc__smp_prepare_sleep(struct sc__shard *s, bool forever)
{
    struct sc__world *w = sc__world;
    if (forever)
        atomic_fetch_add(&w->idle_forever, 1);
    atomic_store_explicit(&s->sleeping, forever ? 2 : 1, memory_order_relaxed);
    full_fence(s);
    if (sc__smp_pending_in(s) || atomic_load_explicit(&w->stopping, memory_order_relaxed)) {
        sc__smp_end_sleep(s);
        return false;
    }
    if (forever && atomic_load(&w->idle_forever) == w->n && world_quiet(w)) {
        atomic_store(&w->deadlocked, true);
        sc__smp_end_sleep(s);
        sc__world_stop();
        return false;
    }
    return true;
}

void sc__smp_end_sleep(struct sc__shard *s)
{
    if (atomic_exchange_explicit(&s->sleeping, 0, memory_order_relaxed) == 2)
        atomic_fetch_sub(&sc__world->idle_forever, 1);
}

void sc__world_stop(void)
{
    struct sc__world *w = sc__world;
    atomic_store_explicit(&w->stopping, true, memory_order_seq_cst);
    for (unsigned i = 0; i < w->n; i++) {
        struct sc__shard *t = w->shards[i];
        if (!t || t == sc__shard())
            continue;
        int was = atomic_exchange(&t->sleeping, 0);
        if (was == 2)
            atomic_fetch_sub(&w->idle_forever, 1);
        if (was)
            t->engine->wake(t);
    }
}

/* ------------------------------------------------------------------ */
/* The public side                                                      */
/* ------------------------------------------------------------------ */

unsigned sc_this_shard(void)
{
    return sc__shard()->id;
}

unsigned sc_shard_count(void)
{
    return sc__world ? sc__world->n : 1;
}

void sc_smp_stats(struct sc_smp_stats *out)
{
    *out = sc__shard()->smp_stats;
}

/*
 * A call: allocated on the caller's shard, holding the caller's result state
 * (only ever touched on the caller's shard), the function and a copy of the
 * captured state. It runs on the target, then travels back with the outcome.
 */
struct call {
    struct sc__fstate result; /* caller's shard only */
    struct sc__smp_msg msg;
    struct sc__waiter done; /* target's shard: the function's future */
    unsigned origin, target;
    sc_smp_fn fn;
    intptr_t value;
    int err;
    const char *err_file; /* an error's origin survives the trip */
    int err_line;
    uint32_t group; /* the caller's scheduling group: fn runs in it on the target */
    _Alignas(16) unsigned char cap[];
};

static void call_back(struct sc__smp_msg *m)
{
    struct call *c = SC_CONTAINER_OF(m, struct call, msg);
    /* back on the caller's shard: an error gets an entry in this ledger */
    intptr_t v = c->value;
    if (c->err)
        v = (intptr_t)sc__ledger_add(c->err, c->err_file, c->err_line);
    sc__fstate_resolve(&c->result, v, c->err);
}

static void call_done(struct sc__waiter *w, intptr_t value, int err)
{
    struct call *c = SC_CONTAINER_OF(w, struct call, done);
    c->err = err;
    c->value = err ? 0 : value;
    if (err) {
        /* The error's ledger entry belongs to this shard: copy its origin
         * into the message and release it here. */
        sc__ledger_take((uintptr_t)value, &c->err_file, &c->err_line);
    }
    c->msg.run = call_back;
    sc__smp_send(sc__shard(), c->origin, &c->msg);
}

static void call_run(struct sc__smp_msg *m)
{
    struct call *c = SC_CONTAINER_OF(m, struct call, msg);
    struct sc__sched *sc = &sc__shard()->sched;
    uint32_t saved = sc->current;
    sc->current = c->group; /* what fn starts here belongs to the caller's group */
    sc__future_attach(c->fn(c->cap), &c->done);
    sc->current = saved;
}

struct sc_future sc_smp_submit_to(unsigned shard, sc_smp_fn fn, const void *cap, size_t cap_size)
{
    struct sc__shard *s = sc__shard();
    if (shard >= sc_shard_count())
        return sc_make_error(-EINVAL);
    if (shard == s->id)
        return fn((void *)cap);
    size_t size = sizeof(struct call) + cap_size;
    struct call *c = sc__pool_alloc(size);
    if (!c)
        return sc_make_error(-ENOMEM);
    sc__fstate_init(&c->result, size, 0);
    c->msg.run = call_run;
    c->done.wake = call_done;
    c->origin = s->id;
    c->target = shard;
    c->fn = fn;
    c->group = s->sched.current;
    if (cap_size)
        memcpy(c->cap, cap, cap_size);
    struct sc_future f = sc__fstate_future(&c->result);
    sc__smp_send(s, shard, &c->msg);
    return f;
}

/* invoke_on_all / invoke_on_others / map_reduce: a fan-out over shards.
 * Launching never yields, so the caller's captured state is only read
 * during the call (each submit copies it). */
struct fan_cap {
    sc_smp_fn fn;
    const void *cap;
    size_t cap_size;
    unsigned skip; /* a shard to leave out, or UINT32_MAX */
    intptr_t (*reduce)(intptr_t, intptr_t);
};

static struct sc_future submit_i(void *cap, size_t i)
{
    const struct fan_cap *fc = cap;
    unsigned shard = (unsigned)i;
    if (fc->skip != UINT32_MAX && shard >= fc->skip)
        shard++;
    return sc_smp_submit_to(shard, fc->fn, fc->cap, fc->cap_size);
}

static intptr_t reduce_adapter(void *cap, intptr_t acc, intptr_t v)
{
    return ((const struct fan_cap *)cap)->reduce(acc, v);
}

struct sc_future sc_smp_invoke_on_all(sc_smp_fn fn, const void *cap, size_t cap_size)
{
    struct fan_cap fc = {fn, cap, cap_size, UINT32_MAX, NULL};
    return sc__fan_now(sc_shard_count(), submit_i, NULL, 0, &fc, sizeof fc);
}

struct sc_future sc_smp_invoke_on_others(sc_smp_fn fn, const void *cap, size_t cap_size)
{
    struct fan_cap fc = {fn, cap, cap_size, sc_this_shard(), NULL};
    return sc__fan_now(sc_shard_count() - 1, submit_i, NULL, 0, &fc, sizeof fc);
}

struct sc_future sc_smp_map_reduce(sc_smp_fn map, intptr_t (*reduce)(intptr_t acc, intptr_t v),
                                   intptr_t init, const void *cap, size_t cap_size)
{
    struct fan_cap fc = {map, cap, cap_size, UINT32_MAX, reduce};
    return sc__fan_now(sc_shard_count(), submit_i, reduce_adapter, init, &fc, sizeof fc);
}
