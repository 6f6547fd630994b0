/*
 * real.c — the real world's disk backend: kernel files opened with O_DIRECT,
 * reads and writes through the reactor backend (core/kio.h: linux-aio or
 * io_uring), fdatasync the same way, and every call that may block (open,
 * stat, ftruncate, fallocate, rename, unlink, readdir, fsync of a
 * directory) on the shard's syscall thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kio.h"
#include "core/memory.h"
#include "core/shard_impl.h"
#include "disk/disk_impl.h"

/* O_DIRECT wants offsets, lengths and buffers aligned to the logical block
 * size (512 on most devices). 4096 is the page size and the physical sector
 * of most SSDs: aligned to it, requests are also efficient, and code written
 * against it runs everywhere. */
#define REAL_ALIGN 4096

struct real_file {
    struct sc__bfile b;
    int fd;
};

/* ---- running a blocking call on the syscall thread, as a future ---- */

struct sysop {
    struct sc_promise p;
    int64_t (*fn)(struct sysop *op);
    int fd;
    unsigned flags;
    uint64_t a, b;
    char *path, *path2;
    void *out;
    bool direct_refused;
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sc_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void sysop_free(struct sysop *op)
{
    sc_free(op->path);
    sc_free(op->path2);
    sc_free(op);
}

static int64_t sysop_run(void *arg)
{
    struct sysop *op = arg;
    return op->fn(op);
}

static void sysop_done(void *arg, int64_t res);

static struct sysop *sysop_new(int64_t (*fn)(struct sysop *), const char *path, const char *path2)
{
    struct sysop *op = sc_calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->fn = fn;
    op->fd = -1;
    if ((path && !(op->path = dup_str(path))) || (path2 && !(op->path2 = dup_str(path2)))) {
        sysop_free(op);
        return NULL;
    }
    return op;
}

/* Queue op; the future resolves with fn's result (the value, or -errno). */
static struct sc_future sysop_start(struct sysop *op)
{
    if (!op)
        return sc_make_error(-ENOMEM);
    sc_promise_init(&op->p);
    struct sc_future f = sc_promise_get_future(&op->p);
    int rc = sc__syscall(sysop_run, sysop_done, op);
    if (rc < 0) {
        sc_promise_set_error(&op->p, rc);
        sysop_free(op);
    }
    return f;
}

/* ---- open ---- */

static int64_t do_open(struct sysop *op)
{
    int fl = O_CLOEXEC;
    bool rd = op->flags & SC_FILE_READ, wr = op->flags & SC_FILE_WRITE;
    fl |= rd && wr ? O_RDWR : wr ? O_WRONLY : O_RDONLY;
    if (op->flags & SC_FILE_CREATE)
        fl |= O_CREAT;
    if (op->flags & SC_FILE_EXCL)
        fl |= O_EXCL;
    if (op->flags & SC_FILE_TRUNCATE)
        fl |= O_TRUNC;
    int fd = -1;
    if (!(op->flags & SC_FILE_BUFFERED)) {
        fd = open(op->path, fl | O_DIRECT, 0644);
        if (fd < 0 && errno == EINVAL) {
            op->direct_refused = true; /* tmpfs and friends: fall back below */
        } else if (fd < 0) {
            return -errno;
        }
    }
    if (fd < 0)
        fd = open(op->path, fl, 0644);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return -EISDIR;
    }
    return fd;
}

static void sysop_done(void *arg, int64_t res)
{
    struct sysop *op = arg;
    if (res < 0) {
        sc_promise_set_error(&op->p, (int)res);
        sysop_free(op);
        return;
    }
    if (op->fn == do_open) {
        struct real_file *f = sc_calloc(1, sizeof *f);
        if (!f) {
            close((int)res);
            sc_promise_set_error(&op->p, -ENOMEM);
            sysop_free(op);
            return;
        }
        f->fd = (int)res;
        f->b.alignment = REAL_ALIGN;
        f->b.direct = !(op->flags & SC_FILE_BUFFERED) && !op->direct_refused;
        f->b.readable = op->flags & SC_FILE_READ;
        f->b.writable = op->flags & SC_FILE_WRITE;
        if (op->direct_refused)
            sc_log(SC_LOG_INFO,
                   "disk: '%s' is on a filesystem without O_DIRECT; using the page cache for it",
                   op->path);
        res = (int64_t)(intptr_t)f;
    }
    sc_promise_set_value(&op->p, (intptr_t)res);
    sysop_free(op);
}

