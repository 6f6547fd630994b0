/*
 * exec.c — see exec.h.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "apps/memcached/exec.h"
#include "core/memory.h"
#include "core/reactor.h"

/* ---- the buffer ---- */

char *mc_buf_room(struct mc_buf *b, size_t n)
{
    if (b->failed)
        return NULL;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        char *p = sc_realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

void mc_buf_put(struct mc_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return; /* p may be NULL then (an empty buffer's) */
    char *dst = mc_buf_room(b, n);
    if (dst) {
        memcpy(dst, p, n);
        b->len += n;
    }
}

void mc_buf_puts(struct mc_buf *b, const char *s)
{
    mc_buf_put(b, s, strlen(s));
}

void mc_buf_free(struct mc_buf *b)
{
    sc_free(b->p);
    *b = (struct mc_buf){0};
}

/* ---- the clock ---- */

int64_t mc_unix_now(void)
{
    if (sc_is_simulated())
        return MC_SIM_EPOCH + (int64_t)(sc_now() / UINT64_C(1000000000));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* ---- requests ---- */

static void reply(struct mc_buf *out, const struct mc_request *req, enum mc_result r)
{
    bool error = r == MC_NON_NUMERIC || r == MC_NO_MEMORY || r == MC_TOO_LARGE;
    /* noreply hides everything but server errors (the two SERVER_ERROR
     * results), as in memcached */
    if (req->noreply && !(error && r != MC_NON_NUMERIC))
        return;
    mc_buf_puts(out, mc_result_text(r));
}

void mc_exec_key(struct mc_store *s, const struct mc_request *req, uint64_t hash, uint64_t now,
                 int64_t unix_now, struct mc_buf *out)
{
    enum mc_result r;
    switch (req->cmd) {
    case MC_CMD_SET:
    case MC_CMD_ADD:
    case MC_CMD_REPLACE:
    case MC_CMD_APPEND:
    case MC_CMD_PREPEND:
    case MC_CMD_CAS:
        r = mc_store_put(s, req->cmd, req->key, req->key_len, hash, req->flags,
                         mc_exptime_deadline(req->exptime, now, unix_now), req->value,
                         req->value_len, req->cas, now);
        break;
    case MC_CMD_DELETE:
        r = mc_store_delete(s, req->key, req->key_len, hash, now);
        break;
    case MC_CMD_INCR:
    case MC_CMD_DECR: {
        uint64_t v = 0;
        r = mc_store_arith(s, req->cmd == MC_CMD_DECR, req->key, req->key_len, hash, req->delta,
                           now, &v);
        if (r == MC_ARITH_OK) {
            if (!req->noreply) {
                char *p = mc_buf_room(out, 23);
                if (p) {
                    size_t n = mc_format_u64(p, v);
                    p[n] = '\r';
                    p[n + 1] = '\n';
                    out->len += n + 2;
                }
            }
            return;
        }
        break;
    }
    case MC_CMD_TOUCH:
        r = mc_store_touch(s, req->key, req->key_len, hash,
                           mc_exptime_deadline(req->exptime, now, unix_now), now);
        break;
    default:
        mc_buf_puts(out, mc_error_text(MC_ERR_UNKNOWN));
        return;
    }
    reply(out, req, r);
}

void mc_exec_get(struct mc_store *s, bool with_cas, const char *key, uint32_t klen, uint64_t hash,
                 uint64_t now, struct mc_buf *out)
{
    struct mc_item *it = mc_store_get(s, key, klen, hash, now);
    if (!it)
        return;
    char *p = mc_buf_room(out, MC_VALUE_HDR_MAX + it->nbytes + 2);
    if (!p)
        return;
    size_t n = mc_format_value_header(p, key, klen, it->flags, it->nbytes, with_cas, it->cas);
    memcpy(p + n, mc_item_value(it), it->nbytes + 2); /* the value and its "\r\n" */
    out->len += n + it->nbytes + 2;
}

/* ---- stats ---- */

void mc_shard_stats_add(struct mc_shard_stats *a, const struct mc_shard_stats *b)
{
    /* every field is a uint64_t: add them as an array */
    uint64_t *x = (uint64_t *)a;
    const uint64_t *y = (const uint64_t *)b;
    for (size_t i = 0; i < sizeof *a / sizeof(uint64_t); i++)
        x[i] += y[i];
}

static void stat_u64(struct mc_buf *out, const char *prefix, const char *name, uint64_t v)
{
    char line[128];
    int n = snprintf(line, sizeof line, "STAT %s%s %llu\r\n", prefix, name, (unsigned long long)v);
    mc_buf_put(out, line, (size_t)n);
}

static void stat_str(struct mc_buf *out, const char *name, const char *v)
{
    char line[128];
    int n = snprintf(line, sizeof line, "STAT %s %s\r\n", name, v);
    mc_buf_put(out, line, (size_t)n);
}

static void format_counters(struct mc_buf *out, const char *prefix, const struct mc_shard_stats *t)
{
    const struct mc_store_stats *s = &t->store;
    stat_u64(out, prefix, "curr_connections", t->curr_connections);
    stat_u64(out, prefix, "total_connections", t->total_connections);
    stat_u64(out, prefix, "rejected_connections", t->rejected_connections);
    stat_u64(out, prefix, "cmd_get", s->cmd_get);
    stat_u64(out, prefix, "cmd_set", s->cmd_set);
    stat_u64(out, prefix, "cmd_flush", s->cmd_flush);
    stat_u64(out, prefix, "cmd_touch", s->cmd_touch);
    stat_u64(out, prefix, "get_hits", s->get_hits);
    stat_u64(out, prefix, "get_misses", s->get_misses);
    stat_u64(out, prefix, "get_expired", s->get_expired);
    stat_u64(out, prefix, "get_flushed", s->get_flushed);
    stat_u64(out, prefix, "delete_misses", s->delete_misses);
    stat_u64(out, prefix, "delete_hits", s->delete_hits);
    stat_u64(out, prefix, "incr_misses", s->incr_misses);
    stat_u64(out, prefix, "incr_hits", s->incr_hits);
    stat_u64(out, prefix, "decr_misses", s->decr_misses);
    stat_u64(out, prefix, "decr_hits", s->decr_hits);
    stat_u64(out, prefix, "cas_misses", s->cas_misses);
    stat_u64(out, prefix, "cas_hits", s->cas_hits);
    stat_u64(out, prefix, "cas_badval", s->cas_badval);
    stat_u64(out, prefix, "touch_hits", s->touch_hits);
    stat_u64(out, prefix, "touch_misses", s->touch_misses);
    stat_u64(out, prefix, "bytes_read", t->bytes_read);
    stat_u64(out, prefix, "bytes_written", t->bytes_written);
    stat_u64(out, prefix, "limit_maxbytes", t->limit_bytes);
    stat_u64(out, prefix, "bytes", s->bytes);
    stat_u64(out, prefix, "curr_items", s->curr_items);
    stat_u64(out, prefix, "total_items", s->total_items);
    stat_u64(out, prefix, "evictions", s->evictions);
    stat_u64(out, prefix, "reclaimed", s->reclaimed);
    stat_u64(out, prefix, "expired_swept", s->expired_swept);
    stat_u64(out, prefix, "ops", s->ops);
    stat_u64(out, prefix, "remote_sent", t->remote_sent);
    stat_u64(out, prefix, "remote_received", t->remote_received);
    stat_u64(out, prefix, "protocol_errors", t->protocol_errors);
}

void mc_format_stats(struct mc_buf *out, const struct mc_shard_stats *per, unsigned n,
                     bool per_shard, uint64_t uptime_s, uint32_t max_item_size)
{
    if (per_shard) {
        for (unsigned i = 0; i < n; i++) {
            char prefix[24];
            snprintf(prefix, sizeof prefix, "shard%u:", i);
            format_counters(out, prefix, &per[i]);
        }
        mc_buf_puts(out, "END\r\n");
        return;
    }
    struct mc_shard_stats sum = {0};
    for (unsigned i = 0; i < n; i++)
        mc_shard_stats_add(&sum, &per[i]);
    bool sim = sc_is_simulated();
    char v[64];
    /* nothing of the host leaks into a simulated run's replies */
    stat_u64(out, "", "pid", sim ? 0 : (uint64_t)getpid());
    stat_u64(out, "", "uptime", uptime_s);
    stat_u64(out, "", "time", (uint64_t)mc_unix_now());
    stat_str(out, "version", MC_VERSION);
    stat_u64(out, "", "pointer_size", 8 * sizeof(void *));
    struct rusage ru = {0};
    if (!sim)
        getrusage(RUSAGE_SELF, &ru);
    snprintf(v, sizeof v, "%ld.%06ld", (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    stat_str(out, "rusage_user", v);
    snprintf(v, sizeof v, "%ld.%06ld", (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
    stat_str(out, "rusage_system", v);
    stat_u64(out, "", "max_connections", 0);
    format_counters(out, "", &sum);
    stat_u64(out, "", "threads", n);
    stat_u64(out, "", "item_size_max", max_item_size);
    mc_buf_puts(out, "END\r\n");
}
