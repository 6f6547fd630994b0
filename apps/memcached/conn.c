/*
 * conn.c — see conn.h.
 *
 * Each connection has two halves that never wait for each other:
 *
 *   the reader, a fiber: parse, admit (the pipeline's semaphore), submit,
 *   and read more when the buffer holds no whole request. Straight-line
 *   code, because the protocol is: a request is a line, perhaps a block.
 *
 *   the writer, continuations: when the reader has drained its input (or
 *   replies pile up past SEND_BATCH, or the connection is ending), the
 *   bytes the pipeline put in order go to the output stream as one write
 *   and one flush. Replies that come later (from other shards) wake it
 *   again. Two buffers take turns: the pipeline fills one while the other
 *   is being written, so the stream can keep the bytes without a copy.
 */
#include <stdio.h>
#include <string.h>

#include "apps/memcached/conn.h"
#include "apps/memcached/shard.h"
#include "core/gate.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/memory.h"
#include "core/smp.h"
#include "core/thread.h"

#define SEND_BATCH   (16 * 1024)  /* send before the input is drained past this much */
#define OUT_HIGH     (256 * 1024) /* stop reading while this much waits unsent */
#define BUF_KEEP     (64 * 1024)  /* larger buffers are freed after use, not kept */
#define FIBER_STACK  (64 * 1024)
#define GET_LINE_MAX (8 * 1024) /* longest get line: must fit the input buffer (8 KiB) */

struct mc_conn;

/* One shard's listener and its connections. */
struct mc_server {
    struct sc_server_socket *sock;
    struct sc_gate gate;   /* the accept loop and every connection hold it */
    struct mc_conn *conns; /* live connections, for the stop */
    bool stopping;
};

struct mc_conn {
    struct mc_conn *prev, *next; /* in the server's list */
    struct mc_server *srv;
    struct sc_conn *sock;
    struct sc_istream *in;
    struct sc_ostream *out;
    struct mc_pipeline pl;
    struct mc_buf sending; /* handed to the output stream */
    bool writing;          /* a write and flush are in flight */
    bool drained;          /* the reader waits for input: send now */
    bool ending;           /* the reader is done: send everything */
    bool write_failed;
    bool closed_by_stop; /* mc_server_stop() closed the socket: hands off */
    bool progress_wait;
    struct sc_promise progress; /* the writer finished a write */
};

static struct mc_server **servers; /* one per shard, each touched by its own shard */
static uint16_t bound_port;

/* ------------------------------------------------------------------ */
/* The writer                                                         */
/* ------------------------------------------------------------------ */

static void kick(struct mc_conn *c);

static void writer_progress(struct mc_conn *c)
{
    if (c->progress_wait) {
        c->progress_wait = false;
        sc_promise_set_value(&c->progress, 0);
    }
}

static struct sc_future flush_after_write(void *cap, intptr_t v)
{
    (void)v;
    struct mc_conn *c = *(struct mc_conn **)cap;
    return sc_ostream_flush(c->out);
}

static struct sc_future write_done(void *cap, intptr_t v, int err)
{
    (void)v;
    struct mc_conn *c = *(struct mc_conn **)cap;
    struct mc_shard *sh = mc_local();
    c->writing = false;
    if (sh)
        sh->st.bytes_written += c->sending.len;
    c->sending.len = 0;
    if (c->sending.cap > BUF_KEEP)
        mc_buf_free(&c->sending);
    if (err)
        c->write_failed = true; /* the reader learns it from its next read, or below */
    kick(c);
    writer_progress(c);
    return sc_make_ready(0);
}

/* Send what the pipeline has, if now is the time. */
static void kick(struct mc_conn *c)
{
    if (c->writing || c->write_failed || c->closed_by_stop || c->pl.out.len == 0)
        return;
    if (!c->drained && !c->ending && c->pl.out.len < SEND_BATCH)
        return; /* more requests are buffered: their replies go in the same write */
    /* swap: the pipeline fills the other buffer while this one is written */
    struct mc_buf t = c->sending;
    c->sending = c->pl.out;
    c->pl.out = t;
    c->writing = true;
    struct sc_future f = sc_ostream_write(c->out, c->sending.p, c->sending.len);
    f = sc_then(f, flush_after_write, &c, sizeof c);
    f = sc_then_wrapped(f, write_done, &c, sizeof c);
    if (sc_future_available(f) && sc_future_failed(f)) { /* out of memory on the way */
        sc_future_ignore(f);
        c->writing = false;
        c->write_failed = true;
        writer_progress(c);
        return;
    }
    sc_future_discard(f);
}

