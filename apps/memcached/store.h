/*
 * store.h — one shard's part of the cache: a hash table of items, an LRU
 * list, a memory limit, expiry and flush_all, and the counters `stats`
 * reports.
 *
 * Every function here runs on the shard that owns the store, and none of
 * them waits: the work of one command is a lookup and perhaps an
 * allocation. Time is passed in (`now`, on the shard clock), so the store
 * itself reads no clock and the unit tests move time by hand. The only
 * asynchronous parts are the two timers the owner may start: the expiry
 * sweep and a delayed flush_all.
 *
 * Items are made and freed by the store, on its shard. A reader that keeps
 * an item beyond the call that found it (the connection writing its value
 * to a socket) takes a reference and releases it when done; an item that
 * leaves the table while referenced is freed by its last release.
 */
#ifndef MC_STORE_H
#define MC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apps/memcached/proto.h"
#include "core/reactor.h"

/* One cached item. The key and the value (with its "\r\n", so that a reply
 * can send it as it is) follow the header. */
struct mc_item {
    struct mc_item *hnext;               /* hash chain */
    struct mc_item *lru_prev, *lru_next; /* lru_prev: towards the most recently used */
    uint64_t hash;                       /* mc_hash() of the key */
    uint64_t cas;                        /* unique per run: see mc_store_config.shard */
    uint64_t deadline;                   /* shard clock; 0: never expires */
    uint32_t flags;                      /* the client's opaque flags */
    uint32_t nbytes;                     /* value bytes (without the "\r\n") */
    uint32_t size;                       /* bytes charged against the limit */
    uint32_t refs;                       /* 1 while in the table, +1 per reader */
    uint8_t nkey;                        /* key bytes */
    bool linked;                         /* in the table and the LRU */
    char data[];                         /* key, then value, then "\r\n" */
};

static inline const char *mc_item_key(const struct mc_item *it)
{
    return it->data;
}

static inline const char *mc_item_value(const struct mc_item *it)
{
    return it->data + it->nkey;
}

/* Outcomes of the store's commands (each maps to one reply line). */
enum mc_result {
    MC_STORED = 0,
    MC_NOT_STORED,
    MC_EXISTS,
    MC_NOT_FOUND,
    MC_DELETED,
    MC_TOUCHED,
    MC_OK,          /* flush_all, verbosity */
    MC_ARITH_OK,    /* incr/decr: the new value is in *value */
    MC_NON_NUMERIC, /* incr/decr on a value that is not a number */
    MC_NO_MEMORY,   /* the item does not fit (larger than the limit, or no memory) */
    MC_TOO_LARGE,   /* append/prepend would pass the item size limit */
    MC_RESULT__COUNT
};

/* The reply line of a result ("STORED\r\n", ...); MC_ARITH_OK has none. */
const char *mc_result_text(enum mc_result r);

/* Counters, as `stats` names them. */
struct mc_store_stats {
    uint64_t curr_items, total_items, bytes;
    uint64_t cmd_get, get_hits, get_misses, get_expired, get_flushed;
    uint64_t cmd_set, cmd_touch, touch_hits, touch_misses;
    uint64_t delete_hits, delete_misses, incr_hits, incr_misses, decr_hits, decr_misses;
    uint64_t cas_hits, cas_misses, cas_badval;
    uint64_t cmd_flush;
    uint64_t evictions;     /* live items pushed out by the memory limit */
    uint64_t reclaimed;     /* dead (expired or flushed) items taken out */
    uint64_t expired_swept; /* ... of which the sweep found */
    uint64_t ops;           /* commands run on this store: its shard's load */
};

struct mc_store_config {
    uint64_t limit_bytes;     /* the most bytes of items (0: 64 MiB) */
    uint32_t max_item_size;   /* the largest value (0: MC_ITEM_MAX) */
    unsigned shard, nshards;  /* cas values are seq * nshards + shard: unique across shards */
    uint32_t sweep_buckets;   /* buckets the sweep visits per step (0: 1024) */
    uint64_t sweep_period_ns; /* between sweeps of the whole table (0: 1 s) */
    /* Told of every live item the memory limit pushes out (may be NULL). */
    void (*on_evict)(void *arg, const struct mc_item *it, uint64_t now);
    void *evict_arg;
};

