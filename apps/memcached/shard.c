/*
 * shard.c — see shard.h: which shard owns a key, running a request there,
 * fanning a multi-key get out over the owners and putting the answers back
 * in request order, and the per-connection pipeline that keeps replies in
 * order and bounds what is in flight. Lab 10 is this file.
 */
#include <string.h>

#include "apps/memcached/shard.h"
#include "core/loop.h"
#include "core/memory.h"
#include "core/reactor.h"
#include "core/sharded.h"
#include "core/smp.h"

#define DEFAULT_INFLIGHT 64

static struct sc_sharded service;
static struct mc_config config; /* written before the service starts, then read-only */

/* ------------------------------------------------------------------ */
/* The service: one store per shard                                   */
/* ------------------------------------------------------------------ */

static void record_eviction(void *arg, const struct mc_item *it, uint64_t now)
{
    struct mc_shard *sh = arg;
    sh->evicted_ns[it->hash % MC_EVICT_SLOTS] = now;
}

static struct sc_future shard_start(void *inst, unsigned shard, void *arg)
{
    struct mc_shard *sh = inst;
    const struct mc_config *cfg = arg;
    unsigned n = sc_shard_count();
    struct mc_store_config sc = {
        .limit_bytes = cfg->memory_limit / n, /* -m is for the whole server */
        .max_item_size = cfg->max_item_size,
        .shard = shard,
        .nshards = n,
        .sweep_period_ns = cfg->sweep_period_ns,
    };
    if (cfg->track_evictions) {
        sh->evicted_ns = sc_calloc(MC_EVICT_SLOTS, sizeof *sh->evicted_ns);
        if (!sh->evicted_ns)
            return sc_make_error(-ENOMEM);
        sc.on_evict = record_eviction;
        sc.evict_arg = sh;
    }
    int err = mc_store_init(&sh->store, &sc);
    if (!err && (err = mc_store_start_sweeper(&sh->store)) != 0)
        mc_store_destroy(&sh->store);
    if (err) {
        sc_free(sh->evicted_ns);
        return sc_make_error(err);
    }
    sh->st.limit_bytes = sh->store.cfg.limit_bytes;
    sh->started_ns = sc_now();
    return sc_make_ready(0);
}

static struct sc_future shard_stop(void *inst)
{
    struct mc_shard *sh = inst;
    mc_store_destroy(&sh->store);
    sc_free(sh->evicted_ns);
    return sc_make_ready(0);
}

static const struct sc_sharded_ops service_ops = {
    .size = sizeof(struct mc_shard),
    .start = shard_start,
    .stop = shard_stop,
};

struct sc_future mc_service_start(const struct mc_config *cfg)
{
    config = *cfg;
    if (!config.max_item_size)
        config.max_item_size = MC_ITEM_MAX;
    if (!config.max_inflight)
        config.max_inflight = DEFAULT_INFLIGHT;
    if (!config.memory_limit)
        config.memory_limit = UINT64_C(64) << 20;
    return sc_sharded_start(&service, &service_ops, &config);
}

struct sc_future mc_service_stop(void)
{
    return sc_sharded_stop(&service);
}

struct mc_shard *mc_local(void)
{
    return sc_sharded_local(&service);
}

const struct mc_config *mc_config(void)
{
    return &config;
}

/* ------------------------------------------------------------------ */
/* Owners                                                             */
/* ------------------------------------------------------------------ */

unsigned mc_owner(uint64_t hash, unsigned nshards)
{
    /* LAB 10 BEGIN: the owner of a key: a shard in [0, nshards) from its hash */
    /* The high 32 bits, scaled to [0, nshards) by a multiply and a shift:
     * no division, and independent of the low bits that pick the bucket
     * inside the owner's table. */
    return (unsigned)(((hash >> 32) * (uint64_t)nshards) >> 32);
    /* LAB 10 END: return 0; */
}

struct evict_query {
    uint64_t hash, since_ns;
};