static void pipeline_woke(void *arg)
{
    kick(arg);
}

/* Wait (in the fiber) until the writer has made progress. */
static int await_writer(struct mc_conn *c)
{
    if (!c->writing)
        return 0;
    sc_promise_init(&c->progress);
    c->progress_wait = true;
    return sc_await(sc_promise_get_future(&c->progress), NULL);
}

/* ------------------------------------------------------------------ */
/* The reader                                                         */
/* ------------------------------------------------------------------ */

/* A storage request whose data block does not fit the input buffer: the
 * line is parsed (req), the block is gathered into a buffer of its own. */
static int read_big_value(struct mc_conn *c, struct mc_request *req)
{
    char key[MC_KEY_MAX];
    memcpy(key, req->key, req->key_len);
    uint32_t need = req->value_len + 2, have = 0;
    char *block = sc_malloc(need);
    if (!block)
        return -ENOMEM;
    sc_istream_consume(c->in, req->line_len);
    int err = 0;
    while (have < need) {
        size_t len;
        const char *data = sc_istream_data(c->in, &len);
        if (len == 0) {
            intptr_t n;
            if ((err = sc_await(sc_istream_read(c->in), &n)) != 0 || n == 0) {
                err = err ? err : SC_EEOF;
                break;
            }
            continue;
        }
        size_t take = len < need - have ? len : need - have;
        memcpy(block + have, data, take);
        sc_istream_consume(c->in, take);
        have += (uint32_t)take;
    }
    if (!err && (err = sc_await(mc_pipeline_admit(&c->pl), NULL)) == 0) {
        struct mc_shard *sh = mc_local();
        if (sh)
            sh->st.bytes_read += req->line_len + need;
        if (!mc_check_chunk(block, req->value_len)) {
            const char *t = mc_error_text(MC_ERR_BAD_CHUNK);
            mc_pipeline_answer(&c->pl, t, req->noreply ? 0 : strlen(t));
        } else {
            req->key = key;
            req->value = block;
            mc_pipeline_submit(&c->pl, req);
        }
    }
    sc_free(block);
    return err;
}

/* A protocol error: answer it in order, drop its bytes; <0: end the connection. */
static int protocol_error(struct mc_conn *c, const struct mc_request *req, uint64_t used,
                          size_t len)
{
    struct mc_shard *sh = mc_local();
    if (sh)
        sh->st.protocol_errors++;
    const char *t = mc_error_text(req->error);
    mc_pipeline_answer(&c->pl, t, mc_error_reply(req->error, req->noreply) ? strlen(t) : 0);
    if (req->close)
        return -EPROTO;
    if (used <= len) {
        sc_istream_consume(c->in, (size_t)used);
        return 0;
    }
    /* a refused data block larger than what is buffered: swallow the rest */
    sc_istream_consume(c->in, len);
    intptr_t n;
    int err = sc_await(sc_istream_skip(c->in, used - len), &n);
    if (!err && (uint64_t)n < used - len)
        err = SC_EEOF;
    return err;
}

