/*
 * net.c — the simulated network: an in-memory transport between the
 * endpoints of the one-process simulator, behind the network-stack interface
 * (net/net_impl.h). net/net.c sends every call here when the run is in the
 * sim world.
 *
 * Shared nothing. Each shard keeps its own part of the network in a struct
 * sn_shard: the connection ends, listeners and UDP channels made on it, and
 * its own seeded random stream. One shard never touches another's part:
 * whatever crosses shards (a segment, a connection attempt, a question) is a
 * message sent with sc_smp_submit_to(), run by the receiving shard on its own
 * state. Memory goes back to the shard that allocated it (a message's copy of
 * its payload is freed by smp.c on the sender's side; the receiver copies
 * what it keeps into memory of its own). So the code would be correct if the
 * shards were threads, though the simulator runs them all on one.
 *
 * Connections. A connection is two ends, each a struct sn_conn on its own
 * shard, naming each other by a reference (shard, slot, generation) into the
 * owning shard's table of ends; a message for an end that is gone finds a
 * stale generation and is dropped (or, for data, answered with a reset, as a
 * kernel answers data for a closed socket). Each end sends through one
 * ordered queue of segments (data, FIN, RST, window updates) with a delivery
 * time each: now + the one-way delay + seeded jitter, never earlier than the
 * segment before it, so a connection's bytes arrive in order while different
 * connections interleave differently for every seed. One timer per end
 * delivers whatever is due.
 *
 * Flow control. The receiver counts the bytes its app has read and tells the
 * sender (a window update) every quarter window; a sender keeps at most one
 * window (64 KiB) unread by the peer's app, so a writer whose peer does not
 * read waits instead of buffering without bound.
 *
 * Finding a listener. listen() is local to its shard: no shard knows who else
 * listens. A connect waits one delay (the SYN's flight), then asks every shard
 * whether it listens on the address; the answers are exact because each
 * shard answers from its own table, after everything it did before. With no
 * listener the connect fails with -ECONNREFUSED. With several, the default
 * spreads connections over them with the connecting shard's seeded stream;
 * if one of them listens with accept_and_forward, the earliest such listener
 * (by the virtual time it called listen, then by shard number) takes every
 * connection and hands them round-robin to all the listening shards.
 *
 * Closing (the choice the API leaves open, made as Linux makes it): closing
 * an end whose received data the app has not read sends a reset (the peer's
 * next read or write fails with -ECONNRESET); otherwise a FIN follows the
 * data already sent, and the peer reads end of stream. Data that arrives at
 * an end after its app closed it is answered with a reset too. A closed end
 * stays in its shard's table until its queue is delivered.
 *
 * Datagrams travel with the same delay, each one alone: when it is due, every
 * shard is asked who holds a channel on the destination, and one of them gets
 * it (several shards may bind the same address in the sim, as with
 * SO_REUSEPORT; binding it twice on one shard is -EADDRINUSE).
 *
 * The files: this one holds the stack, each shard's part of the network,
 * listening and connecting, the test hooks and the end of a run;
 * net_conn.c one connection (its queues, window, faults, close and
 * streams); net_udp.c datagrams; simnet_impl.h what they share.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/smp.h"
#include "sim/sim_impl.h"
#include "sim/simnet_impl.h"

struct sn_listener {
    struct sc_server_socket pub;
    struct sn_link link;
    bool forward; /* accept_and_forward */
    uint64_t stamp;
    uint32_t backlog, queued;
    uint32_t rr; /* forwarding: the next shard to try */
    struct sn_conn *aq_head, *aq_tail;
    bool acc_wait;
    struct sc_promise acc_p;
};

/* ------------------------------------------------------------------ */
/* The shard's part of the network                                     */
/* ------------------------------------------------------------------ */

/* Made on the shard's first use of the network; NULL when out of memory. */
struct sn_shard *sc__simnet_here(void)
{
    struct sc__shard *sh = sc__shard();
    struct sn_shard *s = sh->sim_net;
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    sc__rng_seed(s->rng,
                 sh->cfg.seed ^ ((uint64_t)sh->id << 32) ^ 0x73696d6e6574ull /* "simnet" */);
    sn_link_init(&s->listeners);
    sn_link_init(&s->chans);
    sn_link_init(&s->pkts);
    sn_link_init(&s->held);
    s->free_head = SN_NONE;
    sh->sim_net = s;
    return s;
}

/* ------------------------------------------------------------------ */
/* Listening and accepting                                              */
/* ------------------------------------------------------------------ */

