/*
 * stream.c — the buffered input and output streams of core/stream.h.
 *
 * Input. One buffer; the unread bytes are buf[start, end). Every read
 * operation is a small loop: look at what is buffered; if it is enough,
 * answer; otherwise make room and ask the source for more, directly into the
 * buffer's free tail. A source that answers at once (an in-memory pipe, a
 * socket with data waiting) keeps the loop going without a task or an
 * allocation; a source that has to wait gets a continuation, and the loop
 * resumes there. Room is made by moving the unread bytes to the front, but
 * only when that is worth it (see rd_make_room), so a parser that consumes
 * line by line rarely pays for a memmove.
 *
 * Output. Two buffers of the same size: the batch being filled, and a spare
 * that is either idle or being written by the sink. When a batch is full it
 * goes to the sink and the app goes on filling the other buffer, so a slow
 * sink costs the app nothing until both buffers are in use; only then does a
 * write return a future that waits. A write at least as large as a buffer
 * goes to the sink as it is, after what was batched.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/memory.h"
#include "core/reactor.h"
#include "core/stream.h"
#include "core/stream_impl.h"

#define SC_STREAM_DEFAULT_BUF 8192

/* ==== the input stream ================================================== */

enum rd_kind {
    RD_SOME,    /* sc_istream_read: anything buffered */
    RD_EXACTLY, /* sc_istream_read_exactly: want bytes */
    RD_UNTIL,   /* sc_istream_read_until: a line of at most want bytes */
    RD_SKIP,    /* sc_istream_skip: left more bytes to drop */
};

/* The state of one read operation: copied into its continuation when it has
 * to wait, so everything it needs across a wait is here. */
struct rd_op {
    struct sc_istream *is;
    uint8_t kind;   /* enum rd_kind */
    char delim;     /* RD_UNTIL */
    size_t want;    /* RD_EXACTLY: bytes wanted; RD_UNTIL: the longest line */
    size_t scanned; /* RD_UNTIL: bytes after start known to hold no delimiter */
    uint64_t left;  /* RD_SKIP: bytes still to drop */
    uint64_t done;  /* RD_SKIP: bytes dropped */
};

static struct sc_future rd_run(struct rd_op *op);
static struct sc_future until_run(struct rd_op *op);

int sc_istream_init(struct sc_istream *is, const struct sc_source_ops *ops, void *impl,
                    size_t bufsize)
{
    if (!is)
        return -EINVAL;
    memset(is, 0, sizeof *is);
    if (!ops || !ops->read)
        return -EINVAL;
    is->cap = bufsize ? bufsize : SC_STREAM_DEFAULT_BUF;
    is->buf = sc_malloc(is->cap);
    if (!is->buf) {
        is->cap = 0;
        return -ENOMEM;
    }
    is->ops = ops;
    is->impl = impl;
    return 0;
}

/* Free the buffer and close the source. */
static void rd_release(struct sc_istream *is)
{
    sc_free(is->buf);
    is->buf = NULL;
    is->start = is->end = is->cap = 0;
    is->closing = false;
    if (is->ops && is->ops->close)
        is->ops->close(is->impl);
}

/* The operation is over: answer v. */
static struct sc_future rd_finish(struct sc_istream *is, intptr_t v)
{
    is->busy = false;
    return sc_make_ready(v);
}

/* The operation is over: fail with err. */
static struct sc_future rd_error(struct sc_istream *is, int err)
{
    is->busy = false;
    return sc_make_error(err);
}

/* Take the source's answer to a read of the free tail. */
static void rd_apply(struct sc_istream *is, intptr_t v, int err)
{
    if (err) {
        if (!is->err)
            is->err = err;
    } else if (v == 0) {
        is->eof = true;
    } else if (v < 0 || (size_t)v > is->cap - is->end) {
        sc_log(SC_LOG_ERROR, "stream: the source claims %ld bytes for a read of %zu", (long)v,
               is->cap - is->end);
        if (!is->err)
            is->err = -EIO;
    } else {
        is->end += (size_t)v;
        is->bytes_read += (uint64_t)v;
    }
}

/*
 * Make room at the tail before asking the source for more. An empty buffer
 * starts again at 0 (free). Otherwise the unread bytes move to the front
 * only when the space in front of them is larger than the space behind them
 * (the move at least doubles the room: a byte is moved at most about once
 * per buffer's worth read), or when @p need bytes counted from start would
 * not fit where they are.
 */
