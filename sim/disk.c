/*
 * disk.c — the simulated disk (sim/simdisk.h says what it promises): an
 * in-memory filesystem with a volatile and a durable image per file, a
 * timing model, seeded faults, and what a power cut leaves behind.
 *
 * How it is built:
 *   - files are inodes (struct inode) with two images and the list of the
 *     writes and size changes the device holds but has not made durable
 *     (struct pend), in the order they were handed to it;
 *   - names live in three sorted tables: the app's view (vol), the view the
 *     device has recorded (dev: the same as vol until the power goes, then
 *     frozen), and the durable one (dur: what sync_dir made permanent);
 *   - every request completes through an sc_timer on the shard that made
 *     it (struct rec), at the virtual time the model gives; the effect of a
 *     request (on the images, on the names) happens at that time, not when
 *     it was submitted, so two requests in flight race as on a device;
 *   - each shard keeps its own seeded stream and its own list of requests
 *     and open files for the run; a fini hook tidies them when the shard
 *     ends (writes still in flight then land in the volatile image, as the
 *     device would finish them after the process went away).
 *
 * The disk itself is one global object: the simulator runs every shard on
 * one thread, and the disk must outlive runs. Nothing here is ordered by
 * pointer: inodes are visited in creation order, names in strcmp order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/reactor.h"
#include "core/shard_impl.h"
#include "core/smp.h"
#include "disk/disk_impl.h"
#include "disk/fair_queue.h"
#include "sim/simdisk.h"

#define SECTOR       512u
#define ALIGN        4096u
#define PATH_MAX_LEN 4096u

/* The timing model (see simdisk.h). */
#define CHANNELS     4
#define READ_LAT_NS  70000u
#define WRITE_LAT_NS 30000u
#define READ_BW      2000000000ull /* bytes/s */
#define WRITE_BW     1000000000ull
#define FLUSH_NS     100000u
#define FLUSH_BW     2000000000ull /* the device cache drains at this rate */
#define META_NS      20000u
#define SYNC_DIR_NS  100000u
#define SLOW_ONE_IN  256u /* one request in this many is 4x slower */
/* The device writes a file's oldest unflushed data back by itself past this. */
#define CACHE_HIGH (32u << 20)
#define CACHE_LOW  (16u << 20)

/* ---- images: bytes with a size; bytes past the size are always zero ---- */

struct image {
    uint8_t *data;
    uint64_t size, cap;
};

static int image_reserve(struct image *im, uint64_t n)
{
    if (n <= im->cap)
        return 0;
    uint64_t cap = im->cap ? im->cap : 65536;
    while (cap < n)
        cap *= 2;
    if (cap != (size_t)cap)
        return -ENOSPC;
    uint8_t *d = realloc(im->data, (size_t)cap);
    if (!d)
        return -ENOMEM;
    memset(d + im->cap, 0, (size_t)(cap - im->cap));
    im->data = d;
    im->cap = cap;
    return 0;
}

static int image_set_size(struct image *im, uint64_t n)
{
    if (n < im->size) {
        memset(im->data + n, 0, (size_t)(im->size - n));
    } else if (n > im->size) {
        int rc = image_reserve(im, n);
        if (rc < 0)
            return rc;
    }
    im->size = n;
    return 0;
}

static int image_write(struct image *im, uint64_t off, const uint8_t *src, uint64_t len)
{
    if (len == 0)
        return 0;
    int rc = image_reserve(im, off + len);
    if (rc < 0)
        return rc;
    memcpy(im->data + off, src, (size_t)len);
    if (off + len > im->size)
        im->size = off + len;
    return 0;
}

static void image_free(struct image *im)
{
    free(im->data);
    *im = (struct image){0};
}

/* ---- inodes ---- */

enum { PEND_WRITE = 1, PEND_SIZE = 2 };

/* A write (or a size change) the device was handed and has not made
 * durable. Writes are logged when submitted (a write in flight when the
 * power goes may land in part) and marked done when they complete. */
struct pend {
    struct pend *next;
    uint8_t kind;
    bool done;         /* completed: in the volatile image */
    bool logged;       /* in its inode's list (submitted before the power cut) */
    uint64_t order;    /* completion order, when done */
    uint64_t off, len; /* PEND_SIZE: off is the new size */
    uint8_t *data;
};

struct inode {
    uint64_t id;
    struct image vol, dur;
    struct pend *ph, *pt; /* unflushed, in submission order */
    uint64_t done_count;  /* completions so far (struct pend.order) */
    uint64_t pend_bytes;  /* bytes of logged writes */
    uint64_t alloc;       /* space promised: the most any request made it hold */
    uint64_t mtime;
    unsigned links; /* names in vol, dev and dur together */
    unsigned refs;  /* open files and requests in flight */
    struct inode *prev, *next;
};

/* ---- names ---- */

struct nsent {
    char *name; /* first: find_sorted() reads it */
    struct inode *ino;
};

struct ns {
    struct nsent *e;
    size_t n, cap;
};

struct strset {
    char **v;
    size_t n, cap;
};

/* ---- requests in flight ---- */

enum { REC_IO = 1, REC_META = 2 };

struct rec;
typedef int64_t (*meta_fn)(struct rec *r);

struct rec {
    struct sc_timer t;
    struct rec *prev, *next; /* the shard's list of requests in flight */
    unsigned shard;
    uint8_t kind;
    int64_t res;       /* decided at submission (an injected fault), or 0 */
    struct inode *ino; /* pinned (refs) while the request is in flight */
    /* REC_IO */
    struct sc__dreq *dr;
    struct pend *p; /* a write's data */
    /* REC_META */
    struct sc_promise prom;
    meta_fn run;
    struct handle *h;
    uint64_t a, b;
    unsigned flags;
    void *out;
    char *path[2]; /* normalized paths, in buf */
    char buf[];
};

struct handle {
    struct sc__bfile base; /* first: file.c sees only this */
    struct inode *ino;
    unsigned shard;
    struct handle *prev, *next;
};

