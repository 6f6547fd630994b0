/*
 * simload.c — see simload.h. Each client is a fiber, so that a client's
 * script reads top to bottom: connect, send, read, check.
 */
#include "apps/httpd/simload.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/httpd/routes.h"

/* ---- one client's connection and buffers --------------------------------------- */

struct client {
    const struct simload_cfg *cfg;
    struct simload_result *r; /* this shard's sums */
    unsigned id;
    uint64_t t0; /* when it started to connect */
    struct sc_conn *c;
    char *in; /* replies read and not yet checked */
    size_t in_len, in_cap;
    bool eof;
    char *out; /* the batch being built */
    size_t out_len, out_cap;
};

/* The requests of a batch, in order, and what each must get back. */
enum kind {
    K_HELLO,
    K_HEAD,
    K_CHUNKED,
    K_ECHO,
    K_ECHO_CHUNKED,
    K_NOT_FOUND,
    K_HTTP10_KA, /* HTTP/1.0 with keep-alive */
    K_NKINDS_OPEN,
    K_HTTP10 = K_NKINDS_OPEN, /* HTTP/1.0: the server closes after it */
    K_CLOSE,                  /* Connection: close */
};

struct expect {
    enum kind kind;
    int status;
    bool head;
    bool close;                /* the server closes after this reply */
    size_t body_off, body_len; /* the expected body, in the client's body store */
    long chunks, chunk_size;
};

#define MAX_BATCH 6

static uint64_t rnd(uint64_t n)
{
    return sc_random_below(n);
}

static void violation(struct client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void violation(struct client *cl, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "simload: VIOLATION (client %u on shard %u, seed %" PRIu64 "): %s\n", cl->id,
            sc_this_shard(), sc_seed(), msg);
    cl->r->violations++;
}

/* A reply that never came, a connection that broke: a bug, unless the run
 * breaks connections on purpose (then it is counted, not judged). */
