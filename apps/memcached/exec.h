/*
 * exec.h — running a request on the store that owns its key, with the
 * reply appended to a growable byte buffer. Whoever owns the key calls it:
 * the connection's own shard for a local key, the owner shard (shard.c)
 * for a remote one. The unit tests drive it directly with one store.
 *
 * Also here: the byte buffer every reply is built in, the run's wall clock
 * (memcached's absolute exptimes need one), and the `stats` text.
 */
#ifndef MC_EXEC_H
#define MC_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apps/memcached/proto.h"
#include "apps/memcached/store.h"

#define MC_VERSION "1.6.0-seacore" /* what `version` says: clients parse major.minor.micro */

/* A growable buffer on the calling shard's allocator. A failed growth sets
 * `failed` and drops the bytes: the caller checks once, at the end. */
struct mc_buf {
    char *p;
    size_t len, cap;
    bool failed;
};

void mc_buf_put(struct mc_buf *b, const void *p, size_t n);
void mc_buf_puts(struct mc_buf *b, const char *s);
/* Room for n more bytes at b->p + b->len (the caller then adds to len);
 * NULL (and failed) if it cannot grow. */
char *mc_buf_room(struct mc_buf *b, size_t n);
void mc_buf_free(struct mc_buf *b);

/* Seconds since 1970 as this run sees them: the real clock in the real
 * world; in the simulator a fixed epoch (MC_SIM_EPOCH) plus virtual time,
 * so that absolute exptimes replay too. */
#define MC_SIM_EPOCH INT64_C(1700000000)
int64_t mc_unix_now(void);

/*
 * Run a single-key request (storage, delete, incr, decr, touch) on s, and
 * append its reply to out (nothing for noreply, errors aside).
 */
void mc_exec_key(struct mc_store *s, const struct mc_request *req, uint64_t hash, uint64_t now,
                 int64_t unix_now, struct mc_buf *out);

/* One key of a get/gets: append "VALUE ..." and the data, or nothing on a miss. */
void mc_exec_get(struct mc_store *s, bool with_cas, const char *key, uint32_t klen, uint64_t hash,
                 uint64_t now, struct mc_buf *out);

/* Counters of one shard, for `stats` (summed over shards by shard.c). */
struct mc_shard_stats {
    struct mc_store_stats store;
    uint64_t limit_bytes;
    uint64_t curr_connections, total_connections, rejected_connections;
    uint64_t bytes_read, bytes_written;
    uint64_t remote_sent;     /* requests this shard sent to other shards */
    uint64_t remote_received; /* requests other shards sent here */
    uint64_t protocol_errors; /* requests answered with ERROR / CLIENT_ERROR */
};

/* Add b into a. */
void mc_shard_stats_add(struct mc_shard_stats *a, const struct mc_shard_stats *b);

/* Append the `stats` reply (STAT lines and END) for the sum of n shards'
 * counters; per_shard: `stats shards`, one group of lines per shard. */
void mc_format_stats(struct mc_buf *out, const struct mc_shard_stats *per, unsigned n,
                     bool per_shard, uint64_t uptime_s, uint32_t max_item_size);

#endif
