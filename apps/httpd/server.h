/*
 * server.h — the HTTP server: a routing table, a server instance on every
 * shard (a sharded service), connections with keep-alive and pipelining,
 * replies, per-shard counters.
 *
 * Every shard listens on the same address (the posix stack hands each
 * shard its own connections with SO_REUSEPORT); a connection lives and dies
 * on the shard that accepted it, and so do its requests. The routing table
 * is built before the server starts and only read afterwards, by every
 * shard: it is configuration, not state.
 *
 * A connection reads what the client sent, answers every complete request
 * it finds in its buffer (pipelining) into its output stream, and flushes
 * once, when it has to wait for more input. A handler answers one request
 * through a struct httpd_reply and returns a future that resolves when its
 * last byte is handed to the stream.
 */
#ifndef HTTPD_SERVER_H
#define HTTPD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "apps/httpd/http.h"
#include "core/seacore.h"
#include "net/net.h"

struct httpd_reply;

/*
 * A handler: answer @p req through @p rep. The request's strings and body
 * stay valid until the returned future resolves. The future's error (before
 * any of the reply was written) becomes a 500; after, the connection is
 * closed, since the client cannot tell where the reply ends.
 */
typedef struct sc_future (*httpd_handler_fn)(void *arg, const struct http_request *req,
                                             struct httpd_reply *rep);

/* ---- the routing table ---------------------------------------------------- */

enum httpd_match {
    HTTPD_EXACT,  /* the path is exactly this */
    HTTPD_PREFIX, /* the path starts with this (the longest such route wins) */
};

struct httpd_route {
    enum httpd_match match;
    char *path;
    size_t len;
    httpd_handler_fn fn;
    void *arg;
};

struct httpd_routes {
    struct httpd_route *v;
    size_t n, cap;
};

void httpd_routes_init(struct httpd_routes *r);
void httpd_routes_free(struct httpd_routes *r);

/*
 * Add a route. An exact route wins over every prefix route; among prefix
 * routes the longest match wins.
 * Returns 0, -EINVAL (a path not starting with '/', or no handler), -EEXIST
 * (the same path and kind twice), -ENOMEM.
 */
int httpd_routes_add(struct httpd_routes *r, enum httpd_match m, const char *path,
                     httpd_handler_fn fn, void *arg);

/* The route for @p path, or NULL. */
const struct httpd_route *httpd_routes_find(const struct httpd_routes *r, struct http_str path);

/* ---- replies ------------------------------------------------------------------ */

/*
 * Answer with a whole body. A small body is copied into the output stream
 * with the head; a large one may go to the socket uncopied, so @p body must
 * stay valid until the future resolves. For a HEAD request (and 1xx, 204,
 * 304) the body is left out and its length kept. Returns a future of 0;
 * -EALREADY if the reply was started already.
 */
struct sc_future httpd_reply_send(struct httpd_reply *rep, int status, const char *content_type,
                                  const void *body, size_t len);

/*
 * Start a reply whose body follows through httpd_reply_write(): @p length
 * bytes (>= 0), or HTTP_LEN_CHUNKED (chunked for HTTP/1.1 clients; for 1.0
 * ones the body ends when the connection closes).
 */
struct sc_future httpd_reply_start(struct httpd_reply *rep, int status, const char *content_type,
                                   int64_t length);

/*
 * Body bytes (a chunk of their own when chunked). Writes of 8 KiB or more
 * may go to the socket uncopied: keep @p p valid until the future resolves.
 */
struct sc_future httpd_reply_write(struct httpd_reply *rep, const void *p, size_t len);

/* The end of the body (the last chunk when chunked). */
struct sc_future httpd_reply_end(struct httpd_reply *rep);

/*
 * Add a header line to a reply not yet started ("Name", "value").
 * Returns 0, -ENOSPC (over 512 bytes of extra headers), -EALREADY.
 */
int httpd_reply_header(struct httpd_reply *rep, const char *name, const char *value);

/* Close the connection after this reply (adds "Connection: close"). */
void httpd_reply_close_after(struct httpd_reply *rep);

/* ---- the server ---------------------------------------------------------------- */

struct httpd_config {
    struct sc_inet_addr addr;          /* port 0: shard 0 picks one, the others follow */
    const struct httpd_routes *routes; /* read-only while the server runs */
    struct http_limits limits;
    uint64_t header_timeout_ns; /* a request's head (and then its body) must arrive within this;
                                   an idle keep-alive connection is closed after it (0: 10 s) */
    const char *server_name;    /* the Server header (NULL: "seacore") */
};

/* Counters of one shard's server. */
struct httpd_stats {
    uint64_t accepted;      /* connections accepted */
    uint64_t open;          /* connections open now */
    uint64_t requests;      /* complete requests parsed */
    uint64_t status[6];     /* replies by class: [1] 1xx ... [5] 5xx */
    uint64_t bad_requests;  /* requests refused by the parser (400, 413, 414, 417, 431, 501, 505) */
    uint64_t timeouts;      /* connections closed by the header timeout */
    uint64_t flushes;       /* output flushes (fewer than replies when requests are pipelined) */
    uint64_t bytes_in;      /* request bytes parsed */
    uint64_t accept_errors; /* failed accepts (other than the server closing) */
};

/* The server's service: one instance per shard. */
struct httpd_server {
    struct sc_sharded svc;
    struct httpd_config cfg;
    struct sc_inet_addr bound; /* the address every shard listens on */
};

/*
 * Start the server on every shard: shard 0 listens first (and picks the
 * port if @p cfg asks for port 0), then the others on the same address, then
 * every shard accepts. @p srv and @p cfg->routes must outlive httpd_stop().
 * Returns a future of 0; the listen error (-EADDRINUSE, ...), after which
 * nothing is left running.
 */
struct sc_future httpd_start(struct httpd_server *srv, const struct httpd_config *cfg);

/*
 * Stop: every shard stops accepting, closes its idle connections, lets the
 * busy ones finish their current reply (with "Connection: close"), and
 * resolves once every connection is gone.
 */
struct sc_future httpd_stop(struct httpd_server *srv);

/*
 * Every shard's counters: a future of a `struct httpd_stats *` array of
 * sc_shard_count() entries (index = shard), malloc'd: free() it.
 */
struct sc_future httpd_stats_gather(struct httpd_server *srv);

/* The calling shard's counters (zeros if the server does not run here). */
struct httpd_stats httpd_stats_local(struct httpd_server *srv);

/* The sum of @p n shards' counters. */
struct httpd_stats httpd_stats_sum(const struct httpd_stats *s, unsigned n);

/* Format @p n shards' counters as JSON into a malloc'd string; *len gets its length. */
char *httpd_stats_json(const struct httpd_stats *s, unsigned n, size_t *len);

/* The Unix time in seconds on the calling shard: the wall clock in the real
 * world, a fixed epoch plus virtual time in the simulator. */
int64_t httpd_unix_time(void);

#endif