static struct sn_listener *listener_find(struct sn_shard *s, struct sc_inet_addr dst)
{
    if (!s)
        return NULL;
    for (struct sn_link *l = s->listeners.next; l != &s->listeners; l = l->next) {
        struct sn_listener *ls = SN_ENTRY(l, struct sn_listener, link);
        if (sn_addr_match(ls->pub.local, dst))
            return ls;
    }
    return NULL;
}

static bool listener_conflict(struct sn_shard *s, struct sc_inet_addr a)
{
    for (struct sn_link *l = s->listeners.next; l != &s->listeners; l = l->next)
        if (sn_addr_overlap(SN_ENTRY(l, struct sn_listener, link)->pub.local, a))
            return true;
    return false;
}

static int sn_listen(const struct sc_listen_opts *o, struct sc_server_socket **out)
{
    if (!o || !out || o->backlog < 0)
        return -EINVAL;
    struct sn_shard *s = sc__simnet_here();
    if (!s)
        return -ENOMEM;
    struct sc_inet_addr a = o->addr;
    if (a.port == 0) {
        for (uint32_t tries = 0; tries < SN_PORT_N; tries++) {
            a.port = sn_pick_port(s);
            if (!listener_conflict(s, a))
                break;
        }
    }
    if (listener_conflict(s, a))
        return -EADDRINUSE;
    struct sn_listener *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->pub.stack = &sc__sim_stack;
    l->pub.local = a;
    l->forward = o->accept_and_forward;
    l->stamp = sc_now();
    l->backlog = o->backlog ? (uint32_t)o->backlog : SN_BACKLOG;
    sc_promise_init(&l->acc_p);
    sn_link_add_tail(&s->listeners, &l->link);
    *out = &l->pub;
    return 0;
}

/* Give a queued end to the app: its streams are made now. */
static struct sc_future hand_over(struct sn_conn *c)
{
    int r = sc__simnet_streams_init(c);
    if (r != 0) {
        sc__simnet_end_abort(c);
        return sc_make_error(r);
    }
    return sc_make_ready_ptr(&c->pub);
}

static struct sc_future sn_accept(struct sc_server_socket *ss)
{
    struct sn_listener *l = SC_CONTAINER_OF(ss, struct sn_listener, pub);
    if (l->acc_wait)
        return sc_make_error(-EBUSY);
    if (l->aq_head) {
        struct sn_conn *c = l->aq_head;
        l->aq_head = c->aq_next;
        if (!l->aq_head)
            l->aq_tail = NULL;
        l->queued--;
        return hand_over(c);
    }
    sc_promise_init(&l->acc_p);
    struct sc_future f = sc_promise_get_future(&l->acc_p);
    l->acc_wait = !sc_future_available(f);
    return f;
}

static void sn_server_close(struct sc_server_socket *ss)
{
    struct sn_listener *l = SC_CONTAINER_OF(ss, struct sn_listener, pub);
    if (l->acc_wait)
        sc_promise_set_error(&l->acc_p, -ECONNABORTED);
    while (l->aq_head) {
        struct sn_conn *c = l->aq_head;
        l->aq_head = c->aq_next;
        sc__simnet_end_abort(c); /* connected, never accepted: the client is reset */
    }
    sn_link_del(&l->link);
    free(l);
}

/* A connection attempt, as it reaches a listening shard. */
struct syn {
    struct sc_inet_addr dst;    /* where the client connected */
    struct sc_inet_addr from;   /* the client's address */
    struct sn_ref client;       /* the client's end */
    uint64_t set[SN_SET_WORDS]; /* the shards that listen (for a forwarder) */
    bool forward;               /* sent to the forwarder, which picks the shard */
};

static struct sc_future syn_arrive(void *cap);

/* The forwarder's choice: the next listening shard after the last one. */
static unsigned forward_pick(struct sn_listener *l, const uint64_t *set)
{
    unsigned n = sc_shard_count();
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (l->rr + k) % n;
        if (sn_set_has(set, i)) {
            l->rr = (i + 1) % n;
            return i;
        }
    }
    return sc_this_shard();
}

