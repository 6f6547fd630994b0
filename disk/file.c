/*
 * file.c — the public file API (disk/file.h): argument and alignment
 * checks, reads and writes into the shard's I/O queue (disk/io.c), the bulk
 * helpers that handle any alignment, and everything else forwarded to the
 * run's disk backend (kernel files, or the simulated disk).
 *
 * A closed file is not freed at once: its struct waits in a short
 * per-shard queue (the last FILE_GRAVEYARD closed files), so that a call on
 * a file closed a moment ago fails cleanly with -EBADF instead of touching
 * freed memory — the same promise a file descriptor makes until it is
 * reused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "core/memory.h"
#include "core/shard_impl.h"
#include "disk/disk_impl.h"
#include "disk/file.h"

#define FILE_MAGIC     0x5346494cu /* "SFIL" */
#define FILE_DEAD      0x44454144u /* "DEAD" */
#define FILE_GRAVEYARD 256

struct sc_file {
    uint32_t magic;
    bool closing;
    struct sc__bfile *bf;
    struct sc__ioq *q;
    struct sc__inflight inflight;
    struct sc_file *next_dead;
};

struct graveyard {
    struct sc_file *head, *tail;
    unsigned n;
};

static void files_fini(struct sc__shard *s)
{
    struct sc__ioq *q = s->disk;
    if (!q)
        return;
    struct graveyard *g = *sc__ioq_file_state(q);
    if (!g)
        return;
    for (struct sc_file *f = g->head, *n; f; f = n) {
        n = f->next_dead;
        sc_free(f);
    }
    sc_free(g);
    *sc__ioq_file_state(q) = NULL;
}

static void bury(struct sc_file *f)
{
    f->magic = FILE_DEAD;
    f->bf = NULL;
    struct graveyard **slot = (struct graveyard **)sc__ioq_file_state(f->q);
    if (!*slot) {
        *slot = sc_calloc(1, sizeof **slot);
        if (!*slot || sc__shard_on_fini(sc__shard(), files_fini) != 0) {
            sc_free(*slot);
            *slot = NULL;
            sc_free(f); /* no graveyard: a late call on f would be a bug of the app */
            return;
        }
    }
    struct graveyard *g = *slot;
    f->next_dead = NULL;
    if (g->tail)
        g->tail->next_dead = f;
    else
        g->head = f;
    g->tail = f;
    if (++g->n > FILE_GRAVEYARD) {
        struct sc_file *old = g->head;
        g->head = old->next_dead;
        g->n--;
        sc_free(old);
    }
}

/* -EBADF unless f is open (and not closing). */
static int usable(const struct sc_file *f)
{
    return f && f->magic == FILE_MAGIC && !f->closing ? 0 : -EBADF;
}

static struct sc__ioq *queue(int *err)
{
    struct sc__ioq *q = sc__ioq_get(err);
    if (!q && *err == -ENOSYS)
        sc_log(SC_LOG_ERROR, "disk: this world has no disk backend");
    return q;
}

/* ---- open ---- */

struct open_cap {
    struct sc__ioq *q;
};

static struct sc_future opened(void *cap, intptr_t v)
{
    struct open_cap *c = cap;
    struct sc__bfile *bf = (struct sc__bfile *)v;
    struct sc_file *f = sc_calloc(1, sizeof *f);
    if (!f) {
        sc_future_ignore(sc__ioq_backend(c->q)->close(bf));
        return sc_make_error(-ENOMEM);
    }
    f->magic = FILE_MAGIC;
    f->bf = bf;
    f->q = c->q;
    return sc_make_ready((intptr_t)f);
}

#define KNOWN_FLAGS                                                                                \
    (SC_FILE_READ | SC_FILE_WRITE | SC_FILE_CREATE | SC_FILE_EXCL | SC_FILE_TRUNCATE |             \
     SC_FILE_BUFFERED)

