/*
 * gate.c — the gate: a counter of operations in flight, a closed flag, and a
 * promise for whoever closes it.
 */
#include "core/coord_impl.h"
#include "core/gate.h"

void sc_gate_init(struct sc_gate *g)
{
    g->count = 0;
    sc_promise_init(&g->closer);
    g->owner = sc__coord_owner_now();
    g->closed = false;
    g->draining = false;
}

int sc_gate_enter(struct sc_gate *g)
{
    sc__coord_bind(&g->owner);
    if (g->closed)
        return SC_EGATE_CLOSED;
    if (g->count == UINT64_MAX)
        return -EOVERFLOW;
    g->count++;
    return 0;
}

int sc_gate_leave(struct sc_gate *g)
{
    sc__coord_bind(&g->owner);
    if (g->count == 0)
        return -EINVAL;
    if (--g->count == 0 && g->draining) {
        g->draining = false;
        sc_promise_set_value(&g->closer, 0);
    }
    return 0;
}

struct sc_future sc_gate_close(struct sc_gate *g)
{
    sc__coord_bind(&g->owner);
    if (g->closed)
        return sc_make_error(-EALREADY);
    if (g->count == 0) {
        g->closed = true;
        return sc_make_ready(0);
    }
    sc_promise_init(&g->closer);
    struct sc_future f = sc_promise_get_future(&g->closer);
    if (sc_future_failed(f))
        return f; /* -ENOMEM: the gate stays open */
    g->closed = true;
    g->draining = true;
    return f;
}

bool sc_gate_is_closed(const struct sc_gate *g)
{
    return g->closed;
}

uint64_t sc_gate_count(const struct sc_gate *g)
{
    return g->count;
}

/* ------------------------------------------------------------------ */
/* sc_with_gate                                                         */
/* ------------------------------------------------------------------ */

/* Taken before fn runs (see sc_with_semaphore in sem.c for why). */
struct with_gate {
    struct sc__fstate result;
    struct sc__waiter w;
    struct sc_gate *gate;
};

static void with_gate_done(struct sc__waiter *w, intptr_t value, int err)
{
    struct with_gate *rec = SC_CONTAINER_OF(w, struct with_gate, w);
    struct sc_gate *g = rec->gate;
    /* The operation's outcome first, then the leave: whoever waits in
     * sc_gate_close() hears after the operation's own consumer. */
    sc__fstate_resolve(&rec->result, value, err); /* frees rec */
    sc_gate_leave(g);
}

struct sc_future sc_with_gate(struct sc_gate *g, sc_then_fn fn, const void *cap, size_t cap_size)
{
    (void)cap_size; /* fn always runs inline, on the caller's capture */
    int err = sc_gate_enter(g);
    if (err)
        return sc_make_error(err);
    struct with_gate *rec = sc__pool_alloc(sizeof *rec);
    if (!rec) {
        sc_gate_leave(g);
        return sc_make_error(-ENOMEM);
    }
    struct sc_future r = fn((void *)cap, 0);
    sc__future_settle(&r);
    if (r.gen == 0) {
        sc__pool_free(rec, sizeof *rec);
        sc_gate_leave(g);
        return r;
    }
    sc__fstate_init(&rec->result, sizeof *rec, 0);
    rec->w.wake = with_gate_done;
    rec->gate = g;
    struct sc_future out = sc__fstate_future(&rec->result);
    sc__future_attach(r, &rec->w);
    return out;
}
