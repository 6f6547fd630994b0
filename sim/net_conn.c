/*
 * net_conn.c — one connection of the simulated network: two ends, each on
 * its own shard, each sending through one ordered queue of segments (data,
 * FIN, RST, window updates) and receiving into a queue its app reads from.
 * The overview is at the top of sim/net.c.
 *
 * In order: each segment gets a delivery time (now + the delay + jitter,
 * never before the one ahead of it) and one timer per end hands out what is
 * due, head first, so a connection's bytes arrive in the order written.
 * The window: the receiver tells the sender how much its app has read, every
 * quarter window; the sender keeps at most a window unread, so a writer
 * whose peer does not read waits. Faults strike at a send (a stream write):
 * a reset, or a hold of 10-100 ms that the segments behind it wait out too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/smp.h"
#include "sim/simnet_impl.h"

enum sn_kind { SN_DATA = 1, SN_FIN, SN_RST, SN_WND };

/* What travels from one end to its peer: one segment. */
struct sn_wire {
    struct sn_ref to, from;
    uint32_t kind;
    uint32_t len; /* DATA: payload bytes in data[] */
    uint64_t val; /* DATA: stream offset of data[0]; WND: bytes the app has read */
    char data[];
};

/* A segment waiting in its end's queue; its wire follows it in memory. */
struct sn_seg {
    struct sn_seg *next;
    uint64_t due;
    uint64_t pad; /* keeps the wire 8-aligned after the header */
};

struct sn_chunk {
    struct sn_chunk *next;
    uint32_t len, off;
    char data[];
};

static const struct sc__conn_ops sn_conn_ops;
static const struct sc_source_ops sn_source_ops;
static const struct sc_sink_ops sn_sink_ops;
static void tx_fire(void *arg);
static void maybe_finish(struct sn_conn *c);

/* ------------------------------------------------------------------ */
/* The table of ends                                                    */
/* ------------------------------------------------------------------ */

struct sn_conn *sc__simnet_end_new(struct sn_shard *s)
{
    if (s->free_head == SN_NONE && s->nslots == s->cap_slots) {
        if (s->cap_slots == SN_MAX_SLOTS)
            return NULL;
        uint32_t cap = s->cap_slots ? s->cap_slots * 2 : 64;
        struct sn_slot *n = realloc(s->slots, cap * sizeof *n);
        if (!n)
            return NULL;
        s->slots = n;
        s->cap_slots = cap;
    }
    struct sn_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    uint32_t slot;
    if (s->free_head != SN_NONE) {
        slot = s->free_head;
        s->free_head = s->slots[slot].next_free;
    } else {
        slot = s->nslots++;
        s->slots[slot].gen = 0;
    }
    struct sn_slot *sl = &s->slots[slot];
    sl->gen = (sl->gen + 1) & SN_GEN_MASK;
    sl->c = c;
    c->self = (struct sn_ref){.shard = sc_this_shard(), .slot = slot, .gen = sl->gen};
    c->fwd = SN_NONE;
    c->pub.ops = &sn_conn_ops;
    sn_link_init(&c->hold_link);
    sc_timer_init(&c->tx_timer, tx_fire, c);
    sc_promise_init(&c->conn_p);
    sc_promise_init(&c->rd_p);
    sc_promise_init(&c->wr_p);
    sc_promise_init(&c->close_p);
    s->st.ends++;
    return c;
}

static void chunks_free(struct sn_conn *c)
{
    while (c->rx_head) {
        struct sn_chunk *k = c->rx_head;
        c->rx_head = k->next;
        free(k);
    }
    c->rx_tail = NULL;
    c->rx_bytes = 0;
}

static void segs_free(struct sn_conn *c)
{
    while (c->tx_head) {
        struct sn_seg *g = c->tx_head;
        c->tx_head = g->next;
        free(g);
    }
    c->tx_tail = NULL;
}

/* Out of the table and freed. Nothing may refer to c afterwards except by
 * reference (which then finds nothing). */
