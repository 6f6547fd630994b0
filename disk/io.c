/*
 * io.c — the per-shard I/O queue: between the file API and the disk
 * backend, it decides which request reaches the device next and when.
 *
 * Each scheduling group is a class of the fair queue (disk/fair_queue.c),
 * with the group's shares. A request is priced from the disk model (a fixed
 * cost per operation plus its bytes over the bandwidth) and waits in its
 * class; the pump takes requests out in fair order while the token bucket
 * allows, hands them to the backend, and when the bucket runs dry arms a
 * timer for the moment it will hold enough again. So the device holds about
 * `latency_goal` worth of work at any time and no more: the rest waits here,
 * where a more important class can overtake it.
 *
 * Everything here belongs to one shard: no locks, and in the simulator
 * everything happens at virtual times, deterministically.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/memory.h"
#include "core/sched_impl.h"
#include "core/shard_impl.h"
#include "disk/disk_impl.h"
#include "disk/io.h"

/* Without a disk model (real world, no --io-properties-file) nothing limits
 * the device's queue but this. */
#define NOMODEL_MAX_INFLIGHT 128
/* A model so fast that its costs never empty the bucket: the fair queue
 * still orders classes, the cap above limits the depth. */
#define NOMODEL_RATE 1000000000000ull

/* Latency histogram: 32 linear sub-buckets per power of two (about 3%). */
#define H_SUB    32u
#define H_SHIFT  5u
#define H_OCT    40u /* up to 2^44 ns, about 4.9 hours */
#define H_BUCKETS (H_SUB + H_OCT * H_SUB)

struct hist {
    uint64_t n;
    uint64_t max;
    uint32_t c[H_BUCKETS];
};

static unsigned h_index(uint64_t v)
{
    if (v < H_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= H_SHIFT */
    unsigned oct = e - H_SHIFT + 1;
    if (oct > H_OCT)
        return H_BUCKETS - 1;
    return oct * H_SUB + (unsigned)((v >> (e - H_SHIFT)) & (H_SUB - 1));
}

/* The upper edge of bucket i (a value in it is at most this). */
static uint64_t h_value(unsigned i)
{
    if (i < H_SUB)
        return i;
    unsigned oct = i / H_SUB, sub = i % H_SUB;
    unsigned e = oct + H_SHIFT - 1;
    return ((uint64_t)(H_SUB + sub) << (e - H_SHIFT)) + ((1ull << (e - H_SHIFT)) - 1);
}

static uint64_t h_quantile(const struct hist *h, double q)
{
    if (!h || !h->n)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->n);
    if (want >= h->n)
        want = h->n - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < H_BUCKETS; i++) {
        seen += h->c[i];
        if (seen > want) {
            uint64_t v = h_value(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

struct grp {
    int cls; /* the fair queue's class, -1 until the group's first request */
    uint64_t reads, writes, errors, bytes, queue_ns;
    struct hist *h;
};

struct sc__ioq {
    struct sc_fair_queue fq;
    bool has_model;
    struct sc_disk_model model;
    const struct sc__disk_backend *be;
    struct sc_timer timer; /* the bucket will allow the next request then */
    uint64_t inflight;
    struct grp g[SC_SCHED_MAX_GROUPS];
    void *file_state;
};

struct ioreq {
    struct sc_fq_entry e;
    struct sc__dreq d;
    struct sc_promise p;
    struct sc__ioq *q;
    struct sc__inflight *file_inflight;
    uint64_t t_queued, t_disp;
    uint32_t group;
};

/* ---- the disk model file ---- */

int sc_io_model_load(const char *path, struct sc_disk_model *out)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        int e = -errno;
        sc_log(SC_LOG_ERROR, "io: cannot read the disk model '%s': %s", path, strerror(-e));
        return e;
    }
    struct sc_disk_model m = {0};
    char line[256];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == 0)
            continue;
        char key[64];
        unsigned long long v;
        char extra;
        if (sscanf(p, "%63[a-z_]: %llu %c", key, &v, &extra) != 2) {
            sc_log(SC_LOG_ERROR, "io: %s:%d: expected 'name: number'", path, lineno);
            rc = -EINVAL;
            break;
        }
        if (!strcmp(key, "read_iops"))
            m.read_iops = v;
        else if (!strcmp(key, "write_iops"))
            m.write_iops = v;
        else if (!strcmp(key, "read_bandwidth"))
            m.read_bw = v;
        else if (!strcmp(key, "write_bandwidth"))
            m.write_bw = v;
        else if (!strcmp(key, "latency_goal_us"))
            m.latency_goal_ns = v * 1000;
        else {
            sc_log(SC_LOG_ERROR, "io: %s:%d: unknown key '%s'", path, lineno, key);
            rc = -EINVAL;
            break;
        }
    }
    fclose(fp);
    if (rc == 0 && (!m.read_iops || !m.write_iops || !m.read_bw || !m.write_bw)) {
        sc_log(SC_LOG_ERROR,
               "io: %s: read_iops, write_iops, read_bandwidth and write_bandwidth must all be "
               "given and above 0",
               path);
        rc = -EINVAL;
    }
    if (rc == 0) {
        if (!m.latency_goal_ns)
            m.latency_goal_ns = SC_FQ_DEFAULT_LATENCY_GOAL_NS;
        *out = m;
    }
    return rc;
}

