/*
 * net_udp.c — datagrams on the simulated network. A datagram waits out the
 * delay on the sender's shard; then every shard is asked who holds a channel
 * on its destination, and one of them (by the seed) gets a copy. Lost with
 * the reset fault's probability, held with the stall's, lost while the
 * network is cut, dropped when the receiving channel's queue is full.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/smp.h"
#include "sim/simnet_impl.h"

struct sn_chan {
    struct sc_udp_chan pub;
    struct sn_link link;
    struct sc_datagram **q; /* a ring of SN_UDP_QLEN */
    uint32_t qhead, qlen;
    size_t qbytes;
    bool rcv_wait;
    struct sc_promise rcv_p;
};

/* A datagram on the wire. */
struct sn_dwire {
    struct sc_inet_addr to, from;
    uint32_t len;
    char data[];
};

/* A datagram waiting for its delivery time, then for the answers to "who
 * holds this address?"; its wire follows it in memory. */
struct sn_pkt {
    struct sn_link link;
    struct sc_timer timer;
    uint32_t replies;
    uint32_t pad;
    uint64_t set[SN_SET_WORDS];
};

/* ------------------------------------------------------------------ */
/* UDP                                                                  */
/* ------------------------------------------------------------------ */

static struct sn_chan *chan_find(struct sn_shard *s, struct sc_inet_addr dst)
{
    if (!s)
        return NULL;
    for (struct sn_link *l = s->chans.next; l != &s->chans; l = l->next) {
        struct sn_chan *ch = SN_ENTRY(l, struct sn_chan, link);
        if (sn_addr_match(ch->pub.local, dst))
            return ch;
    }
    return NULL;
}

static bool chan_conflict(struct sn_shard *s, struct sc_inet_addr a)
{
    for (struct sn_link *l = s->chans.next; l != &s->chans; l = l->next)
        if (sn_addr_overlap(SN_ENTRY(l, struct sn_chan, link)->pub.local, a))
            return true;
    return false;
}

int sc__simnet_udp_open(const struct sc_inet_addr *local, struct sc_udp_chan **out)
{
    if (!local || !out)
        return -EINVAL;
    struct sn_shard *s = sc__simnet_here();
    if (!s)
        return -ENOMEM;
    struct sc_inet_addr a = *local;
    if (a.port == 0) {
        for (uint32_t tries = 0; tries < SN_PORT_N; tries++) {
            a.port = sn_pick_port(s);
            if (!chan_conflict(s, a))
                break;
        }
    }
    if (chan_conflict(s, a))
        return -EADDRINUSE;
    struct sn_chan *ch = calloc(1, sizeof *ch);
    struct sc_datagram **q = calloc(SN_UDP_QLEN, sizeof *q);
    if (!ch || !q) {
        free(ch);
        free(q);
        return -ENOMEM;
    }
    ch->pub.stack = &sc__sim_stack;
    ch->pub.local = a;
    ch->q = q;
    sc_promise_init(&ch->rcv_p);
    sn_link_add_tail(&s->chans, &ch->link);
    *out = &ch->pub;
    return 0;
}

static struct sn_dwire *pkt_wire(struct sn_pkt *p)
{
    return (struct sn_dwire *)(p + 1);
}

static void pkt_free(struct sn_pkt *p)
{
    sc_timer_cancel(&p->timer);
    sn_link_del(&p->link);
    free(p);
}

/* On the receiving shard: queue the datagram for the channel's reader. */
static struct sc_future udp_arrive(void *cap)
{
    const struct sn_dwire *w = cap;
    struct sn_shard *s = sn_here_if();
    struct sn_chan *ch = chan_find(s, w->to);
    sc_trace(0x75647000ull ^ (uint64_t)w->len << 32 ^ w->from.port);
    if (!ch || ch->qlen == SN_UDP_QLEN || ch->qbytes + w->len > SN_UDP_QBYTES) {
        if (s)
            s->st.dropped++; /* closed since it answered, or a full queue */
        return sc_make_ready(0);
    }
    struct sc_datagram *d = malloc(sizeof *d + w->len);
    if (!d) {
        s->st.dropped++;
        return sc_make_ready(0);
    }
    d->from = w->from;
    d->len = w->len;
    memcpy(d->data, w->data, w->len);
    if (ch->rcv_wait) {
        ch->rcv_wait = false;
        sc_promise_set_value(&ch->rcv_p, (intptr_t)d);
        return sc_make_ready(0);
    }
    ch->q[(ch->qhead + ch->qlen++) % SN_UDP_QLEN] = d;
    ch->qbytes += d->len;
    return sc_make_ready(0);
}

static struct sc_future udp_query(void *cap)
{
    return sc_make_ready(chan_find(sn_here_if(), *(const struct sc_inet_addr *)cap) != NULL);
}

struct pkt_cap {
    struct sn_pkt *p; /* a packet stays on its shard's list until routed: a pointer is safe */
    unsigned shard;
};