void sc__simnet_end_free(struct sn_shard *s, struct sn_conn *c)
{
    sc_timer_cancel(&c->tx_timer);
    if (c->held) {
        sn_link_del(&c->hold_link);
        c->held = false;
    }
    chunks_free(c);
    segs_free(c);
    struct sn_slot *sl = &s->slots[c->self.slot];
    sl->c = NULL;
    sl->next_free = s->free_head;
    s->free_head = c->self.slot;
    s->st.ends--;
    free(c);
}

/* ------------------------------------------------------------------ */
/* Sending: the ordered queue of an end                                 */
/* ------------------------------------------------------------------ */

static struct sn_wire *seg_wire(struct sn_seg *g)
{
    return (struct sn_wire *)(g + 1);
}

/* Put c on the held list: the network is cut; it goes on at the heal. */
static void hold(struct sn_shard *s, struct sn_conn *c)
{
    if (!c->held) {
        c->held = true;
        sn_link_add_tail(&s->held, &c->hold_link);
    }
}

/* Arm c's timer for `when` unless it is armed, held, or firing (which arms
 * at its end). A timer that cannot be armed (no memory for the heap) leaves
 * the connection unable to move: it is reset. */
void sc__simnet_tx_arm(struct sn_conn *c, uint64_t when)
{
    if (c->held || c->in_fire || sc_timer_armed(&c->tx_timer))
        return;
    if (sc_timer_arm(&c->tx_timer, when) != 0) {
        sc_log(SC_LOG_WARN, "sim net: no memory to arm a timer; the connection is reset");
        sc__simnet_end_reset(c, false);
    }
}

void sc__simnet_tx_kick(struct sn_conn *c)
{
    if (c->tx_head)
        sc__simnet_tx_arm(c, c->tx_head->due);
}

/* A delivery time after the segment before it: in order, whatever the jitter. */
static uint64_t next_due(struct sn_shard *s, struct sn_conn *c, uint64_t extra)
{
    uint64_t d = sc_now() + extra + sn_delay(s);
    if (d < c->last_due)
        d = c->last_due;
    c->last_due = d;
    return d;
}

static struct sn_seg *seg_new(struct sn_conn *c, uint32_t kind, uint64_t val, uint32_t len)
{
    struct sn_seg *g = malloc(sizeof *g + sizeof(struct sn_wire) + len);
    if (!g)
        return NULL;
    g->next = NULL;
    struct sn_wire *w = seg_wire(g);
    w->to = c->peer;
    w->from = c->self;
    w->kind = kind;
    w->len = len;
    w->val = val;
    return g;
}

static void seg_push(struct sn_conn *c, struct sn_seg *g, uint64_t due)
{
    g->due = due;
    if (c->tx_tail)
        c->tx_tail->next = g;
    else
        c->tx_head = g;
    c->tx_tail = g;
}

/* Queue a segment without payload. -ENOMEM if it could not be made. */
static int ctl_push(struct sn_shard *s, struct sn_conn *c, uint32_t kind, uint64_t val)
{
    struct sn_seg *g = seg_new(c, kind, val, 0);
    if (!g)
        return -ENOMEM;
    seg_push(c, g, next_due(s, c, 0));
    sc__simnet_tx_kick(c);
    return 0;
}

/* Cut the pending write into segments while the window has room. */
static int push_data(struct sn_shard *s, struct sn_conn *c)
{
    while (c->wr_left) {
        uint64_t out = c->snd_nxt - c->snd_acked;
        if (out >= SN_WINDOW)
            break;
        size_t n = c->wr_left;
        if (n > SN_WINDOW - out)
            n = (size_t)(SN_WINDOW - out);
        if (n > SN_MSS)
            n = SN_MSS;
        struct sn_seg *g = seg_new(c, SN_DATA, c->snd_nxt, (uint32_t)n);
        if (!g)
            return -ENOMEM;
        memcpy(seg_wire(g)->data, c->wr_buf, n);
        seg_push(c, g, next_due(s, c, c->wr_hold));
        c->wr_hold = 0;
        c->snd_nxt += n;
        c->wr_buf += n;
        c->wr_left -= n;
        s->st.bytes += n;
    }
    sc__simnet_tx_kick(c);
    return 0;
}

