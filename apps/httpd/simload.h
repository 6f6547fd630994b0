/*
 * simload.h — simulated HTTP clients that check every reply: what
 * `seacore-httpd --backend sim` runs against itself, and what the simulation
 * test (tests/sim/sim_httpd.c) sweeps over seeds.
 *
 * Each client is a fiber on some shard with one connection. Most send a few
 * batches of well-formed requests (pipelined, split into pieces at random
 * places, sent with pauses) and check each reply, in order, byte for byte:
 * the hello text, HEAD, chunked replies, bodies echoed back (sent with a
 * Content-Length or chunked, or after "Expect: 100-continue"), 404s, HTTP/1.0
 * with and without keep-alive, "Connection: close". With faults on, some
 * send one malformed request and expect its error status and the end of the
 * connection; some stop half-way through a request's head and expect the
 * server to close on them when its header timeout passes; some hang up
 * half-way through a request. Every decision comes from sc_random().
 */
#ifndef HTTPD_SIMLOAD_H
#define HTTPD_SIMLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "apps/httpd/server.h"

struct simload_cfg {
    struct sc_inet_addr server; /* where to connect */
    unsigned conns;             /* connections in all, spread over the shards */
    unsigned batches;           /* at most this many request batches per connection */
    bool faults;                /* malformed requests, slow and vanishing clients */
    uint64_t header_timeout_ns; /* the server's: slow clients outwait it */
    bool lossy;                 /* the run breaks connections on purpose (network resets, allocation
                                   failures): a missing reply is counted in conn_errors, not a violation */
};

/* What the clients saw, summed over the shards (all uint64_t: summed as an array). */
struct simload_result {
    uint64_t lossy;       /* 1 if the run was lossy (copied from the configuration) */
    uint64_t connects;    /* connections made */
    uint64_t conn_errors; /* connections that broke, in a lossy run (then the exact checks
                             are off) */
    uint64_t requests;    /* well-formed requests that the server had whole */
    uint64_t replies;     /* replies read and found right (100 Continue included) */
    uint64_t status[6];   /* replies by class, [1] 1xx ... [5] 5xx */
    uint64_t bad_sent;    /* malformed requests (each the last of its connection) */
    uint64_t slow;        /* clients that outwaited the header timeout */
    uint64_t vanished;    /* clients that hung up inside a request */
    uint64_t violations;  /* replies that were wrong: must stay 0 */
};

/*
 * Run the clients to the end; @p res (on the caller's shard) gets the sums.
 * Returns a future of 0; -ENOMEM.
 */
struct sc_future simload_run(const struct simload_cfg *cfg, struct simload_result *res);

/*
 * Compare the clients' view with the server's counters @p st (summed over
 * shards, taken once every connection closed). Prints each mismatch to
 * stderr. Returns the number of mismatches.
 */
int simload_check(const struct simload_result *res, const struct httpd_stats *st);

/*
 * Wait until the server has accepted every connection the clients made
 * (unless the run was lossy: it may lose some before they are accepted) and
 * closed them all (it may still be lingering when the clients are done),
 * polling its counters every millisecond for at most @p max_wait_ns; then
 * put their sum in @p out. Returns a future of 0, or SC_ETIMEDOUT (@p out
 * then has the last sum).
 */
struct sc_future simload_settle(struct httpd_server *srv, const struct simload_result *res,
                                uint64_t max_wait_ns, struct httpd_stats *out);

#endif
