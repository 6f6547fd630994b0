/*
 * routes.c — see routes.h.
 */
#include "apps/httpd/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sc_future status_reply(struct httpd_reply *rep, int status)
{
    char body[96];
    int n = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    return httpd_reply_send(rep, status, "text/plain", body, (size_t)n);
}

static struct sc_future not_allowed(struct httpd_reply *rep, const char *allow)
{
    httpd_reply_header(rep, "Allow", allow);
    return status_reply(rep, 405);
}

static bool get_or_head(const struct http_request *req)
{
    return req->method_id == HTTP_GET || req->method_id == HTTP_HEAD;
}

/* ---- / ------------------------------------------------------------------------ */

static struct sc_future hello(void *arg, const struct http_request *req, struct httpd_reply *rep)
{
    (void)arg;
    if (!get_or_head(req))
        return not_allowed(rep, "GET, HEAD");
    return httpd_reply_send(rep, 200, "text/plain", HTTPD_HELLO, sizeof HTTPD_HELLO - 1);
}

/* ---- /stats --------------------------------------------------------------------- */

static struct sc_future free_json(void *cap)
{
    free(*(char **)cap);
    return sc_make_ready(0);
}

static struct sc_future stats_gathered(void *cap, intptr_t v)
{
    struct httpd_reply *rep = *(struct httpd_reply **)cap;
    struct httpd_stats *all = (struct httpd_stats *)v;
    size_t len;
    char *json = httpd_stats_json(all, sc_shard_count(), &len);
    free(all);
    if (!json)
        return sc_make_error(-ENOMEM);
    struct sc_future f = httpd_reply_send(rep, 200, "application/json", json, len);
    return SC_FINALLY(f, free_json, json);
}

static struct sc_future stats(void *arg, const struct http_request *req, struct httpd_reply *rep)
{
    if (!get_or_head(req))
        return not_allowed(rep, "GET, HEAD");
    return SC_THEN(httpd_stats_gather(arg), stats_gathered, rep);
}

/* ---- /chunked ------------------------------------------------------------------- */

struct chunky {
    struct httpd_reply *rep;
    long i, n;
    size_t size;
    char *buf;
};

static bool query_long(struct http_str q, const char *key, long min, long max, long *out)
{
    struct http_str v;
    if (!http_query_get(q, key, &v))
        return true; /* absent: keep the default */
    if (v.len == 0 || v.len > 9)
        return false;
    long x = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        x = x * 10 + (v.p[i] - '0');
    }
    if (x < min || x > max)
        return false;
    *out = x;
    return true;
}

static struct sc_future chunk_next(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future chunk_step(void *cap)
{
    struct chunky *c = *(struct chunky **)cap;
    if (c->i == c->n)
        return sc_make_ready(SC_STOP);
    memset(c->buf, 'a' + (int)(c->i % 26), c->size);
    c->i++;
    return sc_then(httpd_reply_write(c->rep, c->buf, c->size), chunk_next, NULL, 0);
}

static struct sc_future chunks_end(void *cap, intptr_t v)
{
    (void)v;
    struct chunky *c = *(struct chunky **)cap;
    return httpd_reply_end(c->rep);
}

static struct sc_future chunks_loop(void *cap, intptr_t v)
{
    (void)v;
    return sc_repeat(chunk_step, cap, sizeof(struct chunky *));
}

static struct sc_future chunks_free(void *cap)
{
    struct chunky *c = *(struct chunky **)cap;
    free(c->buf);
    free(c);
    return sc_make_ready(0);
}

static struct sc_future chunked(void *arg, const struct http_request *req, struct httpd_reply *rep)
{
    (void)arg;
    if (!get_or_head(req))
        return not_allowed(rep, "GET, HEAD");
    long n = 4, size = 32;
    if (!query_long(req->query, "n", 0, 10000, &n) ||
        !query_long(req->query, "size", 1, 65536, &size))
        return status_reply(rep, 400);
    struct chunky *c = malloc(sizeof *c);
    char *buf = malloc((size_t)size);
    if (!c || !buf) {
        free(c);
        free(buf);
        return sc_make_error(-ENOMEM);
    }
    *c = (struct chunky){.rep = rep, .n = n, .size = (size_t)size, .buf = buf};
    struct sc_future f = httpd_reply_start(rep, 200, "text/plain", HTTP_LEN_CHUNKED);
    f = SC_THEN(f, chunks_loop, c);
    f = SC_THEN(f, chunks_end, c);
    return SC_FINALLY(f, chunks_free, c);
}

/* ---- /echo ------------------------------------------------------------------------ */

static struct sc_future echo(void *arg, const struct http_request *req, struct httpd_reply *rep)
{
    (void)arg;
    if (req->method_id != HTTP_POST && req->method_id != HTTP_PUT)
        return not_allowed(rep, "POST, PUT");
    /* the body stays valid until our future resolves: no copy needed */
    return httpd_reply_send(rep, 200, "application/octet-stream", req->body.p, req->body.len);
}

int httpd_add_builtin_routes(struct httpd_routes *r, struct httpd_server *srv)
{
    int rc;
    if ((rc = httpd_routes_add(r, HTTPD_EXACT, "/", hello, NULL)) ||
        (rc = httpd_routes_add(r, HTTPD_EXACT, "/stats", stats, srv)) ||
        (rc = httpd_routes_add(r, HTTPD_EXACT, "/chunked", chunked, NULL)) ||
        (rc = httpd_routes_add(r, HTTPD_EXACT, "/echo", echo, NULL)))
        return rc;
    return 0;
}
