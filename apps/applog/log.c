/*
 * log.c — the append-only log of log.h: recovery, the in-memory tail, and
 * the committer that makes records durable in groups.
 *
 * The writer keeps the blocks from the first one not yet durable (`base`)
 * to the tail in one DMA buffer. An append frames its record into that
 * buffer at once and queues a waiter. The committer is a fiber that runs
 * while waiters are queued: it takes every queued waiter as one batch,
 * copies the blocks [base, tail] aside (appends may go on filling the
 * buffer while the copy is at the device), writes them with one DMA write,
 * flushes, and only then resolves the batch's futures. Then the blocks
 * wholly behind the batch leave the buffer; the tail block stays, to be
 * written again, fuller, by the next commit. Rewriting a partly filled
 * block is safe because sectors are written whole: a torn rewrite mixes
 * old and new sectors, and the bytes of the records already durable are
 * the same in both.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/applog/log.h"
#include "core/gate.h"
#include "core/memory.h"
#include "core/thread.h"
#include "disk/file.h"

#define COMMIT_TRIES 3
#define SCAN_BLOCKS  64 /* recovery reads this many blocks at a time */

static const uint32_t crc_nibble[16] = {
    0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1, 0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
    0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9, 0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75,
};

/* Half a byte at a time, reflected polynomial 0x82f63b78: a 64-byte table
 * that needs no setup, fast enough for a log whose cost is the flush. */
uint32_t applog_crc32c(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
    }
    return ~crc;
}

static uint32_t record_crc(uint32_t len, uint64_t seq, const void *payload)
{
    uint32_t c = applog_crc32c(0, &len, sizeof len);
    c = applog_crc32c(c, &seq, sizeof seq);
    return applog_crc32c(c, payload, len);
}

struct waiter {
    struct waiter *next;
    struct sc_promise p;
    uint64_t seq;
};

struct applog {
    struct sc_file *f;
    struct applog_opts opts;
    struct sc_gate gate; /* the committer is inside while it runs */
    bool committing, closing;
    /* the tail: blocks [base, base + cap_blocks) in buf */
    char *buf;
    uint64_t base; /* first block in buf (not yet durable, or the tail) */
    uint64_t cap_blocks;
    uint64_t end; /* file offset after the last record appended */
    uint64_t next_seq;
    struct waiter *qh, *qt; /* appended, waiting for a commit */
    struct applog_stats st;
};

/* ---- recovery ---- */

struct scan {
    uint64_t expect; /* the seq the next record must have */
    uint64_t end;    /* the byte after the last good record */
    bool done;
};

/* Parse one block at file block index blk; false when the log ends here. */
static bool scan_block(struct applog *l, struct scan *s, const char *b, uint64_t blk,
                       applog_record_fn fn, void *arg)
{
    uint32_t p = 0;
    while (p + APPLOG_HEADER <= APPLOG_BLOCK) {
        uint32_t len, crc;
        uint64_t seq;
        memcpy(&len, b + p, 4);
        memcpy(&crc, b + p + 4, 4);
        memcpy(&seq, b + p + 8, 8);
        if (len == 0)
            break; /* the rest of the block is padding */
        if (len > APPLOG_BLOCK - APPLOG_HEADER - p || seq != s->expect)
            return false;
        if (!l->opts.unsafe_skip_checksum && record_crc(len, seq, b + p + APPLOG_HEADER) != crc)
            return false;
        if (fn)
            fn(arg, seq, b + p + APPLOG_HEADER, len);
        s->expect++;
        p += APPLOG_HEADER + len;
        s->end = blk * APPLOG_BLOCK + p;
        l->st.recovered++;
    }
    return p > 0; /* a block that starts with no record ends the log */
}

struct open_cap {
    char *path;
    struct applog_opts opts;
    applog_record_fn fn;
    void *arg;
};

static void log_free(struct applog *l)
{
    for (struct waiter *w = l->qh, *n; w; w = n) {
        n = w->next;
        sc_promise_set_error(&w->p, -EBADF);
        sc_free(w);
    }
    sc_dma_free(l->buf);
    sc_free(l);
}

