/*
 * demo.c — see demo.h: checking clients, the orchestration on shard 0, and
 * the report.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/memcached/demo.h"
#include "apps/memcached/exec.h"
#include "apps/memcached/proto.h"
#include "apps/memcached/shard.h"
#include "core/loop.h"
#include "core/memory.h"
#include "core/reactor.h"
#include "core/smp.h"
#include "core/thread.h"
#include "net/net.h"

#define MAX_DEPTH            8
#define MAX_MGET             5
#define BIG_LEN              20000 /* larger than a connection's 8 KiB input buffer */
#define UNACKED_MAX          8
#define HIST_BUCKETS         2048
#define CLIENT_STACK         (64 * 1024)
#define MAX_VIOLATIONS_SHOWN 20
#define CONNECT_TRIES        50
#define ANSWER_TIMEOUT       SC_SEC(10) /* no answer this long: the server lost it (a violation) */

/* ---- latency histogram: 32 buckets per power of two (3% wide) ---- */

static unsigned hist_bucket(uint64_t v)
{
    if (v < 32)
        return (unsigned)v;
    unsigned l = 63u - (unsigned)__builtin_clzll(v);
    return (l - 4) * 32 + (unsigned)((v >> (l - 5)) & 31);
}

static uint64_t hist_value(unsigned b)
{
    if (b < 32)
        return b;
    unsigned l = b / 32 + 4;
    return (uint64_t)(32 + b % 32) << (l - 5);
}

static uint64_t hist_percentile(const uint64_t *h, double p)
{
    uint64_t total = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++)
        total += h[b];
    if (!total)
        return 0;
    uint64_t want = (uint64_t)((double)total * p);
    if (want >= total)
        want = total - 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += h[b];
        if (seen > want)
            return hist_value(b);
    }
    return 0;
}

/* ---- what a client remembers ---- */

/* What one of a client's own keys may hold. */
struct keystate {
    bool present;          /* the last acknowledged write stored it */
    bool uncertain;        /* a server error left it either way: absent is fine too */
    bool unacked_delete;   /* a delete whose answer was lost: may land any time */
    bool unacked_overflow; /* more lost writes than we keep: any value of ours */
    bool cas_known;        /* cas is the unique of the acknowledged value */
    uint32_t seq;          /* the acknowledged value */
    int64_t exptime;       /* its exptime (0: none, <0: unknown) */
    uint64_t set_sent_ns;  /* when its write was sent: it expires no sooner than this + exptime */
    uint64_t ack_ns;       /* ... and no later than this + exptime */
    uint64_t cas;
    uint32_t unacked[UNACKED_MAX]; /* writes whose answer was lost */
    unsigned nunacked;
    bool unacked_expiring; /* one of them had an exptime */
};

enum op_kind { OP_GET, OP_MGET, OP_GETS, OP_SET, OP_DELETE, OP_CAS, OP_INCR, OP_GARBAGE };

struct op {
    enum op_kind kind;
    unsigned key;             /* own key (or counter, for incr) */
    unsigned mkeys[MAX_MGET]; /* multi-get keys, in request order */
    unsigned nm;
    uint32_t seq, len; /* a write's value */
    int64_t exptime;
    uint64_t cas;
    bool long_key; /* garbage: an over-long key rather than an unknown command */
};

struct incr_seen {
    uint32_t ctr;
    uint64_t value;
};

/* A client's findings, made on its shard and handed to shard 0 at the end. */
struct client_result {
    uint64_t ops, violations, excused, unanswered, reconnects, connect_failures;
    uint64_t hits, misses, stored, big, garbage;
    uint64_t hist[HIST_BUCKETS];
    uint64_t *ctr_acked, *ctr_unacked;
    struct incr_seen *incrs;
    size_t nincrs, cap_incrs;
};

struct client_cap {
    unsigned id;
    struct mc_demo_opts o;
};

struct client {
    unsigned id;
    struct mc_demo_opts o;
    struct sc_conn *conn;
    struct keystate *ks;
    struct client_result *r;
    char *block;
    struct mc_buf wbuf;
    struct op batch[MAX_DEPTH];
    bool busy[64]; /* own keys written in this batch (by key % 64) */
    uint32_t next_seq;
};

/* how many violations were printed, by every client (on every shard): the
 * one counter the clients share, so an atomic */
static _Atomic unsigned violations_shown;

