/*
 * simnet_impl.h — what the files of the simulated network share (sim/net.c:
 * the stack, listening and connecting; sim/net_conn.c: one connection's
 * two pipes and its streams; sim/net_udp.c: datagrams). Not a public header.
 * Everything here is one shard's: struct sn_shard is the network's state on
 * the calling shard, and no function touches another shard's.
 */
#ifndef SC_SIMNET_IMPL_H
#define SC_SIMNET_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "core/shard_impl.h"
#include "net/net_impl.h"
#include "sim/simnet.h"

#define SN_WINDOW     (64u * 1024u) /* unread bytes a sender may have out, per direction */
#define SN_MSS        (16u * 1024u) /* the largest segment */
#define SN_BACKLOG    1024          /* accept queue length when the app gives 0 */
#define SN_UDP_MAX    65507u        /* the largest datagram IPv4 can carry */
#define SN_UDP_QLEN   256u          /* datagrams a channel holds unread ... */
#define SN_UDP_QBYTES (1u << 20)    /* ... and bytes */
#define SN_STALL_MIN  SC_MS(10)
#define SN_STALL_MAX  SC_MS(100)
#define SN_RETRY_NS   SC_US(1) /* a segment that could not be sent (no memory) tries again */
#define SN_PORT_LO    32768u   /* ports the stack chooses: 32768..60999, as Linux */
#define SN_PORT_N     28232u
#define SN_LOOPBACK   0x7f000001u
#define SN_SET_WORDS  ((SC_MAX_SHARDS + 63) / 64)
#define SN_MAX_SLOTS  (1u << 24) /* ends per shard: a reference packs the slot in 24 bits */
#define SN_GEN_MASK   0x7fffffu
#define SN_NONE       UINT32_MAX

/* A circular doubly linked list with a sentinel: insertion order is the
 * iteration order, never an address. */
struct sn_link {
    struct sn_link *prev, *next;
};

/* Which end, on which shard (the generation tells a reused slot apart). */
struct sn_ref {
    uint32_t shard, slot, gen;
};

struct sn_seg;
struct sn_chunk;

enum sn_state { SN_CONNECTING, SN_OPEN };

struct sn_conn {
    struct sc_conn pub; /* first: net.c reaches the streams through it */
    struct sn_ref self, peer;
    uint8_t state;
    bool app;        /* handed to the app: its streams are set up */
    bool reset;      /* reset (sent or received): reads and writes fail */
    bool fin_sent;   /* no more writes; our FIN is queued (or follows the pending write) */
    bool fin_rcvd;   /* the peer's FIN arrived: reads end once the queue is empty */
    bool closing;    /* close() was called (or the stack aborts the end) */
    bool released;   /* closing: the streams are gone, only the queue may be left */
    bool close_wait; /* close_p was handed out */
    bool in_fire;    /* tx_fire() runs: nobody else frees or re-arms */
    bool held;       /* on the shard's held list (the network is cut) */
    bool scattered;  /* connecting: the question went out */
    bool fin_after_write;
    struct sn_link hold_link;

    /* connecting */
    uint32_t replies; /* answers still to come */
    uint32_t fwd;     /* the forwarding listener's shard, or SN_NONE */
    uint64_t fwd_stamp;
    uint64_t set[SN_SET_WORDS]; /* shards that listen on the address */
    struct sc_promise conn_p;

    /* in a listener's accept queue */
    struct sn_conn *aq_next;

    /* receive side */
    struct sn_chunk *rx_head, *rx_tail;
    size_t rx_bytes;
    uint64_t rcv_nxt;    /* stream offset of the next byte expected */
    uint64_t consumed;   /* bytes the app has read */
    uint64_t advertised; /* ... as last told to the peer */
    bool rd_wait;
    char *rd_buf;
    size_t rd_len;
    struct sc_promise rd_p;

    /* send side */
    uint64_t snd_nxt;   /* bytes queued for the peer */
    uint64_t snd_acked; /* bytes the peer's app has read */
    struct sn_seg *tx_head, *tx_tail;
    uint64_t last_due;
    struct sc_timer tx_timer;
    bool wr_wait;
    const char *wr_buf;
    size_t wr_left;
    uint64_t wr_hold; /* a stall: extra delay for the next segment */
    struct sc_promise wr_p;

    struct sc_promise close_p;
};

struct sn_slot {
    struct sn_conn *c;
    uint32_t gen;
    uint32_t next_free;
};

/* The network's state on one shard. */
struct sn_shard {
    uint64_t rng[4]; /* the network's own seeded stream (the app's stays untouched) */
    bool cut;        /* partitioned: deliveries wait on the held list */
    struct sn_slot *slots;
    uint32_t nslots, cap_slots, free_head;
    struct sn_link listeners, chans, pkts, held;
    uint32_t port_seq;
    struct sc_sim_net_stats st;
};

static inline void sn_link_init(struct sn_link *l)
{
    l->prev = l->next = l;
}

