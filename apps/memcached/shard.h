/*
 * shard.h — the key-sharding layer of seacore-memcached (lab 10).
 *
 * Every key has one owner shard, chosen from a hash of the key. The cache
 * is split the same way: each shard's store (store.h) holds exactly the
 * keys it owns, and only that shard ever touches it. A connection lives on
 * the shard that accepted it; each request it reads runs on the shard that
 * owns its key — at once when that is the connection's own shard, through
 * sc_smp_submit_to() otherwise — and the replies go back to the client in
 * the order the requests came, whichever shard answered first.
 *
 * Who owns what, across shards:
 *   - a request message (key, value, arguments) is made on the
 *     connection's shard and freed by the owner once it has run the
 *     request: that free goes home through the allocator's queues;
 *   - an item is made and freed by its owner, always;
 *   - a reply (struct mc_reply) is made on the owner and freed by the
 *     connection's shard: that free goes home too.
 *
 * A pipeline is one connection's view of this: requests go in in order,
 * reply bytes come out in order (mc_pipeline.out), and a semaphore of
 * max_inflight units bounds how many requests may wait for their reply at
 * once. A client that pipelines faster than the owners answer finds its
 * connection's reader stopped on that semaphore, so its socket fills and
 * TCP slows it down: backpressure, instead of a queue that grows without
 * bound.
 */
#ifndef MC_SHARD_H
#define MC_SHARD_H

#include <stdbool.h>
#include <stdint.h>

#include "apps/memcached/exec.h"
#include "apps/memcached/proto.h"
#include "apps/memcached/store.h"
#include "core/future.h"
#include "core/sem.h"

/* The server's settings: the same on every shard, read-only while it runs. */
struct mc_config {
    uint64_t memory_limit;    /* bytes of items, all shards together (memcached -m) */
    uint32_t max_item_size;   /* largest value (memcached -I) */
    unsigned max_inflight;    /* requests in flight per connection (0: 64) */
    uint64_t sweep_period_ns; /* expiry sweep period (0: 1 s) */
    bool track_evictions;     /* keep when keys were evicted (mc_evicted_since()) */
};

#define MC_EVICT_SLOTS 65536 /* eviction times kept per shard, by key hash */

/* One shard's part of the server. */
struct mc_shard {
    struct mc_store store;
    struct mc_shard_stats st; /* connection counters (the store keeps its own) */
    uint64_t started_ns;
    uint64_t *evicted_ns; /* track_evictions: last eviction time, by hash slot */
};

/* Start the service: a store on every shard. A future of 0, or the first error. */
struct sc_future mc_service_start(const struct mc_config *cfg);

/* Stop it on every shard (frees every item). */
struct sc_future mc_service_stop(void);

/* This shard's part, or NULL when the service is not running here. */
struct mc_shard *mc_local(void);

/* The run's configuration (valid while the service runs). */
const struct mc_config *mc_config(void);

/* For checkers: a future of 1 if a key with this hash may have been evicted
 * at or after since_ns (asked of its owner; with track_evictions, else 1). A
 * different key sharing its slot may answer for it: never a false 0. */
struct sc_future mc_evicted_since(uint64_t hash, uint64_t since_ns);

/* The shard that owns a key with this hash, among nshards. */
unsigned mc_owner(uint64_t hash, unsigned nshards);

/* What an owner sends back: reply bytes made on the owner, freed (sc_free)
 * by the shard that asked. For a get, data holds one segment per key asked,
 * each a uint32_t length and that many bytes. */
struct mc_reply {
    uint32_t len;
    uint32_t nseg;
    char data[];
};

/* A request waiting for its reply: the reply made here (local), or one an
 * owner sent (reply), or an error. */
struct mc_slot {
    struct mc_pipeline *p;
    bool done;
    int err;
    struct mc_reply *reply;
    struct mc_buf local;
};

/* One connection's requests in flight. Fields are private to shard.c,
 * except `out`, which the connection takes bytes from. */
struct mc_pipeline {
    struct mc_buf out;         /* reply bytes ready to send, in request order */
    struct sc_sem inflight;    /* a unit per request admitted and not yet in `out` */
    struct mc_slot *slots;     /* a ring of max_inflight slots: the requests */
    unsigned cap, head, count; /* ...that wait, oldest at head */
    void (*wake)(void *arg);   /* `out` grew after a wait */
    void *wake_arg;
    struct sc_promise drained; /* mc_pipeline_drain() waits here */
    bool drain_wait;
};

/* Set up p; wake(arg) is called when replies that had to wait join `out`.
 * Returns 0 or -ENOMEM. */
int mc_pipeline_init(struct mc_pipeline *p, unsigned max_inflight, void (*wake)(void *arg),
                     void *arg);

/* Wait for room for one more request (a unit of the semaphore). Every
 * mc_pipeline_submit() and mc_pipeline_answer() needs one. */
struct sc_future mc_pipeline_admit(struct mc_pipeline *p);

/* Run one admitted request. Its reply joins `out` now (a local key) or when
 * its owners answer, always after the replies of earlier requests. The
 * request's pointers need to stay valid only during this call. */
void mc_pipeline_submit(struct mc_pipeline *p, const struct mc_request *req);

/* An admitted request the connection answers itself (a protocol error):
 * its bytes join `out` in order, like any reply. */
void mc_pipeline_answer(struct mc_pipeline *p, const char *text, size_t len);

/* A future of 0 once no request is in flight. */
struct sc_future mc_pipeline_drain(struct mc_pipeline *p);

/* Release p (no request in flight, drained). */
void mc_pipeline_destroy(struct mc_pipeline *p);

#endif