/* ---- the queue ---- */

static void ioq_fini(struct sc__shard *s)
{
    struct sc__ioq *q = s->disk;
    if (!q)
        return;
    sc_timer_cancel(&q->timer);
    for (unsigned i = 0; i < SC_SCHED_MAX_GROUPS; i++)
        sc_free(q->g[i].h);
    sc_fq_destroy(&q->fq);
    sc_free(q);
    s->disk = NULL;
}

static void pump(struct sc__ioq *q);

static void timer_fired(void *arg)
{
    pump(arg);
}

struct sc__ioq *sc__ioq_get(int *err)
{
    struct sc__shard *s = sc__shard();
    if (s->disk)
        return s->disk;
    const struct sc__disk_backend *be =
        s->engine->simulated ? s->engine->disk_backend : &sc__real_disk;
    if (!be) {
        *err = -ENOSYS;
        return NULL;
    }
    struct sc__ioq *q = sc_calloc(1, sizeof *q);
    if (!q) {
        *err = -ENOMEM;
        return NULL;
    }
    q->be = be;
    if (s->cfg.io_properties_file) {
        int rc = sc_io_model_load(s->cfg.io_properties_file, &q->model);
        if (rc < 0) {
            sc_free(q);
            *err = rc == -ENOENT ? -ENOENT : -EINVAL;
            return NULL;
        }
        /* the file describes the whole disk; the shards share it, each with
         * its own bucket, so each gets its part of every rate */
        uint64_t n = sc__world ? sc__world->n : 1;
        q->model.read_iops = q->model.read_iops / n ? q->model.read_iops / n : 1;
        q->model.write_iops = q->model.write_iops / n ? q->model.write_iops / n : 1;
        q->model.read_bw = q->model.read_bw / n ? q->model.read_bw / n : 1;
        q->model.write_bw = q->model.write_bw / n ? q->model.write_bw / n : 1;
        q->has_model = true;
    } else if (be->default_model && be->default_model(&q->model)) {
        q->has_model = true;
        if (!q->model.latency_goal_ns)
            q->model.latency_goal_ns = SC_FQ_DEFAULT_LATENCY_GOAL_NS;
    }
    struct sc_disk_model m = q->model;
    if (!q->has_model) {
        m = (struct sc_disk_model){NOMODEL_RATE, NOMODEL_RATE, NOMODEL_RATE, NOMODEL_RATE,
                                   SC_FQ_DEFAULT_LATENCY_GOAL_NS};
    }
    if (sc_fq_init(&q->fq, &m, sc_now()) != 0) {
        sc_log(SC_LOG_ERROR, "io: the disk model is not usable");
        sc_free(q);
        *err = -EINVAL;
        return NULL;
    }
    for (unsigned i = 0; i < SC_SCHED_MAX_GROUPS; i++)
        q->g[i].cls = -1;
    sc_timer_init(&q->timer, timer_fired, q);
    if (sc__shard_on_fini(s, ioq_fini) != 0) {
        sc_fq_destroy(&q->fq);
        sc_free(q);
        *err = -ENOMEM;
        return NULL;
    }
    s->disk = q;
    return q;
}

void **sc__ioq_file_state(struct sc__ioq *q)
{
    return &q->file_state;
}

const struct sc__disk_backend *sc__ioq_backend(struct sc__ioq *q)
{
    return q->be;
}

/* The class of group g, made on its first request; its shares follow the
 * group's (they may have changed since). */
static int class_of(struct sc__ioq *q, unsigned g)
{
    unsigned shares = sc__sched_shares(g);
    if (shares < 1)
        shares = 1;
    if (shares > SC_FQ_MAX_SHARES)
        shares = SC_FQ_MAX_SHARES;
    struct grp *gr = &q->g[g];
    if (gr->cls < 0) {
        gr->cls = sc_fq_add_class(&q->fq, shares);
        return gr->cls;
    }
    if (q->fq.cls[gr->cls].shares != shares)
        sc_fq_set_shares(&q->fq, (unsigned)gr->cls, shares);
    return gr->cls;
}

static void record(struct sc__ioq *q, struct ioreq *r, int64_t res, uint64_t now)
{
    struct grp *g = &q->g[r->group];
    if (res < 0) {
        g->errors++;
    } else {
        if (r->d.op == SC__DREQ_READ)
            g->reads++;
        else
            g->writes++;
        g->bytes += (uint64_t)res;
    }
    g->queue_ns += r->t_disp - r->t_queued;
    if (!g->h)
        g->h = sc_calloc(1, sizeof *g->h); /* no histogram if memory is short: counters stay */
    if (g->h) {
        uint64_t lat = now - r->t_queued;
        g->h->c[h_index(lat)]++;
        g->h->n++;
        if (lat > g->h->max)
            g->h->max = lat;
    }
}