/* The parent directory of path (for sync_dir), into out. */
static void parent_dir(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, n, ".");
    else if (slash == path)
        snprintf(out, n, "/");
    else
        snprintf(out, n, "%.*s", (int)(slash - path), path);
}

static int recover(struct applog *l, const struct open_cap *c)
{
    intptr_t v;
    int rc = sc_await(sc_file_size(l->f), &v);
    if (rc < 0)
        return rc;
    uint64_t size = (uint64_t)v;
    char *chunk = sc_dma_alloc(SCAN_BLOCKS * APPLOG_BLOCK);
    if (!chunk)
        return -ENOMEM;
    struct scan s = {.expect = 1, .end = 0};
    for (uint64_t blk = 0; !s.done && blk * APPLOG_BLOCK < size; blk += SCAN_BLOCKS) {
        rc = sc_await(sc_file_dma_read(l->f, blk * APPLOG_BLOCK, chunk, SCAN_BLOCKS * APPLOG_BLOCK),
                      &v);
        if (rc < 0)
            break;
        uint64_t got = (uint64_t)v;
        for (uint64_t i = 0; !s.done && i < SCAN_BLOCKS; i++) {
            if ((i + 1) * APPLOG_BLOCK > got) {
                /* a short last block reads as zeroes past the end */
                if (i * APPLOG_BLOCK < got)
                    memset(chunk + got, 0, (size_t)((i + 1) * APPLOG_BLOCK - got));
                else {
                    s.done = true;
                    break;
                }
            }
            if (!scan_block(l, &s, chunk + i * APPLOG_BLOCK, blk + i, c->fn, c->arg))
                s.done = true;
        }
    }
    if (rc < 0) {
        sc_dma_free(chunk);
        return rc;
    }
    /* The writer starts at the tail block, holding the good prefix. */
    l->next_seq = s.expect;
    l->end = s.end;
    l->base = s.end / APPLOG_BLOCK;
    l->st.recovered_end = s.end;
    uint32_t in_tail = (uint32_t)(s.end % APPLOG_BLOCK);
    memset(l->buf, 0, (size_t)(l->cap_blocks * APPLOG_BLOCK));
    if (in_tail) {
        rc = sc_await(sc_file_dma_read(l->f, l->base * APPLOG_BLOCK, chunk, APPLOG_BLOCK), NULL);
        if (rc >= 0)
            memcpy(l->buf, chunk, in_tail);
    }
    sc_dma_free(chunk);
    if (rc < 0)
        return rc;
    /* Cut off everything after the good records, durably, before any
     * append: stale records behind the cut must never line up again. */
    uint64_t keep = in_tail ? (l->base + 1) * APPLOG_BLOCK : l->base * APPLOG_BLOCK;
    if (size > keep) {
        l->st.cut_bytes = size - s.end;
        rc = sc_await(sc_file_truncate(l->f, keep), NULL);
    }
    if (rc >= 0 && in_tail && size > s.end) {
        rc = sc_await(sc_file_dma_write(l->f, l->base * APPLOG_BLOCK, l->buf, APPLOG_BLOCK), NULL);
        l->st.blocks_written++;
    }
    if (rc >= 0)
        rc = sc_await(sc_file_flush(l->f), NULL);
    return rc;
}

static struct sc_future open_fiber(void *cap)
{
    const struct open_cap *c = cap;
    struct applog *l = sc_calloc(1, sizeof *l);
    if (!l)
        return sc_make_error(-ENOMEM);
    l->opts = c->opts;
    l->cap_blocks = 4;
    l->buf = sc_dma_alloc(l->cap_blocks * APPLOG_BLOCK);
    sc_gate_init(&l->gate);
    if (!l->buf) {
        sc_free(l);
        return sc_make_error(-ENOMEM);
    }
    intptr_t v;
    int rc = sc_await(sc_file_open(c->path, SC_FILE_READ | SC_FILE_WRITE | SC_FILE_CREATE), &v);
    if (rc < 0) {
        log_free(l);
        return sc_make_error(rc);
    }
    l->f = (struct sc_file *)v;
    /* the file's name must survive a crash too */
    char dir[512];
    parent_dir(c->path, dir, sizeof dir);
    rc = sc_await(sc_file_sync_dir(dir), NULL);
    if (rc >= 0)
        rc = recover(l, c);
    if (rc < 0) {
        sc_await(sc_file_close(l->f), NULL);
        log_free(l);
        return sc_make_error(rc);
    }
    l->st.next_seq = l->next_seq;
    return sc_make_ready((intptr_t)l);
}

