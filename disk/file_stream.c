/*
 * file_stream.c — a DMA file as a stream source (with read-ahead) and as a
 * stream sink (with write-behind). See disk/file_stream.h.
 *
 * Both keep a small ring of aligned blocks. The source keeps up to
 * read_ahead block reads in flight and copies from the oldest into the
 * stream's buffer; the sink fills one block, sends it, and starts filling
 * the next while up to write_behind blocks are at the disk. Buffers given to
 * the disk are never freed before their request finishes, even when the
 * stream is closed early: closing waits for them in the background.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "core/memory.h"
#include "disk/file_stream.h"

#define DEFAULT_BLOCK (128u * 1024u)
#define DEFAULT_DEPTH 4u
#define MAX_DEPTH     64u

struct slot {
    char *buf;
    struct sc_future fut; /* the block's read/write, while pending */
    bool pending;
    size_t got, pos; /* input: bytes in the block, bytes already handed out */
    uint64_t order;  /* output: when the block was sent (oldest completes first) */
};

/* ---------------------------------------------------------------- input */

struct fin {
    struct sc_file *f;
    size_t bs;
    unsigned depth;
    uint64_t next_off; /* the next block to ask for */
    uint64_t left;     /* bytes the reader may still get */
    size_t first_skip; /* bytes of the first block before the start offset */
    bool first;
    bool short_seen; /* a block came back short: the file ends there */
    unsigned head, inuse;
    struct slot *slots;
};

static void fin_issue(struct fin *s)
{
    while (s->inuse < s->depth && !s->short_seen) {
        /* do not read far beyond what the reader may still get */
        if ((uint64_t)s->inuse * s->bs >= s->left + s->first_skip)
            break;
        struct slot *sl = &s->slots[(s->head + s->inuse) % s->depth];
        sl->fut = sc_file_dma_read(s->f, s->next_off, sl->buf, s->bs);
        sl->pending = true;
        sl->got = sl->pos = 0;
        s->next_off += s->bs;
        s->inuse++;
    }
}

struct rd_cap {
    struct fin *s;
    char *buf;
    size_t len;
};

static struct sc_future fin_copy(struct fin *s, char *buf, size_t len)
{
    if (s->inuse == 0 || s->left == 0)
        return sc_make_ready(0);
    struct slot *sl = &s->slots[s->head];
    size_t avail = sl->got - sl->pos;
    size_t n = len < avail ? len : avail;
    if (n > s->left)
        n = (size_t)s->left;
    memcpy(buf, sl->buf + sl->pos, n);
    sl->pos += n;
    s->left -= n;
    if (sl->pos == sl->got) {
        s->head = (s->head + 1) % s->depth;
        s->inuse--;
        fin_issue(s);
    }
    return sc_make_ready((intptr_t)n);
}

static struct sc_future fin_read(void *impl, char *buf, size_t len);

static struct sc_future fin_arrived(void *cap, intptr_t got)
{
    struct rd_cap *c = cap;
    struct fin *s = c->s;
    struct slot *sl = &s->slots[s->head];
    sl->got = (size_t)got;
    if ((size_t)got < s->bs)
        s->short_seen = true;
    if (s->first) {
        s->first = false;
        sl->pos = s->first_skip < sl->got ? s->first_skip : sl->got;
    }
    if (sl->pos == sl->got) {
        /* an empty block: the end of the file (or only the skipped bytes);
         * fin_read() asks for more unless the file is known to end here */
        s->head = (s->head + 1) % s->depth;
        s->inuse--;
        return fin_read(s, c->buf, c->len);
    }
    return fin_copy(s, c->buf, c->len);
}

static struct sc_future fin_read(void *impl, char *buf, size_t len)
{
    struct fin *s = impl;
    fin_issue(s);
    if (s->inuse == 0 || s->left == 0)
        return sc_make_ready(0);
    struct slot *sl = &s->slots[s->head];
    if (sl->pending) {
        sl->pending = false;
        struct rd_cap c = {s, buf, len};
        return sc_then(sl->fut, fin_arrived, &c, sizeof c);
    }
    return fin_copy(s, buf, len);
}

struct free_cap {
    struct slot *slots;
    unsigned n;
    void *state;
};

