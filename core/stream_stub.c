/*
 * stream_stub.c — a stand-in for core/stream.c, so that the simulated
 * network and its tests link before the real streams land. It follows
 * core/stream.h closely enough for the tests (one buffer each way, no spare
 * buffer); the coordinator drops this file when core/stream.c arrives.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/stream.h"

#define STUB_BUFSIZE 8192

int sc_istream_init(struct sc_istream *is, const struct sc_source_ops *ops, void *impl,
                    size_t bufsize)
{
    if (!ops || !ops->read)
        return -EINVAL;
    memset(is, 0, sizeof *is);
    is->cap = bufsize ? bufsize : STUB_BUFSIZE;
    is->buf = malloc(is->cap);
    if (!is->buf)
        return -ENOMEM;
    is->ops = ops;
    is->impl = impl;
    return 0;
}

/* ---- input: fill the buffer, then look again ---- */

enum { WANT_ANY, WANT_EXACTLY, WANT_UNTIL, WANT_SKIP };

struct want {
    struct sc_istream *is;
    int kind;
    char delim;
    uint64_t n; /* exactly: bytes; until: max; skip: bytes left */
    uint64_t skipped;
};

static struct sc_future look(struct want w);

static struct sc_future filled(void *cap, intptr_t v, int err)
{
    struct want w = *(struct want *)cap;
    struct sc_istream *is = w.is;
    is->busy = false;
    if (err) {
        is->err = err;
        return sc_make_error(err);
    }
    if (v == 0)
        is->eof = true;
    is->end += (size_t)v;
    is->bytes_read += (uint64_t)v;
    return look(w);
}

static struct sc_future fill(struct want w)
{
    struct sc_istream *is = w.is;
    if (is->start > 0) {
        memmove(is->buf, is->buf + is->start, is->end - is->start);
        is->end -= is->start;
        is->start = 0;
    }
    is->busy = true;
    struct sc_future f = is->ops->read(is->impl, is->buf + is->end, is->cap - is->end);
    return sc_then_wrapped(f, filled, &w, sizeof w);
}

static struct sc_future look(struct want w)
{
    struct sc_istream *is = w.is;
    size_t have = is->end - is->start;
    switch (w.kind) {
    case WANT_ANY:
        if (have || is->eof)
            return sc_make_ready((intptr_t)have);
        break;
    case WANT_EXACTLY:
        if (have >= w.n)
            return sc_make_ready((intptr_t)w.n);
        if (is->eof)
            return sc_make_ready((intptr_t)have);
        break;
    case WANT_UNTIL: {
        size_t lim = have < w.n ? have : (size_t)w.n;
        const char *p = memchr(is->buf + is->start, w.delim, lim);
        if (p)
            return sc_make_ready((intptr_t)(p - (is->buf + is->start) + 1));
        if (have >= w.n || have == is->cap)
            return sc_make_error(-EMSGSIZE);
        if (is->eof)
            return have ? sc_make_error(SC_EEOF) : sc_make_ready(0);
        break;
    }
    case WANT_SKIP: {
        size_t k = have < w.n ? have : (size_t)w.n;
        is->start += k;
        w.n -= k;
        w.skipped += k;
        if (w.n == 0 || is->eof)
            return sc_make_ready((intptr_t)w.skipped);
        break;
    }
    }
    if (is->err)
        return sc_make_error(is->err);
    return fill(w);
}

static struct sc_future want(struct sc_istream *is, struct want w)
{
    if (is->busy)
        return sc_make_error(-EBUSY);
    w.is = is;
    return look(w);
}

struct sc_future sc_istream_read(struct sc_istream *is)
{
    return want(is, (struct want){.kind = WANT_ANY});
}

struct sc_future sc_istream_read_exactly(struct sc_istream *is, size_t n)
{
    if (n > is->cap)
        return sc_make_error(-EMSGSIZE);
    return want(is, (struct want){.kind = WANT_EXACTLY, .n = n});
}

struct sc_future sc_istream_read_until(struct sc_istream *is, char delim, size_t max)
{
    return want(is, (struct want){.kind = WANT_UNTIL, .delim = delim, .n = max});
}

struct sc_future sc_istream_skip(struct sc_istream *is, uint64_t n)
{
    return want(is, (struct want){.kind = WANT_SKIP, .n = n});
}

const char *sc_istream_data(const struct sc_istream *is, size_t *len)
{
    *len = is->end - is->start;
    return is->buf + is->start;
}

void sc_istream_consume(struct sc_istream *is, size_t n)
{
    size_t have = is->end - is->start;
    is->start += n < have ? n : have;
}

bool sc_istream_eof(const struct sc_istream *is)
{
    return is->eof && is->start == is->end;
}

void sc_istream_close(struct sc_istream *is)
{
    if (is->ops && is->ops->close)
        is->ops->close(is->impl);
    free(is->buf);
    is->buf = NULL;
    is->ops = NULL;
}