static struct sc_future free_path(void *cap)
{
    sc_free(*(char **)cap);
    return sc_make_ready(0);
}

struct sc_future applog_open(const char *path, const struct applog_opts *opts, applog_record_fn fn,
                             void *arg)
{
    if (!path || !*path)
        return sc_make_error(-EINVAL);
    struct open_cap c = {.fn = fn, .arg = arg};
    if (opts)
        c.opts = *opts;
    c.path = sc_malloc(strlen(path) + 1);
    if (!c.path)
        return sc_make_error(-ENOMEM);
    strcpy(c.path, path);
    struct sc_future f = SC_THREAD_SPAWN(open_fiber, c, NULL);
    return sc_finally(f, free_path, &c.path, sizeof c.path);
}

/* ---- the committer ---- */

static void resolve(struct waiter *batch, int err, struct applog *l)
{
    for (struct waiter *w = batch, *n; w; w = n) {
        n = w->next;
        if (err) {
            sc_promise_set_error(&w->p, err);
            l->st.failed++;
        } else {
            sc_promise_set_value(&w->p, (intptr_t)w->seq);
            l->st.acked++;
        }
        sc_free(w);
    }
}

/* One commit: the batch's blocks written and flushed (tried a few times). */
static int commit_once(struct applog *l, struct waiter *batch, char *copy, uint64_t nblocks)
{
    int rc = 0;
    for (int attempt = 0; attempt < COMMIT_TRIES; attempt++) {
        if (attempt)
            l->st.retries++;
        rc = sc_await(sc_file_dma_write(l->f, l->base * APPLOG_BLOCK, copy, nblocks * APPLOG_BLOCK),
                      NULL);
        if (rc < 0)
            continue;
        l->st.blocks_written += nblocks;
        if (l->opts.unsafe_ack_before_flush) {
            resolve(batch, 0, l); /* wrong on purpose: not durable yet */
            batch = NULL;
        }
        rc = sc_await(sc_file_flush(l->f), NULL);
        if (rc >= 0)
            break;
    }
    if (batch)
        resolve(batch, rc < 0 ? rc : 0, l);
    return rc;
}

static struct sc_future committer(void *cap)
{
    struct applog *l = *(struct applog **)cap;
    while (l->qh) {
        struct waiter *batch = l->qh;
        l->qh = l->qt = NULL;
        uint64_t end = l->end;
        uint64_t nblocks = (end + APPLOG_BLOCK - 1) / APPLOG_BLOCK - l->base;
        char *copy = sc_dma_alloc(nblocks * APPLOG_BLOCK);
        if (!copy) {
            resolve(batch, -ENOMEM, l);
            continue;
        }
        memcpy(copy, l->buf, nblocks * APPLOG_BLOCK);
        int rc = commit_once(l, batch, copy, nblocks);
        sc_dma_free(copy);
        if (rc < 0)
            continue; /* the blocks stay in buf: the next commit writes them again */
        l->st.commits++;
        /* Blocks wholly behind the commit leave the buffer; the block that
         * holds `end` stays (unless end is on a block boundary). */
        uint64_t drop = end / APPLOG_BLOCK - l->base;
        if (drop) {
            uint64_t used = (l->end + APPLOG_BLOCK - 1) / APPLOG_BLOCK - l->base;
            uint64_t keep = used > drop ? used - drop : 0;
            memmove(l->buf, l->buf + drop * APPLOG_BLOCK, keep * APPLOG_BLOCK);
            memset(l->buf + keep * APPLOG_BLOCK, 0, (l->cap_blocks - keep) * APPLOG_BLOCK);
            l->base += drop;
        }
    }
    l->committing = false;
    sc_gate_leave(&l->gate);
    return sc_make_ready(0);
}