static struct sc_future evicted_here(void *cap)
{
    const struct evict_query *q = cap;
    struct mc_shard *sh = mc_local();
    if (!sh || !sh->evicted_ns)
        return sc_make_ready(1);
    uint64_t t = sh->evicted_ns[q->hash % MC_EVICT_SLOTS];
    return sc_make_ready(t != 0 && t >= q->since_ns);
}

struct sc_future mc_evicted_since(uint64_t hash, uint64_t since_ns)
{
    struct evict_query q = {hash, since_ns};
    return sc_smp_submit_to(mc_owner(hash, sc_shard_count()), evicted_here, &q, sizeof q);
}

/* A reply under construction, in an mc_buf whose first bytes are the header. */
static void reply_begin(struct mc_buf *b)
{
    if (mc_buf_room(b, sizeof(struct mc_reply)))
        b->len = sizeof(struct mc_reply);
}

static struct sc_future reply_end(struct mc_buf *b, uint32_t nseg)
{
    if (b->failed) {
        mc_buf_free(b);
        return sc_make_error(-ENOMEM);
    }
    struct mc_reply *r = (struct mc_reply *)b->p;
    r->len = (uint32_t)(b->len - sizeof *r);
    r->nseg = nseg;
    return sc_make_ready_ptr(r);
}

/* ------------------------------------------------------------------ */
/* Single-key requests                                                */
/* ------------------------------------------------------------------ */

/* A request on its way to the owner: made by the connection's shard, freed
 * by the owner. */
struct key_msg {
    enum mc_cmd cmd;
    bool noreply;
    uint32_t flags;
    int64_t exptime;
    uint64_t cas, delta, hash;
    uint32_t klen, vlen;
    char data[]; /* the key, then the value */
};

/* On the owner: run it, free the message, send back the reply. */
static struct sc_future run_key_msg(void *cap)
{
    struct key_msg *m = *(struct key_msg **)cap;
    struct mc_shard *sh = mc_local();
    if (!sh) {
        sc_free(m);
        return sc_make_error(-ESHUTDOWN);
    }
    /* LAB 10 BEGIN: rebuild the request from the message, run it on this shard's store */
    sh->st.remote_received++;
    struct mc_request req = {
        .cmd = m->cmd,
        .noreply = m->noreply,
        .key = m->data,
        .key_len = m->klen,
        .flags = m->flags,
        .exptime = m->exptime,
        .value_len = m->vlen,
        .value = m->data + m->klen,
        .cas = m->cas,
        .delta = m->delta,
    };
    struct mc_buf b = {0};
    reply_begin(&b);
    mc_exec_key(&sh->store, &req, m->hash, sc_now(), mc_unix_now(), &b);
    sc_free(m); /* made on the connection's shard: the free goes home */
    return reply_end(&b, 0);
    /* LAB 10 END: sc_free(m); return sc_make_error(SC_ELAB_TODO); */
}

static struct sc_future route_key(const struct mc_request *req, struct mc_buf *dst)
{
    struct mc_shard *sh = mc_local();
    uint64_t hash = mc_hash(req->key, req->key_len);
    unsigned owner = mc_owner(hash, sc_shard_count());
    if (owner == sc_this_shard()) { /* ours: no message at all */
        mc_exec_key(&sh->store, req, hash, sc_now(), mc_unix_now(), dst);
        return sc_make_ready(0);
    }
    /* LAB 10 BEGIN: copy the request into a message and run it on its owner */
    uint32_t vlen = mc_cmd_is_storage(req->cmd) ? req->value_len : 0;
    struct key_msg *m = sc_malloc(sizeof *m + req->key_len + vlen);
    if (!m)
        return sc_make_error(-ENOMEM);
    *m = (struct key_msg){
        .cmd = req->cmd,
        .noreply = req->noreply,
        .flags = req->flags,
        .exptime = req->exptime, /* the owner turns it into a deadline on its clock */
        .cas = req->cas,
        .delta = req->delta,
        .hash = hash,
        .klen = req->key_len,
        .vlen = vlen,
    };
    memcpy(m->data, req->key, req->key_len);
    if (vlen)
        memcpy(m->data + req->key_len, req->value, vlen);
    sh->st.remote_sent++;
    struct sc_future f = sc_smp_submit_to(owner, run_key_msg, &m, sizeof m);
    if (sc_future_available(f) && sc_future_failed(f))
        sc_free(m); /* never sent: still ours */
    return f;
    /* LAB 10 END: return sc_make_error(SC_ELAB_TODO); */
}

