/*
 * pipe.c — the bounded queue, and the pipe built on it.
 *
 * The queue is a ring of words plus two FIFOs of waiters: pushers (only
 * while the ring is full; each record carries its item) and poppers (only
 * while the ring is empty). So at most one of the two is ever non-empty,
 * and handing over is direct: a push meeting a waiting popper gives the item
 * to it; a pop from a full ring lets the oldest pusher's item in behind.
 *
 * A pipe is a queue whose ends close separately: closing the writer turns
 * "empty" into end-of-stream (`eof`), closing the reader makes every push
 * fail with -EPIPE.
 */
#include "core/coord_impl.h"
#include "core/pipe.h"

int sc_queue_init(struct sc_queue *q, size_t capacity)
{
    q->buf = NULL;
    q->cap = q->head = q->len = 0;
    sc__waitq_init(&q->pushers, NULL);
    sc__waitq_init(&q->poppers, NULL);
    q->push_err = q->pop_err = 0;
    q->eof = false;
    q->err_file = NULL;
    q->err_line = 0;
    q->owner = sc__coord_owner_now();
    if (q->owner == SC_NO_SHARD)
        return -EPERM; /* the buffer comes from a shard's pool */
    if (capacity == 0 || capacity > SC_QUEUE_MAX_CAPACITY)
        return -EINVAL;
    q->buf = sc__pool_alloc(capacity * sizeof *q->buf);
    if (!q->buf)
        return -ENOMEM;
    q->cap = capacity;
    return 0;
}

static void fail_all(struct sc_queue *q, struct sc_waitq *wq, int err)
{
    sc__waitq_fail_all(wq, err, q->err_file ? q->err_file : __FILE__,
                       q->err_file ? q->err_line : __LINE__);
}

void sc_queue_destroy(struct sc_queue *q)
{
    sc__coord_bind(&q->owner);
    if (q->pushers.len || q->poppers.len) {
        int pe = q->push_err, oe = q->pop_err;
        q->push_err = q->pop_err = SC_EBROKEN; /* consumers that come back fail at once */
        fail_all(q, &q->pushers, pe ? pe : SC_EBROKEN);
        fail_all(q, &q->poppers, oe ? oe : SC_EBROKEN);
    }
    if (q->buf)
        sc__pool_free(q->buf, q->cap * sizeof *q->buf);
    q->buf = NULL;
    q->cap = q->head = q->len = 0;
}

static inline void ring_put(struct sc_queue *q, uintptr_t item)
{
    size_t tail = q->head + q->len;
    if (tail >= q->cap)
        tail -= q->cap;
    q->buf[tail] = item;
    q->len++;
}

static inline uintptr_t ring_take(struct sc_queue *q)
{
    uintptr_t item = q->buf[q->head];
    if (++q->head == q->cap)
        q->head = 0;
    q->len--;
    return item;
}

static struct sc_future error_at(const struct sc_queue *q, int err)
{
    if (q->err_file)
        return sc__make_error(err, q->err_file, q->err_line);
    return sc_make_error(err);
}

/* Push without waiting: 0, -EAGAIN (full), or the push error. */
static int push_now(struct sc_queue *q, uintptr_t item)
{
    if (q->push_err)
        return q->push_err;
    struct sc__cwait *w = sc__waitq_pop(&q->poppers);
    if (w) { /* the ring is empty and somebody waits: straight to them */
        sc__cwait_done(w, (intptr_t)item);
        return 0;
    }
    if (q->len == q->cap)
        return -EAGAIN;
    ring_put(q, item);
    return 0;
}

/* Pop without waiting: 0, -EAGAIN (empty), SC_EEOF, or the pop error. */
static int pop_now(struct sc_queue *q, uintptr_t *item)
{
    if (q->pop_err)
        return q->pop_err;
    if (q->len == 0)
        return q->eof ? SC_EEOF : -EAGAIN;
    *item = ring_take(q);
    struct sc__cwait *w = sc__waitq_pop(&q->pushers);
    if (w) { /* the ring was full: the oldest waiting item goes in behind */
        ring_put(q, w->arg);
        sc__cwait_done(w, 0);
    }
    return 0;
}