/* Room in buf for the block holding file offset off + n bytes. */
static int reserve(struct applog *l, uint64_t off_end)
{
    uint64_t need = (off_end + APPLOG_BLOCK - 1) / APPLOG_BLOCK - l->base;
    if (need <= l->cap_blocks)
        return 0;
    uint64_t cap = l->cap_blocks * 2;
    while (cap < need)
        cap *= 2;
    char *nb = sc_dma_alloc(cap * APPLOG_BLOCK);
    if (!nb)
        return -ENOMEM;
    memcpy(nb, l->buf, l->cap_blocks * APPLOG_BLOCK);
    memset(nb + l->cap_blocks * APPLOG_BLOCK, 0, (cap - l->cap_blocks) * APPLOG_BLOCK);
    sc_dma_free(l->buf);
    l->buf = nb;
    l->cap_blocks = cap;
    return 0;
}

struct sc_future applog_append(struct applog *l, const void *data, uint32_t len, uint64_t *seq)
{
    if (!l || l->closing)
        return sc_make_error(-EBADF);
    if (len == 0 || len > APPLOG_MAX_PAYLOAD || !data)
        return sc_make_error(-EINVAL);
    uint64_t at = l->end;
    if (APPLOG_BLOCK - at % APPLOG_BLOCK < APPLOG_HEADER + len)
        at = (at / APPLOG_BLOCK + 1) * APPLOG_BLOCK; /* the next block; this one's rest stays 0 */
    struct waiter *w = sc_malloc(sizeof *w);
    if (!w || reserve(l, at + APPLOG_HEADER + len) < 0) {
        sc_free(w);
        return sc_make_error(-ENOMEM);
    }
    if (!l->committing && sc_gate_enter(&l->gate) < 0) {
        sc_free(w);
        return sc_make_error(-EBADF);
    }
    char *p = l->buf + (at - l->base * APPLOG_BLOCK);
    uint64_t s = l->next_seq++;
    uint32_t crc = record_crc(len, s, data);
    memcpy(p, &len, 4);
    memcpy(p + 4, &crc, 4);
    memcpy(p + 8, &s, 8);
    memcpy(p + APPLOG_HEADER, data, len);
    l->end = at + APPLOG_HEADER + len;
    l->st.appended++;
    l->st.next_seq = l->next_seq;
    if (seq)
        *seq = s;
    w->next = NULL;
    w->seq = s;
    sc_promise_init(&w->p);
    struct sc_future f = sc_promise_get_future(&w->p);
    if (l->qt)
        l->qt->next = w;
    else
        l->qh = w;
    l->qt = w;
    if (!l->committing) {
        l->committing = true;
        /* the gate was entered above; the committer leaves it */
        struct sc_future c = SC_THREAD_SPAWN(committer, l, NULL);
        if (sc_future_failed(c)) {
            /* no fiber: the record waits for the next append's committer
             * (or fails with -EBADF at close) */
            sc_future_ignore(c);
            l->committing = false;
            sc_gate_leave(&l->gate);
        } else {
            sc_future_discard(c);
        }
    }
    return f;
}

/* ---- close ---- */

static struct sc_future close_file(void *cap, intptr_t v)
{
    (void)v;
    struct applog *l = *(struct applog **)cap;
    struct sc_future f = sc_file_close(l->f);
    log_free(l);
    return f;
}

struct sc_future applog_close(struct applog *l)
{
    if (!l || l->closing)
        return sc_make_error(-EBADF);
    l->closing = true;
    return sc_then(sc_gate_close(&l->gate), close_file, &l, sizeof l);
}

void applog_stats(const struct applog *l, struct applog_stats *out)
{
    *out = l->st;
}