struct sc_future sc_file_open(const char *path, unsigned flags)
{
    if (!path || !*path || !(flags & (SC_FILE_READ | SC_FILE_WRITE)) || (flags & ~KNOWN_FLAGS) ||
        ((flags & SC_FILE_TRUNCATE) && !(flags & SC_FILE_WRITE)))
        return sc_make_error(-EINVAL);
    int err = 0;
    struct sc__ioq *q = queue(&err);
    if (!q)
        return sc_make_error(err);
    struct open_cap c = {q};
    return sc_then(sc__ioq_backend(q)->open(path, flags), opened, &c, sizeof c);
}

/* ---- DMA reads and writes ---- */

static int check_rw(const struct sc_file *f, uint64_t off, const void *buf, size_t len, bool write)
{
    int rc = usable(f);
    if (rc < 0)
        return rc;
    if (write ? !f->bf->writable : !f->bf->readable)
        return -EBADF;
    uint64_t a = f->bf->alignment;
    if ((off | (uint64_t)len | (uint64_t)(uintptr_t)buf) & (a - 1))
        return -EINVAL;
    if (!buf || off + len < off)
        return -EINVAL;
    return 0;
}

struct sc_future sc_file_dma_read(struct sc_file *f, uint64_t off, void *buf, size_t len)
{
    int rc = check_rw(f, off, buf, len, false);
    if (rc < 0)
        return sc_make_error(rc);
    if (len == 0)
        return sc_make_ready(0);
    return sc__io_submit(f->q, f->bf, SC__DREQ_READ, off, buf, len, &f->inflight);
}

struct sc_future sc_file_dma_write(struct sc_file *f, uint64_t off, const void *buf, size_t len)
{
    int rc = check_rw(f, off, buf, len, true);
    if (rc < 0)
        return sc_make_error(rc);
    if (len == 0)
        return sc_make_ready(0);
    return sc__io_submit(f->q, f->bf, SC__DREQ_WRITE, off, (void *)buf, len, &f->inflight);
}

/* ---- bulk: any offset, any length, any buffer ---- */

struct bulk {
    struct sc_file *f;
    uint64_t off; /* the caller's */
    char *user;
    size_t len;
    uint64_t aoff; /* the aligned range around it */
    size_t alen;
    char *bounce;
};

static uint64_t down(uint64_t v, uint64_t a)
{
    return v & ~(a - 1);
}

static struct bulk *bulk_new(struct sc_file *f, uint64_t off, const void *buf, size_t len, int *err)
{
    uint64_t a = f->bf->alignment;
    struct bulk *b = sc_malloc(sizeof *b);
    if (!b) {
        *err = -ENOMEM;
        return NULL;
    }
    b->f = f;
    b->off = off;
    b->user = (char *)buf;
    b->len = len;
    b->aoff = down(off, a);
    uint64_t end = down(off + len + a - 1, a);
    b->alen = (size_t)(end - b->aoff);
    b->bounce = sc_aligned_alloc(a, b->alen);
    if (!b->bounce) {
        sc_free(b);
        *err = -ENOMEM;
        return NULL;
    }
    return b;
}

static void bulk_free(struct bulk *b)
{
    sc_free(b->bounce);
    sc_free(b);
}

static struct sc_future bulk_read_copy(void *cap, intptr_t got)
{
    struct bulk *b = *(struct bulk **)cap;
    size_t head = (size_t)(b->off - b->aoff);
    size_t n = (size_t)got > head ? (size_t)got - head : 0;
    if (n > b->len)
        n = b->len;
    memcpy(b->user, b->bounce + head, n);
    return sc_make_ready((intptr_t)n);
}

static struct sc_future bulk_cleanup(void *cap)
{
    bulk_free(*(struct bulk **)cap);
    return sc_make_ready(0);
}

struct sc_future sc_file_read_bulk(struct sc_file *f, uint64_t off, void *buf, size_t len)
{
    int rc = usable(f);
    if (rc < 0 || !f->bf->readable)
        return sc_make_error(-EBADF);
    if (!buf && len)
        return sc_make_error(-EINVAL);
    if (len == 0)
        return sc_make_ready(0);
    if (check_rw(f, off, buf, len, false) == 0)
        return sc_file_dma_read(f, off, buf, len);
    struct bulk *b = bulk_new(f, off, buf, len, &rc);
    if (!b)
        return sc_make_error(rc);
    struct sc_future r = sc_file_dma_read(f, b->aoff, b->bounce, b->alen);
    r = sc_then(r, bulk_read_copy, &b, sizeof b);
    return sc_finally(r, bulk_cleanup, &b, sizeof b);
}