static void violation(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void violation(struct client *c, const char *fmt, ...)
{
    c->r->violations++;
    if (atomic_fetch_add_explicit(&violations_shown, 1, memory_order_relaxed) >=
        MAX_VIOLATIONS_SHOWN)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "memcached demo: VIOLATION (client %u, t=%" PRIu64 " ns): ", c->id, sc_now());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int key_name(char *buf, unsigned client, unsigned key)
{
    return sprintf(buf, "c%u:k%u", client, key);
}

static int ctr_name(char *buf, unsigned ctr)
{
    return sprintf(buf, "ctr:%u", ctr);
}

/* The value written by (client, key, seq): a prefix naming it, then filler. */
static uint32_t make_value(char *buf, unsigned client, unsigned key, uint32_t seq, uint32_t len)
{
    int n = sprintf(buf, "%u.%u.%u:", client, key, seq);
    if (len < (uint32_t)n)
        len = (uint32_t)n;
    for (uint32_t i = (uint32_t)n; i < len; i++)
        buf[i] = (char)('a' + (seq + i) % 26);
    return len;
}

/* ---- the model ---- */

static bool unacked_has(const struct keystate *k, uint32_t seq)
{
    if (k->unacked_overflow)
        return true;
    for (unsigned i = 0; i < k->nunacked; i++)
        if (k->unacked[i] == seq)
            return true;
    return false;
}

static void unacked_add(struct keystate *k, uint32_t seq)
{
    if (k->nunacked < UNACKED_MAX)
        k->unacked[k->nunacked++] = seq;
    else
        k->unacked_overflow = true;
}

static void ack_write(struct keystate *k, const struct op *op, uint64_t sent, uint64_t now)
{
    k->present = true;
    k->uncertain = false;
    k->seq = op->seq;
    k->exptime = op->exptime;
    k->set_sent_ns = sent;
    k->ack_ns = now;
    k->cas_known = false;
}

/* A key answered as missing (get, delete, cas): fine, or a violation. */
static int check_missing(struct client *c, unsigned key, uint64_t sent, uint64_t now,
                         const char *what)
{
    struct keystate *k = &c->ks[key];
    /* a lost write with an exptime may have landed late and expired since */
    bool fine =
        !k->present || k->uncertain || k->unacked_delete || k->exptime < 0 || k->unacked_expiring;
    if (!fine && k->exptime > 0 && now >= k->set_sent_ns + (uint64_t)k->exptime * 1000000000ull)
        fine = true, c->r->excused++; /* its exptime may have passed */
    if (!fine) {
        char name[32];
        int n = key_name(name, c->id, key);
        intptr_t evicted = 1;
        sc_await(mc_evicted_since(mc_hash(name, (size_t)n), k->set_sent_ns), &evicted);
        if (evicted)
            fine = true, c->r->excused++;
        else
            violation(c,
                      "%s: %s answered missing, but value %u was stored at %" PRIu64
                      " ns (acknowledged at %" PRIu64 ", exptime %" PRId64
                      " s) and never evicted or expired; %u lost writes%s",
                      what, name, k->seq, k->set_sent_ns, k->ack_ns, k->exptime, k->nunacked,
                      k->unacked_expiring ? ", one with an exptime" : "");
    }
    (void)sent;
    k->present = false;
    k->uncertain = false;
    k->cas_known = false;
    return 0;
}

/* A VALUE of one of our keys: is it one we wrote, intact, and allowed now? */
static void check_value(struct client *c, unsigned key, uint32_t flags, const char *body,
                        uint32_t bytes, bool with_cas, uint64_t cas, uint64_t sent)
{
    struct keystate *k = &c->ks[key];
    unsigned pc, pk;
    uint32_t seq;
    char name[32], expect[64];
    key_name(name, c->id, key);
    int n = bytes < 60 ? (int)bytes : 60;
    memcpy(expect, body, (size_t)n);
    expect[n] = 0;
    if (sscanf(expect, "%u.%u.%u:", &pc, &pk, &seq) != 3 || pc != c->id || pk != key) {
        violation(c, "%s holds a value that is not ours: \"%.40s\"", name, expect);
        return;
    }
    /* the whole body must be what we wrote */
    char *want = sc_malloc(bytes + 32);
    if (want) {
        uint32_t wl = make_value(want, c->id, key, seq, bytes);
        if (wl != bytes || memcmp(want, body, bytes) != 0)
            violation(c, "%s: value %u came back damaged (%u bytes)", name, seq, bytes);
        sc_free(want);
    }
    if (flags != (seq & 0xffff))
        violation(c, "%s: value %u has flags %u, written with %u", name, seq, flags, seq & 0xffff);
    bool acked = k->present && k->seq == seq;
    if (!acked && !unacked_has(k, seq)) {
        violation(c, "%s: read value %u, but the last acknowledged write was %s%u", name, seq,
                  k->present ? "" : "a delete after ", k->seq);
        return;
    }
    if (acked && k->exptime > 0 && !k->nunacked && !k->unacked_overflow &&
        sent >= k->ack_ns + (uint64_t)k->exptime * 1000000000ull)
        violation(c, "%s: value %u read after its exptime (%" PRId64 " s) had surely passed", name,
                  seq, k->exptime);
    if (!acked) { /* a lost write landed: that is the value now, of unknown expiry */
        k->present = true;
        k->seq = seq;
        k->exptime = -1;
    }
    k->cas_known = with_cas;
    k->cas = cas;
}

/* ---- talking to the server ---- */

/* One reply line, without its "\r\n", into line (NUL-terminated). */
static int read_line(struct client *c, char *line, size_t max)
{
    struct sc_istream *in = sc_conn_input(c->conn);
    intptr_t n = 0;
    int err = sc_await(sc_with_timeout(sc_istream_read_until(in, '\n', 4096), ANSWER_TIMEOUT), &n);
    if (err == SC_ETIMEDOUT && c->r)
        violation(c, "no answer for %llu s", (unsigned long long)(ANSWER_TIMEOUT / SC_SEC(1)));
    if (err)
        return err;
    if (n == 0)
        return -ECONNRESET; /* the server closed */
    size_t len;
    const char *d = sc_istream_data(in, &len);
    size_t l = (size_t)n;
    size_t keep = l >= 2 && d[l - 2] == '\r' ? l - 2 : l - 1;
    if (keep >= max)
        keep = max - 1;
    memcpy(line, d, keep);
    line[keep] = 0;
    sc_istream_consume(in, l);
    return 0;
}

/* n bytes of a value block (and its "\r\n") into c->block. */
static int read_block(struct client *c, uint32_t n)
{
    struct sc_istream *in = sc_conn_input(c->conn);
    uint32_t have = 0, need = n + 2;
    if (need > BIG_LEN + 2)
        return -EPROTO;
    while (have < need) {
        size_t len;
        const char *d = sc_istream_data(in, &len);
        if (!len) {
            intptr_t got = 0;
            int err = sc_await(sc_with_timeout(sc_istream_read(in), ANSWER_TIMEOUT), &got);
            if (err == SC_ETIMEDOUT)
                violation(c, "a value's bytes stopped coming");
            if (err)
                return err;
            if (got == 0)
                return -ECONNRESET;
            continue;
        }
        size_t take = len < need - have ? len : need - have;
        memcpy(c->block + have, d, take);
        sc_istream_consume(in, take);
        have += (uint32_t)take;
    }
    return c->block[n] == '\r' && c->block[n + 1] == '\n' ? 0 : -EPROTO;
}

static void encode(struct client *c, const struct op *op)
{
    char line[MC_KEY_MAX + 128], name[32];
    int n = 0;
    switch (op->kind) {
    case OP_GET:
    case OP_GETS:
        key_name(name, c->id, op->key);
        n = sprintf(line, "%s %s\r\n", op->kind == OP_GETS ? "gets" : "get", name);
        break;
    case OP_MGET:
        n = sprintf(line, "get");
        for (unsigned i = 0; i < op->nm; i++) {
            key_name(name, c->id, op->mkeys[i]);
            n += sprintf(line + n, " %s", name);
        }
        n += sprintf(line + n, "\r\n");
        break;
    case OP_SET:
    case OP_CAS:
        key_name(name, c->id, op->key);
        if (op->kind == OP_SET)
            n = sprintf(line, "set %s %u %" PRId64 " %u\r\n", name, op->seq & 0xffff, op->exptime,
                        op->len);
        else
            n = sprintf(line, "cas %s %u %" PRId64 " %u %" PRIu64 "\r\n", name, op->seq & 0xffff,
                        op->exptime, op->len, op->cas);
        mc_buf_put(&c->wbuf, line, (size_t)n);
        char *v = mc_buf_room(&c->wbuf, op->len + 2);
        if (v) {
            make_value(v, c->id, op->key, op->seq, op->len);
            v[op->len] = '\r';
            v[op->len + 1] = '\n';
            c->wbuf.len += op->len + 2;
        }
        return;
    case OP_DELETE:
        key_name(name, c->id, op->key);
        n = sprintf(line, "delete %s\r\n", name);
        break;
    case OP_INCR:
        ctr_name(name, op->key);
        n = sprintf(line, "incr %s 1\r\n", name);
        break;
    case OP_GARBAGE:
        if (op->long_key) {
            n = sprintf(line, "get ");
            memset(line + n, 'z', MC_KEY_MAX + 1);
            n += MC_KEY_MAX + 1;
            n += sprintf(line + n, "\r\n");
        } else {
            n = sprintf(line, "bogus_command %u\r\n", op->seq);
        }
        break;
    }
    mc_buf_put(&c->wbuf, line, (size_t)n);
}

/* A key no write of this batch uses yet (writes to one key stay one per batch,
 * so that a cas is never built on a value an earlier request of its own
 * batch replaces). */
static unsigned free_key(struct client *c)
{
    unsigned k = (unsigned)sc_random_below(c->o.keys);
    for (unsigned i = 0; i < c->o.keys && c->busy[k % 64]; i++)
        k = (k + 1) % c->o.keys;
    return k;
}

static void choose(struct client *c, struct op *op)
{
    memset(op, 0, sizeof *op);
    unsigned x = (unsigned)sc_random_below(100);
    if (c->o.garbage && x == 0) {
        op->kind = OP_GARBAGE;
        op->long_key = sc_random_below(2);
        op->seq = ++c->next_seq;
        return;
    }
    if (c->o.counters && x < 15) {
        op->kind = OP_INCR;
        op->key = (unsigned)sc_random_below(c->o.counters);
        return;
    }
    if (x < 45) {
        op->kind = OP_GET;
        op->key = (unsigned)sc_random_below(c->o.keys);
        return;
    }
    if (x < 53) {
        op->kind = OP_MGET;
        op->nm = 2 + (unsigned)sc_random_below(MAX_MGET - 1);
        for (unsigned i = 0; i < op->nm; i++)
            op->mkeys[i] = (unsigned)sc_random_below(c->o.keys);
        return;
    }
    op->key = free_key(c);
    if (c->busy[op->key % 64]) { /* every key taken: read instead */
        op->kind = OP_GET;
        return;
    }
    if (x < 60) {
        if (!c->ks[op->key].cas_known) {
            op->kind = OP_GETS;
            return;
        }
        op->kind = OP_CAS;
        op->cas = c->ks[op->key].cas;
    } else if (x < 90) {
        op->kind = OP_SET;
    } else {
        op->kind = OP_DELETE;
        c->busy[op->key % 64] = true;
        return;
    }
    c->busy[op->key % 64] = true;
    op->seq = ++c->next_seq;
    op->len = 40 + (uint32_t)sc_random_below(200); /* at least the longest prefix (33) */
    if (c->o.big_values && sc_random_below(100) == 0) {
        op->len = BIG_LEN;
        c->r->big++;
    }
    op->exptime = sc_random_below(10) == 0 ? 1 + (int64_t)sc_random_below(3) : 0;
}

/* The answer to a get/gets/multi-get: VALUE lines in request order, END. */
static int read_values(struct client *c, const struct op *op, uint64_t sent)
{
    unsigned want[MAX_MGET];
    unsigned nwant = op->kind == OP_MGET ? op->nm : 1;
    if (op->kind == OP_MGET)
        memcpy(want, op->mkeys, sizeof want);
    else
        want[0] = op->key;
    unsigned next = 0; /* the next requested key a VALUE may be for */
    bool found[MAX_MGET] = {0};
    char line[512];
    for (;;) {
        int err = read_line(c, line, sizeof line);
        if (err)
            return err;
        if (strcmp(line, "END") == 0)
            break;
        unsigned pc, pk, flags, bytes;
        unsigned long long cas = 0;
        int f = sscanf(line, "VALUE c%u:k%u %u %u %llu", &pc, &pk, &flags, &bytes, &cas);
        if (f < 4 || pc != c->id) {
            violation(c, "unexpected answer to a get: \"%.80s\"", line);
            return -EPROTO;
        }
        if ((err = read_block(c, bytes)) != 0)
            return err;
        while (next < nwant && want[next] != pk)
            next++;
        if (next == nwant) {
            violation(c, "get: VALUE for c%u:k%u out of request order (or never asked)", pc, pk);
            return -EPROTO;
        }
        found[next++] = true;
        c->r->hits++;
        check_value(c, pk, flags, c->block, bytes, op->kind == OP_GETS, cas, sent);
    }
    uint64_t now = sc_now();
    for (unsigned i = 0; i < nwant; i++) {
        bool dup = false; /* a key asked twice answers twice: count it once */
        for (unsigned j = 0; j < i; j++)
            dup |= want[j] == want[i] && (found[j] || !found[i]);
        if (!found[i] && !dup) {
            c->r->misses++;
            check_missing(c, want[i], sent, now, "get");
        }
    }
    return 0;
}

static int read_reply(struct client *c, const struct op *op, uint64_t sent)
{
    if (op->kind == OP_GET || op->kind == OP_GETS || op->kind == OP_MGET)
        return read_values(c, op, sent);
    char line[512];
    int err = read_line(c, line, sizeof line);
    if (err)
        return err;
    uint64_t now = sc_now();
    struct keystate *k = &c->ks[op->key];
    switch (op->kind) {
    case OP_SET:
    case OP_CAS:
        if (strcmp(line, "STORED") == 0) {
            c->r->stored++;
            ack_write(k, op, sent, now);
        } else if (op->kind == OP_CAS && strcmp(line, "EXISTS") == 0) {
            if (!k->nunacked && !k->unacked_overflow)
                violation(c, "cas c%u:k%u: EXISTS, but nobody else wrote it", c->id, op->key);
            k->cas_known = false;
        } else if (op->kind == OP_CAS && strcmp(line, "NOT_FOUND") == 0) {
            check_missing(c, op->key, sent, now, "cas");
        } else if (strncmp(line, "SERVER_ERROR", 12) == 0) {
            k->uncertain = true; /* stored, or the key is gone: either */
            unacked_add(k, op->seq);
        } else {
            violation(c, "%s c%u:k%u: unexpected answer \"%.80s\"",
                      op->kind == OP_SET ? "set" : "cas", c->id, op->key, line);
        }
        return 0;
    case OP_DELETE:
        if (strcmp(line, "DELETED") == 0) {
            if (!k->present && !k->uncertain && !k->nunacked && !k->unacked_overflow &&
                k->exptime >= 0)
                violation(c, "delete c%u:k%u: DELETED, but nothing of ours was there", c->id,
                          op->key);
            k->present = false;
            k->cas_known = false;
        } else if (strcmp(line, "NOT_FOUND") == 0) {
            check_missing(c, op->key, sent, now, "delete");
        } else {
            violation(c, "delete: unexpected answer \"%.80s\"", line);
        }
        return 0;
    case OP_INCR: {
        uint64_t v;
        if (mc_parse_u64(line, strlen(line), &v)) {
            c->r->ctr_acked[op->key]++;
            struct client_result *r = c->r;
            if (r->nincrs == r->cap_incrs) {
                size_t cap = r->cap_incrs ? 2 * r->cap_incrs : 64;
                struct incr_seen *p = sc_realloc(r->incrs, cap * sizeof *p);
                if (!p)
                    return -ENOMEM;
                r->incrs = p;
                r->cap_incrs = cap;
            }
            r->incrs[r->nincrs++] = (struct incr_seen){op->key, v};
        } else if (strcmp(line, "NOT_FOUND") == 0) {
            char name[32];
            int n = ctr_name(name, op->key);
            intptr_t evicted = 1;
            sc_await(mc_evicted_since(mc_hash(name, (size_t)n), 0), &evicted);
            if (!evicted)
                violation(c, "incr %s: NOT_FOUND, but it was never evicted", name);
        } else {
            violation(c, "incr: unexpected answer \"%.80s\"", line);
        }
        return 0;
    }
    case OP_GARBAGE:
        c->r->garbage++;
        if (strcmp(line, op->long_key ? "CLIENT_ERROR bad command line format" : "ERROR") != 0)
            violation(c, "garbage: answered \"%.80s\"", line);
        return 0;
    default:
        return 0;
    }
}

/* The request got no answer (its connection broke): it may have happened. */
static void unanswered(struct client *c, const struct op *op)
{
    c->r->unanswered++;
    struct keystate *k = &c->ks[op->key];
    switch (op->kind) {
    case OP_SET:
    case OP_CAS:
        unacked_add(k, op->seq);
        k->unacked_expiring |= op->exptime != 0;
        k->cas_known = false;
        break;
    case OP_DELETE:
        k->unacked_delete = true;
        k->cas_known = false;
        break;
    case OP_INCR:
        c->r->ctr_unacked[op->key]++;
        break;
    default:
        break;
    }
}

static struct sc_inet_addr server_addr(uint16_t port)
{
    return (struct sc_inet_addr){.ip = 0x7f000001, .port = port};
}

static int connect_to(uint16_t port, struct sc_conn **out, uint64_t *failures)
{
    struct sc_inet_addr a = server_addr(port);
    for (int i = 0; i < CONNECT_TRIES; i++) {
        intptr_t v = 0;
        int err = sc_await(sc_connect(&a), &v);
        if (!err) {
            *out = (struct sc_conn *)v;
            return 0;
        }
        (*failures)++;
        sc_await(sc_sleep(SC_MS(1)), NULL);
    }
    return -ECONNREFUSED;
}

static void drop_conn(struct sc_conn **conn)
{
    if (*conn) {
        sc_await(sc_conn_close(*conn), NULL);
        *conn = NULL;
    }
}

/* One batch: encode, send, read every answer. */
static void run_batch(struct client *c, unsigned nb)
{
    c->wbuf.len = 0;
    memset(c->busy, 0, sizeof c->busy);
    for (unsigned i = 0; i < nb; i++) {
        choose(c, &c->batch[i]);
        encode(c, &c->batch[i]);
    }
    uint64_t sent = sc_now();
    struct sc_ostream *out = sc_conn_output(c->conn);
    int err =
        c->wbuf.failed ? -ENOMEM : sc_await(sc_ostream_write(out, c->wbuf.p, c->wbuf.len), NULL);
    if (!err)
        err = sc_await(sc_ostream_flush(out), NULL);
    unsigned i = 0;
    for (; !err && i < nb; i++) {
        err = read_reply(c, &c->batch[i], sent);
        if (!err) {
            uint64_t lat = sc_now() - sent;
            c->r->hist[hist_bucket(lat)]++;
        }
    }
    if (err) {
        for (unsigned j = err ? (i ? i - 1 : 0) : nb; j < nb; j++)
            unanswered(c, &c->batch[j]);
        drop_conn(&c->conn);
        c->r->reconnects++;
    }
    c->r->ops += nb;
}

static struct sc_future client_main(void *cap)
{
    const struct client_cap *cc = cap;
    struct client *c = sc_calloc(1, sizeof *c);
    struct client_result *r = sc_calloc(1, sizeof *r);
    if (!c || !r) {
        sc_free(c);
        sc_free(r);
        return sc_make_error(-ENOMEM);
    }
    c->id = cc->id;
    c->o = cc->o;
    c->r = r;
    c->ks = sc_calloc(c->o.keys, sizeof *c->ks);
    c->block = sc_malloc(BIG_LEN + 2);
    r->ctr_acked = sc_calloc(c->o.counters + 1, sizeof *r->ctr_acked);
    r->ctr_unacked = sc_calloc(c->o.counters + 1, sizeof *r->ctr_unacked);
    int err = c->ks && c->block && r->ctr_acked && r->ctr_unacked ? 0 : -ENOMEM;
    for (unsigned done = 0; !err && done < c->o.ops;) {
        if (!c->conn && connect_to(c->o.port, &c->conn, &r->connect_failures) != 0) {
            violation(c, "cannot connect to the server");
            break;
        }
        unsigned nb = 1 + (unsigned)sc_random_below(c->o.depth);
        if (nb > c->o.ops - done)
            nb = c->o.ops - done;
        run_batch(c, nb);
        done += nb;
        /* think a little, so that the clients interleave; in the simulator,
         * where waiting costs nothing, now and then long enough for the
         * exptimes (1-3 s) to pass and the sweep to run */
        uint64_t think = sc_random_below(SC_US(100));
        if (sc_is_simulated() && sc_random_below(40) == 0)
            think = SC_MS(500) + sc_random_below(SC_MS(2000));
        sc_await(sc_sleep(think), NULL);
    }
    drop_conn(&c->conn);
    mc_buf_free(&c->wbuf);
    sc_free(c->ks);
    sc_free(c->block);
    sc_free(c);
    if (err) {
        sc_free(r->ctr_acked);
        sc_free(r->ctr_unacked);
        sc_free(r);
        return sc_make_error(err);
    }
    return sc_make_ready_ptr(r); /* shard 0 frees it: the free goes home */
}

static struct sc_future client_spawn(void *cap)
{
    struct sc_thread_attr attr = {.stack_size = CLIENT_STACK};
    return sc_thread_spawn(client_main, cap, sizeof(struct client_cap), &attr);
}

/* ---- the orchestration, a fiber on shard 0 ---- */

struct demo {
    struct mc_demo_opts o;
    struct mc_demo_report *out;
    uint64_t *ctr_acked, *ctr_unacked;
    struct incr_seen *incrs;
    size_t nincrs;
    uint64_t hist[HIST_BUCKETS];
};

/* Send `req` on a fresh connection and read `lines` answer lines into
 * lines_out (each up to 64 bytes); retried over connection resets. */
static int admin(struct demo *d, const char *req, char (*lines_out)[64], unsigned lines)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        struct sc_conn *conn = NULL;
        if (connect_to(d->o.port, &conn, &d->out->connect_failures) != 0)
            return -ECONNREFUSED;
        struct client fake = {.conn = conn};
        struct sc_ostream *out = sc_conn_output(conn);
        int err = sc_await(sc_ostream_write_str(out, req), NULL);
        if (!err)
            err = sc_await(sc_ostream_flush(out), NULL);
        for (unsigned i = 0; !err && i < lines; i++)
            err = read_line(&fake, lines_out[i], 64);
        drop_conn(&conn);
        if (!err)
            return 0;
        d->out->reconnects++;
    }
    return -EIO;
}

