/*
 * sharded.c — sharded services and foreign pointers, on top of submit_to.
 *
 * The container keeps one slot per shard, padded to its own cache line and
 * touched only by that shard: the instance, the count of calls in flight,
 * and the promise that stop() waits on. The slot array itself is written by
 * the shard that starts the service before any message goes out, so the
 * queues' release/acquire publishes it to everyone.
 */
#include <stdlib.h>
#include <string.h>

#include "core/future_impl.h"
#include "core/loop.h"
#include "core/sharded.h"
#include "core/smp.h"

struct sc__sharded_slot {
    _Alignas(64) void *inst;
    uint64_t inflight;
    bool stopping;
    bool waiting; /* stop() waits for inflight to reach 0 */
    struct sc_promise drained;
};

/* ---- start ---- */

struct start_cap {
    struct sc_sharded *s;
};

static struct sc_future start_here(void *cap)
{
    struct sc_sharded *s = ((struct start_cap *)cap)->s;
    struct sc__sharded_slot *slot = &s->slots[sc_this_shard()];
    void *inst = calloc(1, s->ops->size ? s->ops->size : 1);
    if (!inst)
        return sc_make_error(-ENOMEM);
    slot->inst = inst;
    return s->ops->start ? s->ops->start(inst, sc_this_shard(), s->arg) : sc_make_ready(0);
}

static struct sc_future start_failed(void *cap, intptr_t v, int err)
{
    struct sc_sharded *s = ((struct start_cap *)cap)->s;
    (void)v;
    if (!err)
        return sc_make_ready(0);
    /* Undo: stop what started, then report the start error. */
    struct sc_future f = sc_sharded_stop(s);
    sc_future_ignore(f);
    return sc_make_error(err);
}

struct sc_future sc_sharded_start(struct sc_sharded *s, const struct sc_sharded_ops *ops, void *arg)
{
    s->ops = ops;
    s->arg = arg;
    s->n = sc_shard_count();
    s->slots = aligned_alloc(64, sizeof(struct sc__sharded_slot) * s->n);
    if (!s->slots)
        return sc_make_error(-ENOMEM);
    memset(s->slots, 0, sizeof(struct sc__sharded_slot) * s->n);
    struct start_cap c = {s};
    return SC_THEN_WRAPPED(sc_smp_invoke_on_all(start_here, &c, sizeof c), start_failed, c);
}

void *sc_sharded_local(const struct sc_sharded *s)
{
    unsigned me = sc_this_shard();
    if (!s->slots || me >= s->n || s->slots[me].stopping)
        return NULL;
    return s->slots[me].inst;
}

/* ---- calls ---- */

struct call_hdr {
    struct sc_sharded *s;
    sc_sharded_fn fn;
    _Alignas(16) unsigned char cap[];
};

static struct sc_future call_ended(void *cap)
{
    struct sc__sharded_slot *slot = *(struct sc__sharded_slot **)cap;
    if (--slot->inflight == 0 && slot->waiting) {
        slot->waiting = false;
        sc_promise_set_value(&slot->drained, 0);
    }
    return sc_make_ready(0);
}

static struct sc_future call_here(void *cap)
{
    struct call_hdr *h = cap;
    struct sc__sharded_slot *slot = &h->s->slots[sc_this_shard()];
    if (!slot->inst || slot->stopping)
        return sc_make_error(-ESHUTDOWN);
    slot->inflight++;
    struct sc_future f = h->fn(slot->inst, h->cap);
    return SC_FINALLY(f, call_ended, slot);
}

struct sc_future sc_sharded_invoke_on(struct sc_sharded *s, unsigned shard, sc_sharded_fn fn,
                                      const void *cap, size_t cap_size)
{
    if (shard >= s->n)
        return sc_make_error(-EINVAL);
    size_t size = sizeof(struct call_hdr) + cap_size;
    struct call_hdr *h = malloc(size); /* a staging copy: submit_to copies it again */
    if (!h)
        return sc_make_error(-ENOMEM);
    h->s = s;
    h->fn = fn;
    if (cap_size)
        memcpy(h->cap, cap, cap_size);
    struct sc_future f = sc_smp_submit_to(shard, call_here, h, size);
    free(h);
    return f;
}