static struct sc_future free_slots(void *cap)
{
    struct free_cap *c = cap;
    for (unsigned i = 0; i < c->n; i++)
        sc_dma_free(c->slots[i].buf);
    sc_free(c->slots);
    sc_free(c->state);
    return sc_make_ready(0);
}

/* Free the blocks once every request still using one has finished. */
static void release_later(struct slot *slots, unsigned n, void *state)
{
    struct sc_future fs[MAX_DEPTH];
    size_t k = 0;
    for (unsigned i = 0; i < n; i++)
        if (slots[i].pending) {
            fs[k++] = slots[i].fut;
            slots[i].pending = false;
        }
    struct free_cap c = {slots, n, state};
    /* errors were the reader's or writer's business; here only "done" counts */
    struct sc_future all = k ? sc_when_all_succeed(fs, k) : sc_make_ready(0);
    sc_future_ignore(sc_finally(all, free_slots, &c, sizeof c));
}

static void fin_close(void *impl)
{
    struct fin *s = impl;
    release_later(s->slots, s->depth, s);
}

static const struct sc_source_ops fin_ops = {.read = fin_read, .close = fin_close};

static struct slot *slots_new(unsigned n, size_t bs)
{
    struct slot *sl = sc_calloc(n, sizeof *sl);
    if (!sl)
        return NULL;
    for (unsigned i = 0; i < n; i++) {
        sl[i].buf = sc_dma_alloc(bs);
        if (!sl[i].buf) {
            for (unsigned j = 0; j < i; j++)
                sc_dma_free(sl[j].buf);
            sc_free(sl);
            return NULL;
        }
    }
    return sl;
}

static int sizes(struct sc_file *f, size_t *bs, unsigned *depth, size_t want_bs, unsigned want_d)
{
    uint32_t a = sc_file_alignment(f);
    *bs = want_bs ? want_bs : DEFAULT_BLOCK;
    *depth = want_d ? want_d : DEFAULT_DEPTH;
    if (*bs % a || *depth > MAX_DEPTH)
        return -EINVAL;
    return 0;
}

