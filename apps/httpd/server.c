/*
 * server.c — see server.h. Read in this order: the shard's instance and its
 * accept loop, one connection's loop (conn_step and what it calls), the
 * timer that guards every wait, closing, replies, then start/stop/stats.
 *
 * One connection is one sc_repeat loop. Each turn of the loop does one of:
 *
 *   - serve a complete request found in the input (the handler writes its
 *     reply into the output stream: usually a copy, no system call);
 *   - flush the replies written so far and wait for more input, when the
 *     input holds no complete request: this is where pipelined requests
 *     share one flush;
 *   - refuse a request the parser rejected, and stop.
 *
 * The input is parsed in place, in the connection's input stream. A request
 * that does not arrive whole in one read is gathered in a buffer of the
 * connection's own (acc), since the stream's buffer has a fixed size and the
 * parser needs the request in one piece; the stream is empty while acc
 * holds bytes, so acc is always the older input.
 *
 * One timer per connection guards every wait (a read, a flush, the
 * lingering close): a request's head must arrive within the header timeout
 * counted from when the server started waiting for it (so a client that
 * trickles a byte every 100 ms gets no more time than one that sends
 * nothing), and so must its body once the head is in. When the deadline
 * passes, the timer closes the connection, which fails the pending read or
 * write, which ends the loop. The timer is armed lazily: a later deadline
 * only moves a field, and the timer re-arms itself when it fires early.
 */
#include "apps/httpd/server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the shard's instance ------------------------------------------------ */

struct hconn;

struct hshard {
    struct httpd_server *srv;
    struct sc_server_socket *ss;
    struct sc_gate gate; /* the accept loop and every connection are inside */
    struct hconn *conns; /* open connections (for stop) */
    struct httpd_stats st;
    struct http_date_cache date;
    bool stopping;
    bool accepting;
};

struct httpd_reply {
    struct hconn *h;
    int status;
    unsigned version;
    bool head_only; /* HEAD (or a status with no body): body bytes are dropped */
    bool started, ended;
    bool close;        /* "Connection: close", and close after */
    bool chunked;      /* chunk framing on the wire */
    int64_t length;    /* declared length, HTTP_LEN_CHUNKED, or HTTP_LEN_NONE (until close) */
    uint64_t written;  /* body bytes so far */
    const char *ctype; /* Content-Type, until the head is written */
    size_t extra_len;
    char extra[512];
    char scratch[24]; /* a chunk header or trailer, alive until its write resolves */
};

struct hconn {
    struct hshard *sh;
    struct sc_conn *c;
    struct sc_istream *in;
    struct sc_ostream *out;
    struct hconn *prev, *next;
    struct http_parser p;
    struct httpd_reply rep;
    char *acc; /* a request gathered over several reads (see the file comment) */
    size_t acc_len, acc_cap;
    size_t cur_len;     /* bytes of the request being served */
    char *body;         /* a chunked request's decoded body */
    bool in_request;    /* waiting for a request whose deadline is set */
    bool head_seen;     /* the deadline was reset for the body */
    bool continue_sent; /* "100 Continue" went out for this request */
    bool eof;           /* the client closed its side */
    bool closing;       /* sc_conn_close() was called (timer or stop): close_f holds it */
    bool waiting;       /* a read or write is outstanding */
    bool reading;       /* ... and it is a read */
    struct sc_future close_f;
    struct sc_timer timer;
    uint64_t timer_at; /* when the timer is armed for (0: not armed) */
    uint64_t deadline; /* when the current wait gives up */
    uint64_t request_deadline;
};

/* Room a request may take in acc: the head, a body, and chunked framing. */
static size_t acc_limit(const struct hconn *h)
{
    const struct http_limits *l = &h->p.lim;
    return l->request_line + l->header_block + 2 * (size_t)l->body + 65536;
}

int64_t httpd_unix_time(void)
{
    /* The simulator's wall clock starts at 2026-01-01 00:00:00 UTC: the
     * real one is a seam we may not read there. */
    if (sc_is_simulated())
        return 1767225600 + (int64_t)(sc_now() / 1000000000u);
    return (int64_t)time(NULL);
}

/* ---- the timer ---------------------------------------------------------------- */

static void conn_abort(struct hconn *h)
{
    if (h->closing)
        return;
    h->closing = true;
    h->close_f = sc_conn_close(h->c);
}