/* ------------------------------------------------------------------ */
/* Fan-out: one message per shard, answers gathered by shard          */
/* ------------------------------------------------------------------ */

struct fan;
typedef struct sc_future (*fan_finish_fn)(struct fan *f);

/* A request spread over shards; lives on the connection's shard. */
struct fan {
    struct sc_promise done; /* the assembled reply */
    unsigned waiting;       /* shards that have not answered */
    int err;                /* the first error */
    fan_finish_fn finish;
    bool with_cas, noreply; /* get: gets; flush_all, stats: noreply / per-shard */
    uint32_t nkeys;         /* get: keys in request order ... */
    uint16_t *owner;        /* ... and the owner of each */
    void *part[];           /* one answer per shard (NULL: not asked, or failed) */
};

struct fan_cap {
    struct fan *f;
    unsigned shard;
};

static void fan_free(struct fan *f)
{
    for (unsigned i = 0; i < sc_shard_count(); i++)
        sc_free(f->part[i]); /* made on shard i: goes home */
    sc_free(f->owner);
    sc_free(f);
}

static struct sc_future fan_resolved(void *cap, intptr_t v, int err)
{
    (void)err;
    struct fan *f = cap;
    sc_promise_set_value(&f->done, v);
    return sc_make_ready(0);
}

static struct sc_future fan_failed(void *cap, int err)
{
    struct fan *f = cap;
    sc_promise_set_error(&f->done, err);
    return sc_make_ready(0);
}

/* Every shard answered: assemble, resolve, free. */
static void fan_complete(struct fan *f)
{
    if (f->err) {
        sc_promise_set_error(&f->done, f->err);
    } else {
        struct sc_future r = f->finish(f);
        intptr_t v = 0;
        int err = sc_future_get(r, &v); /* finish functions never wait */
        if (err)
            fan_failed(f, err);
        else
            fan_resolved(f, v, 0);
    }
    fan_free(f);
}

static struct sc_future fan_part(void *cap, intptr_t v, int err)
{
    struct fan_cap *c = cap;
    struct fan *f = c->f;
    if (err && !f->err)
        f->err = err;
    if (!err)
        f->part[c->shard] = (void *)v;
    if (--f->waiting == 0)
        fan_complete(f);
    return sc_make_ready(0);
}

static struct fan *fan_new(fan_finish_fn finish)
{
    unsigned n = sc_shard_count();
    struct fan *f = sc_calloc(1, sizeof *f + n * sizeof(void *));
    if (!f)
        return NULL;
    f->finish = finish;
    f->waiting = 1; /* the launch hold, dropped by fan_start() */
    sc_promise_init(&f->done);
    return f;
}

/* Wait for one shard's answer (the future of a submit_to). */
static void fan_wait(struct fan *f, unsigned shard, struct sc_future part)
{
    struct fan_cap c = {f, shard};
    f->waiting++;
    struct sc_future w = sc_then_wrapped(part, fan_part, &c, sizeof c);
    if (sc_future_available(w) && sc_future_failed(w)) {
        /* no memory for the continuation: fan_part will not run */
        sc_future_ignore(w);
        f->err = f->err ? f->err : -ENOMEM;
        f->waiting--;
    } else {
        sc_future_discard(w);
    }
}

/* Start the fan: the future of its reply. The hold fan_new() took keeps
 * answers that came at once (our own shard's) from completing the fan
 * before every shard was asked. */