static void send_fin(struct sn_shard *s, struct sn_conn *c)
{
    if (c->fin_sent || c->reset || c->state != SN_OPEN)
        return;
    c->fin_sent = true;
    if (c->wr_wait) {
        c->fin_after_write = true; /* after the bytes still waiting for the window */
        return;
    }
    if (ctl_push(s, c, SN_FIN, c->snd_nxt) != 0)
        sc__simnet_end_reset(c, false); /* cannot say FIN: the peer would wait forever */
}

#define SN_GONE 1 /* a delivery's answer: the end is gone, reset the sender */

static struct sc_future deliver(void *cap);

/* The answer to a delivery, back on the sender's shard. */
static struct sc_future tx_answer(void *cap, intptr_t v, int err)
{
    const struct sn_ref *from = cap;
    if (!err && v == SN_GONE) {
        struct sn_conn *c = sn_end_lookup(sn_here_if(), *from);
        if (c)
            sc__simnet_end_reset(c, false);
    }
    return sc_make_ready(0);
}

/* Hand one segment to the peer's shard. -ENOMEM: not sent, try again. */
static int seg_send(struct sn_seg *g)
{
    struct sn_wire *w = seg_wire(g);
    struct sc_future f =
        sc_smp_submit_to(w->to.shard, deliver, w, sizeof *w + (w->kind == SN_DATA ? w->len : 0));
    if (sc_future_available(f) && sc_future_failed(f))
        return sc_future_get(f, NULL);
    struct sn_ref from = w->from;
    sc_future_ignore(sc_then_wrapped(f, tx_answer, &from, sizeof from));
    return 0;
}

static void tx_fire(void *arg)
{
    struct sn_conn *c = arg;
    struct sn_shard *s = sn_here_if();
    if (s->cut) {
        hold(s, c);
        return;
    }
    if (c->state == SN_CONNECTING) {
        if (!c->scattered)
            sc__simnet_connect_scatter(c);
        return;
    }
    c->in_fire = true;
    uint64_t now = sc_now();
    while (c->tx_head && c->tx_head->due <= now) {
        struct sn_seg *g = c->tx_head;
        c->tx_head = g->next;
        if (!c->tx_head)
            c->tx_tail = NULL;
        /* Sending may run the receiver at once (same shard), and its answer
         * may reset c, which empties the queue: g is out of it already. */
        if (seg_send(g) != 0) {
            g->next = c->tx_head;
            c->tx_head = g;
            if (!c->tx_tail)
                c->tx_tail = g;
            g->due = now + SN_RETRY_NS;
            break;
        }
        free(g);
    }
    c->in_fire = false;
    if (c->tx_head)
        sc__simnet_tx_kick(c); /* (a timer that cannot be armed resets c, which may free it) */
    else
        maybe_finish(c);
}

/* ------------------------------------------------------------------ */
/* Ends: reset, close, finish                                           */
/* ------------------------------------------------------------------ */

static void fail_waiters(struct sn_conn *c, int err)
{
    if (c->rd_wait) {
        c->rd_wait = false;
        sc_promise_set_error(&c->rd_p, err);
    }
    if (c->wr_wait) {
        c->wr_wait = false;
        c->wr_left = 0;
        sc_promise_set_error(&c->wr_p, err);
    }
}

/* The connection is reset: what is queued either way is dropped, waiting
 * reads and writes fail. With tell_peer, an RST goes to the peer. */
void sc__simnet_end_reset(struct sn_conn *c, bool tell_peer)
{
    if (c->reset)
        return;
    c->reset = true;
    segs_free(c);
    chunks_free(c);
    fail_waiters(c, -ECONNRESET);
    if (tell_peer && c->state == SN_OPEN)
        (void)ctl_push(sn_here_if(), c, SN_RST,
                       0); /* no memory: the peer learns at its next send */
    maybe_finish(c);
}

/* Free c once it is closed, released, and its queue is out. */
static void maybe_finish(struct sn_conn *c)
{
    if (!c->closing || !c->released || c->in_fire || c->tx_head)
        return;
    if (c->close_wait)
        sc_promise_set_value(&c->close_p, 0); /* continuations run later, as tasks */
    sc__simnet_end_free(sn_here_if(), c);
}

