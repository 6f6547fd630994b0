/*
 * static.c — see static.h.
 *
 * A request for a file goes: resolve the path (http_path_resolve), look in
 * this shard's cache; on a miss open it, learn its size, and then either
 * read it whole (if it may be cached, or is small) and send it with its head
 * in one reply, or stream it in 64 KiB pieces, each read only after the
 * previous one was taken by the output stream, so that a connection holds
 * one piece at a time however large the file.
 */
#include "apps/httpd/static.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apps/httpd/fileio.h"

#define SMALL_FILE (16u << 10)
#define PIECE      (64u << 10)
#define PATH_MAX_  4096
#define FC_BUCKETS 1024

/* ---- the per-shard cache ------------------------------------------------------- */

struct fentry {
    struct fentry *hnext;       /* hash chain */
    struct fentry *prev, *next; /* LRU list, most recent first */
    uint64_t hash;
    char *path;
    const char *ctype;
    char *data;
    size_t size;
    uint64_t expires;
    unsigned refs; /* replies still sending data */
    bool dead;     /* unlinked: freed when refs drops to 0 */
};

struct fcache {
    bool ready;
    uint64_t bytes;
    uint64_t hits, misses;
    struct fentry *head, *tail;
    struct fentry *buckets[FC_BUCKETS];
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct fcache *my_cache(const struct httpd_static *s)
{
    if (!s->cache_bytes || sc_this_shard() >= s->nshards)
        return NULL;
    struct fcache *c = &s->caches[sc_this_shard()];
    if (!c->ready) {
        memset(c, 0, sizeof *c);
        c->ready = true;
    }
    return c;
}

static void fentry_free(struct fentry *e)
{
    free(e->path);
    free(e->data);
    free(e);
}

static void fc_unlink(struct fcache *c, struct fentry *e)
{
    struct fentry **pp = &c->buckets[e->hash % FC_BUCKETS];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    c->bytes -= e->size;
    if (e->refs)
        e->dead = true;
    else
        fentry_free(e);
}

static void fc_touch(struct fcache *c, struct fentry *e)
{
    if (c->head == e)
        return;
    e->prev->next = e->next; /* not the head: it has a prev */
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = NULL;
    e->next = c->head;
    c->head->prev = e;
    c->head = e;
}

static struct fentry *fc_find(struct fcache *c, const char *path, uint64_t hash)
{
    for (struct fentry *e = c->buckets[hash % FC_BUCKETS]; e; e = e->hnext)
        if (e->hash == hash && strcmp(e->path, path) == 0)
            return e;
    return NULL;
}

/* Keep @p data (malloc'd, @p size bytes) as @p path's contents; takes
 * ownership of data either way. Returns the entry, or NULL if not kept. */
static struct fentry *fc_insert(const struct httpd_static *s, struct fcache *c, const char *path,
                                uint64_t hash, char *data, size_t size, const char *ctype)
{
    struct fentry *old = fc_find(c, path, hash);
    if (old)
        fc_unlink(c, old);
    if (size > s->cache_bytes) {
        free(data);
        return NULL;
    }
    while (c->tail && c->bytes + size > s->cache_bytes)
        fc_unlink(c, c->tail);
    struct fentry *e = calloc(1, sizeof *e);
    char *p = strdup(path);
    if (!e || !p) {
        free(e);
        free(p);
        free(data);
        return NULL;
    }
    *e = (struct fentry){.hash = hash,
                         .path = p,
                         .ctype = ctype,
                         .data = data,
                         .size = size,
                         .expires = sc_now() + s->cache_ttl_ns};
    e->hnext = c->buckets[hash % FC_BUCKETS];
    c->buckets[hash % FC_BUCKETS] = e;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
    c->bytes += size;
    return e;
}

static struct sc_future fentry_release(void *cap)
{
    struct fentry *e = *(struct fentry **)cap;
    if (--e->refs == 0 && e->dead)
        fentry_free(e);
    return sc_make_ready(0);
}

/* Send a cached file (its data stays alive until the reply took it). */
static struct sc_future send_entry(struct httpd_reply *rep, struct fentry *e)
{
    e->refs++;
    struct sc_future f = httpd_reply_send(rep, 200, e->ctype, e->data, e->size);
    return SC_FINALLY(f, fentry_release, e);
}

/* ---- set-up ------------------------------------------------------------------------ */

int httpd_static_init(struct httpd_static *s, const char *docroot, uint64_t cache_bytes,
                      uint64_t ttl_ns)
{
    memset(s, 0, sizeof *s);
    size_t n = strlen(docroot);
    while (n > 1 && docroot[n - 1] == '/')
        n--;
    if (n == 0)
        return -ENOENT;
    if (n > PATH_MAX_ / 2)
        return -ENAMETOOLONG;
    /* once, at start-up, before any request: the only blocking call here */
    struct stat st;
    char *root = strndup(docroot, n);
    if (!root)
        return -ENOMEM;
    int err = 0;
    if (!sc_is_simulated()) /* the simulator's files live on its simulated disk */
        err = stat(root, &st) != 0 ? -errno : !S_ISDIR(st.st_mode) ? -ENOTDIR : 0;
    if (err) {
        free(root);
        return err;
    }
    s->root = root;
    s->root_len = n;
    s->cache_bytes = cache_bytes;
    s->cache_max_file = cache_bytes / 16 < (1u << 20) ? cache_bytes / 16 : (1u << 20);
    s->cache_ttl_ns = ttl_ns;
    s->nshards = sc_shard_count();
    if (cache_bytes) {
        s->caches = calloc(s->nshards, sizeof *s->caches);
        if (!s->caches) {
            free(root);
            return -ENOMEM;
        }
    }
    return 0;
}

void httpd_static_fini(struct httpd_static *s)
{
    for (unsigned i = 0; s->caches && i < s->nshards; i++) {
        struct fentry *e = s->caches[i].head, *next;
        for (; e; e = next) {
            next = e->next;
            fentry_free(e); /* memory of another shard goes home by itself */
        }
    }
    free(s->caches);
    free(s->root);
    memset(s, 0, sizeof *s);
}

static struct sc_future reply_code(struct httpd_reply *rep, int status)
{
    char body[96];
    int n = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    return httpd_reply_send(rep, status, "text/plain", body, (size_t)n);
}

/* ---- a file from disk ----------------------------------------------------------- */

struct sf {
    const struct httpd_static *s;
    struct httpd_reply *rep;
    struct httpd_file *f;
    const char *ctype;
    uint64_t hash;
    uint64_t off, size;
    size_t cap;
    char *buf;   /* a piece, or the whole file */
    char path[]; /* the cache key */
};

static struct sc_future sf_free(void *cap)
{
    struct sf *s = *(struct sf **)cap;
    sc_future_ignore(httpd_file_close(s->f)); /* the reply is out; a close error changes nothing */
    free(s->buf);
    free(s);
    return sc_make_ready(0);
}

static struct sc_future sf_next(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future sf_got(void *cap, intptr_t n)
{
    struct sf *s = *(struct sf **)cap;
    if (n == 0)
        return sc_make_error(-EIO); /* the file shrank under us: the length was promised */
    s->off += (uint64_t)n;
    return sc_then(httpd_reply_write(s->rep, s->buf, (size_t)n), sf_next, NULL, 0);
}

static struct sc_future sf_step(void *cap)
{
    struct sf *s = *(struct sf **)cap;
    if (s->off == s->size)
        return sc_make_ready(SC_STOP);
    uint64_t left = s->size - s->off;
    size_t n = left < s->cap ? (size_t)left : s->cap;
    return SC_THEN(httpd_file_read(s->f, s->off, s->buf, n), sf_got, s);
}

static struct sc_future sf_loop(void *cap, intptr_t v)
{
    (void)v;
    return sc_repeat(sf_step, cap, sizeof(struct sf *));
}

static struct sc_future sf_end(void *cap, intptr_t v)
{
    (void)v;
    struct sf *s = *(struct sf **)cap;
    return httpd_reply_end(s->rep);
}

/* The whole file is in s->buf (n bytes: it may have changed size since the
 * stat): keep it in the cache if it may be, and send it. */
static struct sc_future sf_whole(void *cap, intptr_t n)
{
    struct sf *s = *(struct sf **)cap;
    struct fcache *c = my_cache(s->s);
    if (c && (uint64_t)n <= s->s->cache_max_file) {
        struct fentry *e = fc_insert(s->s, c, s->path, s->hash, s->buf, (size_t)n, s->ctype);
        s->buf = NULL; /* the cache owns it now (or freed it) */
        if (e)
            return send_entry(s->rep, e);
        return sc_make_error(-ENOMEM);
    }
    return httpd_reply_send(s->rep, 200, s->ctype, s->buf, (size_t)n);
}

static struct sc_future send_file(struct sf *s, const struct http_request *req)
{
    struct fcache *c = my_cache(s->s);
    bool whole = s->size <= SMALL_FILE || (c && s->size <= s->s->cache_max_file);
    struct sc_future r;
    if (req->method_id == HTTP_HEAD) {
        r = httpd_reply_start(s->rep, 200, s->ctype, (int64_t)s->size);
        r = SC_THEN(r, sf_end, s);
    } else {
        s->cap = whole ? (size_t)s->size : PIECE;
        s->buf = malloc(s->cap ? s->cap : 1);
        if (!s->buf)
            r = sc_make_error(-ENOMEM);
        else if (whole)
            r = SC_THEN(httpd_file_read(s->f, 0, s->buf, s->cap), sf_whole, s);
        else {
            r = httpd_reply_start(s->rep, 200, s->ctype, (int64_t)s->size);
            r = SC_THEN(r, sf_loop, s);
            r = SC_THEN(r, sf_end, s);
        }
    }
    return SC_FINALLY(r, sf_free, s);
}

/* ---- the handler -------------------------------------------------------------- */

struct open_cap {
    struct sf *s;
    const struct http_request *req;
    bool dir; /* the request path ended with '/' */
};

static struct sc_future redirect_to_dir(struct httpd_reply *rep, const struct http_request *req)
{
    char loc[PATH_MAX_ + 2];
    if (req->path.len + 2 > sizeof loc)
        return reply_code(rep, 414);
    memcpy(loc, req->path.p, req->path.len);
    memcpy(loc + req->path.len, "/", 2);
    int rc = httpd_reply_header(rep, "Location", loc);
    return reply_code(rep, rc ? 414 : 301);
}

static struct sc_future opened(void *cap, intptr_t v, int err)
{
    const struct open_cap *o = cap;
    struct sf *s = o->s;
    struct httpd_reply *rep = s->rep;
    if (err) {
        free(s);
        if (err == -EISDIR && !o->dir)
            return redirect_to_dir(rep, o->req);
        if (err == -ENOENT || err == -ENOTDIR || err == -ENAMETOOLONG)
            return reply_code(rep, 404);
        if (err == -EACCES || err == -EPERM || err == -ELOOP || err == -EISDIR)
            return reply_code(rep, 403);
        return reply_code(rep, 500);
    }
    s->f = (struct httpd_file *)v;
    s->size = s->f->size;
    if (!s->f->regular) {
        sc_future_ignore(httpd_file_close(s->f));
        free(s);
        return reply_code(rep, 403);
    }
    return send_file(s, o->req);
}

struct sc_future httpd_static_handler(void *arg, const struct http_request *req,
                                      struct httpd_reply *rep)
{
    const struct httpd_static *st = arg;
    if (req->method_id != HTTP_GET && req->method_id != HTTP_HEAD) {
        httpd_reply_header(rep, "Allow", "GET, HEAD");
        return reply_code(rep, 405);
    }
    char rel[PATH_MAX_ + 16];
    bool dir;
    long n = http_path_resolve(req->path, rel, PATH_MAX_, &dir);
    if (n < 0)
        return reply_code(rep, (int)-n);
    if (dir) /* a directory: its index */
        memcpy(rel + n, n ? "/index.html" : "index.html", n ? 12 : 11);
    /* the cache key and the path to open: root + '/' + rel */
    size_t rlen = strlen(rel);
    struct sf *s = malloc(sizeof *s + st->root_len + 1 + rlen + 1);
    if (!s)
        return sc_make_error(-ENOMEM);
    *s = (struct sf){.s = st, .rep = rep, .ctype = http_content_type(rel)};
    memcpy(s->path, st->root, st->root_len);
    s->path[st->root_len] = '/';
    memcpy(s->path + st->root_len + 1, rel, rlen + 1);
    s->hash = fnv1a(s->path);
    struct fcache *c = my_cache(st);
    if (c) {
        struct fentry *e = fc_find(c, s->path, s->hash);
        if (e && sc_now() < e->expires) {
            c->hits++;
            free(s);
            fc_touch(c, e);
            return send_entry(rep, e); /* for HEAD the reply leaves the body out */
        }
        c->misses++;
    }
    struct open_cap o = {s, req, dir};
    return SC_THEN_WRAPPED(httpd_file_open(s->path), opened, o);
}