int sc_file_input_stream(struct sc_file *f, const struct sc_file_input_opts *opts,
                         struct sc_istream *out)
{
    struct sc_file_input_opts o = opts ? *opts : (struct sc_file_input_opts){0};
    size_t bs;
    unsigned depth;
    int rc = sizes(f, &bs, &depth, o.block_size, o.read_ahead);
    if (rc < 0)
        return rc;
    struct fin *s = sc_calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    uint32_t a = sc_file_alignment(f);
    s->f = f;
    s->bs = bs;
    s->depth = depth;
    s->next_off = o.offset & ~(uint64_t)(a - 1);
    s->first_skip = (size_t)(o.offset - s->next_off);
    s->first = true;
    s->left = o.length ? o.length : UINT64_MAX - bs;
    s->slots = slots_new(depth, bs);
    if (!s->slots) {
        sc_free(s);
        return -ENOMEM;
    }
    rc = sc_istream_init(out, &fin_ops, s, 0);
    if (rc < 0) {
        release_later(s->slots, depth, s);
        return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- output */

struct fout {
    struct sc_file *f;
    size_t bs;
    unsigned depth;
    uint64_t off;    /* where the block being filled goes */
    struct slot *fill_slot;
    size_t fill;     /* bytes in it */
    unsigned head, inuse; /* blocks at the disk, oldest first, in slots[] */
    struct slot *slots;   /* depth + 1: the ring, and the one being filled */
    unsigned nslots;
    unsigned next_free;
    uint64_t seq; /* submission order of blocks */
};

static struct slot *free_slot(struct fout *s)
{
    for (unsigned i = 0; i < s->nslots; i++) {
        struct slot *sl = &s->slots[(s->next_free + i) % s->nslots];
        if (!sl->pending && sl != s->fill_slot) {
            s->next_free = (unsigned)((sl - s->slots) + 1) % s->nslots;
            return sl;
        }
    }
    return NULL;
}

struct wr_cap {
    struct fout *s;
    const char *buf;
    size_t len;
};

static struct sc_future fout_write(void *impl, const char *buf, size_t len);

static struct sc_future written_one(void *cap, intptr_t v)
{
    struct wr_cap *c = cap;
    (void)v;
    return fout_write(c->s, c->buf, c->len);
}

/* The oldest block at the disk is done (or failed). */
static struct sc_future oldest(struct fout *s)
{
    struct slot *sl = NULL;
    for (unsigned i = 0; i < s->nslots; i++)
        if (s->slots[i].pending && (!sl || s->slots[i].order < sl->order))
            sl = &s->slots[i];
    sl->pending = false;
    s->inuse--;
    return sl->fut;
}

static void send_block(struct fout *s, size_t len)
{
    struct slot *sl = s->fill_slot;
    sl->fut = sc_file_dma_write(s->f, s->off, sl->buf, len);
    sl->pending = true;
    sl->order = s->seq++;
    s->inuse++;
    s->off += len;
    s->fill_slot = NULL;
    s->fill = 0;
}

static struct sc_future fout_write(void *impl, const char *buf, size_t len)
{
    struct fout *s = impl;
    while (len) {
        if (!s->fill_slot) {
            if (s->inuse >= s->depth) {
                struct wr_cap c = {s, buf, len};
                return sc_then(oldest(s), written_one, &c, sizeof c);
            }
            s->fill_slot = free_slot(s);
        }
        size_t n = s->bs - s->fill < len ? s->bs - s->fill : len;
        memcpy(s->fill_slot->buf + s->fill, buf, n);
        s->fill += n;
        buf += n;
        len -= n;
        if (s->fill == s->bs)
            send_block(s, s->bs);
    }
    return sc_make_ready(0);
}

struct close_cap {
    struct fout *s;
    uint64_t end;
};

static struct sc_future fout_truncate(void *cap, intptr_t v)
{
    (void)v;
    struct close_cap *c = cap;
    return sc_file_truncate(c->s->f, c->end);
}

static struct sc_future fout_flush(void *cap, intptr_t v)
{
    (void)v;
    struct close_cap *c = cap;
    return sc_file_flush(c->s->f);
}

static struct sc_future fout_free(void *cap)
{
    struct close_cap *c = cap;
    release_later(c->s->slots, c->s->nslots, c->s);
    return sc_make_ready(0);
}

static struct sc_future fout_close(void *impl)
{
    struct fout *s = impl;
    uint64_t end = s->off + s->fill;
    if (s->fill) {
        uint32_t a = sc_file_alignment(s->f);
        size_t padded = (s->fill + a - 1) & ~(size_t)(a - 1);
        memset(s->fill_slot->buf + s->fill, 0, padded - s->fill);
        send_block(s, padded);
    }
    struct sc_future fs[MAX_DEPTH + 1];
    size_t k = 0;
    for (unsigned i = 0; i < s->nslots; i++)
        if (s->slots[i].pending) {
            fs[k++] = s->slots[i].fut;
            s->slots[i].pending = false;
        }
    s->inuse = 0;
    struct close_cap c = {s, end};
    struct sc_future r = k ? sc_when_all_succeed(fs, k) : sc_make_ready(0);
    r = sc_then(r, fout_truncate, &c, sizeof c);
    r = sc_then(r, fout_flush, &c, sizeof c);
    return sc_finally(r, fout_free, &c, sizeof c);
}

static const struct sc_sink_ops fout_ops = {.write = fout_write, .close = fout_close};

int sc_file_output_stream(struct sc_file *f, const struct sc_file_output_opts *opts,
                          struct sc_ostream *out)
{
    struct sc_file_output_opts o = opts ? *opts : (struct sc_file_output_opts){0};
    size_t bs;
    unsigned depth;
    int rc = sizes(f, &bs, &depth, o.block_size, o.write_behind);
    if (rc < 0)
        return rc;
    if (o.offset % sc_file_alignment(f))
        return -EINVAL;
    struct fout *s = sc_calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->f = f;
    s->bs = bs;
    s->depth = depth;
    s->off = o.offset;
    s->nslots = depth + 1;
    s->slots = slots_new(s->nslots, bs);
    if (!s->slots) {
        sc_free(s);
        return -ENOMEM;
    }
    /* the stream's own batch is one block: each sink write is a block */
    rc = sc_ostream_init(out, &fout_ops, s, bs);
    if (rc < 0) {
        release_later(s->slots, s->nslots, s);
        return rc;
    }
    return 0;
}