struct shard_state {
    bool active; /* used in the current run: rng seeded, fini hook set */
    uint64_t rng[4];
    struct rec *recs;
    struct handle *handles;
    struct sc__dreq *rejects; /* requests that could not get a record */
    struct sc_timer reject_timer;
};

static struct {
    bool init;
    struct ns vol, dev, dur;
    struct strset dirs;
    struct inode *ih, *it;
    uint64_t next_ino;
    uint64_t capacity;
    uint64_t crash_t;    /* UINT64_MAX: no power cut planned */
    bool crash_happened; /* a run reached crash_t */
    uint64_t last_seed;
    unsigned active_shards;
    uint64_t chan_free[CHANNELS], bus_free; /* the device, for the current run */
    struct sc_sim_disk_stats st;
    struct shard_state sh[SC_MAX_SHARDS];
} D;

static void disk_init(void)
{
    if (D.init)
        return;
    D.init = true;
    D.capacity = UINT64_MAX;
    D.crash_t = UINT64_MAX;
}

/* ---- paths ---- */

/* Normalize: "//a/./b/" -> "/a/b", "x/../y" -> "y"; the roots are "/" and ".". */
static int norm(const char *in, char *out)
{
    if (!in || !*in)
        return -EINVAL;
    if (strlen(in) >= PATH_MAX_LEN)
        return -ENAMETOOLONG;
    bool abs = in[0] == '/';
    size_t n = 0;
    if (abs)
        out[n++] = '/';
    size_t base = n;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - s);
        if (len == 0 || (len == 1 && s[0] == '.'))
            continue;
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            if (n == base) {
                if (!abs)
                    return -EINVAL; /* above the relative root */
                continue;           /* "/.." is "/" */
            }
            while (n > base && out[n - 1] != '/')
                n--;
            if (n > base)
                n--; /* the slash before the dropped component */
            continue;
        }
        if (n > base)
            out[n++] = '/';
        memcpy(out + n, s, len);
        n += len;
    }
    if (n == 0)
        out[n++] = '.';
    out[n] = 0;
    return 0;
}

static bool is_root(const char *p)
{
    return !strcmp(p, "/") || !strcmp(p, ".");
}

/* The parent of a normalized non-root path, into out. */
static void parent_of(const char *p, char *out)
{
    const char *slash = strrchr(p, '/');
    if (!slash) {
        strcpy(out, ".");
    } else if (slash == p) {
        strcpy(out, "/");
    } else {
        memcpy(out, p, (size_t)(slash - p));
        out[slash - p] = 0;
    }
}

static const char *base_of(const char *p)
{
    const char *slash = strrchr(p, '/');
    return slash ? slash + 1 : p;
}

static bool in_dir(const char *name, const char *dir)
{
    char par[PATH_MAX_LEN];
    parent_of(name, par);
    return !strcmp(par, dir);
}

/* ---- sorted tables ---- */

/* Binary search of a sorted array whose elements each begin with their
 * name (a char *): the namespace's entries and the directory set alike.
 * True if found; *at is the match or where the name would go. */
static bool find_sorted(const void *base, size_t n, size_t stride, const char *name, size_t *at)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(*(char *const *)((const char *)base + mid * stride), name);
        if (c == 0) {
            *at = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return false;
}

static bool ns_find(const struct ns *t, const char *name, size_t *at)
{
    return find_sorted(t->e, t->n, sizeof *t->e, name, at);
}

static struct inode *ns_get(const struct ns *t, const char *name)
{
    size_t i;
    return ns_find(t, name, &i) ? t->e[i].ino : NULL;
}

static void ino_maybe_free(struct inode *ino);

