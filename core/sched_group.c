/*
 * sched_group.c — scheduling groups as the app sees them: the run-wide
 * table of groups (names, shares), the calls of core/sched.h, and the
 * per-shard statistics. The choice of the next group is in sched.c; the
 * queues and the accounting of CPU time are in reactor.c.
 *
 * Why one table for the whole run, when everything else is per shard: a
 * group is a name for a class of work that users create once and use
 * anywhere (as in Seastar), and the handle travels in messages. The table
 * is touched rarely (create, destroy, set_shares) under a mutex; the hot
 * path reads one atomic word per slice (the group's shares) and nothing else
 * of it. Queues, virtual runtimes and counters stay in each shard.
 */
#include <stdlib.h>
#include <string.h>

#include "core/future_impl.h"
#include "core/sched.h"
#include "core/shard_impl.h"

static inline uint64_t word_of(uint32_t gen, bool alive, unsigned shares)
{
    return (uint64_t)gen << 32 | (alive ? SC__SCHED_ALIVE : 0) | shares;
}

static inline unsigned word_shares(uint64_t w)
{
    return (unsigned)(w & (SC__SCHED_ALIVE - 1));
}

static inline bool word_alive(uint64_t w)
{
    return (w & SC__SCHED_ALIVE) != 0;
}

void sc__sched_registry_init(struct sc__sched_registry *r)
{
    pthread_mutex_init(&r->lock, NULL);
    r->gen = 0;
    for (unsigned g = 0; g < SC_SCHED_MAX_GROUPS; g++) {
        atomic_init(&r->word[g], word_of(0, false, SC_SCHED_MAIN_SHARES));
        r->name[g][0] = '\0';
    }
    /* "main" has generation 0, like a shard's fresh counters: nothing to reset */
    atomic_store_explicit(&r->word[0], word_of(0, true, SC_SCHED_MAIN_SHARES),
                          memory_order_relaxed);
    strcpy(r->name[0], "main");
}

void sc__sched_registry_destroy(struct sc__sched_registry *r)
{
    pthread_mutex_destroy(&r->lock);
}

static struct sc__sched_registry *registry(void)
{
    return sc__world ? &sc__world->sched : NULL;
}

static uint64_t load_word(unsigned g)
{
    struct sc__sched_registry *r = registry();
    if (!r)
        return word_of(0, g == 0, SC_SCHED_MAIN_SHARES);
    return atomic_load_explicit(&r->word[g], memory_order_relaxed);
}

unsigned sc__sched_shares(unsigned g)
{
    return word_shares(load_word(g));
}

uint32_t sc__sched_gen(unsigned g)
{
    return (uint32_t)(load_word(g) >> 32);
}

static bool group_alive(struct sc_sched_group g)
{
    return g.id < SC_SCHED_MAX_GROUPS && word_alive(load_word(g.id));
}

/* ---- the table ---- */