/* The stack gives up on an end the app never saw (a full accept queue, a
 * listener closed, no memory for the streams): the peer is reset. */
void sc__simnet_end_abort(struct sn_conn *c)
{
    c->closing = true;
    c->released = true;
    if (c->reset)
        maybe_finish(c);
    else
        sc__simnet_end_reset(c, true); /* which frees c once the RST is out */
}

int sc__simnet_streams_init(struct sn_conn *c)
{
    int r = sc_istream_init(&c->pub.in, &sn_source_ops, c, 0);
    if (r != 0)
        return r;
    r = sc_ostream_init(&c->pub.out, &sn_sink_ops, c, 0);
    if (r != 0) {
        sc_istream_close(&c->pub.in);
        return r;
    }
    c->app = true;
    return 0;
}

struct release_cap {
    struct sn_conn *c; /* a closing end stays until released: a pointer is safe */
};

static struct sc_future release_streams(void *cap, intptr_t v);

static struct sc_future streams_released(void *cap, intptr_t v, int err)
{
    (void)v, (void)err; /* the output stream's error, if any, is of no use to a closer */
    struct sn_conn *c = ((struct release_cap *)cap)->c;
    c->released = true;
    maybe_finish(c);
    return sc_make_ready(0);
}

/* Wait until neither stream has a read or write in flight (the failed ones
 * must reach the stream first), then release both. */
static struct sc_future release_streams(void *cap, intptr_t v)
{
    (void)v;
    struct release_cap rc = *(struct release_cap *)cap;
    struct sn_conn *c = rc.c;
    if (c->pub.in.busy || c->pub.out.busy)
        return sc_then(sc_yield(), release_streams, &rc, sizeof rc);
    if (c->pub.in.buf) /* (not released already) */
        sc_istream_close(&c->pub.in);
    /* the output may have been closed by the app (a half-close through the stream) */
    struct sc_future f = c->pub.out.closed ? sc_make_ready(0) : sc_ostream_close(&c->pub.out);
    return sc_then_wrapped(f, streams_released, &rc, sizeof rc);
}

static struct sc_future sn_close(struct sc_conn *pub)
{
    struct sn_conn *c = SC_CONTAINER_OF(pub, struct sn_conn, pub);
    if (c->closing)
        return sc_make_error(-EALREADY);
    struct sn_shard *s = sn_here_if();
    c->closing = true;
    struct sc_future done = sc_promise_get_future(&c->close_p);
    c->close_wait = true; /* (a promise without memory ignores the value) */
    fail_waiters(c, -ECONNABORTED);
    if (!c->reset) {
        if (c->rx_bytes)
            sc__simnet_end_reset(c, true); /* unread data: the peer is told by a reset */
        else
            send_fin(s, c);
    }
    struct release_cap rc = {c};
    sc_future_ignore(release_streams(&rc, 0));
    return done;
}

static struct sc_future sn_shutdown_output(struct sc_conn *pub)
{
    struct sn_conn *c = SC_CONTAINER_OF(pub, struct sn_conn, pub);
    if (c->closing)
        return sc_make_error(-ECONNABORTED);
    if (c->reset)
        return sc_make_error(-ECONNRESET);
    send_fin(sn_here_if(), c);
    return sc_make_ready(0);
}

static int sn_set_nodelay(struct sc_conn *c, bool on)
{
    (void)c, (void)on; /* segments leave when written: there is no delay to turn off */
    return 0;
}

static int sn_set_keepalive(struct sc_conn *c, bool on)
{
    (void)c, (void)on; /* no idle connection dies in the sim: nothing to probe */
    return 0;
}

static const struct sc__conn_ops sn_conn_ops = {
    .close = sn_close,
    .shutdown_output = sn_shutdown_output,
    .set_nodelay = sn_set_nodelay,
    .set_keepalive = sn_set_keepalive,
};

/* ------------------------------------------------------------------ */
/* The streams' source and sink                                         */
/* ------------------------------------------------------------------ */

