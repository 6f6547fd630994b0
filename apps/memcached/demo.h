/*
 * demo.h — clients that drive seacore-memcached through the network API and
 * check what it answers: the flagship demo (`make run`) and the simulation
 * sweep (tests/sim/sim_memcached.c).
 *
 * Each client is a fiber on some shard with a connection of its own to the
 * server (on the same simulated node, or on 127.0.0.1 in the real world). It
 * owns a set of keys that only it writes, and runs a seeded mix over them:
 * get, multi-key get, gets and cas, set (sometimes with an exptime, now and
 * then a value larger than a socket buffer), delete, incr of counters
 * shared by every client, and a little protocol garbage — in pipelined
 * batches of one to `depth` requests. It models what each of its keys may
 * hold and checks every answer against the model:
 *
 *   - a value read back is one this client wrote to that key, intact, with
 *     its flags, and it is the last acknowledged write — or a write whose
 *     answer was lost (its connection was reset), since those may have
 *     happened, even late;
 *   - a miss (or NOT_FOUND) on a key whose last acknowledged write stored
 *     it is allowed only if the key was evicted since that write (its
 *     owner keeps eviction times: mc_evicted_since()) or its exptime has
 *     passed, or a lost write with an exptime may have landed since (a
 *     request sent before a reset can still arrive after a newer one); a
 *     hit after the exptime has surely passed is an error;
 *   - multi-key gets answer in request order;
 *   - every acknowledged incr of a shared counter returns a value no other
 *     incr returned, and at the end each counter that was never evicted
 *     holds between the acknowledged incrs and those plus the unanswered;
 *   - garbage gets ERROR or CLIENT_ERROR, and the connection goes on.
 *
 * A connection reset (the simulator's --sim-net-reset-ppm) makes the client
 * reconnect; what was unanswered joins the model as "may have happened".
 */
#ifndef MC_DEMO_H
#define MC_DEMO_H

#include <stdbool.h>
#include <stdint.h>

#include "core/future.h"

struct mc_demo_opts {
    unsigned clients;  /* client fibers, spread over the shards */
    unsigned ops;      /* requests per client */
    unsigned keys;     /* keys each client owns */
    unsigned counters; /* counters shared by all clients */
    unsigned depth;    /* most requests in one pipelined batch */
    uint16_t port;     /* the server's */
    bool big_values;   /* now and then a 20 KiB value */
    bool garbage;      /* now and then a line that is not a request */
};

#define MC_DEMO_MAX_SHARDS 64

/* What the clients saw, summed. */
struct mc_demo_report {
    uint64_t ops, violations, excused_misses, unanswered, reconnects, connect_failures;
    uint64_t hits, misses, stored, big_values, garbage;
    uint64_t p50_ns, p99_ns, p999_ns, max_ns; /* request latency: sent to answered */
    uint64_t shard_ops[MC_DEMO_MAX_SHARDS];   /* commands each shard's store ran */
    uint64_t shard_remote_in[MC_DEMO_MAX_SHARDS], shard_remote_out[MC_DEMO_MAX_SHARDS];
    uint64_t shard_items[MC_DEMO_MAX_SHARDS], shard_evictions[MC_DEMO_MAX_SHARDS];
    uint64_t shard_conns[MC_DEMO_MAX_SHARDS]; /* connections each shard accepted */
};

/* Run the clients against the server (running on this node), then check the
 * counters; fills *out. Call on shard 0. A future of 0 (the verdict is
 * out->violations), or an error if the run could not happen at all. */
struct sc_future mc_demo_run(const struct mc_demo_opts *o, struct mc_demo_report *out);

/* Print the report: per-shard load, latency percentiles, the verdict. */
void mc_demo_print(const struct mc_demo_report *r, unsigned shards);

#endif