int sc_sched_group_create(const char *name, unsigned shares, struct sc_sched_group *out)
{
    struct sc__sched_registry *r = registry();
    if (!name || !name[0] || !out || shares < 1 || shares > SC_SCHED_MAX_SHARES)
        return -EINVAL;
    if (strlen(name) >= SC_SCHED_NAME_MAX)
        return -ENAMETOOLONG;
    if (!r || !sc__shard())
        return -ENODEV;
    int err = -ENOSPC;
    unsigned slot = SC_SCHED_MAX_GROUPS;
    pthread_mutex_lock(&r->lock);
    for (unsigned g = 0; g < SC_SCHED_MAX_GROUPS; g++) {
        bool alive = word_alive(atomic_load_explicit(&r->word[g], memory_order_relaxed));
        if (alive && strcmp(r->name[g], name) == 0) {
            err = -EEXIST;
            slot = SC_SCHED_MAX_GROUPS;
            break;
        }
        if (!alive && slot == SC_SCHED_MAX_GROUPS)
            slot = g; /* the lowest free slot: the same program gets the same ids */
    }
    if (slot < SC_SCHED_MAX_GROUPS) {
        if (++r->gen == 0)
            r->gen = 1; /* 0 belongs to "main" */
        strcpy(r->name[slot], name);
        atomic_store_explicit(&r->word[slot], word_of(r->gen, true, shares), memory_order_relaxed);
        out->id = slot;
        err = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return err;
}

int sc_sched_group_find(const char *name, struct sc_sched_group *out)
{
    struct sc__sched_registry *r = registry();
    if (!name || !out)
        return -EINVAL;
    if (!r)
        return -ENODEV;
    int err = -ENOENT;
    pthread_mutex_lock(&r->lock);
    for (unsigned g = 0; g < SC_SCHED_MAX_GROUPS; g++) {
        if (word_alive(atomic_load_explicit(&r->word[g], memory_order_relaxed)) &&
            strcmp(r->name[g], name) == 0) {
            out->id = g;
            err = 0;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return err;
}

int sc_sched_group_set_shares(struct sc_sched_group g, unsigned shares)
{
    struct sc__sched_registry *r = registry();
    if (!r || g.id >= SC_SCHED_MAX_GROUPS || shares < 1 || shares > SC_SCHED_MAX_SHARES)
        return -EINVAL;
    int err = -EINVAL;
    pthread_mutex_lock(&r->lock);
    uint64_t w = atomic_load_explicit(&r->word[g.id], memory_order_relaxed);
    if (word_alive(w)) {
        atomic_store_explicit(&r->word[g.id], word_of((uint32_t)(w >> 32), true, shares),
                              memory_order_relaxed);
        err = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return err;
}

int sc_sched_group_destroy(struct sc_sched_group g)
{
    struct sc__sched_registry *r = registry();
    struct sc__shard *s = sc__shard();
    if (!r || !s || g.id == 0 || g.id >= SC_SCHED_MAX_GROUPS)
        return -EINVAL;
    if (s->sched.q[g.id].len || s->sched.current == g.id || s->sched.running == g.id)
        return -EBUSY;
    int err = -EINVAL;
    pthread_mutex_lock(&r->lock);
    uint64_t w = atomic_load_explicit(&r->word[g.id], memory_order_relaxed);
    if (word_alive(w)) {
        atomic_store_explicit(&r->word[g.id], w & ~(uint64_t)SC__SCHED_ALIVE, memory_order_relaxed);
        r->name[g.id][0] = '\0';
        err = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return err;
}

/* ---- this shard ---- */

struct sc_sched_group sc_sched_group_current(void)
{
    struct sc__shard *s = sc__shard();
    struct sc_sched_group g = {s ? s->sched.current : 0};
    return g;
}

int sc_sched_group_stats(struct sc_sched_group g, struct sc_sched_group_stats *out)
{
    struct sc__sched_registry *r = registry();
    struct sc__shard *s = sc__shard();
    if (!out || !r || !s || g.id >= SC_SCHED_MAX_GROUPS)
        return -EINVAL;
    pthread_mutex_lock(&r->lock);
    uint64_t w = atomic_load_explicit(&r->word[g.id], memory_order_relaxed);
    if (word_alive(w))
        memcpy(out->name, r->name[g.id], SC_SCHED_NAME_MAX);
    pthread_mutex_unlock(&r->lock);
    if (!word_alive(w))
        return -EINVAL;
    const struct sc__sched_acct *q = &s->sched.acct[g.id];
    /* counters of an earlier group in this slot, not reset yet: not ours */
    bool fresh = q->gen != (uint32_t)(w >> 32);
    out->shares = word_shares(w);
    out->tasks_queued = s->sched.q[g.id].len;
    out->runtime_ns = fresh ? 0 : q->runtime_ns;
    out->tasks_run = fresh ? 0 : q->tasks_run;
    out->slices = fresh ? 0 : q->slices;
    out->max_wait_ns = fresh ? 0 : q->max_wait_ns;
    out->vruntime = fresh ? 0 : q->vruntime;
    return 0;
}

/* ---- running work in a group ---- */

int sc_task_schedule_in(struct sc_task *t, struct sc_sched_group g)
{
    if (!group_alive(g))
        return -EINVAL;
    t->group = g.id;
    sc__task_enqueue(sc__shard(), t);
    return 0;
}

struct sc_future sc_sched_group_spawn(struct sc_sched_group g, sc_then_fn fn, const void *cap,
                                      size_t cap_size)
{
    if (!group_alive(g))
        return sc_make_error(-EINVAL);
    return sc__spawn_in(g.id, fn, cap, cap_size);
}

struct sc_future sc_with_sched_group(struct sc_sched_group g, sc_then_fn fn, const void *cap,
                                     size_t cap_size)
{
    if (!group_alive(g))
        return sc_make_error(-EINVAL);
    if (sc__shard()->sched.current == g.id && !sc_need_preempt())
        return fn((void *)cap, 0);
    return sc__spawn_in(g.id, fn, cap, cap_size);
}

void sc_sched_burn(uint64_t ns)
{
    struct sc__shard *s = sc__shard();
    if (s)
        s->engine->spend(s, ns);
}