static struct sc_future real_open(const char *path, unsigned flags)
{
    struct sysop *op = sysop_new(do_open, path, NULL);
    if (op)
        op->flags = flags;
    return sysop_start(op);
}

/* ---- close, truncate, allocate, stat on an open file ---- */

static int64_t do_close(struct sysop *op)
{
    return close(op->fd) == 0 || errno == EINTR ? 0 : -errno;
}

static struct sc_future real_close(struct sc__bfile *bf)
{
    struct real_file *f = (struct real_file *)bf;
    struct sysop *op = sysop_new(do_close, NULL, NULL);
    if (!op)
        return sc_make_error(-ENOMEM);
    op->fd = f->fd;
    sc_free(f);
    return sysop_start(op);
}

static int64_t do_truncate(struct sysop *op)
{
    return ftruncate(op->fd, (off_t)op->a) == 0 ? 0 : -errno;
}

static struct sc_future real_truncate(struct sc__bfile *bf, uint64_t len)
{
    struct sysop *op = sysop_new(do_truncate, NULL, NULL);
    if (op) {
        op->fd = ((struct real_file *)bf)->fd;
        op->a = len;
    }
    return sysop_start(op);
}

static int64_t do_allocate(struct sysop *op)
{
    int rc = posix_fallocate(op->fd, (off_t)op->a, (off_t)op->b);
    return rc == 0 ? 0 : -rc;
}

static struct sc_future real_allocate(struct sc__bfile *bf, uint64_t off, uint64_t len)
{
    struct sysop *op = sysop_new(do_allocate, NULL, NULL);
    if (op) {
        op->fd = ((struct real_file *)bf)->fd;
        op->a = off;
        op->b = len;
    }
    return sysop_start(op);
}

static int64_t do_stat(struct sysop *op)
{
    struct stat st;
    if (fstat(op->fd, &st) != 0)
        return -errno;
    struct sc_file_stat *out = op->out;
    out->size = (uint64_t)st.st_size;
    out->blocks = (uint64_t)st.st_blocks;
    out->mode = st.st_mode;
    out->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
    out->alignment = REAL_ALIGN;
    return 0;
}

static struct sc_future real_stat(struct sc__bfile *bf, struct sc_file_stat *st)
{
    struct sysop *op = sysop_new(do_stat, NULL, NULL);
    if (op) {
        op->fd = ((struct real_file *)bf)->fd;
        op->out = st;
    }
    return sysop_start(op);
}

/* ---- paths ---- */

static int64_t do_remove(struct sysop *op)
{
    return unlink(op->path) == 0 ? 0 : -errno;
}

static struct sc_future real_remove(const char *path)
{
    return sysop_start(sysop_new(do_remove, path, NULL));
}

static int64_t do_rename(struct sysop *op)
{
    return rename(op->path, op->path2) == 0 ? 0 : -errno;
}

static struct sc_future real_rename(const char *from, const char *to)
{
    return sysop_start(sysop_new(do_rename, from, to));
}