static struct sc_future fan_start(struct fan *f)
{
    struct sc_future r = sc_promise_get_future(&f->done);
    if (--f->waiting == 0)
        fan_complete(f);
    return r;
}

/* ---- get and gets ---- */

/* The keys a get sends one owner: each a length byte, its hash, its bytes. */
struct get_msg {
    bool with_cas;
    unsigned from; /* the asking shard (for the counters) */
    uint32_t nkeys, len;
    char data[];
};

/* On the owner: one segment per key (a length, then VALUE lines or nothing). */
static struct sc_future run_get_msg(void *cap)
{
    struct get_msg *m = *(struct get_msg **)cap;
    struct mc_shard *sh = mc_local();
    if (!sh) {
        sc_free(m);
        return sc_make_error(-ESHUTDOWN);
    }
    /* LAB 10 BEGIN: answer each key of the message, one segment per key, in order */
    if (m->from != sc_this_shard())
        sh->st.remote_received++;
    struct mc_buf b = {0};
    reply_begin(&b);
    uint64_t now = sc_now();
    const char *p = m->data;
    for (uint32_t i = 0; i < m->nkeys; i++) {
        uint8_t klen = (uint8_t)*p++;
        uint64_t hash;
        memcpy(&hash, p, sizeof hash);
        p += sizeof hash;
        size_t at = b.len;
        if (mc_buf_room(&b, sizeof(uint32_t)))
            b.len += sizeof(uint32_t);
        mc_exec_get(&sh->store, m->with_cas, p, klen, hash, now, &b);
        p += klen;
        if (!b.failed) {
            uint32_t seg = (uint32_t)(b.len - at - sizeof(uint32_t));
            memcpy(b.p + at, &seg, sizeof seg);
        }
    }
    uint32_t nseg = m->nkeys;
    sc_free(m); /* goes home */
    return reply_end(&b, nseg);
    /* LAB 10 END: sc_free(m); return sc_make_error(SC_ELAB_TODO); */
}

/* All shards answered: the segments, back in request order, then END. */
static struct sc_future get_finish(struct fan *f)
{
    /* LAB 10 BEGIN: interleave the owners' segments back into request order, then END */
    unsigned n = sc_shard_count();
    size_t off[n];
    size_t total = 5;
    for (unsigned s = 0; s < n; s++) {
        off[s] = 0;
        if (f->part[s])
            total += ((struct mc_reply *)f->part[s])->len;
    }
    struct mc_buf b = {0};
    reply_begin(&b);
    mc_buf_room(&b, total);
    for (uint32_t i = 0; i < f->nkeys; i++) {
        const struct mc_reply *r = f->part[f->owner[i]];
        uint32_t seg;
        memcpy(&seg, r->data + off[f->owner[i]], sizeof seg);
        mc_buf_put(&b, r->data + off[f->owner[i]] + sizeof seg, seg);
        off[f->owner[i]] += sizeof seg + seg;
    }
    mc_buf_puts(&b, "END\r\n");
    return reply_end(&b, 0);
    /* LAB 10 END: return sc_make_error(SC_ELAB_TODO); */
}