static int ns_put(struct ns *t, const char *name, struct inode *ino)
{
    size_t i;
    if (ns_find(t, name, &i)) {
        struct inode *old = t->e[i].ino;
        if (old == ino)
            return 0;
        t->e[i].ino = ino;
        ino->links++;
        old->links--;
        ino_maybe_free(old);
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct nsent *e = realloc(t->e, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        t->e = e;
        t->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return -ENOMEM;
    memmove(&t->e[i + 1], &t->e[i], (t->n - i) * sizeof *t->e);
    t->e[i] = (struct nsent){copy, ino};
    t->n++;
    ino->links++;
    return 0;
}

static void ns_del_at(struct ns *t, size_t i)
{
    struct inode *ino = t->e[i].ino;
    free(t->e[i].name);
    memmove(&t->e[i], &t->e[i + 1], (t->n - i - 1) * sizeof *t->e);
    t->n--;
    ino->links--;
    ino_maybe_free(ino);
}

static void ns_del(struct ns *t, const char *name)
{
    size_t i;
    if (ns_find(t, name, &i))
        ns_del_at(t, i);
}

static void ns_clear(struct ns *t)
{
    while (t->n)
        ns_del_at(t, t->n - 1);
    free(t->e);
    *t = (struct ns){0};
}

static bool set_find(const struct strset *s, const char *v, size_t *at)
{
    return find_sorted(s->v, s->n, sizeof *s->v, v, at);
}

static int set_add(struct strset *s, const char *v)
{
    size_t i;
    if (set_find(s, v, &i))
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **nv = realloc(s->v, cap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        s->v = nv;
        s->cap = cap;
    }
    char *copy = strdup(v);
    if (!copy)
        return -ENOMEM;
    memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
    s->v[i] = copy;
    s->n++;
    return 0;
}

static bool is_dir(const char *p)
{
    size_t i;
    return is_root(p) || set_find(&D.dirs, p, &i);
}

/* Every proper ancestor of p becomes a directory. */
static int add_ancestors(const char *p)
{
    char a[PATH_MAX_LEN];
    parent_of(p, a);
    while (!is_root(a)) {
        int rc = set_add(&D.dirs, a);
        if (rc < 0)
            return rc;
        char up[PATH_MAX_LEN];
        parent_of(a, up);
        strcpy(a, up);
    }
    return 0;
}

/* -ENOTDIR if an ancestor of p is a file (in the app's view). */
static int check_ancestors(const char *p)
{
    char a[PATH_MAX_LEN];
    parent_of(p, a);
    while (!is_root(a)) {
        if (ns_get(&D.vol, a))
            return -ENOTDIR;
        char up[PATH_MAX_LEN];
        parent_of(a, up);
        strcpy(a, up);
    }
    return 0;
}

/* ---- inodes ---- */

static struct inode *ino_new(void)
{
    struct inode *ino = calloc(1, sizeof *ino);
    if (!ino)
        return NULL;
    ino->id = ++D.next_ino;
    ino->prev = D.it;
    if (D.it)
        D.it->next = ino;
    else
        D.ih = ino;
    D.it = ino;
    return ino;
}

static void pend_free_all(struct inode *ino)
{
    for (struct pend *p = ino->ph, *n; p; p = n) {
        n = p->next;
        free(p->data);
        free(p);
    }
    ino->ph = ino->pt = NULL;
    ino->pend_bytes = 0;
}

static void ino_destroy(struct inode *ino)
{
    if (ino->prev)
        ino->prev->next = ino->next;
    else
        D.ih = ino->next;
    if (ino->next)
        ino->next->prev = ino->prev;
    else
        D.it = ino->prev;
    pend_free_all(ino);
    image_free(&ino->vol);
    image_free(&ino->dur);
    free(ino);
}

static void ino_maybe_free(struct inode *ino)
{
    if (!ino->links && !ino->refs)
        ino_destroy(ino);
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

static uint64_t used_bytes(void)
{
    uint64_t u = 0;
    for (struct inode *i = D.ih; i; i = i->next)
        u += round_up(i->alloc, ALIGN);
    return u;
}

/* May ino be made to hold `end` bytes? */
static int room_for(struct inode *ino, uint64_t end)
{
    if (end <= ino->alloc)
        return 0;
    if (D.capacity != UINT64_MAX &&
        used_bytes() - round_up(ino->alloc, ALIGN) + round_up(end, ALIGN) > D.capacity) {
        D.st.enospc++;
        return -ENOSPC;
    }
    ino->alloc = end;
    return 0;
}

/* ---- power ---- */

static bool powered_off(void)
{
    if (D.crash_happened)
        return true; /* until the reboot, whatever later runs' clocks say */
    if (D.crash_t == UINT64_MAX || sc_now() < D.crash_t)
        return false;
    D.crash_happened = true;
    return true;
}

static void log_pend(struct inode *ino, struct pend *p)
{
    p->logged = true;
    p->next = NULL;
    if (ino->pt)
        ino->pt->next = p;
    else
        ino->ph = p;
    ino->pt = p;
    if (p->kind == PEND_WRITE)
        ino->pend_bytes += p->len;
}

/* Log a size change the app made (truncate, allocate, open with TRUNCATE). */
static void log_size(struct inode *ino, uint64_t size)
{
    if (powered_off())
        return;
    struct pend *p = calloc(1, sizeof *p);
    if (!p) {
        /* the device forgets it: after a crash the old size may come back,
         * which an unflushed size change allows anyway */
        return;
    }
    p->kind = PEND_SIZE;
    p->off = size;
    p->done = true;
    p->order = ++ino->done_count;
    log_pend(ino, p);
}

static int cmp_order(const void *a, const void *b)
{
    const struct pend *x = *(struct pend *const *)a, *y = *(struct pend *const *)b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Make durable the completed entries with order <= upto, oldest completion
 * first; stop early once the unflushed bytes are at most `keep` (the
 * device's own write-back). Entries made durable leave the list. */
static void make_durable(struct inode *ino, uint64_t upto, uint64_t keep)
{
    size_t n = 0;
    for (struct pend *p = ino->ph; p; p = p->next)
        n += p->done && p->order <= upto;
    if (!n)
        return;
    struct pend **v = malloc(n * sizeof *v);
    if (!v)
        return; /* nothing becomes durable: the flush is as if not done */
    n = 0;
    for (struct pend *p = ino->ph; p; p = p->next)
        if (p->done && p->order <= upto)
            v[n++] = p;
    qsort(v, n, sizeof *v, cmp_order);
    for (size_t i = 0; i < n && ino->pend_bytes > keep; i++) {
        struct pend *p = v[i];
        int rc = p->kind == PEND_WRITE ? image_write(&ino->dur, p->off, p->data, p->len)
                                       : image_set_size(&ino->dur, p->off);
        if (rc < 0)
            break;
        /* unlink p */
        struct pend **pp = &ino->ph, *prev = NULL;
        while (*pp != p) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        *pp = p->next;
        if (ino->pt == p)
            ino->pt = prev;
        if (p->kind == PEND_WRITE)
            ino->pend_bytes -= p->len;
        free(p->data);
        free(p);
    }
    free(v);
}

/* ---- per-shard state: the seeded stream, the requests and files of the run ---- */

static void shard_fini(struct sc__shard *s);
static void reject_fired(void *arg);

static struct shard_state *me(void)
{
    struct sc__shard *s = sc__shard();
    struct shard_state *ss = &D.sh[s->id];
    if (!ss->active) {
        disk_init();
        if (sc__shard_on_fini(s, shard_fini) != 0)
            sc_log(SC_LOG_ERROR, "simdisk: no room for a fini hook; requests may leak");
        ss->active = true;
        sc__rng_seed(ss->rng, s->cfg.seed ^ 0x6469736bull /* "disk" */ ^ ((uint64_t)s->id << 40));
        ss->recs = NULL;
        ss->handles = NULL;
        ss->rejects = NULL;
        sc_timer_init(&ss->reject_timer, reject_fired, ss);
        if (D.active_shards++ == 0) {
            /* a new run: the device is idle at its start */
            memset(D.chan_free, 0, sizeof D.chan_free);
            D.bus_free = 0;
        }
        D.last_seed = s->cfg.seed;
    }
    return ss;
}

static uint64_t rnd(void)
{
    return sc__rng_next(me()->rng);
}

static bool inject_eio(void)
{
    uint32_t ppm = sc__shard()->cfg.sim_disk_eio_ppm;
    if (ppm && rnd() % 1000000u < ppm) {
        D.st.eio++;
        return true;
    }
    return false;
}

/* A latency with seeded jitter: +-20%, and one in SLOW_ONE_IN four times slower. */
static uint64_t jitter(uint64_t ns)
{
    uint64_t r = rnd();
    uint64_t v = ns * 8 / 10 + (ns * 4 / 10) * (r & 0xffff) / 0xffff;
    if ((r >> 16) % SLOW_ONE_IN == 0)
        v *= 4;
    return v;
}

/* When a read or write of len bytes submitted now completes: it waits for
 * a free channel, moves its bytes over the shared bus, and holds the
 * channel for the operation's latency. */
static uint64_t model_done(bool write, uint64_t len)
{
    uint64_t now = sc_now();
    unsigned c = 0;
    for (unsigned i = 1; i < CHANNELS; i++)
        if (D.chan_free[i] < D.chan_free[c])
            c = i; /* the lowest index on a tie: deterministic */
    uint64_t start = D.chan_free[c] > now ? D.chan_free[c] : now;
    uint64_t bw = write ? WRITE_BW : READ_BW;
    uint64_t xfer = (uint64_t)((unsigned __int128)len * 1000000000u / bw);
    uint64_t b0 = D.bus_free > start ? D.bus_free : start;
    D.bus_free = b0 + xfer;
    uint64_t done = b0 + xfer + jitter(write ? WRITE_LAT_NS : READ_LAT_NS);
    D.chan_free[c] = done;
    return done;
}

static void rec_link(struct shard_state *ss, struct rec *r)
{
    r->prev = NULL;
    r->next = ss->recs;
    if (ss->recs)
        ss->recs->prev = r;
    ss->recs = r;
}

static void rec_unlink(struct rec *r)
{
    struct shard_state *ss = &D.sh[r->shard];
    if (r->prev)
        r->prev->next = r->next;
    else
        ss->recs = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void rec_release(struct rec *r)
{
    if (r->ino) {
        r->ino->refs--;
        ino_maybe_free(r->ino);
    }
    if (r->p && !r->p->logged) {
        free(r->p->data);
        free(r->p);
    }
    free(r);
}

/* ---- reads and writes ---- */

static void reject_fired(void *arg)
{
    struct shard_state *ss = arg;
    struct sc__dreq *list = ss->rejects;
    ss->rejects = NULL;
    while (list) {
        struct sc__dreq *r = list;
        list = r->backend_data;
        r->done(r, -ENOMEM);
    }
}

/* No memory for a record: the request fails, later, from the shard's own timer. */
static void reject(struct shard_state *ss, struct sc__dreq *dr)
{
    dr->backend_data = ss->rejects;
    ss->rejects = dr;
    if (!sc_timer_armed(&ss->reject_timer)) {
        if (sc_timer_arm(&ss->reject_timer, sc_now()) < 0)
            sc_log(SC_LOG_ERROR, "simdisk: cannot arm a timer; failed requests wait for the next");
    }
}

/* Apply a completed write to the volatile image and mark it done. A logged
 * entry belongs to its inode's list (and may be freed here, by the
 * device's own write-back); an unlogged one stays the caller's. */
static int64_t write_lands(struct inode *ino, struct pend *p)
{
    int64_t len = (int64_t)p->len;
    int rc = image_write(&ino->vol, p->off, p->data, p->len);
    if (rc < 0)
        return rc;
    ino->mtime = sc_now();
    if (p->logged) {
        p->done = true;
        p->order = ++ino->done_count;
        if (ino->pend_bytes > CACHE_HIGH && !powered_off())
            make_durable(ino, UINT64_MAX, CACHE_LOW);
    }
    return len;
}

static int64_t read_now(struct inode *ino, const struct sc__dreq *dr)
{
    if (dr->off >= ino->vol.size)
        return 0;
    uint64_t n = ino->vol.size - dr->off;
    if (n > dr->len)
        n = dr->len;
    memcpy(dr->buf, ino->vol.data + dr->off, (size_t)n);
    return (int64_t)n;
}

static void io_fired(void *arg)
{
    struct rec *r = arg;
    struct sc__dreq *dr = r->dr;
    int64_t res = r->res;
    if (res == 0) {
        if (dr->op == SC__DREQ_WRITE) {
            struct pend *p = r->p;
            if (p->logged)
                r->p = NULL; /* the inode's list owns it */
            res = write_lands(r->ino, p);
            if (res >= 0) {
                D.st.writes++;
                D.st.bytes_written += (uint64_t)res;
            }
        } else {
            res = read_now(r->ino, dr);
            D.st.reads++;
            D.st.bytes_read += (uint64_t)res;
        }
    }
    sc_trace(0x696f00000000ull ^ ((uint64_t)dr->op << 56) ^ dr->off ^ ((uint64_t)res << 20));
    rec_unlink(r);
    rec_release(r);
    dr->done(dr, res);
}

static int64_t check_request(const struct sc__dreq *dr)
{
    const struct handle *h = (const struct handle *)dr->file;
    if (!h)
        return -EBADF;
    if (dr->op == SC__DREQ_WRITE  ? !h->base.writable
        : dr->op == SC__DREQ_READ ? !h->base.readable
                                  : true)
        return -EBADF;
    if (h->shard != sc__shard()->id)
        return -EBADF; /* a file belongs to the shard that opened it */
    if (!dr->buf || ((dr->off | (uint64_t)dr->len | (uint64_t)(uintptr_t)dr->buf) & (ALIGN - 1)))
        return -EINVAL;
    if (dr->off + dr->len < dr->off || dr->off + dr->len > (uint64_t)INT64_MAX)
        return -EINVAL;
    return 0;
}

static void sim_submit(struct sc__dreq *dr)
{
    struct shard_state *ss = me();
    struct rec *r = calloc(1, sizeof *r);
    if (!r) {
        reject(ss, dr);
        return;
    }
    r->kind = REC_IO;
    r->dr = dr;
    r->shard = sc__shard()->id;
    r->res = check_request(dr);
    uint64_t when = sc_now();
    if (r->res == 0) {
        struct handle *h = (struct handle *)dr->file;
        r->ino = h->ino;
        r->ino->refs++;
        bool write = dr->op == SC__DREQ_WRITE;
        if (inject_eio()) {
            r->res = -EIO; /* a failed write changes nothing */
        } else if (write && (r->res = room_for(r->ino, dr->off + dr->len)) == 0) {
            struct pend *p = calloc(1, sizeof *p);
            uint8_t *data = p ? malloc(dr->len) : NULL;
            if (!data) {
                free(p);
                r->res = -ENOMEM;
            } else {
                memcpy(data, dr->buf, dr->len); /* the device takes the bytes now */
                *p =
                    (struct pend){.kind = PEND_WRITE, .off = dr->off, .len = dr->len, .data = data};
                r->p = p;
                if (!powered_off())
                    log_pend(r->ino, p);
            }
        }
        if (r->res == 0 || r->res == -EIO)
            when = model_done(write, dr->len);
    }
    sc_trace(0x7375626d00000000ull ^ ((uint64_t)dr->op << 48) ^ dr->off ^ (when << 8));
    sc_timer_init(&r->t, io_fired, r);
    if (sc_timer_arm(&r->t, when) < 0) {
        if (r->p && r->p->logged)
            r->p->done = true; /* it never lands: at a crash it may or may not */
        rec_release(r);
        reject(ss, dr);
        return;
    }
    rec_link(ss, r);
}

/* ---- metadata calls: each completes after a modelled delay ---- */

static void meta_fired(void *arg)
{
    struct rec *r = arg;
    int64_t res = r->res ? r->res : r->run(r);
    /* the outcome, not the value: open's and list's values are pointers */
    sc_trace(0x6d65746100000000ull ^ (uint64_t)(res < 0 ? res : 0) ^ sc_now());
    rec_unlink(r);
    struct sc_promise p = r->prom;
    rec_release(r);
    if (res < 0)
        sc_promise_set_error(&p, (int)res);
    else
        sc_promise_set_value(&p, (intptr_t)res);
}

static struct rec *meta_new(meta_fn run, size_t npaths)
{
    me();
    struct rec *r = calloc(1, sizeof *r + npaths * PATH_MAX_LEN);
    if (!r)
        return NULL;
    for (size_t i = 0; i < npaths; i++)
        r->path[i] = r->buf + i * PATH_MAX_LEN;
    r->kind = REC_META;
    r->run = run;
    r->shard = sc__shard()->id;
    return r;
}

static struct sc_future meta_go(struct rec *r, uint64_t delay)
{
    sc_promise_init(&r->prom);
    struct sc_future f = sc_promise_get_future(&r->prom);
    if (sc_future_failed(f)) {
        rec_release(r);
        return f;
    }
    sc_timer_init(&r->t, meta_fired, r);
    if (sc_timer_arm(&r->t, sc_now() + jitter(delay)) < 0) {
        sc_promise_set_error(&r->prom, -ENOMEM);
        rec_release(r);
        return f;
    }
    rec_link(&D.sh[r->shard], r);
    return f;
}

static struct rec *meta_on(meta_fn run, struct sc__bfile *bf)
{
    struct rec *r = meta_new(run, 0);
    if (!r)
        return NULL;
    struct handle *h = (struct handle *)bf;
    r->h = h;
    r->ino = h->ino;
    r->ino->refs++;
    return r;
}

/* ---- open and close ---- */

static int64_t do_open(struct rec *r)
{
    const char *p = r->path[0];
    unsigned flags = r->flags;
    if (is_dir(p))
        return -EISDIR;
    int rc = check_ancestors(p);
    if (rc < 0)
        return rc;
    struct inode *ino = ns_get(&D.vol, p);
    if (ino && (flags & SC_FILE_CREATE) && (flags & SC_FILE_EXCL))
        return -EEXIST;
    if (!ino && !(flags & SC_FILE_CREATE))
        return -ENOENT;
    struct handle *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    if (!ino) {
        ino = ino_new();
        if (!ino || add_ancestors(p) < 0 || ns_put(&D.vol, p, ino) < 0) {
            if (ino)
                ino_maybe_free(ino);
            free(h);
            return -ENOMEM;
        }
        ino->mtime = sc_now();
        if (!powered_off() && ns_put(&D.dev, p, ino) < 0)
            sc_log(SC_LOG_WARN, "simdisk: out of memory: the device forgets '%s'", p);
    }
    if ((flags & SC_FILE_TRUNCATE) && ino->vol.size) {
        image_set_size(&ino->vol, 0);
        ino->alloc = ino->dur.size;
        ino->mtime = sc_now();
        log_size(ino, 0);
    }
    h->base = (struct sc__bfile){.alignment = ALIGN,
                                 .direct = !(flags & SC_FILE_BUFFERED),
                                 .readable = (flags & SC_FILE_READ) != 0,
                                 .writable = (flags & SC_FILE_WRITE) != 0};
    h->ino = ino;
    h->shard = r->shard;
    ino->refs++;
    struct shard_state *ss = &D.sh[h->shard];
    h->next = ss->handles;
    if (ss->handles)
        ss->handles->prev = h;
    ss->handles = h;
    return (int64_t)(intptr_t)h;
}

static struct sc_future sim_open(const char *path, unsigned flags)
{
    struct rec *r = meta_new(do_open, 1);
    if (!r)
        return sc_make_error(-ENOMEM);
    r->flags = flags;
    r->res = norm(path, r->path[0]);
    return meta_go(r, META_NS);
}

static void handle_free(struct handle *h)
{
    struct shard_state *ss = &D.sh[h->shard];
    if (h->prev)
        h->prev->next = h->next;
    else
        ss->handles = h->next;
    if (h->next)
        h->next->prev = h->prev;
    struct inode *ino = h->ino;
    free(h);
    ino->refs--;
    ino_maybe_free(ino);
}

static int64_t do_close(struct rec *r)
{
    handle_free(r->h);
    return 0;
}

static struct sc_future sim_close(struct sc__bfile *bf)
{
    struct rec *r = meta_new(do_close, 0);
    if (!r)
        return sc_make_error(-ENOMEM);
    r->h = (struct handle *)bf;
    return meta_go(r, META_NS / 4);
}

/* ---- flush, truncate, allocate, stat ---- */

static int64_t do_flush(struct rec *r)
{
    if (!powered_off())
        make_durable(r->ino, r->a, 0);
    D.st.flushes++;
    return 0;
}

static struct sc_future sim_flush(struct sc__bfile *bf)
{
    struct rec *r = meta_on(do_flush, bf);
    if (!r)
        return sc_make_error(-ENOMEM);
    r->a = r->ino->done_count; /* what completed before the flush began */
    if (inject_eio())
        r->res = -EIO; /* the writes stay unflushed */
    uint64_t drain = (uint64_t)((unsigned __int128)r->ino->pend_bytes * 1000000000u / FLUSH_BW);
    return meta_go(r, FLUSH_NS + drain);
}

static int64_t do_truncate(struct rec *r)
{
    struct inode *ino = r->ino;
    uint64_t len = r->a;
    if (len > ino->vol.size) {
        int rc = room_for(ino, len);
        if (rc < 0)
            return rc;
    }
    int rc = image_set_size(&ino->vol, len);
    if (rc < 0)
        return rc;
    if (len < ino->alloc)
        ino->alloc = len > ino->dur.size ? len : ino->dur.size;
    ino->mtime = sc_now();
    log_size(ino, len);
    return 0;
}

static struct sc_future sim_truncate(struct sc__bfile *bf, uint64_t len)
{
    struct rec *r = meta_on(do_truncate, bf);
    if (!r)
        return sc_make_error(-ENOMEM);
    r->a = len;
    if (!r->h->base.writable)
        r->res = -EBADF;
    return meta_go(r, META_NS);
}

static int64_t do_allocate(struct rec *r)
{
    struct inode *ino = r->ino;
    uint64_t end = r->a + r->b;
    int rc = room_for(ino, end);
    if (rc < 0)
        return rc;
    if (end > ino->vol.size) {
        rc = image_set_size(&ino->vol, end);
        if (rc < 0)
            return rc;
        ino->mtime = sc_now();
        log_size(ino, end);
    }
    return 0;
}

static struct sc_future sim_allocate(struct sc__bfile *bf, uint64_t off, uint64_t len)
{
    struct rec *r = meta_on(do_allocate, bf);
    if (!r)
        return sc_make_error(-ENOMEM);
    r->a = off;
    r->b = len;
    if (!r->h->base.writable)
        r->res = -EBADF;
    else if (len == 0 || off + len < off || off + len > (uint64_t)INT64_MAX)
        r->res = -EINVAL;
    return meta_go(r, META_NS);
}

static int64_t do_stat(struct rec *r)
{
    struct sc_file_stat *st = r->out;
    struct inode *ino = r->ino;
    *st = (struct sc_file_stat){.size = ino->vol.size,
                                .blocks = round_up(ino->alloc, ALIGN) / 512,
                                .mode = S_IFREG | 0644,
                                .mtime_ns = ino->mtime,
                                .alignment = ALIGN};
    return 0;
}

static struct sc_future sim_stat(struct sc__bfile *bf, struct sc_file_stat *st)
{
    if (!st)
        return sc_make_error(-EINVAL);
    struct rec *r = meta_on(do_stat, bf);
    if (!r)
        return sc_make_error(-ENOMEM);
    r->out = st;
    return meta_go(r, META_NS / 4);
}

/* ---- names: remove, rename, sync_dir, list ---- */

static int64_t do_remove(struct rec *r)
{
    const char *p = r->path[0];
    if (is_dir(p))
        return -EISDIR;
    int rc = check_ancestors(p);
    if (rc < 0)
        return rc;
    if (!ns_get(&D.vol, p))
        return -ENOENT;
    if (!powered_off())
        ns_del(&D.dev, p);
    ns_del(&D.vol, p);
    return 0;
}

static struct sc_future sim_remove(const char *path)
{
    struct rec *r = meta_new(do_remove, 1);
    if (!r)
        return sc_make_error(-ENOMEM);
    r->res = norm(path, r->path[0]);
    return meta_go(r, META_NS);
}

static int64_t do_rename(struct rec *r)
{
    const char *from = r->path[0], *to = r->path[1];
    int rc = check_ancestors(from);
    if (rc == 0)
        rc = check_ancestors(to);
    if (rc < 0)
        return rc;
    if (is_dir(from))
        return -EOPNOTSUPP; /* the sim disk does not move directories */
    struct inode *ino = ns_get(&D.vol, from);
    if (!ino)
        return -ENOENT;
    if (is_dir(to))
        return -EISDIR;
    if (!strcmp(from, to))
        return 0;
    if (add_ancestors(to) < 0 || ns_put(&D.vol, to, ino) < 0)
        return -ENOMEM;
    ns_del(&D.vol, from);
    if (!powered_off()) {
        struct inode *dino = ns_get(&D.dev, from);
        if (dino && ns_put(&D.dev, to, dino) == 0)
            ns_del(&D.dev, from);
    }
    return 0;
}

static struct sc_future sim_rename(const char *from, const char *to)
{
    struct rec *r = meta_new(do_rename, 2);
    if (!r)
        return sc_make_error(-ENOMEM);
    r->res = norm(from, r->path[0]);
    if (r->res == 0)
        r->res = norm(to, r->path[1]);
    if (r->res == 0 && (is_root(r->path[0]) || is_root(r->path[1])))
        r->res = -EBUSY;
    return meta_go(r, META_NS);
}

/* The durable entries of dir become those the device has recorded. */
static int sync_entries(const char *dir)
{
    for (size_t i = D.dur.n; i-- > 0;)
        if (in_dir(D.dur.e[i].name, dir) && !ns_get(&D.dev, D.dur.e[i].name))
            ns_del_at(&D.dur, i);
    for (size_t i = 0; i < D.dev.n; i++)
        if (in_dir(D.dev.e[i].name, dir) && ns_put(&D.dur, D.dev.e[i].name, D.dev.e[i].ino) < 0)
            return -ENOMEM;
    return 0;
}

static int64_t do_sync_dir(struct rec *r)
{
    const char *d = r->path[0];
    if (ns_get(&D.vol, d))
        return -ENOTDIR;
    if (!is_dir(d))
        return -ENOENT;
    if (powered_off())
        return 0;
    return sync_entries(d);
}

static struct sc_future sim_sync_dir(const char *dir)
{
    struct rec *r = meta_new(do_sync_dir, 1);
    if (!r)
        return sc_make_error(-ENOMEM);
    r->res = norm(dir, r->path[0]);
    return meta_go(r, SYNC_DIR_NS);
}

static int list_add(struct sc_dir_list *l, size_t *cap, const char *name)
{
    if (l->count && !strcmp(l->names[l->count - 1], name))
        return 0;
    if (l->count == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char **v = realloc(l->names, nc * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->names = v;
        *cap = nc;
    }
    char *c = strdup(name);
    if (!c)
        return -ENOMEM;
    l->names[l->count++] = c;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int64_t do_list(struct rec *r)
{
    const char *d = r->path[0];
    if (ns_get(&D.vol, d))
        return -ENOTDIR;
    if (!is_dir(d))
        return -ENOENT;
    /* plain malloc: sc_dir_list_free() frees each name, the array and the list */
    struct sc_dir_list *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < D.vol.n && rc == 0; i++)
        if (in_dir(D.vol.e[i].name, d))
            rc = list_add(l, &cap, base_of(D.vol.e[i].name));
    for (size_t i = 0; i < D.dirs.n && rc == 0; i++)
        if (in_dir(D.dirs.v[i], d))
            rc = list_add(l, &cap, base_of(D.dirs.v[i]));
    if (rc < 0) {
        sc_dir_list_free(l);
        return rc;
    }
    if (l->count > 1)
        qsort(l->names, l->count, sizeof *l->names, cmp_str);
    return (int64_t)(intptr_t)l;
}

static struct sc_future sim_list(const char *dir)
{
    struct rec *r = meta_new(do_list, 1);
    if (!r)
        return sc_make_error(-ENOMEM);
    r->res = norm(dir, r->path[0]);
    return meta_go(r, META_NS);
}

/* ---- the model for the I/O queue ---- */

static bool sim_default_model(struct sc_disk_model *m)
{
    /* The device's rates, split among the shards that share it. IOPS count
     * the channels' latency only: the fair queue adds the bytes' cost. */
    uint64_t n = sc_shard_count();
    if (n == 0)
        n = 1;
    m->read_iops = CHANNELS * 1000000000ull / READ_LAT_NS / n;
    m->write_iops = CHANNELS * 1000000000ull / WRITE_LAT_NS / n;
    m->read_bw = READ_BW / n;
    m->write_bw = WRITE_BW / n;
    m->latency_goal_ns = SC_FQ_DEFAULT_LATENCY_GOAL_NS;
    return true;
}

/* ---- the end of a shard's run ---- */

static void shard_fini(struct sc__shard *s)
{
    struct shard_state *ss = &D.sh[s->id];
    if (!ss->active)
        return;
    /* Requests in flight: writes land (the device finishes them after the
     * process is gone); nobody is told. Oldest first. */
    struct rec *last = ss->recs;
    while (last && last->next)
        last = last->next;
    for (struct rec *r = last, *prev; r; r = prev) {
        prev = r->prev;
        sc_timer_cancel(&r->t);
        if (r->kind == REC_IO && r->res == 0 && r->dr->op == SC__DREQ_WRITE && r->p) {
            struct pend *p = r->p;
            if (p->logged)
                r->p = NULL;
            write_lands(r->ino, p);
        }
        rec_release(r);
    }
    ss->recs = NULL;
    sc_timer_cancel(&ss->reject_timer);
    ss->rejects = NULL;
    while (ss->handles)
        handle_free(ss->handles);
    ss->active = false;
    D.active_shards--;
}

/* ---- the test controls (sim/simdisk.h) ---- */

int sc_sim_disk_reset(void)
{
    disk_init();
    if (D.active_shards)
        return -EBUSY;
    ns_clear(&D.vol);
    ns_clear(&D.dev);
    ns_clear(&D.dur);
    for (size_t i = 0; i < D.dirs.n; i++)
        free(D.dirs.v[i]);
    free(D.dirs.v);
    D.dirs = (struct strset){0};
    /* every inode is free now (no names, no runs) */
    while (D.ih)
        ino_destroy(D.ih);
    D.next_ino = 0;
    D.capacity = UINT64_MAX;
    D.crash_t = UINT64_MAX;
    D.crash_happened = false;
    D.st = (struct sc_sim_disk_stats){0};
    return 0;
}

void sc_sim_disk_crash_at(uint64_t t)
{
    disk_init();
    D.crash_t = t;
}

void sc_sim_disk_set_capacity(uint64_t bytes)
{
    disk_init();
    D.capacity = bytes;
}

void sc_sim_disk_stats(struct sc_sim_disk_stats *out)
{
    disk_init();
    *out = D.st;
    out->files = D.vol.n;
    out->used_bytes = used_bytes();
    out->capacity = D.capacity;
}

/* The reboot's stream: the last run's seed and the number of reboots. */
static uint64_t reboot_rng[4];

static uint64_t coin(uint64_t bound)
{
    return sc__rng_next(reboot_rng) % bound;
}

/* Names: for each directory whose recorded entries differ from its durable
 * ones, all of the changes made it, or none did. */
static int reboot_names(void)
{
    struct strset ds = {0};
    int rc = 0;
    char par[PATH_MAX_LEN];
    for (size_t i = 0; i < D.dev.n && rc == 0; i++) {
        parent_of(D.dev.e[i].name, par);
        rc = set_add(&ds, par);
    }
    for (size_t i = 0; i < D.dur.n && rc == 0; i++) {
        parent_of(D.dur.e[i].name, par);
        rc = set_add(&ds, par);
    }
    for (size_t d = 0; d < ds.n && rc == 0; d++) {
        bool differ = false;
        for (size_t i = 0; i < D.dev.n && !differ; i++)
            if (in_dir(D.dev.e[i].name, ds.v[d]) &&
                ns_get(&D.dur, D.dev.e[i].name) != D.dev.e[i].ino)
                differ = true;
        for (size_t i = 0; i < D.dur.n && !differ; i++)
            if (in_dir(D.dur.e[i].name, ds.v[d]) && !ns_get(&D.dev, D.dur.e[i].name))
                differ = true;
        if (!differ)
            continue;
        if (coin(2))
            rc = sync_entries(ds.v[d]);
        else
            D.st.entries_lost++;
    }
    for (size_t i = 0; i < ds.n; i++)
        free(ds.v[i]);
    free(ds.v);
    return rc;
}

/* Data: the durable image, plus what came back of each unflushed write.
 * Each write has a fate: lost, whole, or torn (a seeded coin per sector).
 * Where several writes came back on one sector, a seeded pick says which
 * landed last: the device need not keep the order they were issued in. */
enum { FATE_LOST, FATE_WHOLE, FATE_TORN };

static bool sector_back(const struct pend *p, uint64_t s, const uint8_t *fate, size_t wi,
                        uint64_t mask_seed)
{
    if (p->kind != PEND_WRITE || s < p->off || s >= p->off + p->len || fate[wi] == FATE_LOST)
        return false;
    if (fate[wi] == FATE_WHOLE)
        return true;
    uint64_t x = mask_seed ^ (wi * 0x9e3779b97f4a7c15ull) ^ ((s / SECTOR) * 0xbf58476d1ce4e5b9ull);
    x ^= x >> 31;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 29;
    return x & 1;
}

static int reboot_data(struct inode *ino)
{
    struct image im = {0};
    int rc = image_write(&im, 0, ino->dur.data, ino->dur.size);
    for (struct pend *p = ino->ph; p && rc == 0; p = p->next)
        if (p->kind == PEND_SIZE && coin(2))
            rc = image_set_size(&im, p->off);
    uint64_t lo = UINT64_MAX, hi = 0;
    size_t nw = 0;
    for (struct pend *p = ino->ph; p; p = p->next)
        if (p->kind == PEND_WRITE) {
            nw++;
            lo = p->off < lo ? p->off : lo;
            hi = p->off + p->len > hi ? p->off + p->len : hi;
        }
    uint8_t *fate = nw ? malloc(nw) : NULL;
    uint32_t *kept = nw ? calloc(nw, sizeof *kept) : NULL;
    if (nw && (!fate || !kept))
        rc = -ENOMEM;
    for (size_t i = 0; i < nw && rc == 0; i++)
        fate[i] = (uint8_t)coin(3);
    uint64_t mask_seed = nw ? sc__rng_next(reboot_rng) : 0;
    for (uint64_t s = lo; nw && rc == 0 && s < hi; s += SECTOR) {
        unsigned k = 0, covered = 0;
        size_t wi = 0;
        for (struct pend *p = ino->ph; p; p = p->next) {
            if (p->kind != PEND_WRITE)
                continue;
            covered += s >= p->off && s < p->off + p->len;
            k += sector_back(p, s, fate, wi++, mask_seed);
        }
        if (!k) {
            D.st.sectors_old += covered != 0;
            continue;
        }
        uint64_t pick = coin(k);
        wi = 0;
        for (struct pend *p = ino->ph; p; p = p->next) {
            if (p->kind != PEND_WRITE)
                continue;
            size_t me_i = wi++;
            if (!sector_back(p, s, fate, me_i, mask_seed) || pick--)
                continue;
            uint64_t end = s + SECTOR < p->off + p->len ? s + SECTOR : p->off + p->len;
            rc = image_write(&im, s, p->data + (s - p->off), end - s);
            kept[me_i]++;
            D.st.sectors_new++;
            break;
        }
    }
    size_t wi = 0;
    for (struct pend *p = ino->ph; p && kept; p = p->next) {
        if (p->kind != PEND_WRITE)
            continue;
        uint64_t sectors = (p->len + SECTOR - 1) / SECTOR;
        if (kept[wi] == 0)
            D.st.writes_lost++;
        else if (kept[wi] == sectors)
            D.st.writes_whole++;
        else
            D.st.writes_torn++;
        wi++;
    }
    free(kept);
    free(fate);
    if (rc < 0) {
        image_free(&im);
        return rc;
    }
    /* the image is the new truth on both sides */
    image_free(&ino->vol);
    image_free(&ino->dur);
    ino->vol = im;
    ino->dur = (struct image){0};
    rc = image_write(&ino->dur, 0, im.data, im.size);
    if (rc < 0)
        return rc;
    pend_free_all(ino);
    ino->done_count = 0;
    ino->alloc = im.size;
    return 0;
}

int sc_sim_disk_reboot(void)
{
    disk_init();
    if (D.active_shards)
        return -EBUSY;
    D.st.reboots++;
    if (D.crash_happened)
        D.st.crashes++;
    sc__rng_seed(reboot_rng, D.last_seed ^ 0x7265626f6f74ull /* "reboot" */ ^ (D.st.reboots << 48));
    int rc = reboot_names();
    /* the app's and the device's views become the durable one */
    ns_clear(&D.vol);
    ns_clear(&D.dev);
    for (size_t i = 0; i < D.dur.n && rc == 0; i++) {
        rc = ns_put(&D.vol, D.dur.e[i].name, D.dur.e[i].ino);
        if (rc == 0)
            rc = ns_put(&D.dev, D.dur.e[i].name, D.dur.e[i].ino);
    }
    /* inodes without a durable name were freed above; the rest, in creation order */
    for (struct inode *ino = D.ih; ino && rc == 0; ino = ino->next)
        rc = reboot_data(ino);
    D.crash_t = UINT64_MAX;
    D.crash_happened = false;
    if (rc < 0)
        sc_log(SC_LOG_ERROR, "simdisk: out of memory during a reboot");
    return rc;
}

const struct sc__disk_backend sc__sim_disk = {
    .name = "sim",
    .open = sim_open,
    .close = sim_close,
    .submit = sim_submit,
    .flush = sim_flush,
    .truncate = sim_truncate,
    .allocate = sim_allocate,
    .stat = sim_stat,
    .remove = sim_remove,
    .rename = sim_rename,
    .sync_dir = sim_sync_dir,
    .list = sim_list,
    .default_model = sim_default_model,
};