static int setup_counters(struct demo *d)
{
    if (!d->o.counters)
        return 0;
    size_t cap = (size_t)d->o.counters * 32 + 1;
    char *req = sc_malloc(cap);
    char(*lines)[64] = sc_calloc(d->o.counters, 64);
    int err = req && lines ? 0 : -ENOMEM;
    if (!err) {
        size_t n = 0;
        for (unsigned i = 0; i < d->o.counters; i++)
            n += (size_t)sprintf(req + n, "set ctr:%u 0 0 1\r\n0\r\n", i);
        err = admin(d, req, lines, d->o.counters);
        for (unsigned i = 0; !err && i < d->o.counters; i++)
            if (strcmp(lines[i], "STORED") != 0)
                err = -EPROTO;
    }
    sc_free(req);
    sc_free(lines);
    return err;
}

static int cmp_incr(const void *a, const void *b)
{
    const struct incr_seen *x = a, *y = b;
    if (x->ctr != y->ctr)
        return x->ctr < y->ctr ? -1 : 1;
    return x->value < y->value ? -1 : x->value > y->value;
}

static void counter_violation(struct demo *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void counter_violation(struct demo *d, const char *fmt, ...)
{
    d->out->violations++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "memcached demo: VIOLATION (counters): ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int check_counters(struct demo *d)
{
    unsigned nc = d->o.counters;
    if (!nc)
        return 0;
    qsort(d->incrs, d->nincrs, sizeof *d->incrs, cmp_incr);
    for (size_t i = 1; i < d->nincrs; i++)
        if (d->incrs[i].ctr == d->incrs[i - 1].ctr && d->incrs[i].value == d->incrs[i - 1].value)
            counter_violation(d, "two incrs of ctr:%u both answered %" PRIu64, d->incrs[i].ctr,
                              d->incrs[i].value);
    for (unsigned i = 0; i < nc; i++) {
        char req[64], lines[3][64], name[32];
        int n = ctr_name(name, i);
        snprintf(req, sizeof req, "get %s\r\n", name);
        intptr_t evicted = 1;
        sc_await(mc_evicted_since(mc_hash(name, (size_t)n), 0), &evicted);
        if (evicted) {
            d->out->excused_misses++;
            continue;
        }
        int err = admin(d, req, lines, 3);
        uint64_t v = 0;
        unsigned f, b;
        char val[64];
        if (err || sscanf(lines[0], "VALUE ctr:%*u %u %u", &f, &b) != 2 ||
            sscanf(lines[1], "%63s", val) != 1 || !mc_parse_u64(val, strlen(val), &v)) {
            counter_violation(d, "%s: cannot read it back (%s)", name,
                              err ? "no answer" : lines[0]);
            continue;
        }
        if (v < d->ctr_acked[i] || v > d->ctr_acked[i] + d->ctr_unacked[i])
            counter_violation(d,
                              "%s = %" PRIu64 ", but %" PRIu64
                              " incrs were acknowledged and %" PRIu64 " unanswered",
                              name, v, d->ctr_acked[i], d->ctr_unacked[i]);
    }
    return 0;
}

static void merge(struct demo *d, struct client_result *r)
{
    struct mc_demo_report *o = d->out;
    o->ops += r->ops;
    o->violations += r->violations;
    o->excused_misses += r->excused;
    o->unanswered += r->unanswered;
    o->reconnects += r->reconnects;
    o->connect_failures += r->connect_failures;
    o->hits += r->hits;
    o->misses += r->misses;
    o->stored += r->stored;
    o->big_values += r->big;
    o->garbage += r->garbage;
    for (unsigned b = 0; b < HIST_BUCKETS; b++)
        d->hist[b] += r->hist[b];
    for (unsigned i = 0; i < d->o.counters; i++) {
        d->ctr_acked[i] += r->ctr_acked[i];
        d->ctr_unacked[i] += r->ctr_unacked[i];
    }
    if (r->nincrs) {
        struct incr_seen *p = sc_realloc(d->incrs, (d->nincrs + r->nincrs) * sizeof *p);
        if (p) {
            memcpy(p + d->nincrs, r->incrs, r->nincrs * sizeof *p);
            d->incrs = p;
            d->nincrs += r->nincrs;
        }
    }
    /* made on the client's shard: these frees go home */
    sc_free(r->incrs);
    sc_free(r->ctr_acked);
    sc_free(r->ctr_unacked);
    sc_free(r);
}

static struct sc_future shard_load(void *cap)
{
    (void)cap;
    struct mc_shard *sh = mc_local();
    uint64_t *v = sc_calloc(6, sizeof *v);
    if (!sh || !v) {
        sc_free(v);
        return sc_make_error(-ENOMEM);
    }
    v[0] = sh->store.st.ops;
    v[1] = sh->st.remote_received;
    v[2] = sh->st.remote_sent;
    v[3] = sh->store.st.curr_items;
    v[4] = sh->store.st.evictions;
    v[5] = sh->st.total_connections;
    return sc_make_ready_ptr(v);
}

static struct sc_future demo_fiber(void *cap)
{
    struct demo *d = *(struct demo **)cap;
    unsigned n = sc_shard_count();
    int err = setup_counters(d);
    if (err) {
        fprintf(stderr, "memcached demo: could not create the counters: %s\n", sc_strerror(err));
        return sc_make_error(err);
    }
    struct sc_future *fs = sc_calloc(d->o.clients, sizeof *fs);
    if (!fs)
        return sc_make_error(-ENOMEM);
    for (unsigned i = 0; i < d->o.clients; i++) {
        struct client_cap cc = {.id = i, .o = d->o};
        fs[i] = sc_smp_submit_to(i % n, client_spawn, &cc, sizeof cc);
    }
    sc_await(sc_when_all(fs, d->o.clients), NULL);
    for (unsigned i = 0; i < d->o.clients; i++) {
        intptr_t v = 0;
        int e = sc_future_get(fs[i], &v);
        if (e) {
            fprintf(stderr, "memcached demo: client %u failed: %s\n", i, sc_strerror(e));
            d->out->violations++;
        } else {
            merge(d, (struct client_result *)v);
        }
    }
    sc_free(fs);
    check_counters(d);
    for (unsigned s = 0; s < n && s < MC_DEMO_MAX_SHARDS; s++) {
        intptr_t v = 0;
        if (sc_await(sc_smp_submit_to(s, shard_load, NULL, 0), &v) == 0) {
            uint64_t *l = (uint64_t *)v;
            d->out->shard_ops[s] = l[0];
            d->out->shard_remote_in[s] = l[1];
            d->out->shard_remote_out[s] = l[2];
            d->out->shard_items[s] = l[3];
            d->out->shard_evictions[s] = l[4];
            d->out->shard_conns[s] = l[5];
            sc_free(l);
        }
    }
    d->out->p50_ns = hist_percentile(d->hist, 0.50);
    d->out->p99_ns = hist_percentile(d->hist, 0.99);
    d->out->p999_ns = hist_percentile(d->hist, 0.999);
    for (unsigned b = 0; b < HIST_BUCKETS; b++)
        if (d->hist[b])
            d->out->max_ns = hist_value(b);
    return sc_make_ready(0);
}

static struct sc_future demo_done(void *cap, intptr_t v, int err)
{
    struct demo *d = *(struct demo **)cap;
    sc_free(d->ctr_acked);
    sc_free(d->ctr_unacked);
    sc_free(d->incrs);
    sc_free(d);
    return err ? sc_make_error(err) : sc_make_ready(v);
}

struct sc_future mc_demo_run(const struct mc_demo_opts *o, struct mc_demo_report *out)
{
    memset(out, 0, sizeof *out);
    atomic_store(&violations_shown, 0);
    struct demo *d = sc_calloc(1, sizeof *d);
    if (!d)
        return sc_make_error(-ENOMEM);
    d->o = *o;
    if (d->o.depth < 1)
        d->o.depth = 1;
    if (d->o.depth > MAX_DEPTH)
        d->o.depth = MAX_DEPTH;
    if (d->o.keys < 1)
        d->o.keys = 1;
    d->out = out;
    d->ctr_acked = sc_calloc(o->counters + 1, sizeof *d->ctr_acked);
    d->ctr_unacked = sc_calloc(o->counters + 1, sizeof *d->ctr_unacked);
    if (!d->ctr_acked || !d->ctr_unacked) {
        sc_free(d->ctr_acked);
        sc_free(d->ctr_unacked);
        sc_free(d);
        return sc_make_error(-ENOMEM);
    }
    struct sc_thread_attr attr = {.stack_size = CLIENT_STACK};
    struct sc_future f = sc_thread_spawn(demo_fiber, &d, sizeof d, &attr);
    return sc_then_wrapped(f, demo_done, &d, sizeof d);
}

/* ---- the report ---- */

static void print_ns(const char *name, uint64_t ns)
{
    if (ns >= 1000000)
        printf("%s %.2f ms", name, (double)ns / 1e6);
    else
        printf("%s %.1f us", name, (double)ns / 1e3);
}

void mc_demo_print(const struct mc_demo_report *r, unsigned shards)
{
    uint64_t total = 0;
    for (unsigned s = 0; s < shards && s < MC_DEMO_MAX_SHARDS; s++)
        total += r->shard_ops[s];
    printf("\nper-shard load (commands run by each shard's store):\n");
    printf("  shard  commands   share  from-other-shards  to-other-shards  items  evictions  "
           "connections\n");
    for (unsigned s = 0; s < shards && s < MC_DEMO_MAX_SHARDS; s++)
        printf("  %5u  %8" PRIu64 "  %5.1f%%  %17" PRIu64 "  %15" PRIu64 "  %5" PRIu64 "  %9" PRIu64
               "  %11" PRIu64 "\n",
               s, r->shard_ops[s], total ? 100.0 * (double)r->shard_ops[s] / (double)total : 0.0,
               r->shard_remote_in[s], r->shard_remote_out[s], r->shard_items[s],
               r->shard_evictions[s], r->shard_conns[s]);
    printf("latency (%s time, request sent -> answer read):",
           sc_is_simulated() ? "virtual" : "real");
    print_ns(" p50", r->p50_ns);
    print_ns("  p99", r->p99_ns);
    print_ns("  p99.9", r->p999_ns);
    print_ns("  max", r->max_ns);
    printf("\n");
    printf("requests: %" PRIu64 " (%" PRIu64 " hits, %" PRIu64 " misses of which %" PRIu64
           " excused by eviction or expiry, %" PRIu64 " stored, %" PRIu64 " large values, %" PRIu64
           " garbage lines)\n",
           r->ops, r->hits, r->misses, r->excused_misses, r->stored, r->big_values, r->garbage);
    printf("network: %" PRIu64 " requests unanswered (connection reset), %" PRIu64
           " reconnects, %" PRIu64 " failed connects\n",
           r->unanswered, r->reconnects, r->connect_failures);
    if (r->violations)
        printf("verdict: %" PRIu64 " VIOLATIONS (see above)\n", r->violations);
    else
        printf("verdict: every acknowledged write read back intact until evicted or expired; "
               "0 violations\n");
}
