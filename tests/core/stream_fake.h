/*
 * stream_fake.h — in-memory sources and sinks for testing core/stream.h
 * (tests/core/test_stream.c and labs/09-net/grader.c).
 *
 * The source serves a byte string in chunks of at most `chunk` bytes; every
 * `wait_every`th read answers later (after a short sleep) instead of at
 * once, and may fail with `err` once `err_at` bytes have been served. The
 * sink records everything it is given, and the pointers and sizes of its
 * calls; a write that waits copies the bytes only when it finishes, so a
 * stream that touches a buffer the sink still owns is caught.
 */
#ifndef SC_TEST_STREAM_FAKE_H
#define SC_TEST_STREAM_FAKE_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "core/stream.h"

#define FAKE_MAX_CALLS 256

struct fake_src {
    const char *data;
    size_t len, pos;
    size_t chunk;        /* most bytes per read (0: as many as asked) */
    unsigned wait_every; /* every Nth read waits (0: none, 1: all) */
    size_t err_at;       /* with err: fail once this many bytes were served */
    int err;
    unsigned reads; /* calls to read */
    unsigned closes;
    /* the read that waits */
    char *dst;
    size_t want;
};

static inline size_t fake_src_serve(struct fake_src *s, char *dst, size_t want)
{
    size_t n = s->len - s->pos;
    if (s->err && s->err_at < s->len && s->pos + n > s->err_at)
        n = s->err_at - s->pos;
    if (s->chunk && n > s->chunk)
        n = s->chunk;
    if (n > want)
        n = want;
    memcpy(dst, s->data + s->pos, n);
    s->pos += n;
    return n;
}

static inline struct sc_future fake_src_answer(struct fake_src *s, char *dst, size_t want)
{
    if (s->err && s->pos >= s->err_at)
        return sc_make_error(s->err);
    return sc_make_ready((intptr_t)fake_src_serve(s, dst, want));
}

static inline struct sc_future fake_src_later(void *cap, intptr_t v)
{
    (void)v;
    struct fake_src *s = *(struct fake_src **)cap;
    return fake_src_answer(s, s->dst, s->want);
}

static inline struct sc_future fake_src_read(void *impl, char *buf, size_t len)
{
    struct fake_src *s = impl;
    s->reads++;
    if (len == 0)
        return sc_make_error(-EFAULT); /* a stream must never ask for nothing */
    if (s->wait_every && s->reads % s->wait_every == 0) {
        s->dst = buf;
        s->want = len;
        return sc_then(sc_sleep(SC_US(3)), fake_src_later, &s, sizeof s);
    }
    return fake_src_answer(s, buf, len);
}

static inline void fake_src_close(void *impl)
{
    ((struct fake_src *)impl)->closes++;
}

static const struct sc_source_ops fake_src_ops = {fake_src_read, fake_src_close};

struct fake_sink {
    char *got;
    size_t len, cap;
    unsigned wait_every; /* every Nth write waits (0: none, 1: all) */
    unsigned fail_at;    /* with err: the Nth write (1-based) fails */
    int err;
    unsigned writes, closes;
    const char *ptrs[FAKE_MAX_CALLS];
    size_t sizes[FAKE_MAX_CALLS];
    unsigned inflight; /* writes not yet finished: must never exceed 1 */
    unsigned overlap;  /* times a write came while another was in flight */
    /* the write that waits */
    const char *src;
    size_t n;
};

static inline void fake_sink_take(struct fake_sink *k, const char *p, size_t n)
{
    if (k->len + n > k->cap) {
        size_t c = k->cap ? k->cap : 4096;
        while (c < k->len + n)
            c *= 2;
        k->got = realloc(k->got, c);
        k->cap = c;
    }
    memcpy(k->got + k->len, p, n);
    k->len += n;
}

static inline struct sc_future fake_sink_later(void *cap, intptr_t v)
{
    (void)v;
    struct fake_sink *k = *(struct fake_sink **)cap;
    fake_sink_take(k, k->src, k->n);
    k->inflight--;
    return sc_make_ready(0);
}

static inline struct sc_future fake_sink_write(void *impl, const char *buf, size_t len)
{
    struct fake_sink *k = impl;
    if (k->inflight)
        k->overlap++;
    unsigned i = k->writes++;
    if (i < FAKE_MAX_CALLS) {
        k->ptrs[i] = buf;
        k->sizes[i] = len;
    }
    if (k->err && k->writes == k->fail_at)
        return sc_make_error(k->err);
    if (k->wait_every && k->writes % k->wait_every == 0) {
        k->inflight++;
        k->src = buf;
        k->n = len;
        return sc_then(sc_sleep(SC_US(5)), fake_sink_later, &k, sizeof k);
    }
    fake_sink_take(k, buf, len);
    return sc_make_ready(0);
}

static inline struct sc_future fake_sink_close(void *impl)
{
    ((struct fake_sink *)impl)->closes++;
    return sc_make_ready(0);
}

static const struct sc_sink_ops fake_sink_ops = {fake_sink_write, fake_sink_close};

static inline void fake_sink_free(struct fake_sink *k)
{
    free(k->got);
    memset(k, 0, sizeof *k);
}

#endif