static struct sc_future route_get(const struct mc_request *req, struct mc_buf *dst)
{
    struct mc_shard *sh = mc_local();
    unsigned n = sc_shard_count(), me = sc_this_shard();
    bool with_cas = req->cmd == MC_CMD_GETS;
    uint32_t pos = 0, klen;
    const char *key;
    bool all_local = true;
    while (all_local && mc_next_key(req, &pos, &key, &klen))
        all_local = mc_owner(mc_hash(key, klen), n) == me;
    if (all_local) { /* the common case on one shard: straight into the output */
        uint64_t now = sc_now();
        pos = 0;
        while (mc_next_key(req, &pos, &key, &klen))
            mc_exec_get(&sh->store, with_cas, key, klen, mc_hash(key, klen), now, dst);
        mc_buf_puts(dst, "END\r\n");
        return sc_make_ready(0);
    }
    /* LAB 10 BEGIN: fan out: one get_msg per owner (keys in request order), gather with a fan */
    struct fan *f = fan_new(get_finish);
    uint32_t msg_len[n], msg_keys[n];
    struct get_msg *msg[n];
    memset(msg_len, 0, sizeof msg_len);
    memset(msg_keys, 0, sizeof msg_keys);
    memset(msg, 0, sizeof msg);
    if (!f || !(f->owner = sc_malloc(req->nkeys * sizeof *f->owner))) {
        if (f)
            fan_free(f);
        return sc_make_error(-ENOMEM);
    }
    f->nkeys = req->nkeys;
    f->with_cas = with_cas;
    /* who owns each key, and how big each owner's message is */
    pos = 0;
    for (uint32_t i = 0; mc_next_key(req, &pos, &key, &klen); i++) {
        unsigned o = mc_owner(mc_hash(key, klen), n);
        f->owner[i] = (uint16_t)o;
        msg_len[o] += 1 + sizeof(uint64_t) + klen;
        msg_keys[o]++;
    }
    bool ok = true;
    for (unsigned s = 0; s < n && ok; s++) {
        if (!msg_keys[s])
            continue;
        if (!(msg[s] = sc_malloc(sizeof(struct get_msg) + msg_len[s])))
            ok = false;
        else
            *msg[s] = (struct get_msg){.with_cas = with_cas, .from = me, .nkeys = msg_keys[s]};
    }
    if (!ok) {
        for (unsigned s = 0; s < n; s++)
            sc_free(msg[s]);
        fan_free(f);
        return sc_make_error(-ENOMEM);
    }
    pos = 0;
    for (uint32_t i = 0; mc_next_key(req, &pos, &key, &klen); i++) {
        struct get_msg *m = msg[f->owner[i]];
        uint64_t hash = mc_hash(key, klen);
        char *p = m->data + m->len;
        *p++ = (char)klen;
        memcpy(p, &hash, sizeof hash);
        memcpy(p + sizeof hash, key, klen);
        m->len += 1 + sizeof hash + klen;
    }
    /* one message per owner; ours runs at once, inside submit_to */
    for (unsigned s = 0; s < n; s++) {
        if (!msg[s])
            continue;
        if (s != me)
            sh->st.remote_sent++;
        struct sc_future part = sc_smp_submit_to(s, run_get_msg, &msg[s], sizeof msg[s]);
        if (sc_future_available(part) && sc_future_failed(part) && s != me)
            sc_free(msg[s]); /* never sent */
        fan_wait(f, s, part);
    }
    return fan_start(f);
    /* LAB 10 END: return sc_make_error(SC_ELAB_TODO); */
}

/* ---- flush_all and stats: every shard ---- */

static struct sc_future run_flush(void *cap)
{
    int64_t delay = *(int64_t *)cap;
    struct mc_shard *sh = mc_local();
    if (!sh)
        return sc_make_error(-ESHUTDOWN);
    uint64_t now = sc_now();
    uint64_t at = delay > 0 ? mc_exptime_deadline(delay, now, mc_unix_now()) : 0;
    mc_store_flush(&sh->store, at == MC_EXPIRED ? 0 : at, now);
    return sc_make_ready_ptr(NULL);
}

static struct sc_future flush_finish(struct fan *f)
{
    struct mc_buf b = {0};
    reply_begin(&b);
    if (!f->noreply)
        mc_buf_puts(&b, "OK\r\n");
    return reply_end(&b, 0);
}

static struct sc_future run_stats(void *cap)
{
    (void)cap;
    struct mc_shard *sh = mc_local();
    if (!sh)
        return sc_make_error(-ESHUTDOWN);
    struct mc_shard_stats *st = sc_malloc(sizeof *st);
    if (!st)
        return sc_make_error(-ENOMEM);
    *st = sh->st;
    st->store = sh->store.st;
    return sc_make_ready_ptr(st);
}

