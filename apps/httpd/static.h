/*
 * static.h — serving files from a document root: GET and HEAD, a path that
 * cannot climb out of the root, index.html for directories (and a redirect
 * to add the '/'), content types by extension, the bytes through the disk
 * API (fileio.h), and a per-shard cache of small files.
 *
 * The cache is there because the disk API keeps the shard away from the
 * kernel: an open, a stat and a close are each a round trip to the shard's
 * syscall thread, where nginx makes three system calls and a sendfile. A hit
 * costs a lookup and a copy into the output stream. An entry is re-read from
 * disk once it is older than the time to live (so a changed file is seen
 * within that time); the least recently used entries go when the shard's
 * budget is spent. Each shard has its own cache (shared-nothing: a popular
 * file is cached once per shard).
 */
#ifndef HTTPD_STATIC_H
#define HTTPD_STATIC_H

#include "apps/httpd/http.h"
#include "apps/httpd/server.h"

struct fcache;

/* The handler's configuration: the route's arg. Only the caches change
 * after init, each on its own shard. */
struct httpd_static {
    char *root; /* the document root, without a trailing '/' */
    size_t root_len;
    uint64_t cache_bytes;    /* per shard; 0: no cache */
    uint64_t cache_max_file; /* larger files are streamed, never cached */
    uint64_t cache_ttl_ns;   /* an entry is re-read after this long */
    unsigned nshards;
    struct fcache *caches; /* one per shard, each touched only by its shard */
};

/*
 * Set up for @p docroot (which must be a directory) on sc_shard_count()
 * shards, with @p cache_bytes of cache per shard (0: none) whose entries
 * live @p ttl_ns. Call on a shard, before the server starts (in the real
 * world it checks @p docroot with one stat(); the simulator's files are on
 * its simulated disk, so there it checks nothing). Returns 0, -ENOENT,
 * -ENOTDIR, -ENAMETOOLONG, -ENOMEM.
 */
int httpd_static_init(struct httpd_static *s, const char *docroot, uint64_t cache_bytes,
                      uint64_t ttl_ns);

/* Free everything (after the server stopped; on the shard that called init). */
void httpd_static_fini(struct httpd_static *s);

/* The handler (register it as a prefix route, arg = the struct httpd_static). */
struct sc_future httpd_static_handler(void *arg, const struct http_request *req,
                                      struct httpd_reply *rep);

#endif