/* Unaligned write: read the first and the last aligned block (the bytes
 * around the caller's that must survive), patch, write the whole range. */
static struct sc_future bulk_write_patch(void *cap, intptr_t v)
{
    (void)v;
    struct bulk *b = *(struct bulk **)cap;
    memcpy(b->bounce + (b->off - b->aoff), b->user, b->len);
    return sc_file_dma_write(b->f, b->aoff, b->bounce, b->alen);
}

static struct sc_future bulk_write_len(void *cap, intptr_t v)
{
    (void)v;
    struct bulk *b = *(struct bulk **)cap;
    return sc_make_ready((intptr_t)b->len);
}

static struct sc_future read_edge_ok(void *cap, intptr_t got)
{
    (void)cap;
    (void)got; /* past the end of file: the zeroes already there are right */
    return sc_make_ready(0);
}

struct sc_future sc_file_write_bulk(struct sc_file *f, uint64_t off, const void *buf, size_t len)
{
    int rc = usable(f);
    if (rc < 0 || !f->bf->writable)
        return sc_make_error(-EBADF);
    if (!buf && len)
        return sc_make_error(-EINVAL);
    if (len == 0)
        return sc_make_ready(0);
    if (check_rw(f, off, buf, len, true) == 0)
        return sc_file_dma_write(f, off, buf, len);
    if (!f->bf->readable)
        return sc_make_error(-EBADF); /* a read-modify-write needs to read */
    struct bulk *b = bulk_new(f, off, buf, len, &rc);
    if (!b)
        return sc_make_error(rc);
    uint64_t a = f->bf->alignment;
    memset(b->bounce, 0, b->alen);
    struct sc_future edges[2];
    size_t nedges = 0;
    edges[nedges++] = sc_then(sc_file_dma_read(f, b->aoff, b->bounce, a), read_edge_ok, NULL, 0);
    if (b->alen > a)
        edges[nedges++] = sc_then(sc_file_dma_read(f, b->aoff + b->alen - a,
                                                   b->bounce + b->alen - a, a),
                                  read_edge_ok, NULL, 0);
    struct sc_future r = sc_when_all_succeed(edges, nedges);
    r = sc_then(r, bulk_write_patch, &b, sizeof b);
    r = sc_then(r, bulk_write_len, &b, sizeof b);
    return sc_finally(r, bulk_cleanup, &b, sizeof b);
}

/* ---- flush, truncate, allocate, stat, size ---- */

struct sc_future sc_file_flush(struct sc_file *f)
{
    int rc = usable(f);
    if (rc < 0)
        return sc_make_error(rc);
    return sc__ioq_backend(f->q)->flush(f->bf);
}

struct sc_future sc_file_truncate(struct sc_file *f, uint64_t len)
{
    int rc = usable(f);
    if (rc < 0 || !f->bf->writable)
        return sc_make_error(-EBADF);
    if (len > (uint64_t)INT64_MAX)
        return sc_make_error(-EINVAL);
    return sc__ioq_backend(f->q)->truncate(f->bf, len);
}

struct sc_future sc_file_allocate(struct sc_file *f, uint64_t off, uint64_t len)
{
    int rc = usable(f);
    if (rc < 0 || !f->bf->writable)
        return sc_make_error(-EBADF);
    if (len == 0 || off + len < off || off + len > (uint64_t)INT64_MAX)
        return sc_make_error(-EINVAL);
    return sc__ioq_backend(f->q)->allocate(f->bf, off, len);
}

struct sc_future sc_file_stat(struct sc_file *f, struct sc_file_stat *st)
{
    int rc = usable(f);
    if (rc < 0)
        return sc_make_error(rc);
    if (!st)
        return sc_make_error(-EINVAL);
    return sc__ioq_backend(f->q)->stat(f->bf, st);
}