static int64_t do_sync_dir(struct sysop *op)
{
    int fd = open(op->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static struct sc_future real_sync_dir(const char *dir)
{
    return sysop_start(sysop_new(do_sync_dir, dir, NULL));
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs on the syscall thread: plain malloc, since the listing is handed to
 * the shard, which frees it with sc_dir_list_free() (free() of a libc
 * pointer on a shard goes to libc). */
static int64_t do_list(struct sysop *op)
{
    DIR *d = opendir(op->path);
    if (!d)
        return -errno;
    struct sc_dir_list *l = calloc(1, sizeof *l);
    size_t cap = 0;
    int rc = l ? 0 : -ENOMEM;
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (l->count == cap) {
            cap = cap ? cap * 2 : 16;
            char **n = realloc(l->names, cap * sizeof *n);
            if (!n) {
                rc = -ENOMEM;
                break;
            }
            l->names = n;
        }
        if (!(l->names[l->count] = strdup(e->d_name)))
            rc = -ENOMEM;
        else
            l->count++;
    }
    if (rc == 0 && errno)
        rc = -errno;
    closedir(d);
    if (rc < 0) {
        if (l) {
            for (size_t i = 0; i < l->count; i++)
                free(l->names[i]);
            free(l->names);
            free(l);
        }
        return rc;
    }
    qsort(l->names, l->count, sizeof *l->names, cmp_names);
    return (int64_t)(intptr_t)l;
}

static struct sc_future real_list(const char *dir)
{
    return sysop_start(sysop_new(do_list, dir, NULL));
}

/* ---- reads, writes and flushes through the reactor backend ---- */

struct rw {
    struct sc__kio k;
    struct sc__dreq *r;
    struct sc_promise p; /* flush only */
};

static void rw_done(struct sc__kio *k, int64_t res)
{
    struct rw *w = SC_CONTAINER_OF(k, struct rw, k);
    struct sc__dreq *r = w->r;
    sc_free(w);
    r->done(r, res);
}

/* A request the backend refused at submit: it must still complete later,
 * never inside submit. */
struct late {
    struct sc_task t;
    struct sc__dreq *r;
    int err;
};

static void late_run(struct sc_task *t)
{
    struct late *l = SC_CONTAINER_OF(t, struct late, t);
    struct sc__dreq *r = l->r;
    int err = l->err;
    sc_free(l);
    r->done(r, err);
}

/* Buffered reads and writes go to the syscall thread unless the reactor
 * backend can run them without blocking (sc__kio_buffered_async()). */
static int64_t do_pio(void *arg)
{
    struct sc__dreq *r = arg;
    int fd = ((struct real_file *)r->file)->fd;
    ssize_t n = r->op == SC__DREQ_READ ? pread(fd, r->buf, r->len, (off_t)r->off)
                                       : pwrite(fd, r->buf, r->len, (off_t)r->off);
    return n < 0 ? -errno : n;
}

static void pio_done(void *arg, int64_t res)
{
    struct sc__dreq *r = arg;
    r->done(r, res);
}

static void real_submit(struct sc__dreq *r)
{
    struct real_file *f = (struct real_file *)r->file;
    struct rw *w = NULL;
    int rc = -ENOMEM;
    if (!f->b.direct && !sc__kio_buffered_async()) {
        rc = sc__syscall(do_pio, pio_done, r);
        if (rc == 0)
            return;
    } else {
        w = sc_malloc(sizeof *w);
    }
    if (w) {
        w->r = r;
        w->k = (struct sc__kio){.op = r->op == SC__DREQ_READ ? SC__KIO_READ : SC__KIO_WRITE,
                                .fd = f->fd, .buf = r->buf, .len = r->len, .off = r->off,
                                .done = rw_done};
        rc = sc__kio_submit(&w->k);
        if (rc == 0)
            return;
        sc_free(w);
    }
    struct late *l = sc_malloc(sizeof *l);
    if (!l) {
        /* nowhere to put even the error: finish it from the next kio turn
         * is impossible too; as a last resort complete it now */
        r->done(r, rc);
        return;
    }
    l->r = r;
    l->err = rc;
    l->t.run = late_run;
    sc_task_schedule(&l->t);
}

static void flush_done(struct sc__kio *k, int64_t res)
{
    struct rw *w = SC_CONTAINER_OF(k, struct rw, k);
    if (res < 0)
        sc_promise_set_error(&w->p, (int)res);
    else
        sc_promise_set_value(&w->p, 0);
    sc_free(w);
}

static struct sc_future real_flush(struct sc__bfile *bf)
{
    struct real_file *f = (struct real_file *)bf;
    struct rw *w = sc_malloc(sizeof *w);
    if (!w)
        return sc_make_error(-ENOMEM);
    w->k = (struct sc__kio){.op = SC__KIO_FDSYNC, .fd = f->fd, .done = flush_done};
    sc_promise_init(&w->p);
    struct sc_future fut = sc_promise_get_future(&w->p);
    int rc = sc__kio_submit(&w->k);
    if (rc < 0) {
        sc_promise_set_error(&w->p, rc);
        sc_free(w);
    }
    return fut;
}

const struct sc__disk_backend sc__real_disk = {
    .name = "kernel",
    .open = real_open,
    .close = real_close,
    .submit = real_submit,
    .flush = real_flush,
    .truncate = real_truncate,
    .allocate = real_allocate,
    .stat = real_stat,
    .remove = real_remove,
    .rename = real_rename,
    .sync_dir = real_sync_dir,
    .list = real_list,
    .default_model = NULL,
};