static size_t copy_out(struct sn_conn *c, char *buf, size_t len)
{
    size_t done = 0;
    while (done < len && c->rx_head) {
        struct sn_chunk *k = c->rx_head;
        size_t n = k->len - k->off;
        if (n > len - done)
            n = len - done;
        memcpy(buf + done, k->data + k->off, n);
        k->off += (uint32_t)n;
        done += n;
        if (k->off == k->len) {
            c->rx_head = k->next;
            if (!c->rx_head)
                c->rx_tail = NULL;
            free(k);
        }
    }
    c->rx_bytes -= done;
    return done;
}

/* The app has read n more bytes: every quarter window, tell the sender. */
static void consumed(struct sn_conn *c, size_t n)
{
    c->consumed += n;
    if (c->closing || c->reset || c->fin_rcvd || c->state != SN_OPEN)
        return;
    if (c->consumed - c->advertised >= SN_WINDOW / 4) {
        c->advertised = c->consumed;
        if (ctl_push(sn_here_if(), c, SN_WND, c->consumed) != 0)
            sc__simnet_end_reset(c, true); /* a lost update would stall the sender for good */
    }
}

static struct sc_future sn_src_read(void *impl, char *buf, size_t len)
{
    struct sn_conn *c = impl;
    if (c->closing)
        return sc_make_error(-ECONNABORTED);
    if (c->reset)
        return sc_make_error(-ECONNRESET);
    if (c->rd_wait)
        return sc_make_error(-EBUSY);
    if (len == 0)
        return sc_make_ready(0);
    if (c->rx_bytes) {
        size_t n = copy_out(c, buf, len);
        consumed(c, n);
        return sc_make_ready((intptr_t)n);
    }
    if (c->fin_rcvd)
        return sc_make_ready(0);
    sc_promise_init(&c->rd_p);
    struct sc_future f = sc_promise_get_future(&c->rd_p);
    if (!sc_future_available(f)) {
        c->rd_wait = true;
        c->rd_buf = buf;
        c->rd_len = len;
    }
    return f;
}

static void sn_src_close(void *impl)
{
    (void)impl; /* the end goes with its connection (sn_close) */
}

static struct sc_future sn_sink_write(void *impl, const char *buf, size_t len)
{
    struct sn_conn *c = impl;
    struct sn_shard *s = sn_here_if();
    if (c->closing)
        return sc_make_error(-ECONNABORTED);
    if (c->reset)
        return sc_make_error(-ECONNRESET);
    if (c->fin_sent)
        return sc_make_error(-EPIPE);
    if (c->wr_wait)
        return sc_make_error(-EBUSY);
    if (len == 0)
        return sc_make_ready(0);
    struct sc_config *cfg = &sc__shard()->cfg;
    s->st.sends++;
    if (sn_chance_ppm(s, cfg->sim_net_reset_ppm)) {
        s->st.resets++;
        sc__simnet_end_reset(c, true);
        return sc_make_error(-ECONNRESET);
    }
    if (sn_chance_ppm(s, cfg->sim_net_stall_ppm)) {
        s->st.stalls++;
        c->wr_hold = SN_STALL_MIN + sn_below(s, SN_STALL_MAX - SN_STALL_MIN + 1);
    }
    c->wr_buf = buf;
    c->wr_left = len;
    int r = push_data(s, c);
    if (r != 0) {
        c->wr_left = 0;
        return sc_make_error(r);
    }
    if (!c->wr_left)
        return sc_make_ready(0);
    sc_promise_init(&c->wr_p);
    struct sc_future f = sc_promise_get_future(&c->wr_p);
    if (sc_future_available(f))
        c->wr_left = 0; /* no memory for the wait: the write fails, the rest is not sent */
    else
        c->wr_wait = true;
    return f;
}

static struct sc_future sn_sink_close(void *impl)
{
    struct sn_conn *c = impl;
    if (c->closing)
        return sc_make_ready(0); /* the connection's close does the rest */
    if (c->reset)
        return sc_make_error(-ECONNRESET);
    send_fin(sn_here_if(), c);
    return sc_make_ready(0);
}

static const struct sc_source_ops sn_source_ops = {.read = sn_src_read, .close = sn_src_close};
static const struct sc_sink_ops sn_sink_ops = {.write = sn_sink_write, .close = sn_sink_close};