struct sc_future sc_queue_push(struct sc_queue *q, uintptr_t item)
{
    sc__coord_bind(&q->owner);
    int err = push_now(q, item);
    if (err == 0)
        return sc_make_ready(0);
    if (err != -EAGAIN)
        return error_at(q, err);
    struct sc__cwait *w = sc__cwait_new(item);
    if (!w)
        return sc_make_error(-ENOMEM);
    return sc__cwait_start(&q->pushers, w, UINT64_MAX, 0, NULL);
}

struct sc_future sc_queue_pop(struct sc_queue *q)
{
    sc__coord_bind(&q->owner);
    uintptr_t item = 0;
    int err = pop_now(q, &item);
    if (err == 0)
        return sc_make_ready((intptr_t)item);
    if (err != -EAGAIN)
        return err == SC_EEOF ? sc_make_error(SC_EEOF) : error_at(q, err);
    struct sc__cwait *w = sc__cwait_new(0);
    if (!w)
        return sc_make_error(-ENOMEM);
    return sc__cwait_start(&q->poppers, w, UINT64_MAX, 0, NULL);
}

int sc_queue_try_push(struct sc_queue *q, uintptr_t item)
{
    sc__coord_bind(&q->owner);
    return push_now(q, item);
}

int sc_queue_try_pop(struct sc_queue *q, uintptr_t *item)
{
    sc__coord_bind(&q->owner);
    return pop_now(q, item);
}

void sc__queue_abort(struct sc_queue *q, int err, const char *file, int line)
{
    sc__coord_bind(&q->owner);
    if (err > 0)
        err = -err;
    if (!err)
        err = SC_EBROKEN;
    if (q->push_err && q->pop_err)
        return; /* aborted (or both pipe ends closed) before */
    q->push_err = q->pop_err = err;
    q->err_file = file;
    q->err_line = line;
    q->head = q->len = 0;
    fail_all(q, &q->pushers, err);
    fail_all(q, &q->poppers, err);
}

size_t sc_queue_size(const struct sc_queue *q)
{
    return q->len;
}

size_t sc_queue_capacity(const struct sc_queue *q)
{
    return q->cap;
}

size_t sc_queue_waiting_pushers(const struct sc_queue *q)
{
    return q->pushers.len;
}

size_t sc_queue_waiting_poppers(const struct sc_queue *q)
{
    return q->poppers.len;
}

/* ------------------------------------------------------------------ */
/* Pipes                                                                */
/* ------------------------------------------------------------------ */

int sc_pipe_init(struct sc_pipe *p, size_t capacity)
{
    p->writer_closed = p->reader_closed = false;
    return sc_queue_init(&p->q, capacity);
}

void sc_pipe_destroy(struct sc_pipe *p)
{
    sc_queue_destroy(&p->q);
}

struct sc_future sc_pipe_write(struct sc_pipe *p, uintptr_t item)
{
    if (p->writer_closed)
        return sc_make_error(-EBADF);
    return sc_queue_push(&p->q, item);
}

struct sc_future sc_pipe_read(struct sc_pipe *p)
{
    if (p->reader_closed)
        return sc_make_error(-EBADF);
    return sc_queue_pop(&p->q);
}

int sc_pipe_close_writer(struct sc_pipe *p)
{
    sc__coord_bind(&p->q.owner);
    if (p->writer_closed)
        return -EALREADY;
    p->writer_closed = true;
    p->q.eof = true;
    /* Readers wait only on an empty pipe, and no writer waits then: the
     * stream is over for each of them. */
    if (p->q.len == 0)
        sc__waitq_fail_all(&p->q.poppers, SC_EEOF, __FILE__, __LINE__);
    return 0;
}

int sc_pipe_close_reader(struct sc_pipe *p)
{
    sc__coord_bind(&p->q.owner);
    if (p->reader_closed)
        return -EALREADY;
    p->reader_closed = true;
    p->q.push_err = -EPIPE;
    p->q.pop_err = -EBADF;
    p->q.head = p->q.len = 0; /* nobody will read them */
    sc__waitq_fail_all(&p->q.pushers, -EPIPE, __FILE__, __LINE__);
    sc__waitq_fail_all(&p->q.poppers, -EBADF, __FILE__, __LINE__);
    return 0;
}

size_t sc_pipe_size(const struct sc_pipe *p)
{
    return p->q.len;
}