static struct sc_future syn_arrive(void *cap)
{
    const struct syn *y = cap;
    struct sn_shard *s = sc__simnet_here();
    struct sn_listener *l = listener_find(s, y->dst);
    if (!l)
        return sc_make_error(-ECONNREFUSED); /* it closed since it answered */
    if (y->forward && l->forward) {
        unsigned t = forward_pick(l, y->set);
        if (t != sc_this_shard()) {
            struct syn y2 = *y;
            y2.forward = false;
            return sc_smp_submit_to(t, syn_arrive, &y2, sizeof y2);
        }
    }
    if (l->queued >= l->backlog)
        return sc_make_error(-ECONNREFUSED); /* a full accept queue refuses (Linux would drop) */
    struct sn_conn *c = sc__simnet_end_new(s);
    if (!c)
        return sc_make_error(-ENOMEM);
    c->state = SN_OPEN;
    c->peer = y->client;
    c->pub.local = (struct sc_inet_addr){.ip = l->pub.local.ip ? l->pub.local.ip : y->dst.ip,
                                         .port = l->pub.local.port};
    c->pub.peer = y->from;
    intptr_t answer = sn_ref_pack(c->self);
    if (l->acc_wait) {
        l->acc_wait = false;
        struct sc_future f = hand_over(c);
        intptr_t v = 0;
        int err = sc_future_get(f, &v);
        if (err)
            sc_promise_set_error(&l->acc_p, err);
        else
            sc_promise_set_value(&l->acc_p, v);
    } else {
        if (l->aq_tail)
            l->aq_tail->aq_next = c;
        else
            l->aq_head = c;
        l->aq_tail = c;
        l->queued++;
    }
    return sc_make_ready(answer);
}

/* ------------------------------------------------------------------ */
/* Connecting                                                           */
/* ------------------------------------------------------------------ */

/* Free a connecting end and fail its connect. */
static void connect_fail(struct sn_conn *c, int err)
{
    struct sn_shard *s = sn_here_if();
    if (err == -ECONNREFUSED)
        s->st.refused++;
    sc_promise_set_error(&c->conn_p, err);
    sc__simnet_end_free(s, c);
}

static struct sc_future connect_answered(void *cap, intptr_t v, int err)
{
    struct sn_conn *c = *(struct sn_conn **)cap; /* connecting ends stay put: a pointer is safe */
    if (err) {
        connect_fail(c, err);
        return sc_make_ready(0);
    }
    c->peer = sn_ref_unpack(v);
    c->state = SN_OPEN;
    int r = sc__simnet_streams_init(c);
    if (r != 0) {
        sc_promise_set_error(&c->conn_p, r);
        sc__simnet_end_abort(c);
        return sc_make_ready(0);
    }
    sc_promise_set_value(&c->conn_p, (intptr_t)&c->pub);
    return sc_make_ready(0);
}

/* Every shard has answered: send the SYN, or refuse. */
static void connect_decide(struct sn_conn *c)
{
    struct sn_shard *s = sn_here_if();
    unsigned n = sn_set_count(c->set);
    if (n == 0) {
        connect_fail(c, -ECONNREFUSED);
        return;
    }
    struct syn y = {.dst = c->pub.peer, .from = c->pub.local, .client = c->self};
    memcpy(y.set, c->set, sizeof y.set);
    unsigned target;
    if (c->fwd != SN_NONE) {
        target = c->fwd;
        y.forward = true;
    } else {
        target = sn_set_nth(c->set, (unsigned)sn_below(s, n));
    }
    struct sc_future f = sc_smp_submit_to(target, syn_arrive, &y, sizeof y);
    f = sc_then_wrapped(f, connect_answered, &c, sizeof c);
    if (sc_future_available(f) && sc_future_failed(f)) {
        /* no memory to wait for the answer (connect_answered never fails) */
        connect_fail(c, sc_future_get(f, NULL));
        return;
    }
    sc_future_ignore(f);
}

/* Each shard's answer: 0, or (stamp << 2 | forward << 1 | 1). */
static struct sc_future listen_query(void *cap)
{
    const struct sc_inet_addr *dst = cap;
    struct sn_listener *l = listener_find(sn_here_if(), *dst);
    if (!l)
        return sc_make_ready(0);
    return sc_make_ready((intptr_t)(l->stamp << 2 | (uint64_t)l->forward << 1 | 1));
}

struct gather_cap {
    struct sn_conn *c;
    unsigned shard;
};