static void on_timer(void *arg)
{
    struct hconn *h = arg;
    h->timer_at = 0;
    if (!h->waiting || h->closing)
        return;
    if (sc_now() < h->deadline) {
        if (sc_timer_arm(&h->timer, h->deadline) == 0)
            h->timer_at = h->deadline;
        return;
    }
    h->sh->st.timeouts++;
    conn_abort(h);
}

/* A wait begins that must end by @p deadline. */
static void wait_begin(struct hconn *h, uint64_t deadline)
{
    h->waiting = true;
    h->deadline = deadline;
    if (h->timer_at && h->timer_at <= deadline)
        return; /* fires earlier and re-arms itself */
    if (h->timer_at)
        sc_timer_cancel(&h->timer);
    if (sc_timer_arm(&h->timer, deadline) == 0)
        h->timer_at = deadline;
    else
        h->timer_at = 0; /* no memory for the heap: this wait goes unguarded */
}

static uint64_t timeout_ns(const struct hconn *h)
{
    return h->sh->srv->cfg.header_timeout_ns;
}

/* ---- input ---------------------------------------------------------------------- */

static const char *input(struct hconn *h, size_t *len)
{
    if (h->acc_len) {
        *len = h->acc_len;
        return h->acc;
    }
    return sc_istream_data(h->in, len);
}

/* Move what the input stream holds to the end of acc. */
static int gather(struct hconn *h)
{
    size_t n;
    const char *d = sc_istream_data(h->in, &n);
    if (!n)
        return 0;
    if (h->acc_len + n > h->acc_cap) {
        size_t cap = h->acc_cap ? h->acc_cap : 4096;
        while (cap < h->acc_len + n)
            cap *= 2;
        if (cap > acc_limit(h)) {
            if (h->acc_len + n > acc_limit(h))
                return -413;
            cap = acc_limit(h);
        }
        char *a = realloc(h->acc, cap);
        if (!a)
            return -503;
        h->acc = a;
        h->acc_cap = cap;
    }
    memcpy(h->acc + h->acc_len, d, n);
    h->acc_len += n;
    sc_istream_consume(h->in, n);
    return 0;
}

/* Drop the first n bytes of the input (a request that was served). */
static void consume(struct hconn *h, size_t n)
{
    if (h->acc_len) {
        h->acc_len -= n;
        memmove(h->acc, h->acc + n, h->acc_len);
        if (!h->acc_len && h->acc_cap > 16384) {
            free(h->acc);
            h->acc = NULL;
            h->acc_cap = 0;
        }
    } else {
        sc_istream_consume(h->in, n);
    }
}

/* ---- replies -------------------------------------------------------------------- */

static void reply_reset(struct hconn *h, const struct http_request *req)
{
    struct httpd_reply *r = &h->rep;
    r->h = h;
    r->status = 0;
    r->version = req ? req->version : 11;
    r->head_only = req && req->method_id == HTTP_HEAD;
    r->started = r->ended = false;
    r->close = !req || !req->keep_alive || h->sh->stopping;
    r->chunked = false;
    r->length = -1;
    r->written = 0;
    r->ctype = NULL;
    r->extra_len = 0;
    r->extra[0] = 0;
}

int httpd_reply_header(struct httpd_reply *rep, const char *name, const char *value)
{
    if (rep->started)
        return -EALREADY;
    size_t n = strlen(name), v = strlen(value);
    if (rep->extra_len + n + v + 5 > sizeof rep->extra)
        return -ENOSPC;
    char *e = rep->extra + rep->extra_len;
    memcpy(e, name, n);
    memcpy(e + n, ": ", 2);
    memcpy(e + n + 2, value, v);
    memcpy(e + n + 2 + v, "\r\n", 3);
    rep->extra_len += n + v + 4;
    return 0;
}

void httpd_reply_close_after(struct httpd_reply *rep)
{
    rep->close = true;
}

/* Format the head into buf; returns its length (or more than cap). */
static size_t reply_head(struct httpd_reply *r, char *buf, size_t cap)
{
    struct hshard *sh = r->h->sh;
    struct http_head hd = {
        .status = r->status,
        .version = r->version,
        .date = http_date(&sh->date, httpd_unix_time()),
        .server = sh->srv->cfg.server_name,
        .content_type = r->ctype,
        .content_length = r->length,
        .close = r->close,
        .extra = r->extra_len ? r->extra : NULL,
    };
    return http_format_head(buf, cap, &hd);
}