static void lost(struct client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lost(struct client *cl, const char *fmt, ...)
{
    if (cl->cfg->lossy) {
        cl->r->conn_errors++;
        return;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    violation(cl, "%s", msg);
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = c;
    return 0;
}

static int emit(struct client *cl, const void *p, size_t n)
{
    if (grow(&cl->out, &cl->out_cap, cl->out_len + n))
        return -ENOMEM;
    memcpy(cl->out + cl->out_len, p, n);
    cl->out_len += n;
    return 0;
}

static int emitf(struct client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int emitf(struct client *cl, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return emit(cl, tmp, (size_t)n);
}

/* Send the batch in pieces cut at random places, some after a pause. */
static int send_batch(struct client *cl)
{
    struct sc_ostream *os = sc_conn_output(cl->c);
    size_t sent = 0;
    while (sent < cl->out_len) {
        size_t left = cl->out_len - sent;
        size_t piece = rnd(2) ? left : 1 + rnd(left);
        int rc = sc_await(sc_ostream_write(os, cl->out + sent, piece), NULL);
        if (!rc)
            rc = sc_await(sc_ostream_flush(os), NULL);
        if (rc)
            return rc;
        sent += piece;
        if (sent < cl->out_len && rnd(3) == 0)
            sc_await(sc_sleep(SC_US(rnd(300))), NULL);
    }
    cl->out_len = 0;
    return 0;
}

/* Read more of the server's bytes into cl->in. Returns 0, or an error; sets eof. */
static int read_some(struct client *cl)
{
    struct sc_istream *is = sc_conn_input(cl->c);
    intptr_t n;
    int rc = sc_await(sc_istream_read(is), &n);
    if (rc)
        return rc;
    if (n == 0) {
        cl->eof = true;
        return 0;
    }
    size_t len;
    const char *d = sc_istream_data(is, &len);
    if (grow(&cl->in, &cl->in_cap, cl->in_len + len))
        return -ENOMEM;
    memcpy(cl->in + cl->in_len, d, len);
    cl->in_len += len;
    sc_istream_consume(is, len);
    return 0;
}

/* The next reply, parsed into *resp (its bytes stay at the front of cl->in
 * until drop_reply()). Returns 1, 0 at end of stream with nothing left, or
 * an error. */
static int next_reply(struct client *cl, bool head, struct http_response *resp)
{
    for (;;) {
        if (cl->in_len || cl->eof) {
            long n = http_parse_response(cl->in, cl->in_len, head, cl->eof, resp);
            if (n > 0)
                return 1;
            if (n < 0)
                return -EPROTO;
            if (cl->eof)
                return cl->in_len ? -EPROTO : 0;
        }
        int rc = read_some(cl);
        if (rc)
            return rc;
    }
}

static void drop_reply(struct client *cl, const struct http_response *resp)
{
    cl->in_len -= resp->total_len;
    memmove(cl->in, cl->in + resp->total_len, cl->in_len);
}

static void count_status(struct client *cl, int status)
{
    cl->r->replies++;
    if (status >= 100 && status < 600)
        cl->r->status[status / 100]++;
}

/* ---- building requests -------------------------------------------------------- */

static void random_bytes(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('!' + rnd(94)); /* printable, so that a failure prints readably */
}

/* Body store: the bodies of the batch's echo requests, to compare with. */
struct store {
    char *p;
    size_t len, cap;
};

static int add_request(struct client *cl, struct store *st, enum kind k, struct expect *e)
{
    *e = (struct expect){.kind = k, .status = 200};
    switch (k) {
    case K_HELLO:
        e->body_len = sizeof HTTPD_HELLO - 1;
        return emitf(cl, "GET / HTTP/1.1\r\nHost: sim\r\nUser-Agent: simload/%u\r\n\r\n", cl->id);
    case K_HEAD:
        e->head = true;
        e->body_len = sizeof HTTPD_HELLO - 1;
        return emitf(cl, "HEAD / HTTP/1.1\r\nhost: sim\r\n\r\n");
    case K_CHUNKED:
        e->chunks = (long)rnd(5);
        e->chunk_size = 1 + (long)rnd(300);
        return emitf(cl, "GET /chunked?n=%ld&size=%ld HTTP/1.1\r\nHost: sim\r\n\r\n", e->chunks,
                     e->chunk_size);
    case K_NOT_FOUND:
        e->status = 404;
        return emitf(cl, "GET /nope/%u HTTP/1.1\r\nHost: sim\r\n\r\n", cl->id);
    case K_HTTP10_KA:
        e->body_len = sizeof HTTPD_HELLO - 1;
        return emitf(cl, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    case K_HTTP10:
        e->close = true;
        e->body_len = sizeof HTTPD_HELLO - 1;
        return emitf(cl, "GET / HTTP/1.0\r\n\r\n");
    case K_CLOSE:
        e->close = true;
        e->body_len = sizeof HTTPD_HELLO - 1;
        return emitf(cl, "GET /?bye HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n");
    case K_ECHO:
    case K_ECHO_CHUNKED: {
        size_t n = rnd(4) ? rnd(200) : rnd(20000);
        if (grow(&st->p, &st->cap, st->len + n + 1))
            return -ENOMEM;
        e->body_off = st->len;
        e->body_len = n;
        random_bytes(st->p + st->len, n);
        const char *body = st->p + st->len;
        st->len += n;
        if (k == K_ECHO) {
            if (emitf(cl, "POST /echo HTTP/1.1\r\nHost: sim\r\nContent-Length: %zu\r\n\r\n", n))
                return -ENOMEM;
            return emit(cl, body, n);
        }
        if (emitf(cl, "PUT /echo HTTP/1.1\r\nHost: sim\r\nTransfer-Encoding: chunked\r\n\r\n"))
            return -ENOMEM;
        for (size_t off = 0; off < n;) {
            size_t c = 1 + rnd(n - off);
            if (emitf(cl, rnd(4) ? "%zx\r\n" : "%zX;ext=1\r\n", c) || emit(cl, body + off, c) ||
                emit(cl, "\r\n", 2))
                return -ENOMEM;
            off += c;
        }
        return emitf(cl, "0\r\n%s\r\n", rnd(3) ? "" : "X-Trailer: yes\r\n");
    }
    default:
        return -EINVAL;
    }
}

/* Check one reply against what its request expects. */
static void check_reply(struct client *cl, const struct store *st, const struct expect *e,
                        const struct http_response *resp)
{
    count_status(cl, resp->status);
    if (cl->cfg->lossy && resp->status >= 500 && e->status < 500) {
        cl->r->conn_errors++; /* out of memory on the server, on purpose */
        return;
    }
    if (resp->status != e->status) {
        violation(cl, "request kind %d: status %d, expected %d", e->kind, resp->status, e->status);
        return;
    }
    if (e->close == resp->keep_alive)
        violation(cl, "request kind %d: keep-alive %d, expected %d", e->kind, resp->keep_alive,
                  !e->close);
    if (e->status != 200)
        return;
    if (e->kind == K_CHUNKED) {
        if (!resp->chunked)
            violation(cl, "/chunked: reply not chunked");
        if (resp->body_len != (uint64_t)(e->chunks * e->chunk_size)) {
            violation(cl, "/chunked: %" PRIu64 " bytes, expected %ld", resp->body_len,
                      e->chunks * e->chunk_size);
            return;
        }
        /* walk the raw chunks: whatever sizes the server chose, byte i of
         * the body belongs to chunk i / chunk_size of ours */
        const char *b = resp->body.p;
        uint64_t pos = 0;
        for (;;) {
            unsigned long size = strtoul(b, NULL, 16);
            b = strchr(b, '\n') + 1;
            if (!size)
                break;
            for (unsigned long j = 0; j < size; j++, pos++)
                if (b[j] != 'a' + (char)((pos / (uint64_t)e->chunk_size) % 26)) {
                    violation(cl, "/chunked: wrong byte at %" PRIu64, pos);
                    return;
                }
            b += size + 2;
        }
        return;
    }
    if (e->head) {
        const struct http_str *cl_h = http_response_header(resp, "Content-Length");
        char want[24];
        snprintf(want, sizeof want, "%zu", e->body_len);
        if (!cl_h || !http_str_eq(*cl_h, want) || resp->body_len != 0)
            violation(cl, "HEAD: wrong length or a body");
        return;
    }
    const char *want =
        e->kind == K_ECHO || e->kind == K_ECHO_CHUNKED ? st->p + e->body_off : HTTPD_HELLO;
    if (resp->chunked || resp->body_len != e->body_len ||
        memcmp(resp->body.p, want, e->body_len) != 0)
        violation(cl, "request kind %d: body of %" PRIu64 " bytes differs (expected %zu)", e->kind,
                  resp->body_len, e->body_len);
}

/* The end of the connection must come now: nothing more, then EOF. */
static void expect_eof(struct client *cl, const char *after)
{
    while (!cl->eof && cl->in_len == 0)
        if (read_some(cl) != 0)
            return; /* a reset after our unread bytes: the kernel's way to close */
    if (cl->in_len)
        lost(cl, "%zu bytes after %s, expected the end", cl->in_len, after);
}

/* ---- the scripts ------------------------------------------------------------------- */

/* Well-formed requests, pipelined in batches. */
static void script_normal(struct client *cl)
{
    struct store st = {0};
    struct expect ex[MAX_BATCH];
    unsigned batches = 1 + (unsigned)rnd(cl->cfg->batches);
    for (unsigned b = 0; b < batches; b++) {
        bool last = b + 1 == batches;
        unsigned n = 1 + (unsigned)rnd(MAX_BATCH - 1);
        st.len = 0;
        for (unsigned i = 0; i < n; i++) {
            enum kind k = (enum kind)rnd(K_NKINDS_OPEN);
            if (last && i + 1 == n && rnd(3) == 0)
                k = rnd(2) ? K_HTTP10 : K_CLOSE;
            if (add_request(cl, &st, k, &ex[i])) {
                lost(cl, "out of memory building a request");
                goto out;
            }
        }
        int rc = send_batch(cl);
        if (rc) {
            lost(cl, "sending batch %u: %s", b, sc_strerror(rc));
            goto out;
        }
        cl->r->requests += n;
        for (unsigned i = 0; i < n; i++) {
            struct http_response resp;
            rc = next_reply(cl, ex[i].head, &resp);
            if (rc <= 0) {
                lost(cl, "no reply to request %u of batch %u (%s)", i, b,
                     rc ? sc_strerror(rc) : "end of stream");
                goto out;
            }
            check_reply(cl, &st, &ex[i], &resp);
            drop_reply(cl, &resp);
            if (ex[i].close) {
                expect_eof(cl, "Connection: close");
                goto out;
            }
        }
        if (rnd(4) == 0)
            sc_await(sc_sleep(SC_US(rnd(500))), NULL);
    }
    /* we hang up: half-close, and the server closes its side */
    sc_await(sc_conn_shutdown_output(cl->c), NULL);
    expect_eof(cl, "our half-close");
out:
    free(st.p);
}

/* One request with "Expect: 100-continue": the body goes only after the 100. */
static void script_continue(struct client *cl)
{
    size_t n = 1 + rnd(3000);
    char *body = malloc(n);
    if (!body)
        return;
    random_bytes(body, n);
    emitf(cl,
          "POST /echo HTTP/1.1\r\nHost: sim\r\nExpect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
          n);
    struct http_response resp;
    int rc = send_batch(cl);
    if (rc) {
        lost(cl, "sending a head: %s", sc_strerror(rc));
        goto out;
    }
    cl->r->requests++;
    rc = next_reply(cl, false, &resp);
    if (rc <= 0) {
        lost(cl, "no 100 Continue (%s)", rc ? sc_strerror(rc) : "end of stream");
        goto out;
    }
    if (resp.status != 100) {
        if (cl->cfg->lossy && resp.status >= 500)
            cl->r->conn_errors++; /* out of memory on the server, on purpose */
        else
            violation(cl, "status %d, expected 100 Continue", resp.status);
        goto out;
    }
    count_status(cl, 100);
    drop_reply(cl, &resp);
    emit(cl, body, n);
    emitf(cl, "GET / HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n");
    if ((rc = send_batch(cl)) != 0) {
        lost(cl, "sending a body: %s", sc_strerror(rc));
        goto out;
    }
    cl->r->requests++;
    if (next_reply(cl, false, &resp) <= 0) {
        lost(cl, "no reply after the body");
        goto out;
    }
    count_status(cl, resp.status);
    if (cl->cfg->lossy && resp.status >= 500)
        cl->r->conn_errors++;
    else if (resp.status != 200 || resp.body_len != n || memcmp(resp.body.p, body, n) != 0)
        violation(cl, "100-continue echo: status %d, %" PRIu64 " bytes", resp.status,
                  resp.body_len);
    drop_reply(cl, &resp);
    struct store st = {0};
    struct expect e = {
        .kind = K_CLOSE, .status = 200, .close = true, .body_len = sizeof HTTPD_HELLO - 1};
    if (next_reply(cl, false, &resp) <= 0) {
        lost(cl, "no reply to the closing request");
        goto out;
    }
    check_reply(cl, &st, &e, &resp);
    drop_reply(cl, &resp);
    expect_eof(cl, "Connection: close");
out:
    free(body);
}

/* One malformed request: its status, then the end of the connection. */
static void script_bad(struct client *cl)
{
    int want;
    switch (rnd(9)) {
    case 0: { /* garbage: a TLS client hello's first bytes */
        static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
        emit(cl, tls, sizeof tls - 1);
        want = 400;
        break;
    }
    case 1: { /* a request line over 8 KiB */
        emitf(cl, "GET /");
        for (int i = 0; i < 90; i++)
            emitf(cl, "%0100d", i);
        emitf(cl, " HTTP/1.1\r\nHost: sim\r\n\r\n");
        want = 414;
        break;
    }
    case 2: /* too many header fields */
        emitf(cl, "GET / HTTP/1.1\r\nHost: sim\r\n");
        for (int i = 0; i < 120; i++)
            emitf(cl, "X-H%d: %d\r\n", i, i);
        emitf(cl, "\r\n");
        want = 431;
        break;
    case 3: /* a body over 1 MiB (we send its head only) */
        emitf(cl, "POST /echo HTTP/1.1\r\nHost: sim\r\nContent-Length: 2000000\r\n\r\n");
        want = 413;
        break;
    case 4:
        emitf(cl, "POST /echo HTTP/1.1\r\nHost: sim\r\nTransfer-Encoding: gzip\r\n\r\n");
        want = 501;
        break;
    case 5:
        emitf(cl, "GET / HTTP/2.0\r\nHost: sim\r\n\r\n");
        want = 505;
        break;
    case 6: /* a folded header line */
        emitf(cl, "GET / HTTP/1.1\r\nHost: sim\r\nX-A: 1\r\n  2\r\n\r\n");
        want = 400;
        break;
    case 7:
        emitf(cl, "GET / HTTP/1.1\r\nHost: sim\r\nExpect: coffee\r\n\r\n");
        want = 417;
        break;
    default: /* HTTP/1.1 without Host */
        emitf(cl, "GET / HTTP/1.1\r\n\r\n");
        want = 400;
        break;
    }
    int rc = send_batch(cl);
    if (rc) {
        lost(cl, "sending a malformed request: %s", sc_strerror(rc));
        return;
    }
    cl->r->bad_sent++;
    struct http_response resp;
    rc = next_reply(cl, false, &resp);
    if (rc <= 0) {
        lost(cl, "no reply to a malformed request (want %d)", want);
        return;
    }
    count_status(cl, resp.status);
    if (resp.status != want || resp.keep_alive)
        violation(cl, "malformed request: status %d (keep-alive %d), expected %d and close",
                  resp.status, resp.keep_alive, want);
    drop_reply(cl, &resp);
    expect_eof(cl, "an error reply");
}

/* Half a head, then silence longer than the header timeout: the server closes. */
static void script_slow(struct client *cl)
{
    emitf(cl, "GET / HTTP/1.1\r\nHost: sim\r\nX-Slow:");
    int rc = send_batch(cl);
    if (rc) {
        lost(cl, "sending half a head: %s", sc_strerror(rc));
        return;
    }
    cl->r->slow++;
    expect_eof(cl, "the header timeout");
    /* the server's clock for us starts when it accepted, after we connected */
    if (!cl->cfg->lossy && sc_now() - cl->t0 < cl->cfg->header_timeout_ns)
        violation(cl, "closed after %" PRIu64 " ns, before the header timeout", sc_now() - cl->t0);
}

/* Half a request, then hang up. */
static void script_vanish(struct client *cl)
{
    emitf(cl, "POST /echo HTTP/1.1\r\nHost: sim\r\nContent-Length: 100\r\n\r\n0123456789");
    int rc = send_batch(cl);
    if (rc)
        lost(cl, "sending half a request: %s", sc_strerror(rc));
    else
        cl->r->vanished++;
}

struct client_cap {
    const struct simload_cfg *cfg;
    struct simload_result *r;
    unsigned id;
};

static struct sc_future client_fiber(void *cap)
{
    const struct client_cap *cc = cap;
    struct client cl = {.cfg = cc->cfg, .r = cc->r, .id = cc->id, .t0 = sc_now()};
    intptr_t v;
    int rc = sc_await(sc_connect(&cc->cfg->server), &v);
    if (rc) {
        lost(&cl, "connect: %s", sc_strerror(rc));
        return sc_make_ready(0);
    }
    cl.c = (struct sc_conn *)v;
    cc->r->connects++;
    unsigned roll = (unsigned)rnd(100);
    if (cc->cfg->faults && roll < 10)
        script_bad(&cl);
    else if (cc->cfg->faults && roll < 14)
        script_slow(&cl);
    else if (cc->cfg->faults && roll < 17)
        script_vanish(&cl);
    else if (roll < 27)
        script_continue(&cl);
    else
        script_normal(&cl);
    sc_await(sc_conn_close(cl.c), NULL);
    free(cl.in);
    free(cl.out);
    return sc_make_ready(0);
}

/* ---- spreading the clients over the shards ------------------------------------- */

struct shard_cap {
    struct simload_cfg cfg;
};

struct spawn_cap {
    const struct simload_cfg *cfg;
    struct simload_result *r;
    unsigned first;
};

static struct sc_future spawn_client(void *cap, size_t i)
{
    const struct spawn_cap *s = cap;
    struct client_cap cc = {s->cfg, s->r, s->first + (unsigned)i * sc_shard_count()};
    struct sc_thread_attr attr = {.stack_size = 64 * 1024};
    return SC_THREAD_SPAWN(client_fiber, cc, &attr);
}

struct shard_run {
    struct simload_cfg cfg;
    struct simload_result *r;
};

static struct sc_future shard_done(void *cap, intptr_t v)
{
    (void)v;
    struct shard_run *sr = *(struct shard_run **)cap;
    struct simload_result *r = sr->r;
    free(sr);
    return sc_make_ready_ptr(r);
}

static struct sc_future shard_clients(void *cap)
{
    const struct shard_cap *sc = cap;
    unsigned n = sc_shard_count(), me = sc_this_shard();
    unsigned count = sc->cfg.conns / n + (me < sc->cfg.conns % n);
    /* the run's state lives here until every client is done */
    struct shard_run *sr = malloc(sizeof *sr);
    struct simload_result *r = calloc(1, sizeof *r);
    if (!sr || !r) {
        free(sr);
        free(r);
        return sc_make_error(-ENOMEM);
    }
    sr->cfg = sc->cfg;
    sr->r = r;
    struct spawn_cap s = {&sr->cfg, r, me};
    struct sc_future f = sc_parallel_for_each(count, spawn_client, &s, sizeof s);
    return SC_THEN(f, shard_done, sr);
}

static intptr_t add_results(intptr_t acc, intptr_t v)
{
    struct simload_result *a = (struct simload_result *)acc, *b = (struct simload_result *)v;
    uint64_t *x = (uint64_t *)a;
    const uint64_t *y = (const uint64_t *)b; /* the struct is all uint64_t */
    for (size_t i = 0; i < sizeof *a / sizeof(uint64_t); i++)
        x[i] += y[i];
    free(b);
    return acc;
}

static struct sc_future run_done(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(0);
}

struct sc_future simload_run(const struct simload_cfg *cfg, struct simload_result *res)
{
    memset(res, 0, sizeof *res);
    res->lossy = cfg->lossy;
    struct shard_cap sc = {*cfg};
    struct sc_future f =
        sc_smp_map_reduce(shard_clients, add_results, (intptr_t)res, &sc, sizeof sc);
    return sc_then(f, run_done, NULL, 0);
}

/* ---- after the run ---------------------------------------------------------------- */

static int mismatch(const char *what, uint64_t server, uint64_t clients)
{
    if (server == clients)
        return 0;
    fprintf(stderr,
            "simload: MISMATCH (seed %" PRIu64 "): %s: server %" PRIu64 ", clients %" PRIu64 "\n",
            sc_seed(), what, server, clients);
    return 1;
}

int simload_check(const struct simload_result *res, const struct httpd_stats *st)
{
    int bad = res->violations ? 1 : 0;
    if (res->violations)
        fprintf(stderr, "simload: %" PRIu64 " wrong replies (seed %" PRIu64 ")\n", res->violations,
                sc_seed());
    if (res->lossy)
        return bad; /* connections broke on purpose: counts cannot match */
    bad += mismatch("connections", st->accepted, res->connects);
    bad += mismatch("open connections at the end", st->open, 0);
    bad += mismatch("complete requests", st->requests, res->requests);
    bad += mismatch("refused requests", st->bad_requests, res->bad_sent);
    bad += mismatch("header timeouts", st->timeouts, res->slow);
    for (int k = 1; k <= 5; k++) {
        char what[32];
        snprintf(what, sizeof what, "%dxx replies", k);
        bad += mismatch(what, st->status[k], res->status[k]);
    }
    return bad;
}

struct settle {
    struct httpd_server *srv;
    const struct simload_result *res;
    struct httpd_stats *out;
    uint64_t deadline;
};

static struct sc_future settle_check(void *cap, intptr_t v, int err)
{
    const struct settle *s = cap;
    if (err) { /* out of memory for the counters: ask again a little later */
        if (sc_now() >= s->deadline)
            return sc_make_error(err);
        return sc_then(sc_sleep(SC_MS(1)), run_done, NULL, 0);
    }
    struct httpd_stats *all = (struct httpd_stats *)v;
    *s->out = httpd_stats_sum(all, sc_shard_count());
    free(all);
    if (s->out->open == 0 && (s->res->lossy || s->out->accepted >= s->res->connects))
        return sc_make_ready(SC_STOP);
    if (sc_now() >= s->deadline)
        return sc_make_error(SC_ETIMEDOUT);
    return sc_then(sc_sleep(SC_MS(1)), run_done, NULL, 0);
}

static struct sc_future settle_step(void *cap)
{
    const struct settle *s = cap;
    return sc_then_wrapped(httpd_stats_gather(s->srv), settle_check, s, sizeof *s);
}

struct sc_future simload_settle(struct httpd_server *srv, const struct simload_result *res,
                                uint64_t max_wait_ns, struct httpd_stats *out)
{
    struct settle s = {srv, res, out, sc_now() + max_wait_ns};
    return sc_repeat(settle_step, &s, sizeof s);
}
