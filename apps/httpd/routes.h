/*
 * routes.h — seacore-httpd's own routes, shared by the program and the
 * simulation test:
 *
 *   /          exact   GET, HEAD: "Hello, world!\n"
 *   /stats     exact   GET: every shard's counters as JSON (sc_smp_map_reduce)
 *   /chunked   exact   GET ?n=N&size=S: a chunked reply of N chunks of S bytes,
 *                      chunk i all the letter 'a' + i % 26 (N <= 10000, S <= 65536)
 *   /echo      exact   POST, PUT: the request body back (Content-Length or chunked)
 */
#ifndef HTTPD_ROUTES_H
#define HTTPD_ROUTES_H

#include "apps/httpd/server.h"

#define HTTPD_HELLO "Hello, world!\n"

/* Add the routes above to @p r; /stats reports on @p srv. Returns 0 or -errno. */
int httpd_add_builtin_routes(struct httpd_routes *r, struct httpd_server *srv);

#endif