static void reply_begin(struct httpd_reply *r, int status, const char *ctype, int64_t length)
{
    r->started = true;
    r->status = status;
    r->ctype = ctype;
    if (status < 200 || status == 204 || status == 304)
        r->head_only = true;
    if (length == HTTP_LEN_CHUNKED) {
        if (r->version >= 11) {
            r->chunked = true;
            r->length = HTTP_LEN_CHUNKED;
        } else {
            r->close = true; /* a 1.0 client reads until the connection closes */
            r->length = HTTP_LEN_NONE;
        }
    } else {
        r->length = length;
    }
    r->h->sh->st.status[status / 100 % 6]++;
}

/* Write @p len bytes of @p p after @p f (a write that must resolve first). */
struct wr {
    struct sc_ostream *out;
    const void *p;
    size_t len;
};

static struct sc_future write_next(void *cap, intptr_t v)
{
    (void)v;
    const struct wr *w = cap;
    return sc_ostream_write(w->out, w->p, w->len);
}

static struct sc_future write_after(struct sc_future f, struct sc_ostream *out, const void *p,
                                    size_t len)
{
    struct wr w = {out, p, len};
    if (sc_future_available(f) && !sc_future_failed(f)) {
        sc_future_ignore(f);
        return write_next(&w, 0);
    }
    return SC_THEN(f, write_next, w);
}

/* Write the head (with up to @p len bytes of @p body behind it, copied). */
static struct sc_future write_head(struct httpd_reply *r, const void *body, size_t len)
{
    char buf[2048];
    size_t n = reply_head(r, buf, sizeof buf);
    struct sc_ostream *out = r->h->out;
    if (n + len <= sizeof buf) {
        if (len)
            memcpy(buf + n, body, len);
        return sc_ostream_write(out, buf, n + len);
    }
    char *head = buf;
    if (n > sizeof buf) {
        head = malloc(n);
        if (!head)
            return sc_make_error(-ENOMEM);
        reply_head(r, head, n);
    }
    /* a head is smaller than any stream's batch: the stream copies it */
    struct sc_future f = sc_ostream_write(out, head, n);
    if (head != buf)
        free(head);
    return len ? write_after(f, out, body, len) : f;
}

struct sc_future httpd_reply_send(struct httpd_reply *rep, int status, const char *content_type,
                                  const void *body, size_t len)
{
    if (rep->started)
        return sc_make_error(-EALREADY);
    reply_begin(rep, status, content_type, (int64_t)len);
    rep->ended = true;
    if (rep->head_only)
        len = 0;
    rep->written = (uint64_t)rep->length;
    return write_head(rep, body, len);
}

struct sc_future httpd_reply_start(struct httpd_reply *rep, int status, const char *content_type,
                                   int64_t length)
{
    if (rep->started)
        return sc_make_error(-EALREADY);
    if (length < 0 && length != HTTP_LEN_CHUNKED)
        return sc_make_error(-EINVAL);
    reply_begin(rep, status, content_type, length);
    return write_head(rep, NULL, 0);
}

struct sc_future httpd_reply_write(struct httpd_reply *rep, const void *p, size_t len)
{
    if (!rep->started || rep->ended)
        return sc_make_error(-EINVAL);
    if (rep->length >= 0 && (uint64_t)rep->length - rep->written < len)
        return sc_make_error(-EMSGSIZE); /* more than the declared length */
    rep->written += len;
    if (rep->head_only || !len)
        return sc_make_ready(0);
    struct sc_ostream *out = rep->h->out;
    if (!rep->chunked)
        return sc_ostream_write(out, p, len);
    /* a small chunk goes out as one copy: size line, data, CRLF */
    char buf[2048];
    if (len + 24 <= sizeof buf) {
        size_t n = http_chunk_header(buf, len);
        memcpy(buf + n, p, len);
        memcpy(buf + n + len, "\r\n", 2);
        return sc_ostream_write(out, buf, n + len + 2);
    }
    size_t n = http_chunk_header(buf, len);
    struct sc_future f = write_after(sc_ostream_write(out, buf, n), out, p, len);
    return write_after(f, out, "\r\n", 2);
}