static struct sc_future stats_finish(struct fan *f)
{
    unsigned n = sc_shard_count();
    struct mc_shard *sh = mc_local();
    struct mc_shard_stats *per = sh ? sc_calloc(n, sizeof *per) : NULL;
    if (!per)
        return sc_make_error(-ENOMEM);
    for (unsigned s = 0; s < n; s++)
        per[s] = *(struct mc_shard_stats *)f->part[s];
    struct mc_buf b = {0};
    reply_begin(&b);
    uint64_t up = (sc_now() - sh->started_ns) / UINT64_C(1000000000);
    mc_format_stats(&b, per, n, f->noreply /* here: per shard */, up, config.max_item_size);
    sc_free(per);
    return reply_end(&b, 0);
}

/* Run fn(cap) on every shard, gather with a fan finished by finish. */
static struct sc_future every_shard(sc_smp_fn fn, const void *cap, size_t cap_size,
                                    fan_finish_fn finish, bool flag)
{
    struct fan *f = fan_new(finish);
    if (!f)
        return sc_make_error(-ENOMEM);
    f->noreply = flag;
    for (unsigned s = 0; s < sc_shard_count(); s++)
        fan_wait(f, s, sc_smp_submit_to(s, fn, cap, cap_size));
    return fan_start(f);
}

static struct sc_future route(const struct mc_request *req, struct mc_buf *dst)
{
    if (!mc_local())
        return sc_make_error(-ESHUTDOWN);
    switch (req->cmd) {
    case MC_CMD_GET:
    case MC_CMD_GETS:
        return route_get(req, dst);
    case MC_CMD_SET:
    case MC_CMD_ADD:
    case MC_CMD_REPLACE:
    case MC_CMD_APPEND:
    case MC_CMD_PREPEND:
    case MC_CMD_CAS:
    case MC_CMD_DELETE:
    case MC_CMD_INCR:
    case MC_CMD_DECR:
    case MC_CMD_TOUCH:
        return route_key(req, dst);
    case MC_CMD_FLUSH_ALL:
        return every_shard(run_flush, &req->delay, sizeof req->delay, flush_finish, req->noreply);
    case MC_CMD_STATS:
        if (!req->arg)
            return every_shard(run_stats, NULL, 0, stats_finish, false);
        if (req->arg_len == 6 && memcmp(req->arg, "shards", 6) == 0)
            return every_shard(run_stats, NULL, 0, stats_finish, true);
        mc_buf_puts(dst, mc_error_text(MC_ERR_UNKNOWN));
        return sc_make_ready(0);
    case MC_CMD_VERSION:
        mc_buf_puts(dst, "VERSION " MC_VERSION "\r\n");
        return sc_make_ready(0);
    case MC_CMD_VERBOSITY:
        if (!req->noreply)
            mc_buf_puts(dst, "OK\r\n");
        return sc_make_ready(0);
    default:
        mc_buf_puts(dst, mc_error_text(MC_ERR_UNKNOWN));
        return sc_make_ready(0);
    }
}

/* ------------------------------------------------------------------ */
/* The pipeline: replies in request order, in-flight bounded          */
/* ------------------------------------------------------------------ */

int mc_pipeline_init(struct mc_pipeline *p, unsigned max_inflight, void (*wake)(void *arg),
                     void *arg)
{
    memset(p, 0, sizeof *p);
    if (!max_inflight)
        max_inflight = DEFAULT_INFLIGHT;
    p->slots = sc_calloc(max_inflight, sizeof *p->slots);
    if (!p->slots)
        return -ENOMEM;
    p->cap = max_inflight;
    p->wake = wake;
    p->wake_arg = arg;
    sc_sem_init(&p->inflight, max_inflight);
    return 0;
}

struct sc_future mc_pipeline_admit(struct mc_pipeline *p)
{
    /* LAB 10 BEGIN: wait for a unit of the in-flight semaphore */
    return sc_sem_wait(&p->inflight, 1);
    /* LAB 10 END: return sc_make_ready(0); */
}

/* Move the replies at the head that are complete into `out`, in order;
 * each gives its unit back. */