struct all_cap {
    struct sc_sharded *s;
    sc_sharded_fn fn;
    const void *cap;
    size_t cap_size;
};

static struct sc_future invoke_i(void *cap, size_t i)
{
    struct all_cap *a = cap;
    return sc_sharded_invoke_on(a->s, (unsigned)i, a->fn, a->cap, a->cap_size);
}

struct sc_future sc_sharded_invoke_on_all(struct sc_sharded *s, sc_sharded_fn fn, const void *cap,
                                          size_t cap_size)
{
    struct all_cap a = {s, fn, cap, cap_size};
    /* Launching never yields, so the caller's captured state is read only
     * during this call (each invoke copies it into its message). */
    return sc__fan_now(s->n, invoke_i, NULL, 0, &a, sizeof a);
}

/* ---- stop ---- */

static struct sc_future free_instance(void *cap, intptr_t v, int err)
{
    struct sc__sharded_slot *slot = *(struct sc__sharded_slot **)cap;
    (void)v;
    free(slot->inst);
    slot->inst = NULL;
    return err ? sc_make_error(err) : sc_make_ready(0);
}

static struct sc_future stop_instance(void *cap, intptr_t v)
{
    struct sc_sharded *s = *(struct sc_sharded **)cap;
    struct sc__sharded_slot *slot = &s->slots[sc_this_shard()];
    (void)v;
    struct sc_future f = s->ops->stop ? s->ops->stop(slot->inst) : sc_make_ready(0);
    return SC_THEN_WRAPPED(f, free_instance, slot);
}

static struct sc_future stop_here(void *cap)
{
    struct sc_sharded *s = *(struct sc_sharded **)cap;
    struct sc__sharded_slot *slot = &s->slots[sc_this_shard()];
    if (!slot->inst || slot->stopping)
        return sc_make_ready(0);
    slot->stopping = true;
    struct sc_future drained = sc_make_ready(0);
    if (slot->inflight) {
        sc_promise_init(&slot->drained);
        slot->waiting = true;
        drained = sc_promise_get_future(&slot->drained);
    }
    return SC_THEN(drained, stop_instance, s);
}

static struct sc_future free_slots(void *cap, intptr_t v, int err)
{
    struct sc_sharded *s = *(struct sc_sharded **)cap;
    (void)v;
    free(s->slots);
    s->slots = NULL;
    return err ? sc_make_error(err) : sc_make_ready(0);
}

struct sc_future sc_sharded_stop(struct sc_sharded *s)
{
    if (!s->slots)
        return sc_make_ready(0);
    return SC_THEN_WRAPPED(sc_smp_invoke_on_all(stop_here, &s, sizeof s), free_slots, s);
}

/* ---- foreign pointers ---- */

struct sc_foreign_ptr sc_foreign_ptr_make(void *ptr, void (*destroy)(void *ptr))
{
    struct sc_foreign_ptr fp = {ptr, sc_this_shard(), destroy};
    return fp;
}

struct destroy_cap {
    void *ptr;
    void (*destroy)(void *ptr);
};

static struct sc_future destroy_here(void *cap)
{
    struct destroy_cap *d = cap;
    d->destroy(d->ptr);
    return sc_make_ready(0);
}

struct sc_future sc_foreign_ptr_release(struct sc_foreign_ptr *fp)
{
    if (!fp->ptr || !fp->destroy)
        return sc_make_error(-EINVAL);
    struct destroy_cap d = {fp->ptr, fp->destroy};
    unsigned owner = fp->owner;
    fp->ptr = NULL;
    return sc_smp_submit_to(owner, destroy_here, &d, sizeof d);
}