/* Serve requests until the connection should end; returns why (0: quit or EOF). */
static int serve(struct mc_conn *c)
{
    const struct mc_limits lim = {.max_item_size = mc_config()->max_item_size,
                                  .max_get_line = GET_LINE_MAX};
    for (;;) {
        size_t len;
        const char *data = sc_istream_data(c->in, &len);
        struct mc_request req;
        uint64_t used = 0;
        int st = len ? mc_parse(data, len, &lim, &req, &used) : MC_PARSE_MORE;
        if (!len)
            req.cmd = MC_CMD_NONE;
        if (st == MC_PARSE_MORE) {
            /* No whole request buffered: send what is ready, then read. */
            c->drained = true;
            kick(c);
            intptr_t n = 0;
            int err = sc_await(sc_istream_read_exactly(c->in, len + 1), &n);
            c->drained = false;
            if (err == -EMSGSIZE && mc_cmd_is_storage(req.cmd)) {
                /* the buffer is full and the block is larger: gather it apart */
                if ((err = read_big_value(c, &req)) != 0)
                    return err;
                continue;
            }
            if (err == -EMSGSIZE) { /* a get line longer than the buffer */
                req.error = MC_ERR_LINE_TOO_LONG;
                req.close = true;
                req.noreply = false;
                if ((err = sc_await(mc_pipeline_admit(&c->pl), NULL)) == 0)
                    protocol_error(c, &req, len, len);
                return -EPROTO;
            }
            if (err)
                return err;
            if ((size_t)n <= len)
                return 0; /* end of stream (inside a request, perhaps) */
            continue;
        }
        /* One unit of the semaphore per request: backpressure starts here. */
        int err = sc_await(mc_pipeline_admit(&c->pl), NULL);
        if (err)
            return err;
        if (st == MC_PARSE_ERROR) {
            if ((err = protocol_error(c, &req, used, len)) != 0)
                return err;
            continue;
        }
        if (req.cmd == MC_CMD_QUIT) {
            mc_pipeline_answer(&c->pl, "", 0); /* gives the unit back, in order */
            return 0;
        }
        mc_pipeline_submit(&c->pl, &req);
        sc_istream_consume(c->in, (size_t)used);
        struct mc_shard *sh = mc_local();
        if (sh)
            sh->st.bytes_read += used;
        if (c->pl.out.failed)
            return -ENOMEM;
        /* The client does not read its replies: stop reading its requests. */
        while (c->pl.out.len >= OUT_HIGH && !c->write_failed && !c->closed_by_stop) {
            kick(c);
            if ((err = await_writer(c)) != 0)
                return err;
        }
        if (c->write_failed || c->closed_by_stop)
            return -EPIPE;
    }
}