/* ------------------------------------------------------------------ */
/* Receiving: a segment arrives on the peer's shard                     */
/* ------------------------------------------------------------------ */

static intptr_t rx_data(struct sn_conn *c, const struct sn_wire *w)
{
    if (c->closing) {
        /* data for an end its app closed: a reset, both ways */
        sc__simnet_end_reset(c, false);
        return SN_GONE;
    }
    if (c->reset)
        return 0; /* our RST is on its way to the sender */
    SC_ASSERT(w->val == c->rcv_nxt, "sim net: segment at offset %llu, expected %llu",
              (unsigned long long)w->val, (unsigned long long)c->rcv_nxt);
    struct sn_chunk *k = malloc(sizeof *k + w->len);
    if (!k) {
        sc__simnet_end_reset(c, false); /* the bytes cannot be kept: the stream is broken */
        return SN_GONE;
    }
    k->next = NULL;
    k->len = w->len;
    k->off = 0;
    memcpy(k->data, w->data, w->len);
    if (c->rx_tail)
        c->rx_tail->next = k;
    else
        c->rx_head = k;
    c->rx_tail = k;
    c->rx_bytes += w->len;
    c->rcv_nxt += w->len;
    if (c->rd_wait) {
        c->rd_wait = false;
        size_t n = copy_out(c, c->rd_buf, c->rd_len);
        sc_promise_set_value(&c->rd_p, (intptr_t)n);
        consumed(c, n);
    }
    return 0;
}

static void rx_window(struct sn_shard *s, struct sn_conn *c, uint64_t val)
{
    if (c->reset || c->closing)
        return;
    SC_ASSERT(val <= c->snd_nxt, "sim net: window update past what was sent");
    if (val > c->snd_acked)
        c->snd_acked = val;
    if (!c->wr_wait)
        return;
    if (push_data(s, c) != 0) {
        sc__simnet_end_reset(c, true);
        return;
    }
    if (c->wr_left)
        return;
    c->wr_wait = false;
    sc_promise_set_value(&c->wr_p, 0);
    if (c->fin_after_write) {
        c->fin_after_write = false;
        if (ctl_push(s, c, SN_FIN, c->snd_nxt) != 0)
            sc__simnet_end_reset(c, false);
    }
}

/* Runs on the receiving end's shard. */
static struct sc_future deliver(void *cap)
{
    const struct sn_wire *w = cap;
    struct sn_shard *s = sn_here_if();
    struct sn_conn *c = sn_end_lookup(s, w->to);
    sc_trace((uint64_t)w->kind << 56 ^ (uint64_t)w->len << 32 ^ w->val);
    if (!c)
        return sc_make_ready(w->kind == SN_DATA ? SN_GONE : 0);
    switch (w->kind) {
    case SN_DATA:
        return sc_make_ready(rx_data(c, w));
    case SN_FIN:
        c->fin_rcvd = true;
        if (c->rd_wait && !c->rx_bytes) {
            c->rd_wait = false;
            sc_promise_set_value(&c->rd_p, 0);
        }
        break;
    case SN_RST:
        sc__simnet_end_reset(c, false);
        break;
    case SN_WND:
        rx_window(s, c, w->val);
        break;
    }
    return sc_make_ready(0);
}

/* ------------------------------------------------------------------ */
/* The end of a run                                                     */
/* ------------------------------------------------------------------ */

/* Release an end's streams at the end of a run, as far as they let us. */
static void streams_drop(struct sn_conn *c)
{
    if (!c->app || c->released)
        return;
    c->closing = true; /* the sink refuses what a final flush would send */
    if (!c->pub.in.busy && c->pub.in.buf)
        sc_istream_close(&c->pub.in);
    if (!c->pub.out.busy && !c->pub.out.closed)
        sc_future_ignore(sc_ostream_close(&c->pub.out));
}

void sc__simnet_conn_fini(struct sn_shard *s)
{
    for (uint32_t i = 0; i < s->nslots; i++) {
        struct sn_conn *c = s->slots[i].c;
        if (c) {
            streams_drop(c);
            sc__simnet_end_free(s, c);
        }
    }
    free(s->slots);
    s->slots = NULL;
    s->nslots = s->cap_slots = 0;
}
