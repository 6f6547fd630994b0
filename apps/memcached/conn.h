/*
 * conn.h — the server side of seacore-memcached: every shard listens on the
 * same address, and each connection is served on the shard that accepted
 * it, by a fiber that reads requests and a writer that sends replies.
 *
 * The reader parses as many whole requests as its input buffer holds
 * (pipelining) and hands each to the connection's pipeline (shard.h); when
 * the buffer holds no whole request it asks the writer to send what is
 * ready — one flush per batch of requests, not one per reply — and reads
 * more. It stops reading when the pipeline is full (the in-flight
 * semaphore) or when replies pile up unsent (the client is not reading):
 * either way the client's socket fills, and TCP does the rest.
 *
 * A connection ends on quit, at end of stream, on an error from the socket,
 * and after a line too long to be a request. A client sending garbage gets
 * ERROR or CLIENT_ERROR lines; nothing it sends affects other connections.
 */
#ifndef MC_CONN_H
#define MC_CONN_H

#include <stdint.h>

#include "core/future.h"
#include "net/net.h"

/* Start listening on every shard (the service must run: shard.h). A future
 * of 0, or the first error (-EADDRINUSE, ...). */
struct sc_future mc_server_start(const struct sc_inet_addr *addr);

/* The port the server listens on (the one the stack chose, for port 0). */
uint16_t mc_server_port(void);

/* Stop: close the listening sockets and every connection, and wait until
 * each connection's fiber has ended. */
struct sc_future mc_server_stop(void);

#endif