struct mc_store {
    struct mc_store_config cfg;
    struct mc_item **table;              /* the current table */
    uint64_t mask;                       /* its size - 1 */
    struct mc_item **old;                /* while growing: the table being emptied into `table` */
    uint64_t old_mask, migrate_pos;      /* old buckets below migrate_pos have moved */
    struct mc_item *lru_head, *lru_tail; /* most and least recently used */
    uint64_t seq;                        /* the last cas sequence number */
    uint64_t flushed_cas;                /* items with cas <= this are dead (flush_all) */
    uint64_t sweep_pos;                  /* next bucket of the sweep */
    struct sc_timer sweep_timer, flush_timer;
    bool sweeping;
    struct mc_store_stats st;
};

/* Set up an empty store. Returns 0 or -ENOMEM. */
int mc_store_init(struct mc_store *s, const struct mc_store_config *cfg);

/* Stop the timers and free every item (referenced ones too: call it last). */
void mc_store_destroy(struct mc_store *s);

/* Start the periodic expiry sweep on this shard (sc_timer); 0 or -ENOMEM. */
int mc_store_start_sweeper(struct mc_store *s);

/* A live item, or NULL (a dead one found on the way is taken out). The item
 * moves to the front of the LRU; counts a get and a hit or a miss. It stays
 * valid until the next store call, or until mc_item_release() if the
 * caller took a reference (mc_item_ref()). */
struct mc_item *mc_store_get(struct mc_store *s, const char *key, uint32_t klen, uint64_t hash,
                             uint64_t now);

static inline void mc_item_ref(struct mc_item *it)
{
    it->refs++;
}

/* Drop a reference taken with mc_item_ref(). */
void mc_item_release(struct mc_store *s, struct mc_item *it);

/*
 * set, add, replace, append, prepend and cas. deadline: from
 * mc_exptime_deadline() (MC_EXPIRED: stored and at once dead, as memcached
 * does with a negative exptime). cas: the client's value, for MC_CMD_CAS.
 * Returns MC_STORED, MC_NOT_STORED, MC_EXISTS, MC_NOT_FOUND, MC_NO_MEMORY
 * or MC_TOO_LARGE.
 */
enum mc_result mc_store_put(struct mc_store *s, enum mc_cmd cmd, const char *key, uint32_t klen,
                            uint64_t hash, uint32_t flags, uint64_t deadline, const char *value,
                            uint32_t vlen, uint64_t cas, uint64_t now);

/* MC_DELETED or MC_NOT_FOUND. */
enum mc_result mc_store_delete(struct mc_store *s, const char *key, uint32_t klen, uint64_t hash,
                               uint64_t now);

/* incr (decr = false) or decr: MC_ARITH_OK with the new value in *value,
 * MC_NOT_FOUND, MC_NON_NUMERIC or MC_NO_MEMORY. incr wraps at 2^64; decr
 * stops at 0. */
enum mc_result mc_store_arith(struct mc_store *s, bool decr, const char *key, uint32_t klen,
                              uint64_t hash, uint64_t delta, uint64_t now, uint64_t *value);

/* MC_TOUCHED (a new deadline) or MC_NOT_FOUND. */
enum mc_result mc_store_touch(struct mc_store *s, const char *key, uint32_t klen, uint64_t hash,
                              uint64_t deadline, uint64_t now);

/* flush_all: every item stored so far dies now (at == 0 or at <= now), or
 * at the shard-clock time `at` (a timer; a later flush replaces it). */
void mc_store_flush(struct mc_store *s, uint64_t at, uint64_t now);

/* Take out up to `budget` buckets' worth of dead items, from where the last
 * sweep stopped; returns how many items it took out. */
size_t mc_store_sweep(struct mc_store *s, uint64_t now, uint32_t budget);

/* Check the table, the LRU and the counters against each other (tests);
 * returns 0 or a negative line number of the broken rule. */
int mc_store_check(const struct mc_store *s);

#endif