static void rd_make_room(struct sc_istream *is, size_t need)
{
    size_t have = is->end - is->start;
    if (have == 0) {
        is->start = is->end = 0;
        return;
    }
    if (is->start > 0 && (is->start > is->cap - is->end || is->cap - is->start < need)) {
        memmove(is->buf, is->buf + is->start, have);
        is->start = 0;
        is->end = have;
    }
}

/*
 * Ask the source for bytes into the free tail (there must be some). Returns
 * false when the source answered at once (its answer is applied already),
 * true with *pending set to its future when it has to wait.
 */
static bool rd_refill(struct sc_istream *is, struct sc_future *pending)
{
    struct sc_future f = is->ops->read(is->impl, is->buf + is->end, is->cap - is->end);
    if (!sc_future_available(f)) {
        *pending = f;
        return true;
    }
    intptr_t v = 0;
    int err = sc_future_get(f, &v);
    rd_apply(is, v, err);
    return false;
}

static struct sc_future rd_again(struct rd_op *op)
{
    if (op->is->closing) {
        rd_release(op->is);
        return rd_error(op->is, -ECONNABORTED);
    }
    return op->kind == RD_UNTIL ? until_run(op) : rd_run(op);
}

static struct sc_future rd_resume(void *cap, intptr_t v, int err)
{
    struct rd_op *op = cap;
    rd_apply(op->is, v, err);
    return rd_again(op);
}

static struct sc_future rd_resume_yield(void *cap, intptr_t v)
{
    (void)v;
    return rd_again(cap);
}

/* Wait for the source's future f, then go on with op. */
static struct sc_future rd_wait(struct rd_op *op, struct sc_future f)
{
    op->is->busy = true;
    struct sc_future r = sc_then_wrapped(f, rd_resume, op, sizeof *op);
    if (sc_future_failed(r) && !op->is->err)
        op->is->err = -ENOMEM; /* and busy stays: the source may still fill the buffer */
    return r;
}

/* The task quota is spent: go on with op in a later task. */
static struct sc_future rd_yield(struct rd_op *op)
{
    op->is->busy = true;
    struct sc_future r = sc_then(sc_yield(), rd_resume_yield, op, sizeof *op);
    if (sc_future_failed(r))
        op->is->busy = false; /* no read of the source is outstanding */
    return r;
}

/* read, read_exactly and skip: answer from the buffer, or refill and loop. */
static struct sc_future rd_run(struct rd_op *op)
{
    struct sc_istream *is = op->is;
    for (;;) {
        size_t have = is->end - is->start;
        if (op->kind == RD_SOME && have)
            return rd_finish(is, (intptr_t)have);
        if (op->kind == RD_EXACTLY && have >= op->want)
            return rd_finish(is, (intptr_t)op->want);
        if (op->kind == RD_SKIP) {
            size_t take = have < op->left ? have : (size_t)op->left;
            is->start += take;
            op->left -= take;
            op->done += take;
            if (!op->left)
                return rd_finish(is, (intptr_t)op->done);
        }
        if (is->err)
            return rd_error(is, is->err);
        if (is->eof)
            return rd_finish(is, op->kind == RD_SKIP      ? (intptr_t)op->done
                                 : op->kind == RD_EXACTLY ? (intptr_t)have
                                                          : 0);
        if (sc_need_preempt())
            return rd_yield(op);
        rd_make_room(is, op->kind == RD_EXACTLY ? op->want : 0);
        struct sc_future f;
        if (rd_refill(is, &f))
            return rd_wait(op, f);
    }
}

/*
 * read_until: find op->delim within the first op->want bytes. Bytes already
 * looked at are never looked at again: op->scanned counts them from start
 * (which only a move of the buffer changes, and a move keeps the count
 * right, since it moves start and the bytes together).
 */