static inline void sn_link_add_tail(struct sn_link *head, struct sn_link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

static inline void sn_link_del(struct sn_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

#define SN_ENTRY(l, type, member) SC_CONTAINER_OF(l, type, member)

static inline struct sn_shard *sn_here_if(void)
{
    return sc__shard()->sim_net;
}

static inline uint64_t sn_below(struct sn_shard *s, uint64_t bound)
{
    return bound ? (uint64_t)(((unsigned __int128)sc__rng_next(s->rng) * bound) >> 64) : 0;
}

static inline bool sn_chance_ppm(struct sn_shard *s, uint32_t ppm)
{
    return ppm && sn_below(s, 1000000) < ppm;
}

/* The one-way delay of one segment: the configured latency plus up to half
 * of it again, from the seed. */
static inline uint64_t sn_delay(struct sn_shard *s)
{
    uint64_t lat = sc__shard()->cfg.sim_net_latency_ns;
    return lat + sn_below(s, lat / 2 + 1);
}

static inline uint16_t sn_pick_port(struct sn_shard *s)
{
    /* striped by shard, so that two shards choosing at once choose apart */
    uint32_t k = s->port_seq++;
    return (uint16_t)(SN_PORT_LO + (k * sc_shard_count() + sc_this_shard()) % SN_PORT_N);
}

static inline bool sn_addr_overlap(struct sc_inet_addr a, struct sc_inet_addr b)
{
    return a.port == b.port && (a.ip == b.ip || a.ip == 0 || b.ip == 0);
}

/* Does a socket bound to `bound` receive what is sent to `dst`? */
static inline bool sn_addr_match(struct sc_inet_addr bound, struct sc_inet_addr dst)
{
    return bound.port == dst.port && (bound.ip == 0 || bound.ip == dst.ip);
}

static inline struct sc_inet_addr sn_norm(struct sc_inet_addr a)
{
    if (a.ip == 0)
        a.ip = SN_LOOPBACK; /* 0.0.0.0 as a destination means this host */
    return a;
}

static inline void sn_set_add(uint64_t *set, unsigned i)
{
    set[i / 64] |= 1ull << (i % 64);
}

static inline bool sn_set_has(const uint64_t *set, unsigned i)
{
    return set[i / 64] >> (i % 64) & 1;
}

static inline unsigned sn_set_count(const uint64_t *set)
{
    unsigned n = 0;
    for (unsigned w = 0; w < SN_SET_WORDS; w++)
        n += (unsigned)__builtin_popcountll(set[w]);
    return n;
}

/* The k-th member (from 0) of a set, in shard order. */
static inline unsigned sn_set_nth(const uint64_t *set, unsigned k)
{
    for (unsigned i = 0; i < SC_MAX_SHARDS; i++)
        if (sn_set_has(set, i) && k-- == 0)
            return i;
    return SN_NONE;
}

static inline struct sn_conn *sn_end_lookup(struct sn_shard *s, struct sn_ref r)
{
    if (!s || r.slot >= s->nslots)
        return NULL;
    struct sn_slot *sl = &s->slots[r.slot];
    return sl->c && sl->gen == r.gen ? sl->c : NULL;
}

/* A reference packed into a future's value (the answer to a SYN). */
static inline intptr_t sn_ref_pack(struct sn_ref r)
{
    return (intptr_t)((uint64_t)(r.gen & SN_GEN_MASK) << 40 | (uint64_t)r.slot << 16 | r.shard);
}

static inline struct sn_ref sn_ref_unpack(intptr_t v)
{
    uint64_t u = (uint64_t)v;
    return (struct sn_ref){
        .shard = (uint32_t)(u & 0xffff),
        .slot = (uint32_t)(u >> 16 & 0xffffff),
        .gen = (uint32_t)(u >> 40 & SN_GEN_MASK),
    };
}

/* ---- net.c ---- */
/* The calling shard's part of the network, made on first use (NULL: no memory). */
struct sn_shard *sc__simnet_here(void);
/* A connecting end's SYN has flown: ask every shard whether it listens. */
void sc__simnet_connect_scatter(struct sn_conn *c);

/* ---- net_conn.c ---- */
/* A new end in the shard's table (NULL: no memory), and its end. */
struct sn_conn *sc__simnet_end_new(struct sn_shard *s);
void sc__simnet_end_free(struct sn_shard *s, struct sn_conn *c);
/* Reset c (with tell_peer, an RST goes out); may free a closing end. */
void sc__simnet_end_reset(struct sn_conn *c, bool tell_peer);
/* Give up on an end the app never saw: the peer is reset, c freed when it is out. */
void sc__simnet_end_abort(struct sn_conn *c);
/* Make c's streams: it now belongs to the app. */
int sc__simnet_streams_init(struct sn_conn *c);
/* Deliver what is due: arm c's timer for `when`, or for its queue's head. */
void sc__simnet_tx_arm(struct sn_conn *c, uint64_t when);
void sc__simnet_tx_kick(struct sn_conn *c);
/* The end of a run: every end of shard s, and the table. */
void sc__simnet_conn_fini(struct sn_shard *s);

/* ---- net_udp.c ---- */
int sc__simnet_udp_open(const struct sc_inet_addr *local, struct sc_udp_chan **out);
struct sc_future sc__simnet_udp_send(struct sc_udp_chan *ch, const struct sc_inet_addr *to,
                                     const void *buf, size_t len);
struct sc_future sc__simnet_udp_recv(struct sc_udp_chan *ch);
void sc__simnet_udp_close(struct sc_udp_chan *ch);
/* The end of a run: shard s's channels and datagrams in flight. */
void sc__simnet_udp_fini(struct sn_shard *s);

#endif
