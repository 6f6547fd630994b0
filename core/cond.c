/*
 * cond.c — the condition variable: a FIFO of waiters and nothing else (no
 * mutex: on a shard nothing runs between a check and a wait).
 *
 * sc_cond_wait_until is a loop over plain waits, built on sc_do_until: the
 * predicate is the loop's stop condition and the body is one wait. Its
 * capture is a small header (the variable, the predicate) followed by the
 * caller's capture, 16-byte aligned like every capture in seacore.
 */
#include <stddef.h>
#include <string.h>

#include "core/cond.h"
#include "core/coord_impl.h"

void sc_cond_init(struct sc_cond *c)
{
    sc__waitq_init(&c->q, NULL);
    c->broken = 0;
    c->owner = sc__coord_owner_now();
    c->break_file = NULL;
    c->break_line = 0;
}

static struct sc_future cond_wait(struct sc_cond *c, uint64_t timeout_ns,
                                  struct sc_abort_source *as)
{
    sc__coord_bind(&c->owner);
    if (c->broken)
        return sc__make_error(c->broken, c->break_file, c->break_line);
    if (as) {
        sc__coord_bind(&as->owner);
        if (as->requested)
            return sc_make_error(-ECANCELED);
    }
    struct sc__cwait *w = sc__cwait_new(0);
    if (!w)
        return sc_make_error(-ENOMEM);
    return sc__cwait_start(&c->q, w, timeout_ns, SC_ETIMEDOUT, as);
}

struct sc_future sc_cond_wait(struct sc_cond *c)
{
    return cond_wait(c, UINT64_MAX, NULL);
}

struct sc_future sc_cond_wait_for(struct sc_cond *c, uint64_t timeout_ns)
{
    return cond_wait(c, timeout_ns, NULL);
}

struct sc_future sc_cond_wait_abortable(struct sc_cond *c, struct sc_abort_source *as)
{
    return cond_wait(c, UINT64_MAX, as);
}

void sc_cond_signal(struct sc_cond *c)
{
    sc__coord_bind(&c->owner);
    struct sc__cwait *w = sc__waitq_pop(&c->q);
    if (w)
        sc__cwait_done(w, 0);
}

void sc_cond_broadcast(struct sc_cond *c)
{
    sc__coord_bind(&c->owner);
    /* Only the waiters queued now: one woken here that waits again (a
     * predicate still false) joins the next round, not this one. */
    size_t n = c->q.len;
    struct sc__cwait *w;
    while (n-- && (w = sc__waitq_pop(&c->q)))
        sc__cwait_done(w, 0);
}

size_t sc_cond_waiters(const struct sc_cond *c)
{
    return c->q.len;
}

void sc__cond_break(struct sc_cond *c, int err, const char *file, int line)
{
    sc__coord_bind(&c->owner);
    if (c->broken)
        return;
    if (err > 0)
        err = -err;
    c->broken = err ? err : SC_EBROKEN;
    c->break_file = file;
    c->break_line = line;
    sc__waitq_fail_all(&c->q, c->broken, file, line);
}

/* ---- wait_until: a do_until loop whose body is one wait ---- */

struct until_hdr {
    struct sc_cond *cond;
    sc_cond_pred_fn pred;
};

#define UNTIL_CAP_OFF ((sizeof(struct until_hdr) + 15) & ~(size_t)15)

static bool until_stop(void *cap)
{
    struct until_hdr *h = cap;
    return h->pred((char *)cap + UNTIL_CAP_OFF);
}

static struct sc_future until_body(void *cap)
{
    return sc_cond_wait(((struct until_hdr *)cap)->cond);
}

struct sc_future sc_cond_wait_until(struct sc_cond *c, sc_cond_pred_fn pred, const void *cap,
                                    size_t cap_size)
{
    sc__coord_bind(&c->owner);
    if (pred((void *)cap)) /* the common case: no copy, no loop */
        return sc_make_ready(0);
    /* The loop's capture: header + the caller's, in 16-byte units so that
     * the caller's capture stays aligned inside it. */
    size_t total = UNTIL_CAP_OFF + cap_size;
    max_align_t buf[(total + sizeof(max_align_t) - 1) / sizeof(max_align_t)];
    struct until_hdr h = {c, pred};
    memcpy(buf, &h, sizeof h);
    if (cap_size)
        memcpy((char *)buf + UNTIL_CAP_OFF, cap, cap_size);
    /* The predicate runs once more on the copy before the first wait: a
     * cheap price for reusing sc_do_until as it is. */
    return sc_do_until(until_stop, until_body, buf, total);
}