static struct sc_future until_run(struct rd_op *op)
{
    struct sc_istream *is = op->is;
    /* LAB 09 BEGIN: scan the new bytes for the delimiter; answer, fail, or refill and loop */
    for (;;) {
        size_t have = is->end - is->start;
        size_t lim = have < op->want ? have : op->want;
        if (lim > op->scanned) {
            const char *from = is->buf + is->start;
            const char *hit = memchr(from + op->scanned, op->delim, lim - op->scanned);
            if (hit)
                return rd_finish(is, hit - from + 1);
            op->scanned = lim;
        }
        if (have >= op->want)
            return rd_error(is, -EMSGSIZE);
        if (is->err)
            return rd_error(is, is->err);
        if (is->eof)
            return have ? rd_error(is, SC_EEOF) : rd_finish(is, 0);
        if (sc_need_preempt())
            return rd_yield(op);
        rd_make_room(is, op->want);
        struct sc_future f;
        if (rd_refill(is, &f))
            return rd_wait(op, f);
    }
    /* LAB 09 END: return rd_error(is, SC_ELAB_TODO); */
}

/* Common checks of every read: a closed stream, a read already waiting. */
static int rd_check(const struct sc_istream *is)
{
    if (!is)
        return -EINVAL;
    if (!is->buf || is->closing)
        return -EBADF;
    if (is->busy)
        return -EBUSY;
    return 0;
}

struct sc_future sc_istream_read(struct sc_istream *is)
{
    int err = rd_check(is);
    if (err)
        return sc_make_error(err);
    struct rd_op op = {.is = is, .kind = RD_SOME};
    return rd_run(&op);
}

struct sc_future sc_istream_read_exactly(struct sc_istream *is, size_t n)
{
    int err = rd_check(is);
    if (err)
        return sc_make_error(err);
    if (n > is->cap)
        return sc_make_error(-EMSGSIZE);
    struct rd_op op = {.is = is, .kind = RD_EXACTLY, .want = n};
    return rd_run(&op);
}

struct sc_future sc_istream_read_until(struct sc_istream *is, char delim, size_t max)
{
    int err = rd_check(is);
    if (err)
        return sc_make_error(err);
    struct rd_op op = {.is = is, .kind = RD_UNTIL, .delim = delim};
    op.want = max == 0 || max > is->cap ? is->cap : max;
    return until_run(&op);
}

struct sc_future sc_istream_skip(struct sc_istream *is, uint64_t n)
{
    int err = rd_check(is);
    if (err)
        return sc_make_error(err);
    struct rd_op op = {.is = is, .kind = RD_SKIP, .left = n};
    return rd_run(&op);
}

const char *sc_istream_data(const struct sc_istream *is, size_t *len)
{
    if (!is || !is->buf) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = is->end - is->start;
    return is->buf + is->start;
}

void sc_istream_consume(struct sc_istream *is, size_t n)
{
    if (!is || !is->buf)
        return;
    if (is->busy) {
        /* the buffer may move under a read that waits: refuse, loudly */
        sc_log(SC_LOG_ERROR, "stream: consume while a read is outstanding (ignored)");
        return;
    }
    size_t have = is->end - is->start;
    if (n > have) {
        sc_log(SC_LOG_ERROR, "stream: consume %zu bytes of %zu buffered (clamped)", n, have);
        n = have;
    }
    is->start += n;
    if (is->start == is->end)
        is->start = is->end = 0;
}

bool sc_istream_eof(const struct sc_istream *is)
{
    return is && is->eof && is->start == is->end;
}

void sc_istream_close(struct sc_istream *is)
{
    if (!is || !is->buf || is->closing)
        return;
    if (is->busy) {
        /* the source still owns part of the buffer: release when it answers */
        is->closing = true;
        return;
    }
    rd_release(is);
}

/* ==== the output stream ================================================= */

int sc_ostream_init(struct sc_ostream *os, const struct sc_sink_ops *ops, void *impl,
                    size_t bufsize)
{
    if (!os)
        return -EINVAL;
    memset(os, 0, sizeof *os);
    if (!ops || !ops->write)
        return -EINVAL;
    os->cap = bufsize ? bufsize : SC_STREAM_DEFAULT_BUF;
    os->buf = sc_malloc(os->cap);
    if (!os->buf) {
        os->cap = 0;
        return -ENOMEM;
    }
    os->ops = ops;
    os->impl = impl;
    sc_promise_init(&os->idle);
    return 0;
}

/* The sink finished a write that had to wait. */
static struct sc_future sink_done(void *cap, intptr_t v, int err)
{
    (void)v;
    struct sc_ostream *os = *(struct sc_ostream **)cap;
    os->busy = false;
    if (err && !os->err)
        os->err = err;
    if (os->idle_wanted) {
        os->idle_wanted = false;
        sc_promise_set_value(&os->idle, 0);
    }
    return sc_make_ready(0);
}