static void conn_unlist(struct mc_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static struct sc_future conn_fiber(void *cap)
{
    struct mc_conn *c = *(struct mc_conn **)cap;
    serve(c);
    /* Every request in flight comes back (its owner always answers), then
     * whatever is unsent goes out, then the socket closes. */
    c->ending = true;
    sc_await(mc_pipeline_drain(&c->pl), NULL);
    while (!c->write_failed && !c->closed_by_stop && (c->writing || c->pl.out.len)) {
        kick(c);
        if (await_writer(c) != 0)
            break;
    }
    while (c->writing) /* the stop closed the socket under a write: it fails soon */
        await_writer(c);
    mc_pipeline_destroy(&c->pl);
    mc_buf_free(&c->sending);
    struct mc_server *srv = c->srv;
    conn_unlist(c);
    if (!c->closed_by_stop)
        sc_await(sc_conn_close(c->sock), NULL);
    struct mc_shard *sh = mc_local();
    if (sh)
        sh->st.curr_connections--;
    sc_free(c);
    sc_gate_leave(&srv->gate);
    return sc_make_ready(0);
}

static void conn_start(struct mc_server *srv, struct sc_conn *sock)
{
    struct mc_shard *sh = mc_local();
    struct mc_conn *c = sc_calloc(1, sizeof *c);
    if (!c || sc_gate_enter(&srv->gate) != 0) {
        sc_free(c);
        if (sh)
            sh->st.rejected_connections++;
        sc_future_ignore(sc_conn_close(sock));
        return;
    }
    c->srv = srv;
    c->sock = sock;
    c->in = sc_conn_input(sock);
    c->out = sc_conn_output(sock);
    if (mc_pipeline_init(&c->pl, mc_config()->max_inflight, pipeline_woke, c) != 0) {
        sc_free(c);
        sc_gate_leave(&srv->gate);
        sc_future_ignore(sc_conn_close(sock));
        return;
    }
    c->next = srv->conns;
    if (c->next)
        c->next->prev = c;
    srv->conns = c;
    if (sh) {
        sh->st.curr_connections++;
        sh->st.total_connections++;
    }
    struct sc_thread_attr attr = {.stack_size = FIBER_STACK};
    struct sc_future f = sc_thread_spawn(conn_fiber, &c, sizeof c, &attr);
    if (sc_future_available(f) && sc_future_failed(f)) { /* no fiber: no connection */
        sc_future_ignore(f);
        conn_unlist(c);
        mc_pipeline_destroy(&c->pl);
        if (sh) {
            sh->st.curr_connections--;
            sh->st.rejected_connections++;
        }
        sc_free(c);
        sc_gate_leave(&srv->gate);
        sc_future_ignore(sc_conn_close(sock));
        return;
    }
    sc_future_discard(f);
}

/* ------------------------------------------------------------------ */
/* Listening                                                          */
/* ------------------------------------------------------------------ */

static struct sc_future go_on(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future accepted(void *cap, intptr_t v, int err)
{
    struct mc_server *srv = *(struct mc_server **)cap;
    if (err) {
        if (srv->stopping || err == -ECONNABORTED)
            return sc_make_ready(SC_STOP);
        /* out of descriptors, or memory: not fatal, try again shortly */
        sc_log(SC_LOG_WARN, "memcached: accept: %s", sc_strerror(err));
        return sc_then(sc_sleep(SC_MS(10)), go_on, NULL, 0);
    }
    conn_start(srv, (struct sc_conn *)v);
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future accept_one(void *cap)
{
    struct mc_server *srv = *(struct mc_server **)cap;
    return sc_then_wrapped(sc_accept(srv->sock), accepted, &srv, sizeof srv);
}

static struct sc_future accept_loop_done(void *cap, intptr_t v, int err)
{
    (void)v;
    struct mc_server *srv = *(struct mc_server **)cap;
    if (err && !srv->stopping)
        sc_log(SC_LOG_ERROR, "memcached: accept loop ended: %s", sc_strerror(err));
    sc_gate_leave(&srv->gate);
    return sc_make_ready(0);
}

static struct sc_future listen_here(void *cap)
{
    struct sc_listen_opts o = {.addr = *(struct sc_inet_addr *)cap, .reuse_addr = true};
    struct mc_server *srv = sc_calloc(1, sizeof *srv);
    if (!srv)
        return sc_make_error(-ENOMEM);
    int err = sc_listen(&o, &srv->sock);
    if (err) {
        sc_free(srv);
        return sc_make_error(err);
    }
    sc_gate_init(&srv->gate);
    sc_gate_enter(&srv->gate); /* the accept loop's */
    servers[sc_this_shard()] = srv;
    struct sc_future loop = sc_repeat(accept_one, &srv, sizeof srv);
    sc_future_discard(SC_THEN_WRAPPED(loop, accept_loop_done, srv));
    return sc_make_ready(sc_server_local_addr(srv->sock).port);
}

static struct sc_future listen_others(void *cap, intptr_t port)
{
    struct sc_inet_addr a = *(struct sc_inet_addr *)cap;
    a.port = (uint16_t)port; /* the port shard 0 got, if 0 was asked */
    bound_port = a.port;
    return sc_smp_invoke_on_others(listen_here, &a, sizeof a);
}

struct sc_future mc_server_start(const struct sc_inet_addr *addr)
{
    servers = sc_calloc(sc_shard_count(), sizeof *servers);
    if (!servers)
        return sc_make_error(-ENOMEM);
    struct sc_inet_addr a = *addr;
    return SC_THEN(sc_smp_submit_to(0, listen_here, &a, sizeof a), listen_others, a);
}

uint16_t mc_server_port(void)
{
    return bound_port;
}

static struct sc_future stop_here(void *cap)
{
    (void)cap;
    struct mc_server *srv = servers[sc_this_shard()];
    if (!srv)
        return sc_make_ready(0);
    srv->stopping = true;
    sc_server_close(srv->sock);
    for (struct mc_conn *c = srv->conns; c; c = c->next) {
        c->closed_by_stop = true; /* from here the fiber leaves the socket alone */
        sc_future_ignore(sc_conn_close(c->sock));
    }
    return sc_gate_close(&srv->gate);
}

static struct sc_future free_here(void *cap)
{
    (void)cap;
    sc_free(servers[sc_this_shard()]);
    servers[sc_this_shard()] = NULL;
    return sc_make_ready(0);
}

static struct sc_future stopped(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_smp_invoke_on_all(free_here, NULL, 0);
}

static struct sc_future release_table(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    sc_free(servers);
    servers = NULL;
    return err ? sc_make_error(err) : sc_make_ready(0);
}

struct sc_future mc_server_stop(void)
{
    if (!servers)
        return sc_make_ready(0);
    struct sc_future f = sc_smp_invoke_on_all(stop_here, NULL, 0);
    f = sc_then(f, stopped, NULL, 0);
    return sc_then_wrapped(f, release_table, NULL, 0);
}