static struct sc_future pkt_gathered(void *cap, intptr_t v, int err)
{
    const struct pkt_cap *g = cap;
    struct sn_pkt *p = g->p;
    if (!err && v)
        sn_set_add(p->set, g->shard);
    if (--p->replies)
        return sc_make_ready(0);
    struct sn_shard *s = sn_here_if();
    unsigned n = sn_set_count(p->set);
    if (n == 0) {
        s->st.dropped++; /* nobody holds the address: lost, as UDP loses it */
    } else {
        struct sn_dwire *w = pkt_wire(p);
        unsigned t = sn_set_nth(p->set, (unsigned)sn_below(s, n));
        struct sc_future f = sc_smp_submit_to(t, udp_arrive, w, sizeof *w + w->len);
        if (sc_future_available(f) && sc_future_failed(f))
            s->st.dropped++;
        sc_future_ignore(f);
    }
    pkt_free(p);
    return sc_make_ready(0);
}

static void pkt_fire(void *arg)
{
    struct sn_pkt *p = arg;
    struct sn_shard *s = sn_here_if();
    if (s->cut) {
        s->st.dropped++;
        pkt_free(p);
        return;
    }
    unsigned n = sc_shard_count();
    p->replies = n;
    struct sc_inet_addr dst = pkt_wire(p)->to;
    for (unsigned i = 0; i < n; i++) {
        struct pkt_cap g = {p, i};
        struct sc_future f = sc_smp_submit_to(i, udp_query, &dst, sizeof dst);
        f = sc_then_wrapped(f, pkt_gathered, &g, sizeof g);
        if (sc_future_available(f) && sc_future_failed(f)) /* it never ran: count it */
            pkt_gathered(&g, 0, sc_future_get(f, NULL));
        else
            sc_future_ignore(f);
    }
}

struct sc_future sc__simnet_udp_send(struct sc_udp_chan *pub, const struct sc_inet_addr *to,
                                     const void *buf, size_t len)
{
    struct sn_chan *ch = SC_CONTAINER_OF(pub, struct sn_chan, pub);
    if (!to || to->port == 0 || (!buf && len))
        return sc_make_error(-EINVAL);
    if (len > SN_UDP_MAX)
        return sc_make_error(-EMSGSIZE);
    struct sn_shard *s = sn_here_if();
    struct sc_config *cfg = &sc__shard()->cfg;
    s->st.datagrams++;
    s->st.bytes += len;
    if (sn_chance_ppm(s, cfg->sim_net_reset_ppm)) {
        s->st.dropped++; /* the transport's loss: gone without a word */
        return sc_make_ready(0);
    }
    uint64_t extra = 0;
    if (sn_chance_ppm(s, cfg->sim_net_stall_ppm)) {
        s->st.stalls++;
        extra = SN_STALL_MIN + sn_below(s, SN_STALL_MAX - SN_STALL_MIN + 1);
    }
    struct sn_pkt *p = calloc(1, sizeof *p + sizeof(struct sn_dwire) + len);
    if (!p)
        return sc_make_error(-ENOMEM);
    struct sn_dwire *w = pkt_wire(p);
    w->to = sn_norm(*to);
    w->from = sn_norm(ch->pub.local);
    w->len = (uint32_t)len;
    if (len)
        memcpy(w->data, buf, len);
    sn_link_init(&p->link);
    sc_timer_init(&p->timer, pkt_fire, p);
    if (sc_timer_arm(&p->timer, sc_now() + extra + sn_delay(s)) != 0) {
        free(p);
        return sc_make_error(-ENOMEM);
    }
    sn_link_add_tail(&s->pkts, &p->link);
    return sc_make_ready(0);
}

struct sc_future sc__simnet_udp_recv(struct sc_udp_chan *pub)
{
    struct sn_chan *ch = SC_CONTAINER_OF(pub, struct sn_chan, pub);
    if (ch->rcv_wait)
        return sc_make_error(-EBUSY);
    if (ch->qlen) {
        struct sc_datagram *d = ch->q[ch->qhead];
        ch->qhead = (ch->qhead + 1) % SN_UDP_QLEN;
        ch->qlen--;
        ch->qbytes -= d->len;
        return sc_make_ready_ptr(d);
    }
    sc_promise_init(&ch->rcv_p);
    struct sc_future f = sc_promise_get_future(&ch->rcv_p);
    ch->rcv_wait = !sc_future_available(f);
    return f;
}

static void chan_free(struct sn_chan *ch)
{
    while (ch->qlen) {
        free(ch->q[ch->qhead]);
        ch->qhead = (ch->qhead + 1) % SN_UDP_QLEN;
        ch->qlen--;
    }
    sn_link_del(&ch->link);
    free(ch->q);
    free(ch);
}

void sc__simnet_udp_close(struct sc_udp_chan *pub)
{
    struct sn_chan *ch = SC_CONTAINER_OF(pub, struct sn_chan, pub);
    if (ch->rcv_wait)
        sc_promise_set_error(&ch->rcv_p, -ECONNABORTED);
    chan_free(ch);
}

void sc__simnet_udp_fini(struct sn_shard *s)
{
    while (s->chans.next != &s->chans)
        chan_free(SN_ENTRY(s->chans.next, struct sn_chan, link));
    while (s->pkts.next != &s->pkts)
        pkt_free(SN_ENTRY(s->pkts.next, struct sn_pkt, link));
}