/* Hand p[0, n) to the (idle) sink. */
static void sink_start(struct sc_ostream *os, const char *p, size_t n)
{
    os->sink_writes++;
    os->bytes_written += n;
    struct sc_future f = os->ops->write(os->impl, p, n);
    if (sc_future_available(f)) {
        int err = sc_future_get(f, NULL);
        if (err && !os->err)
            os->err = err;
        return;
    }
    os->busy = true;
    struct sc_future r = sc_then_wrapped(f, sink_done, &os, sizeof os);
    if (sc_future_failed(r) && !os->err)
        os->err = -ENOMEM; /* and busy stays: the sink may still read p */
    sc_future_ignore(r);
}

/* A future that resolves when the sink has no write outstanding. */
static struct sc_future sink_idle(struct sc_ostream *os)
{
    if (!os->busy)
        return sc_make_ready(0);
    if (os->err)
        return sc_make_error(os->err);
    sc_promise_init(&os->idle);
    os->idle_wanted = true;
    struct sc_future f = sc_promise_get_future(&os->idle);
    if (sc_future_failed(f))
        os->idle_wanted = false;
    return f;
}

/* The batch goes to the (idle) sink; the app goes on in the other buffer. */
static void batch_handoff(struct sc_ostream *os)
{
    if (!os->len)
        return;
    if (!os->spare) {
        os->spare = sc_malloc(os->cap);
        if (!os->spare) {
            if (!os->err)
                os->err = -ENOMEM;
            return;
        }
    }
    char *full = os->buf;
    size_t n = os->len;
    os->buf = os->spare;
    os->spare = full;
    os->len = 0;
    sink_start(os, full, n);
}

/* The end of a write, flush or close that had to wait. */
static struct sc_future wr_finish(struct sc_ostream *os, int err)
{
    os->pending = false;
    if (!err)
        err = os->err;
    return err ? sc_make_error(err) : sc_make_ready(0);
}

/* ---- a small write that filled the batch while the sink was busy ---- */

struct rest_op {
    struct sc_ostream *os;
    char *rest; /* a copy of what did not fit, so the caller's bytes are free at once */
    size_t n;
};

static struct sc_future rest_after_idle(void *cap, intptr_t v, int err)
{
    (void)v;
    struct rest_op *r = cap;
    struct sc_ostream *os = r->os;
    if (!err && !os->err)
        batch_handoff(os);
    if (!err && !os->err) {
        memcpy(os->buf, r->rest, r->n);
        os->len = r->n;
    }
    sc_free(r->rest);
    return wr_finish(os, err);
}

/*
 * The batch is full and the first @p n bytes of @p rest (less than a
 * buffer) did not fit. If the sink is idle, the batch goes now and rest
 * starts the next one; otherwise the write waits for the sink.
 */
static struct sc_future write_rest(struct sc_ostream *os, const char *rest, size_t n)
{
    if (!os->busy) {
        batch_handoff(os);
        if (os->err)
            return sc_make_error(os->err);
        memcpy(os->buf, rest, n);
        os->len = n;
        return sc_make_ready(0);
    }
    if (n == 0)
        return sc_make_ready(0); /* full, and goes when the sink is idle again */
    struct rest_op r = {os, sc_malloc(n), n};
    if (!r.rest) {
        os->err = -ENOMEM; /* part of the write is batched already: the stream is broken */
        return sc_make_error(-ENOMEM);
    }
    memcpy(r.rest, rest, n);
    os->pending = true;
    return sc_then_wrapped(sink_idle(os), rest_after_idle, &r, sizeof r);
}

/* ---- draining: the batch, then maybe a big buffer, all through the sink ---- */

struct drain_op {
    struct sc_ostream *os;
    const char *big; /* written uncopied after the batch; NULL: just the batch */
    size_t n;
};

/*
 * Each step waits for the sink to be idle, then hands it the next thing:
 * the batch, then the big buffer. When both are out and the sink is idle,
 * the operation is over.
 */
static struct sc_future drain_step(void *cap, intptr_t v, int err)
{
    (void)v;
    struct drain_op *d = cap;
    struct sc_ostream *os = d->os;
    if (err || os->err)
        return wr_finish(os, err);
    if (os->len)
        batch_handoff(os);
    else if (d->big) {
        sink_start(os, d->big, d->n);
        d->big = NULL;
    } else {
        return wr_finish(os, 0);
    }
    return sc_then_wrapped(sink_idle(os), drain_step, d, sizeof *d);
}