static struct sc_future connect_gathered(void *cap, intptr_t v, int err)
{
    const struct gather_cap *g = cap;
    struct sn_conn *c = g->c;
    if (!err && v) {
        uint64_t u = (uint64_t)v;
        sn_set_add(c->set, g->shard);
        uint64_t stamp = u >> 2;
        if ((u & 2) && (c->fwd == SN_NONE || stamp < c->fwd_stamp ||
                        (stamp == c->fwd_stamp && g->shard < c->fwd))) {
            c->fwd = g->shard;
            c->fwd_stamp = stamp;
        }
    }
    if (--c->replies == 0)
        connect_decide(c);
    return sc_make_ready(0);
}

/* The SYN has flown: ask every shard whether it listens. */
void sc__simnet_connect_scatter(struct sn_conn *c)
{
    unsigned n = sc_shard_count();
    c->scattered = true;
    c->replies = n;
    struct sc_inet_addr dst = c->pub.peer;
    for (unsigned i = 0; i < n; i++) {
        struct gather_cap g = {c, i};
        struct sc_future f = sc_smp_submit_to(i, listen_query, &dst, sizeof dst);
        /* the last answer may free c (a refusal): nothing touches c below */
        f = sc_then_wrapped(f, connect_gathered, &g, sizeof g);
        if (sc_future_available(f) && sc_future_failed(f)) /* it never ran: count it */
            connect_gathered(&g, 0, sc_future_get(f, NULL));
        else
            sc_future_ignore(f);
    }
}

static struct sc_future sn_connect(const struct sc_inet_addr *to)
{
    if (!to || to->port == 0)
        return sc_make_error(-EINVAL);
    struct sn_shard *s = sc__simnet_here();
    if (!s)
        return sc_make_error(-ENOMEM);
    struct sn_conn *c = sc__simnet_end_new(s);
    if (!c)
        return sc_make_error(-ENOMEM);
    c->state = SN_CONNECTING;
    c->pub.peer = sn_norm(*to);
    c->pub.local = (struct sc_inet_addr){.ip = c->pub.peer.ip, .port = sn_pick_port(s)};
    struct sc_future f = sc_promise_get_future(&c->conn_p);
    if (sc_future_available(f)) {
        sc__simnet_end_free(s, c);
        return f;
    }
    if (sc_timer_arm(&c->tx_timer, sc_now() + sn_delay(s)) != 0) {
        sc_promise_set_error(&c->conn_p, -ENOMEM);
        sc__simnet_end_free(s, c);
    }
    return f;
}

/* ------------------------------------------------------------------ */
/* The hooks (sim/simnet.h) and the end of a run                        */
/* ------------------------------------------------------------------ */

void sc_sim_net_stats(struct sc_sim_net_stats *out)
{
    struct sn_shard *s = sc_is_simulated() ? sn_here_if() : NULL;
    if (s)
        *out = s->st;
    else
        memset(out, 0, sizeof *out);
}

static struct sc_future partition_here(void *cap)
{
    bool on = *(const bool *)cap;
    struct sn_shard *s = sc__simnet_here();
    if (!s)
        return sc_make_error(-ENOMEM);
    s->cut = on;
    if (on)
        return sc_make_ready(0);
    /* healed: what was held goes out, in the order it was held */
    while (s->held.next != &s->held) {
        struct sn_conn *c = SN_ENTRY(s->held.next, struct sn_conn, hold_link);
        sn_link_del(&c->hold_link);
        c->held = false;
        if (c->state == SN_CONNECTING)
            sc__simnet_tx_arm(c, sc_now());
        else
            sc__simnet_tx_kick(c);
    }
    return sc_make_ready(0);
}

struct sc_future sc_sim_net_partition(bool on)
{
    if (!sc_is_simulated())
        return sc_make_error(-ENOTSUP);
    return sc_smp_invoke_on_all(partition_here, &on, sizeof on);
}

void sc__sim_net_shard_fini(struct sc__shard *sh)
{
    struct sn_shard *s = sh->sim_net;
    if (!s)
        return;
    sc__simnet_conn_fini(s);
    while (s->listeners.next != &s->listeners) {
        struct sn_listener *l = SN_ENTRY(s->listeners.next, struct sn_listener, link);
        sn_link_del(&l->link);
        free(l);
    }
    sc__simnet_udp_fini(s);
    free(s);
    sh->sim_net = NULL;
}

const struct sc__net_stack sc__sim_stack = {
    .name = "sim",
    .listen = sn_listen,
    .accept = sn_accept,
    .server_close = sn_server_close,
    .connect = sn_connect,
    .udp_open = sc__simnet_udp_open,
    .udp_send = sc__simnet_udp_send,
    .udp_recv = sc__simnet_udp_recv,
    .udp_close = sc__simnet_udp_close,
};