static void req_done(struct sc__dreq *d, int64_t res)
{
    struct ioreq *r = SC_CONTAINER_OF(d, struct ioreq, d);
    struct sc__ioq *q = r->q;
    uint64_t now = sc_now();
    sc_fq_complete(&q->fq, &r->e, now);
    q->inflight--;
    record(q, r, res, now);
    struct sc__inflight *fi = r->file_inflight;
    if (fi && --fi->n == 0 && fi->drained) {
        struct sc_promise *dp = fi->drained;
        fi->drained = NULL;
        sc_promise_set_value(dp, 0);
    }
    if (res < 0)
        sc_promise_set_error(&r->p, (int)res);
    else
        sc_promise_set_value(&r->p, (intptr_t)res);
    sc_free(r);
    pump(q);
}

static void pump(struct sc__ioq *q)
{
    uint64_t now = sc_now();
    for (;;) {
        if (!q->has_model && q->inflight >= NOMODEL_MAX_INFLIGHT)
            return; /* a completion pumps again */
        struct sc_fq_entry *e = sc_fq_dispatch(&q->fq, now);
        if (!e)
            break;
        struct ioreq *r = SC_CONTAINER_OF(e, struct ioreq, e);
        r->t_disp = now;
        q->inflight++;
        q->be->submit(&r->d);
    }
    uint64_t next = sc_fq_next_ready(&q->fq, now);
    if (next != UINT64_MAX && !sc_timer_armed(&q->timer))
        sc_timer_arm(&q->timer, next > now ? next : now + 1);
}

struct sc_future sc__io_submit(struct sc__ioq *q, struct sc__bfile *f, enum sc__dreq_op op,
                               uint64_t off, void *buf, size_t len, struct sc__inflight *inflight)
{
    unsigned g = sc_sched_group_current().id;
    int cls = class_of(q, g);
    if (cls < 0)
        return sc_make_error(cls);
    struct ioreq *r = sc_malloc(sizeof *r);
    if (!r)
        return sc_make_error(-ENOMEM);
    r->q = q;
    r->d = (struct sc__dreq){.op = (uint8_t)op, .file = f, .off = off, .buf = buf, .len = len,
                             .done = req_done};
    r->file_inflight = inflight;
    r->group = g;
    r->t_queued = r->t_disp = sc_now();
    sc_fq_entry_init(&r->e, (unsigned)cls, op == SC__DREQ_READ ? SC_IO_READ : SC_IO_WRITE, len);
    sc_promise_init(&r->p);
    struct sc_future fut = sc_promise_get_future(&r->p);
    int rc = sc_fq_queue(&q->fq, &r->e);
    if (rc < 0) {
        sc_promise_set_error(&r->p, rc);
        sc_free(r);
        return fut;
    }
    if (inflight)
        inflight->n++;
    pump(q);
    return fut;
}

/* ---- statistics ---- */

int sc_io_stats(struct sc_sched_group g, struct sc_io_stats *out)
{
    if (!out || g.id >= SC_SCHED_MAX_GROUPS)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->shares = sc__sched_shares(g.id);
    struct sc__ioq *q = sc__shard()->disk;
    if (!q)
        return 0;
    const struct grp *gr = &q->g[g.id];
    if (gr->cls >= 0) {
        const struct sc_fq_class *c = &q->fq.cls[gr->cls];
        out->queued = c->queued;
        out->in_flight = c->in_flight;
    }
    out->reads = gr->reads;
    out->writes = gr->writes;
    out->errors = gr->errors;
    out->bytes = gr->bytes;
    out->queue_ns = gr->queue_ns;
    out->p50_ns = h_quantile(gr->h, 0.50);
    out->p99_ns = h_quantile(gr->h, 0.99);
    out->p999_ns = h_quantile(gr->h, 0.999);
    out->max_ns = gr->h ? gr->h->max : 0;
    return 0;
}

void sc_io_stats_reset(void)
{
    struct sc__ioq *q = sc__shard()->disk;
    if (!q)
        return;
    for (unsigned i = 0; i < SC_SCHED_MAX_GROUPS; i++) {
        struct grp *g = &q->g[i];
        g->reads = g->writes = g->errors = g->bytes = g->queue_ns = 0;
        if (g->h)
            memset(g->h, 0, sizeof *g->h);
    }
}

int sc_io_model(struct sc_disk_model *out)
{
    int err = 0;
    struct sc__ioq *q = sc__ioq_get(&err);
    if (!q)
        return err;
    if (!q->has_model)
        return -ENOENT;
    *out = q->model;
    return 0;
}