static struct sc_future drain(struct sc_ostream *os, const char *big, size_t n)
{
    struct drain_op d = {os, big, n};
    os->pending = true;
    return sc_then_wrapped(sink_idle(os), drain_step, &d, sizeof d);
}

/* A write of at least a buffer: after the batch, uncopied. */
static struct sc_future write_big(struct sc_ostream *os, const char *p, size_t n)
{
    return drain(os, p, n);
}

/* Common checks of every output call. */
static int wr_check(const struct sc_ostream *os)
{
    if (!os)
        return -EINVAL;
    if (os->closed)
        return -EPIPE;
    if (!os->buf)
        return -EBADF; /* never set up */
    if (os->pending)
        return -EBUSY;
    return os->err;
}

struct sc_future sc_ostream_write(struct sc_ostream *os, const void *p, size_t n)
{
    int err = wr_check(os);
    if (err)
        return sc_make_error(err);
    if (n == 0)
        return sc_make_ready(0);
    if (!p)
        return sc_make_error(-EINVAL);
    /* LAB 09 BEGIN: copy into the batch, hand a full batch to the sink, or write p uncopied */
    if (n >= os->cap)
        return write_big(os, p, n);
    size_t room = os->cap - os->len;
    if (n < room) {
        memcpy(os->buf + os->len, p, n);
        os->len += n;
        return sc_make_ready(0);
    }
    memcpy(os->buf + os->len, p, room);
    os->len = os->cap;
    return write_rest(os, (const char *)p + room, n - room);
    /* LAB 09 END: return sc_make_error(SC_ELAB_TODO); */
}

struct sc_future sc_ostream_write_str(struct sc_ostream *os, const char *s)
{
    if (!s)
        return sc_make_error(-EINVAL);
    return sc_ostream_write(os, s, strlen(s));
}

struct sc_future sc_ostream_flush(struct sc_ostream *os)
{
    int err = wr_check(os);
    if (err)
        return sc_make_error(err);
    if (!os->len && !os->busy)
        return sc_make_ready(0);
    return drain(os, NULL, 0);
}

/* ---- close: drain, close the sink, free the buffers ---- */

struct close_op {
    struct sc_ostream *os;
    int err; /* the first error seen */
};

static struct sc_future close_done(void *cap, intptr_t v, int err)
{
    (void)v;
    struct close_op *c = cap;
    struct sc_ostream *os = c->os;
    if (!os->busy) { /* a sink that could not be waited for keeps its buffer */
        sc_free(os->buf);
        sc_free(os->spare);
    }
    os->buf = os->spare = NULL;
    os->len = 0;
    os->pending = false;
    if (!c->err)
        c->err = err;
    return c->err ? sc_make_error(c->err) : sc_make_ready(0);
}

static struct sc_future close_sink(void *cap, intptr_t v, int err)
{
    (void)v;
    struct close_op *c = cap;
    struct sc_ostream *os = c->os;
    c->err = err ? err : os->err;
    os->pending = true; /* drain's end cleared it; the close is not over */
    struct sc_future f = os->ops->close ? os->ops->close(os->impl) : sc_make_ready(0);
    return sc_then_wrapped(f, close_done, c, sizeof *c);
}

struct sc_future sc_ostream_close(struct sc_ostream *os)
{
    if (!os)
        return sc_make_error(-EINVAL);
    if (os->closed)
        return sc_make_error(-EPIPE);
    if (!os->buf)
        return sc_make_error(-EBADF);
    if (os->pending)
        return sc_make_error(-EBUSY);
    os->closed = true;
    struct close_op c = {os, 0};
    return sc_then_wrapped(drain(os, NULL, 0), close_sink, &c, sizeof c);
}

size_t sc_ostream_buffered(const struct sc_ostream *os)
{
    return os ? os->len : 0;
}

/* ==== for the stacks (core/stream_impl.h) ================================ */

void sc__ostream_abandon(struct sc_ostream *os)
{
    if (!os)
        return;
    if (!os->busy) {
        sc_free(os->buf);
        sc_free(os->spare);
    }
    os->buf = os->spare = NULL;
    os->len = 0;
    os->closed = true;
}

bool sc__streams_idle(const struct sc_istream *is, const struct sc_ostream *os)
{
    return !is->busy && !os->busy && !os->pending;
}