static struct sc_future size_of(void *cap, intptr_t v)
{
    (void)v;
    struct sc_file_stat *st = *(struct sc_file_stat **)cap;
    return sc_make_ready((intptr_t)st->size);
}

static struct sc_future free_stat(void *cap)
{
    sc_free(*(struct sc_file_stat **)cap);
    return sc_make_ready(0);
}

struct sc_future sc_file_size(struct sc_file *f)
{
    int rc = usable(f);
    if (rc < 0)
        return sc_make_error(rc);
    struct sc_file_stat *st = sc_malloc(sizeof *st);
    if (!st)
        return sc_make_error(-ENOMEM);
    struct sc_future r = sc_then(sc__ioq_backend(f->q)->stat(f->bf, st), size_of, &st, sizeof st);
    return sc_finally(r, free_stat, &st, sizeof st);
}

/* ---- close ---- */

struct close_cap {
    struct sc_file *f;
    struct sc_promise *drained;
};

static struct sc_future close_backend(void *cap, intptr_t v)
{
    (void)v;
    struct close_cap *c = cap;
    sc_free(c->drained);
    struct sc_file *f = c->f;
    struct sc__bfile *bf = f->bf;
    struct sc__ioq *q = f->q;
    bury(f);
    return sc__ioq_backend(q)->close(bf);
}

struct sc_future sc_file_close(struct sc_file *f)
{
    int rc = usable(f);
    if (rc < 0)
        return sc_make_error(rc);
    f->closing = true;
    struct close_cap c = {f, NULL};
    struct sc_future wait = sc_make_ready(0);
    if (f->inflight.n) {
        c.drained = sc_malloc(sizeof *c.drained);
        if (!c.drained) {
            f->closing = false;
            return sc_make_error(-ENOMEM);
        }
        sc_promise_init(c.drained);
        wait = sc_promise_get_future(c.drained);
        f->inflight.drained = c.drained;
    }
    return sc_then(wait, close_backend, &c, sizeof c);
}

uint32_t sc_file_alignment(const struct sc_file *f)
{
    return usable(f) == 0 ? f->bf->alignment : 4096;
}

bool sc_file_is_direct(const struct sc_file *f)
{
    return usable(f) == 0 && f->bf->direct;
}

/* ---- paths ---- */

static const struct sc__disk_backend *backend_or(int *err)
{
    struct sc__ioq *q = queue(err);
    return q ? sc__ioq_backend(q) : NULL;
}

struct sc_future sc_file_remove(const char *path)
{
    int err = 0;
    if (!path || !*path)
        return sc_make_error(-EINVAL);
    const struct sc__disk_backend *be = backend_or(&err);
    return be ? be->remove(path) : sc_make_error(err);
}

struct sc_future sc_file_rename(const char *from, const char *to)
{
    int err = 0;
    if (!from || !*from || !to || !*to)
        return sc_make_error(-EINVAL);
    const struct sc__disk_backend *be = backend_or(&err);
    return be ? be->rename(from, to) : sc_make_error(err);
}

struct sc_future sc_file_sync_dir(const char *dir)
{
    int err = 0;
    if (!dir || !*dir)
        return sc_make_error(-EINVAL);
    const struct sc__disk_backend *be = backend_or(&err);
    return be ? be->sync_dir(dir) : sc_make_error(err);
}

struct sc_future sc_file_list_directory(const char *dir)
{
    int err = 0;
    if (!dir || !*dir)
        return sc_make_error(-EINVAL);
    const struct sc__disk_backend *be = backend_or(&err);
    return be ? be->list(dir) : sc_make_error(err);
}

/* Listings are made with plain malloc (the real backend builds them on the
 * syscall thread; the sim backend must do the same), so plain free. */
void sc_dir_list_free(struct sc_dir_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    free(l);
}

void *sc_dma_alloc(size_t len)
{
    if (len == 0)
        return NULL;
    return sc_aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
}

void sc_dma_free(void *p)
{
    sc_free(p);
}