/* ---- output: one batch, sent when full, flushed or closed ---- */

int sc_ostream_init(struct sc_ostream *os, const struct sc_sink_ops *ops, void *impl,
                    size_t bufsize)
{
    if (!ops || !ops->write)
        return -EINVAL;
    memset(os, 0, sizeof *os);
    os->cap = bufsize ? bufsize : STUB_BUFSIZE;
    os->buf = malloc(os->cap);
    if (!os->buf)
        return -ENOMEM;
    os->ops = ops;
    os->impl = impl;
    return 0;
}

struct sent_cap {
    struct sc_ostream *os;
    const char *next; /* a large write to send after the batch, or NULL */
    size_t next_len;
};

static struct sc_future sink_write(struct sc_ostream *os, const char *p, size_t len,
                                   const char *next, size_t next_len);

static struct sc_future sent(void *cap, intptr_t v, int err)
{
    (void)v;
    struct sent_cap c = *(struct sent_cap *)cap;
    struct sc_ostream *os = c.os;
    os->busy = false;
    if (err) {
        os->err = err;
        return sc_make_error(err);
    }
    if (c.next)
        return sink_write(os, c.next, c.next_len, NULL, 0);
    return sc_make_ready(0);
}

/* Hand p to the sink; the batch (if p is it) is empty once it is taken. */
static struct sc_future sink_write(struct sc_ostream *os, const char *p, size_t len,
                                   const char *next, size_t next_len)
{
    os->busy = true;
    os->bytes_written += len;
    os->sink_writes++;
    struct sc_future f = os->ops->write(os->impl, p, len);
    if (p == os->buf)
        os->len = 0; /* the stub never fills the batch while the sink holds it: busy says so */
    struct sent_cap c = {os, next, next_len};
    return sc_then_wrapped(f, sent, &c, sizeof c);
}

struct rest_cap {
    struct sc_ostream *os;
    size_t len;
    char data[];
};

static struct sc_future batch_rest(void *cap, intptr_t v)
{
    (void)v;
    struct rest_cap *rc = cap;
    memcpy(rc->os->buf + rc->os->len, rc->data, rc->len);
    rc->os->len += rc->len;
    return sc_make_ready(0);
}

struct sc_future sc_ostream_write(struct sc_ostream *os, const void *p, size_t len)
{
    if (os->closed)
        return sc_make_error(-EPIPE);
    if (os->err)
        return sc_make_error(os->err);
    if (os->busy)
        return sc_make_error(-EBUSY);
    if (len >= os->cap) {
        if (os->len)
            return sink_write(os, os->buf, os->len, p, len);
        return sink_write(os, p, len, NULL, 0);
    }
    size_t room = os->cap - os->len;
    size_t k = len < room ? len : room;
    memcpy(os->buf + os->len, p, k);
    os->len += k;
    if (os->len < os->cap)
        return sc_make_ready(0);
    if (k == len)
        return sink_write(os, os->buf, os->len, NULL, 0);
    /* full, with more to come: send the batch; the rest (smaller than a
     * batch) travels in the continuation's capture and is batched after */
    size_t rest = len - k;
    struct rest_cap *rc = malloc(sizeof *rc + rest);
    if (!rc)
        return sc_make_error(-ENOMEM);
    rc->os = os;
    rc->len = rest;
    memcpy(rc->data, (const char *)p + k, rest);
    struct sc_future f = sink_write(os, os->buf, os->len, NULL, 0);
    f = sc_then(f, batch_rest, rc, sizeof *rc + rest);
    free(rc);
    return f;
}

struct sc_future sc_ostream_write_str(struct sc_ostream *os, const char *s)
{
    return sc_ostream_write(os, s, strlen(s));
}

struct sc_future sc_ostream_flush(struct sc_ostream *os)
{
    if (os->err)
        return sc_make_error(os->err);
    if (os->busy)
        return sc_make_error(-EBUSY);
    if (!os->len)
        return sc_make_ready(0);
    return sink_write(os, os->buf, os->len, NULL, 0);
}

static struct sc_future close_sink(void *cap, intptr_t v, int err)
{
    (void)v;
    struct sc_ostream *os = *(struct sc_ostream **)cap;
    struct sc_future f = sc_make_ready(0);
    if (!err && os->ops->close)
        f = os->ops->close(os->impl);
    free(os->buf);
    os->buf = NULL;
    if (err)
        return sc_make_error(err);
    return f;
}

struct sc_future sc_ostream_close(struct sc_ostream *os)
{
    if (os->closed)
        return sc_make_error(-EPIPE);
    struct sc_future f = sc_ostream_flush(os);
    os->closed = true;
    return sc_then_wrapped(f, close_sink, &os, sizeof os);
}

size_t sc_ostream_buffered(const struct sc_ostream *os)
{
    return os->len;
}