static void drain(struct mc_pipeline *p, bool async)
{
    bool grew = false;
    /* LAB 10 BEGIN: pop complete slots from the head only, append their bytes, free a unit each */
    while (p->count && p->slots[p->head].done) {
        struct mc_slot *s = &p->slots[p->head];
        if (s->err)
            mc_buf_puts(&p->out, mc_error_text(MC_ERR_BUSY));
        else if (s->reply)
            mc_buf_put(&p->out, s->reply->data, s->reply->len);
        else
            mc_buf_put(&p->out, s->local.p, s->local.len);
        sc_free(s->reply); /* made on the owner: goes home */
        mc_buf_free(&s->local);
        *s = (struct mc_slot){0};
        p->head = (p->head + 1) % p->cap;
        p->count--;
        sc_sem_signal(&p->inflight, 1);
        grew = true;
    }
    /* LAB 10 END */
    if (grew && async && p->wake)
        p->wake(p->wake_arg);
    if (!p->count && p->drain_wait) {
        p->drain_wait = false;
        sc_promise_set_value(&p->drained, 0);
    }
}

static struct sc_future slot_done(void *cap, intptr_t v, int err)
{
    struct mc_slot *s = *(struct mc_slot **)cap;
    s->done = true;
    s->err = err;
    s->reply = err ? NULL : (struct mc_reply *)v;
    drain(s->p, true);
    return sc_make_ready(0);
}

static struct mc_slot *slot_push(struct mc_pipeline *p)
{
    SC_ASSERT(p->count < p->cap, "a request was submitted without a unit (mc_pipeline_admit)");
    struct mc_slot *s = &p->slots[(p->head + p->count) % p->cap];
    p->count++;
    *s = (struct mc_slot){.p = p};
    return s;
}

void mc_pipeline_submit(struct mc_pipeline *p, const struct mc_request *req)
{
    /* Nothing waits: a local reply may go straight to `out`. Otherwise it
     * is kept in its slot until the earlier ones are out. */
    bool queued = p->count > 0;
    struct mc_buf scratch = {0};
    struct sc_future f = route(req, queued ? &scratch : &p->out);
    intptr_t v = 0;
    if (sc_future_available(f) && !sc_future_failed(f)) {
        sc_future_get(f, &v);
        if (v == 0) { /* answered here, into out or scratch */
            if (!queued) {
                sc_sem_signal(&p->inflight, 1);
                return;
            }
            struct mc_slot *s = slot_push(p);
            s->local = scratch;
            s->done = true;
            return;
        }
        f = sc_make_ready(v); /* a reply object: through a slot like any other */
    }
    mc_buf_free(&scratch);
    struct mc_slot *s = slot_push(p);
    struct sc_future w = sc_then_wrapped(f, slot_done, &s, sizeof s);
    if (sc_future_available(w) && sc_future_failed(w)) { /* slot_done will not run */
        sc_future_ignore(w);
        s->done = true;
        s->err = -ENOMEM;
        drain(p, false);
    } else {
        sc_future_discard(w);
    }
}

void mc_pipeline_answer(struct mc_pipeline *p, const char *text, size_t len)
{
    if (!p->count) {
        mc_buf_put(&p->out, text, len);
        sc_sem_signal(&p->inflight, 1);
        return;
    }
    struct mc_slot *s = slot_push(p);
    mc_buf_put(&s->local, text, len);
    s->done = true;
}

struct sc_future mc_pipeline_drain(struct mc_pipeline *p)
{
    if (!p->count)
        return sc_make_ready(0);
    if (!p->drain_wait) {
        sc_promise_init(&p->drained);
        p->drain_wait = true;
        return sc_promise_get_future(&p->drained);
    }
    return sc_make_error(-EBUSY);
}

void mc_pipeline_destroy(struct mc_pipeline *p)
{
    SC_ASSERT(p->count == 0, "a pipeline destroyed with %u requests in flight", p->count);
    mc_buf_free(&p->out);
    sc_free(p->slots);
    p->slots = NULL;
}