struct sc_future httpd_reply_end(struct httpd_reply *rep)
{
    if (!rep->started || rep->ended)
        return sc_make_error(-EINVAL);
    rep->ended = true;
    if (rep->length >= 0 && !rep->head_only && rep->written != (uint64_t)rep->length) {
        rep->close = true; /* the client would wait for bytes that never come */
        return sc_make_error(-EPROTO);
    }
    if (rep->chunked && !rep->head_only)
        return sc_ostream_write(rep->h->out, HTTP_LAST_CHUNK, 5);
    return sc_make_ready(0);
}

/* The server's own short answers (404, errors). */
static struct sc_future reply_status(struct httpd_reply *rep, int status)
{
    char body[96];
    int n = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    return httpd_reply_send(rep, status, "text/plain", body, (size_t)n);
}

/* ---- one connection ------------------------------------------------------------ */

static struct sc_future conn_step(void *cap);
static struct sc_future refuse(struct hconn *h, int status);

static struct sc_future cont(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future stop_loop(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_STOP);
}

static struct sc_future got_input(void *cap, intptr_t v, int err)
{
    struct hconn *h = *(struct hconn **)cap;
    h->waiting = h->reading = false;
    if (err || h->closing)
        return sc_make_ready(SC_STOP); /* a reset, or the timer closed us */
    if (v == 0) {
        h->eof = true;
        return sc_make_ready(SC_STOP);
    }
    if (h->acc_len) {
        int rc = gather(h);
        if (rc)
            return refuse(h, -rc);
    }
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future read_more(void *cap, intptr_t v)
{
    (void)v;
    struct hconn *h = *(struct hconn **)cap;
    if (h->closing || h->sh->stopping)
        return sc_make_ready(SC_STOP);
    wait_begin(h, h->request_deadline);
    h->reading = true;
    return SC_THEN_WRAPPED(sc_istream_read(h->in), got_input, h);
}

static struct sc_future do_flush(void *cap, intptr_t v)
{
    (void)v;
    struct hconn *h = *(struct hconn **)cap;
    return sc_ostream_flush(h->out);
}

static struct sc_future flushed(void *cap, intptr_t v, int err)
{
    struct hconn *h = *(struct hconn **)cap;
    h->waiting = false;
    if (err)
        return sc_make_error(err);
    return read_more(cap, v);
}

/* The input holds no complete request: flush what was answered, then read. */
static struct sc_future wait_input(struct hconn *h)
{
    struct hshard *sh = h->sh;
    if (!h->in_request) {
        h->in_request = true;
        h->request_deadline = sc_now() + timeout_ns(h);
    }
    if (h->p.head_done && !h->head_seen) {
        h->head_seen = true; /* the body gets a deadline of its own */
        h->request_deadline = sc_now() + timeout_ns(h);
    }
    if (!h->acc_len) {
        size_t n;
        sc_istream_data(h->in, &n);
        if (n) {
            int rc = gather(h); /* a partial request: keep it whole in acc */
            if (rc)
                return refuse(h, -rc);
        }
    }
    struct sc_future f = sc_make_ready(0);
    if (h->p.head_done && h->p.req.expect_continue && !h->continue_sent) {
        h->continue_sent = true;
        static const char cont100[] = "HTTP/1.1 100 Continue\r\n\r\n";
        f = sc_ostream_write(h->out, cont100, sizeof cont100 - 1);
        sh->st.status[1]++;
    }
    if (sc_ostream_buffered(h->out) || !sc_future_available(f)) {
        sh->st.flushes++;
        wait_begin(h, sc_now() + timeout_ns(h));
        f = SC_THEN(f, do_flush, h);
        return SC_THEN_WRAPPED(f, flushed, h);
    }
    if (sc_future_failed(f))
        return f;
    sc_future_ignore(f);
    return read_more(&h, 0);
}

/* Refuse what the parser rejected: answer and stop (the framing is lost). */
static struct sc_future refuse(struct hconn *h, int status)
{
    h->sh->st.bad_requests++;
    reply_reset(h, NULL);
    h->rep.close = true;
    return SC_THEN(reply_status(&h->rep, status), stop_loop, h);
}

static struct sc_future finish_request(void *cap, intptr_t v)
{
    (void)v;
    struct hconn *h = *(struct hconn **)cap;
    consume(h, h->cur_len);
    free(h->body);
    h->body = NULL;
    http_parser_reset(&h->p);
    h->in_request = h->head_seen = h->continue_sent = false;
    return sc_make_ready(h->rep.close || h->closing ? SC_STOP : SC_CONTINUE);
}

static struct sc_future served(void *cap, intptr_t v, int err)
{
    struct hconn *h = *(struct hconn **)cap;
    struct httpd_reply *r = &h->rep;
    if (h->closing)
        return sc_make_ready(SC_STOP);
    if (err && !r->started) /* the handler failed before answering */
        return SC_THEN(reply_status(r, 500), finish_request, h);
    if (err || !r->ended) {
        if (!err)
            sc_log(SC_LOG_WARN, "httpd: a handler returned without ending its reply");
        return sc_make_ready(SC_STOP); /* the client cannot tell where the reply ends */
    }
    return finish_request(cap, v);
}

/* A complete request of n bytes is at the start of the input: answer it. */
static struct sc_future serve(struct hconn *h, size_t n)
{
    struct hshard *sh = h->sh;
    struct http_request *req = &h->p.req;
    sh->st.requests++;
    sh->st.bytes_in += n;
    h->cur_len = n;
    reply_reset(h, req);
    if (req->chunked) {
        h->body = req->content_length ? malloc(req->content_length) : NULL;
        if (req->content_length && !h->body) {
            h->rep.close = true;
            return SC_THEN(reply_status(&h->rep, 503), finish_request, h);
        }
        size_t m = req->content_length ? http_chunked_decode(req, h->body) : 0;
        req->body = (struct http_str){h->body ? h->body : "", m};
    }
    const struct httpd_route *rt = httpd_routes_find(sh->srv->cfg.routes, req->path);
    struct sc_future f = rt ? rt->fn(rt->arg, req, &h->rep) : reply_status(&h->rep, 404);
    return SC_THEN_WRAPPED(f, served, h);
}

static struct sc_future conn_step(void *cap)
{
    struct hconn *h = *(struct hconn **)cap;
    if (h->closing)
        return sc_make_ready(SC_STOP);
    size_t len;
    const char *buf = input(h, &len);
    if (!len && h->sh->stopping)
        return sc_make_ready(SC_STOP); /* idle at shutdown */
    long r = len ? http_parse(&h->p, buf, len) : 0;
    if (r > 0)
        return serve(h, (size_t)r);
    if (r == 0)
        return wait_input(h);
    return refuse(h, (int)-r);
}

/* ---- closing ------------------------------------------------------------------ */

static struct sc_future conn_freed(void *cap, intptr_t v, int err)
{
    (void)v, (void)err;
    struct hconn *h = *(struct hconn **)cap;
    struct hshard *sh = h->sh;
    if (h->timer_at)
        sc_timer_cancel(&h->timer);
    if (h->prev)
        h->prev->next = h->next;
    else
        sh->conns = h->next;
    if (h->next)
        h->next->prev = h->prev;
    free(h->acc);
    free(h->body);
    free(h);
    sh->st.open--;
    sc_gate_leave(&sh->gate);
    return sc_make_ready(0);
}

static struct sc_future finish(struct hconn *h)
{
    h->waiting = false;
    if (!h->closing)
        conn_abort(h);
    return SC_THEN_WRAPPED(h->close_f, conn_freed, h);
}

#define LINGER_MAX_BYTES (1u << 20)

/* Lingering close: read and drop what the client still sends, so that our
 * last reply is not destroyed by a reset (closing a socket with unread
 * input makes the kernel send RST). Ends at end of stream, an error, 1 MiB,
 * or the deadline. */
static struct sc_future drained(void *cap, intptr_t v, int err)
{
    struct hconn *h = *(struct hconn **)cap;
    h->waiting = h->reading = false;
    if (err || v == 0 || h->closing)
        return sc_make_ready(SC_STOP);
    size_t n;
    sc_istream_data(h->in, &n);
    sc_istream_consume(h->in, n);
    h->cur_len += n;
    return sc_make_ready(h->cur_len > LINGER_MAX_BYTES ? SC_STOP : SC_CONTINUE);
}

static struct sc_future drain_step(void *cap)
{
    struct hconn *h = *(struct hconn **)cap;
    if (h->closing)
        return sc_make_ready(SC_STOP);
    size_t n;
    sc_istream_data(h->in, &n);
    sc_istream_consume(h->in, n);
    h->waiting = h->reading = true; /* the deadline was set before the loop */
    return SC_THEN_WRAPPED(sc_istream_read(h->in), drained, h);
}

static struct sc_future drain_done(void *cap, intptr_t v, int err)
{
    (void)v, (void)err;
    return finish(*(struct hconn **)cap);
}

static struct sc_future output_closed(void *cap, intptr_t v, int err)
{
    (void)v;
    struct hconn *h = *(struct hconn **)cap;
    h->waiting = false;
    if (err || h->eof || h->closing)
        return finish(h);
    uint64_t linger = timeout_ns(h) < SC_SEC(2) ? timeout_ns(h) : SC_SEC(2);
    wait_begin(h, sc_now() + linger);
    h->cur_len = 0;
    struct sc_future f = sc_repeat(drain_step, &h, sizeof h);
    return SC_THEN_WRAPPED(f, drain_done, h);
}

/* The loop ended: flush and half-close, linger, close, free. */
static struct sc_future conn_end(void *cap, intptr_t v, int err)
{
    (void)v;
    struct hconn *h = *(struct hconn **)cap;
    (void)err; /* a reset or an abort: closing is all that is left either way */
    h->waiting = false;
    if (h->closing)
        return finish(h);
    wait_begin(h, sc_now() + timeout_ns(h));
    return SC_THEN_WRAPPED(sc_ostream_close(h->out), output_closed, h);
}

/* ---- accepting ------------------------------------------------------------------- */

static void conn_start(struct hshard *sh, struct sc_conn *c)
{
    struct hconn *h = calloc(1, sizeof *h);
    if (!h || sc_gate_enter(&sh->gate) != 0) {
        free(h);
        sc_future_ignore(sc_conn_close(c));
        return;
    }
    h->sh = sh;
    h->c = c;
    h->in = sc_conn_input(c);
    h->out = sc_conn_output(c);
    http_parser_init(&h->p, &sh->srv->cfg.limits);
    sc_timer_init(&h->timer, on_timer, h);
    h->next = sh->conns;
    if (sh->conns)
        sh->conns->prev = h;
    sh->conns = h;
    sh->st.accepted++;
    sh->st.open++;
    struct sc_future f = sc_repeat(conn_step, &h, sizeof h);
    sc_future_discard(SC_THEN_WRAPPED(f, conn_end, h));
}

static struct sc_future accept_step(void *cap);

static struct sc_future accepted(void *cap, intptr_t v, int err)
{
    struct hshard *sh = *(struct hshard **)cap;
    if (err) {
        if (sh->stopping)
            return sc_make_ready(SC_STOP);
        if (err == -ECONNABORTED)
            return sc_make_ready(SC_CONTINUE); /* a client gave up before we took it */
        uint64_t n = ++sh->st.accept_errors;
        if ((n & (n - 1)) == 0) /* the 1st, 2nd, 4th, 8th, ... */
            sc_log(SC_LOG_WARN, "httpd: accept: %s (%" PRIu64 " so far)", sc_strerror(err),
                   sh->st.accept_errors);
        return SC_THEN(sc_sleep(SC_MS(10)), cont, sh); /* out of descriptors: back off */
    }
    conn_start(sh, (struct sc_conn *)v);
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future accept_step(void *cap)
{
    struct hshard *sh = *(struct hshard **)cap;
    if (sh->stopping)
        return sc_make_ready(SC_STOP);
    return SC_THEN_WRAPPED(sc_accept(sh->ss), accepted, sh);
}

static struct sc_future accept_ended(void *cap)
{
    struct hshard *sh = *(struct hshard **)cap;
    sh->accepting = false;
    sc_gate_leave(&sh->gate);
    return sc_make_ready(0);
}

/* ---- start and stop ----------------------------------------------------------- */

static struct sc_future shard_start(void *inst, unsigned shard, void *arg)
{
    (void)shard;
    struct hshard *sh = inst;
    sh->srv = arg;
    sc_gate_init(&sh->gate);
    http_date_cache_init(&sh->date);
    return sc_make_ready(0);
}

static struct sc_future shard_stop(void *inst)
{
    struct hshard *sh = inst;
    sh->stopping = true;
    if (sh->ss) {
        sc_server_close(sh->ss);
        sh->ss = NULL;
    }
    /* idle connections close now; busy ones after their reply */
    for (struct hconn *h = sh->conns; h; h = h->next)
        if (h->reading)
            conn_abort(h);
    return sc_gate_close(&sh->gate);
}

static const struct sc_sharded_ops shard_ops = {
    .size = sizeof(struct hshard),
    .start = shard_start,
    .stop = shard_stop,
};

static struct sc_future shard_listen(void *inst, void *cap)
{
    struct hshard *sh = inst;
    const struct sc_inet_addr *addr = cap;
    if (!sh->ss) {
        struct sc_listen_opts o = {.addr = *addr, .reuse_addr = true};
        int rc = sc_listen(&o, &sh->ss);
        if (rc)
            return sc_make_error(rc);
    }
    return sc_make_ready(sc_server_local_addr(sh->ss).port);
}

static struct sc_future shard_accept(void *inst, void *cap)
{
    (void)cap;
    struct hshard *sh = inst;
    if (sh->accepting || sc_gate_enter(&sh->gate) != 0)
        return sc_make_ready(0);
    sh->accepting = true;
    struct sc_future f = sc_repeat(accept_step, &sh, sizeof sh);
    sc_future_discard(SC_FINALLY(f, accept_ended, sh));
    return sc_make_ready(0);
}

struct start_err {
    int err;
};

static struct sc_future return_err(void *cap, intptr_t v, int err)
{
    (void)v, (void)err; /* a stop error matters less than why we stop */
    return sc_make_error(((const struct start_err *)cap)->err);
}

/* Listening failed somewhere: stop every shard, then report the error. */
static struct sc_future start_failed(void *cap, int err)
{
    struct httpd_server *srv = *(struct httpd_server **)cap;
    struct start_err e = {err};
    return SC_THEN_WRAPPED(sc_sharded_stop(&srv->svc), return_err, e);
}

static struct sc_future accept_all(void *cap, intptr_t v)
{
    (void)v;
    struct httpd_server *srv = *(struct httpd_server **)cap;
    return sc_sharded_invoke_on_all(&srv->svc, shard_accept, NULL, 0);
}

static struct sc_future listen_others(void *cap, intptr_t port)
{
    struct httpd_server *srv = *(struct httpd_server **)cap;
    srv->bound = srv->cfg.addr;
    srv->bound.port = (uint16_t)port;
    return sc_sharded_invoke_on_all(&srv->svc, shard_listen, &srv->bound, sizeof srv->bound);
}

static struct sc_future start_listening(void *cap, intptr_t v)
{
    (void)v;
    struct httpd_server *srv = *(struct httpd_server **)cap;
    struct sc_future f =
        sc_sharded_invoke_on(&srv->svc, 0, shard_listen, &srv->cfg.addr, sizeof srv->cfg.addr);
    f = SC_THEN(f, listen_others, srv);
    f = SC_THEN(f, accept_all, srv);
    return SC_HANDLE_ERROR(f, start_failed, srv);
}

struct sc_future httpd_start(struct httpd_server *srv, const struct httpd_config *cfg)
{
    if (!cfg->routes)
        return sc_make_error(-EINVAL);
    memset(srv, 0, sizeof *srv);
    srv->cfg = *cfg;
    if (!srv->cfg.header_timeout_ns)
        srv->cfg.header_timeout_ns = SC_SEC(10);
    if (!srv->cfg.server_name)
        srv->cfg.server_name = "seacore";
    if (!srv->cfg.limits.request_line)
        srv->cfg.limits = http_limits_default();
    struct sc_future f = sc_sharded_start(&srv->svc, &shard_ops, srv);
    return SC_THEN(f, start_listening, srv);
}

struct sc_future httpd_stop(struct httpd_server *srv)
{
    return sc_sharded_stop(&srv->svc);
}

/* ---- counters ------------------------------------------------------------------- */

struct httpd_stats httpd_stats_local(struct httpd_server *srv)
{
    struct hshard *sh = sc_sharded_local(&srv->svc);
    if (!sh)
        return (struct httpd_stats){0};
    return sh->st;
}

/* One shard's counters on their way to the caller: made on that shard, then
 * owned by the caller, which frees them (the memory goes home by itself). */
struct snap {
    struct snap *next;
    unsigned shard;
    struct httpd_stats st;
};

static struct sc_future stats_map(void *cap)
{
    struct httpd_server *srv = *(struct httpd_server **)cap;
    struct snap *s = malloc(sizeof *s);
    if (!s)
        return sc_make_error(-ENOMEM);
    s->next = NULL;
    s->shard = sc_this_shard();
    s->st = httpd_stats_local(srv);
    return sc_make_ready_ptr(s);
}

static intptr_t stats_reduce(intptr_t acc, intptr_t v)
{
    struct snap *s = (struct snap *)v;
    s->next = (struct snap *)acc;
    return v;
}

static struct sc_future stats_collect(void *cap, intptr_t v)
{
    (void)cap;
    unsigned n = sc_shard_count();
    struct httpd_stats *all = calloc(n, sizeof *all);
    for (struct snap *s = (struct snap *)v, *next; s; s = next) {
        next = s->next;
        if (all && s->shard < n)
            all[s->shard] = s->st;
        free(s);
    }
    if (!all)
        return sc_make_error(-ENOMEM);
    return sc_make_ready_ptr(all);
}

struct sc_future httpd_stats_gather(struct httpd_server *srv)
{
    struct sc_future f = sc_smp_map_reduce(stats_map, stats_reduce, 0, &srv, sizeof srv);
    return sc_then(f, stats_collect, NULL, 0);
}

static void json_stats(FILE *f, const struct httpd_stats *s)
{
    fprintf(
        f,
        "\"accepted\":%" PRIu64 ",\"open\":%" PRIu64 ",\"requests\":%" PRIu64
        ",\"replies\":{\"1xx\":%" PRIu64 ",\"2xx\":%" PRIu64 ",\"3xx\":%" PRIu64 ",\"4xx\":%" PRIu64
        ",\"5xx\":%" PRIu64 "},\"bad_requests\":%" PRIu64 ",\"timeouts\":%" PRIu64
        ",\"flushes\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"accept_errors\":%" PRIu64,
        s->accepted, s->open, s->requests, s->status[1], s->status[2], s->status[3], s->status[4],
        s->status[5], s->bad_requests, s->timeouts, s->flushes, s->bytes_in, s->accept_errors);
}

struct httpd_stats httpd_stats_sum(const struct httpd_stats *s, unsigned n)
{
    struct httpd_stats total = {0};
    uint64_t *t = (uint64_t *)&total;
    for (unsigned i = 0; i < n; i++) {
        const uint64_t *a = (const uint64_t *)&s[i]; /* the struct is all uint64_t */
        for (size_t k = 0; k < sizeof total / sizeof(uint64_t); k++)
            t[k] += a[k];
    }
    return total;
}

char *httpd_stats_json(const struct httpd_stats *s, unsigned n, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    struct httpd_stats total = httpd_stats_sum(s, n);
    fputs("{\"shards\":[", f);
    for (unsigned i = 0; i < n; i++) {
        fprintf(f, "%s{\"shard\":%u,", i ? "," : "", i);
        json_stats(f, &s[i]);
        fputc('}', f);
    }
    fputs("],\"total\":{", f);
    json_stats(f, &total);
    fputs("}}\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = size;
    return buf;
}

/* ---- the routing table ------------------------------------------------------------ */

void httpd_routes_init(struct httpd_routes *r)
{
    r->v = NULL;
    r->n = r->cap = 0;
}

void httpd_routes_free(struct httpd_routes *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].path);
    free(r->v);
    httpd_routes_init(r);
}

int httpd_routes_add(struct httpd_routes *r, enum httpd_match m, const char *path,
                     httpd_handler_fn fn, void *arg)
{
    if (!path || path[0] != '/' || !fn || (m != HTTPD_EXACT && m != HTTPD_PREFIX))
        return -EINVAL;
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].match == m && strcmp(r->v[i].path, path) == 0)
            return -EEXIST;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        struct httpd_route *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    r->v[r->n++] =
        (struct httpd_route){.match = m, .path = p, .len = strlen(p), .fn = fn, .arg = arg};
    return 0;
}

const struct httpd_route *httpd_routes_find(const struct httpd_routes *r, struct http_str path)
{
    const struct httpd_route *best = NULL;
    for (size_t i = 0; i < r->n; i++) {
        const struct httpd_route *rt = &r->v[i];
        if (rt->match == HTTPD_EXACT) {
            if (rt->len == path.len && memcmp(rt->path, path.p, path.len) == 0)
                return rt;
        } else if (rt->len <= path.len && memcmp(rt->path, path.p, rt->len) == 0 &&
                   (!best || rt->len > best->len)) {
            best = rt;
        }
    }
    return best;
}
