/**
 * @file fair_queue.h
 * @brief The I/O scheduler's core: which queued request goes to the disk
 * next, and when. Shares between classes of requests, and a token bucket
 * built from a model of the disk.
 *
 * The fair queue knows nothing of files, backends or futures. It is handed
 * requests (an ::sc_fq_entry embedded in the caller's request) and the time
 * in nanoseconds, and it answers two questions: which request should the
 * disk get next, and at what time will it be allowed to. The per-shard
 * io_queue asks both, submits what it is given, and reports completions. All
 * state is the caller's memory; nothing here allocates, reads a clock or
 * draws a random number, so the same calls give the same answers in either
 * world.
 *
 * **Cost.** Every request is priced in *disk nanoseconds*: how long the
 * disk of the model needs for it when it is kept busy,
 *
 *     cost = 1e9 / iops(dir) + len * 1e9 / bw(dir)
 *
 * (one operation, plus its bytes). On a disk of 100k read IOPS a 4 KiB read
 * costs about 10 us; on a disk that writes 1 GB/s, a 128 KiB write costs
 * 131 us plus one write operation. Reads and writes are priced separately
 * because disks do them at different rates.
 *
 * **The token bucket: how much may be in flight.** The bucket holds disk
 * nanoseconds. It fills at one token per nanosecond of time (the rate at
 * which the modelled disk works), up to a burst of `latency_goal_ns`. A
 * request leaves when the bucket holds its cost, which it takes out. So in
 * any stretch of time the queue hands the disk no more work than the
 * stretch itself plus one burst: a disk that keeps up with its model never
 * has more than `latency_goal_ns` of work queued inside it, and a request
 * that the fair queue puts first starts within about that time. Without the
 * bucket, the kernel and the device would hold every request submitted, and
 * an urgent read would wait behind all of them whatever its shares.
 * A request that costs more than the whole burst could never find its cost
 * in the bucket: it leaves when the bucket is full, and drives the bucket
 * below zero, so the requests after it wait until the disk has had time
 * for it. Big requests are slowed, never starved.
 *
 * **The fair queue: whose turn.** Requests belong to classes (up to
 * ::SC_FQ_MAX_CLASSES), each with shares. A class's *virtual time* grows by
 * `cost * SC_FQ_VTIME_SCALE / shares` for each request it dispatches; the
 * next request comes from the class with queued requests and the least
 * virtual time (the lowest id on a tie), first in first out within a class.
 * Two busy classes with 1000 and 100 shares thus get 10/11 and 1/11 of the
 * disk's time, whatever the sizes of their requests. A class that was idle
 * gets no credit for it: when it queues again, its virtual time is raised
 * to the virtual time the last dispatched class had when it was picked (the
 * queue's *floor*), so it competes as if it had been queued just before the
 * last dispatch, no earlier.
 *
 * The class is chosen first and the bucket asked second: when the chosen
 * request does not fit, nothing is dispatched, even if a cheaper request of
 * another class would fit. Skipping ahead would starve big requests and
 * break the shares.
 *
 * Time (`now`) is any monotonic nanosecond clock: sc_now() on a shard. A
 * `now` earlier than one seen before counts as no time passing.
 */
#ifndef SC_FAIR_QUEUE_H
#define SC_FAIR_QUEUE_H

#include <stdint.h>

/**
 * @defgroup ch08 Chapter 8: disk I/O
 * @brief The disk I/O scheduler: a disk model, request costs, the token
 * bucket, share-proportional classes.
 *
 * The API of chapter 8 (see the page "8. Disk I/O").
 */

/** @brief How many classes a fair queue may hold. @ingroup ch08 */
#define SC_FQ_MAX_CLASSES 32
/** @brief The largest number of shares a class may have (the smallest is 1). @ingroup ch08 */
#define SC_FQ_MAX_SHARES 1000
/**
 * @brief Virtual time grows by `cost * SC_FQ_VTIME_SCALE / shares`: a class
 * with the most shares counts plain disk nanoseconds. @ingroup ch08
 */
#define SC_FQ_VTIME_SCALE 1000
/** @brief The burst used when the model's `latency_goal_ns` is 0: 750 us. @ingroup ch08 */
#define SC_FQ_DEFAULT_LATENCY_GOAL_NS UINT64_C(750000)
/** @brief The largest `latency_goal_ns` a model may ask for: 60 s. @ingroup ch08 */
#define SC_FQ_MAX_LATENCY_GOAL_NS UINT64_C(60000000000)
/**
 * @brief The most a single request can cost (about 18 minutes of disk
 * time); sc_fq_cost() saturates there. @ingroup ch08
 */
#define SC_FQ_MAX_COST (UINT64_C(1) << 40)

/**
 * @brief What the disk can do (the numbers Seastar calls io_properties).
 * @ingroup ch08
 *
 * Rates are for the disk the queue schedules for. When several queues
 * (shards) share one disk, give each its part of the rates.
 */
struct sc_disk_model {
    uint64_t read_iops;       /**< 4 KiB random reads per second (> 0) */
    uint64_t write_iops;      /**< 4 KiB random writes per second (> 0) */
    uint64_t read_bw;         /**< bytes per second of large sequential reads (> 0) */
    uint64_t write_bw;        /**< bytes per second of large sequential writes (> 0) */
    uint64_t latency_goal_ns; /**< the token bucket's burst: how much disk work may be in
                                   flight; 0 for ::SC_FQ_DEFAULT_LATENCY_GOAL_NS */
};

/** @brief The direction of a request. @ingroup ch08 */
enum sc_io_dir {
    SC_IO_READ = 0,  /**< the disk sends data */
    SC_IO_WRITE = 1, /**< the disk takes data */
};

/**
 * @brief A request as the fair queue sees it, embedded in the caller's
 * request (recover the request with ::SC_CONTAINER_OF). Set it up with
 * sc_fq_entry_init(). @ingroup ch08
 */
struct sc_fq_entry {
    struct sc_fq_entry *next; /**< private: the class's FIFO */
    uint64_t cost;            /**< private: set by sc_fq_queue(), in disk nanoseconds */
    uint32_t class_id;        /**< the class, from sc_fq_add_class() */
    uint8_t dir;              /**< an ::sc_io_dir */
    uint8_t state;            /**< private: idle, queued or in flight */
    uint64_t len;             /**< bytes */
};

/** @brief One class inside a fair queue (private: use sc_fq_class_stats()). @ingroup ch08 */
struct sc_fq_class {
    struct sc_fq_entry *head; /**< the oldest queued request */
    struct sc_fq_entry *tail; /**< the newest queued request */
    uint64_t vtime;           /**< virtual time: cost * SC_FQ_VTIME_SCALE / shares, summed */
    uint32_t shares;          /**< its weight */
    uint64_t queued;          /**< requests waiting now */
    uint64_t in_flight;       /**< requests dispatched and not completed */
    uint64_t dispatched;      /**< requests dispatched, ever */
    uint64_t completed;       /**< requests completed, ever */
    uint64_t bytes;           /**< bytes dispatched, ever */
    uint64_t cost;            /**< disk nanoseconds dispatched, ever */
};

/**
 * @brief A fair queue: one per disk per shard, embedded in its io_queue.
 * Its fields are private (use the functions).
 * @ingroup ch08
 */
struct sc_fair_queue {
    uint64_t ns_per_op[2];   /**< 1e9 / iops, per direction */
    uint64_t bw[2];          /**< bytes per second, per direction */
    int64_t burst;           /**< the bucket's capacity, disk ns */
    int64_t tokens;          /**< the bucket's level at last_refill; may be below 0 */
    uint64_t last_refill;    /**< the latest time the bucket was refilled to */
    uint64_t floor;          /**< the picked class's vtime at the last dispatch */
    uint32_t active;         /**< bit i: class i has queued requests */
    uint32_t nclasses;       /**< classes added so far (ids 0 .. nclasses - 1) */
    uint64_t in_flight;      /**< requests dispatched and not completed */
    uint64_t in_flight_cost; /**< their cost, disk ns */
    struct sc_fq_class cls[SC_FQ_MAX_CLASSES]; /**< the classes */
};

/**
 * @brief Set up a request's entry before sc_fq_queue() (and before reusing
 * it for another request).
 * @ingroup ch08
 * @param e the entry
 * @param class_id the class it belongs to
 * @param dir ::SC_IO_READ or ::SC_IO_WRITE
 * @param len its length in bytes
 */
static inline void sc_fq_entry_init(struct sc_fq_entry *e, unsigned class_id, enum sc_io_dir dir,
                                    uint64_t len)
{
    e->next = 0;
    e->cost = 0;
    e->class_id = class_id;
    e->dir = (uint8_t)dir;
    e->state = 0;
    e->len = len;
}

/**
 * @brief Start an empty fair queue with no classes, its bucket full.
 * @ingroup ch08
 * @param fq the queue (its memory is the caller's)
 * @param m the disk's model (copied)
 * @param now the time
 * @retval 0 ready
 * @retval -EINVAL @p fq or @p m is NULL, a rate is 0, or `latency_goal_ns` is above
 *         ::SC_FQ_MAX_LATENCY_GOAL_NS
 */
int sc_fq_init(struct sc_fair_queue *fq, const struct sc_disk_model *m, uint64_t now);

/**
 * @brief Forget everything. Requests still queued or in flight are the
 * caller's to finish (sc_fq_cancel() them first); nothing is freed here.
 * @ingroup ch08
 * @param fq the queue, or NULL
 */
void sc_fq_destroy(struct sc_fair_queue *fq);

/**
 * @brief Add a class. It starts idle; its first request is not favoured
 * over classes that were busy before it.
 * @ingroup ch08
 * @param fq the queue
 * @param shares its weight, in [1, ::SC_FQ_MAX_SHARES]
 * @return the class's id (>= 0, given out in order from 0)
 * @retval -EINVAL @p fq is NULL or @p shares is out of range
 * @retval -ENOSPC the queue holds ::SC_FQ_MAX_CLASSES classes already
 */
int sc_fq_add_class(struct sc_fair_queue *fq, unsigned shares);

/**
 * @brief Change a class's shares. Dispatches from now on are charged with
 * the new shares; what the class used before is not re-weighted.
 * @ingroup ch08
 * @retval 0 changed
 * @retval -EINVAL @p fq is NULL, no class @p id, or @p shares is out of range
 */
int sc_fq_set_shares(struct sc_fair_queue *fq, unsigned id, unsigned shares);

/**
 * @brief The cost of a request, in disk nanoseconds:
 * `1e9 / iops(dir) + len * 1e9 / bw(dir)`, each term rounded down, at
 * least 1, at most ::SC_FQ_MAX_COST.
 * @ingroup ch08
 * @param fq the queue (its model)
 * @param dir ::SC_IO_READ or ::SC_IO_WRITE
 * @param len bytes
 * @return the cost; UINT64_MAX when @p fq is NULL or @p dir is not a direction
 */
uint64_t sc_fq_cost(const struct sc_fair_queue *fq, unsigned dir, uint64_t len);

/**
 * @brief Queue a request at the tail of its class. Prices it (the entry's
 * cost); if the class was idle, raises its virtual time to the floor.
 * @ingroup ch08
 * @param fq the queue
 * @param e an entry from sc_fq_entry_init(), or one that completed or was cancelled
 * @retval 0 queued
 * @retval -EINVAL @p fq or @p e is NULL, no class `e->class_id`, or `e->dir` is not
 *         a direction
 * @retval -EBUSY @p e is queued or in flight already
 */
int sc_fq_queue(struct sc_fair_queue *fq, struct sc_fq_entry *e);

/**
 * @brief Take the next request for the disk, if the bucket allows it now.
 * @ingroup ch08
 *
 * Refills the bucket up to @p now, chooses the class (least virtual time,
 * lowest id on a tie) and its oldest request, and dispatches it if the
 * bucket holds its cost (or is full, for a request that costs more than
 * the burst): the bucket loses the cost, the class's virtual time grows by
 * the cost over its shares. Call it again until it returns NULL; then
 * sc_fq_next_ready() says when to try again.
 *
 * @param fq the queue
 * @param now the time
 * @return the request, now in flight (submit it, then sc_fq_complete() it);
 *         NULL when nothing is queued, the bucket is short, or @p fq is NULL
 */
struct sc_fq_entry *sc_fq_dispatch(struct sc_fair_queue *fq, uint64_t now);

/**
 * @brief A dispatched request is done (with success or an error: the disk
 * spent its time on it either way).
 * @ingroup ch08
 *
 * Updates the in-flight counters; the bucket refills with time, not with
 * completions. The entry may then be queued again.
 *
 * @param fq the queue
 * @param e the request, from sc_fq_dispatch()
 * @param now the time
 * @retval 0 done
 * @retval -EINVAL @p fq or @p e is NULL, or @p e is not in flight
 */
int sc_fq_complete(struct sc_fair_queue *fq, struct sc_fq_entry *e, uint64_t now);

/**
 * @brief Take a queued request out before it is dispatched (its class's
 * virtual time does not change). Walks the class's queue: linear in its length.
 * @ingroup ch08
 * @retval 0 removed; @p e is idle again
 * @retval -EINVAL @p fq or @p e is NULL, or @p e is not queued
 * @retval -EBUSY @p e is in flight: too late to cancel, wait for it to complete
 */
int sc_fq_cancel(struct sc_fair_queue *fq, struct sc_fq_entry *e);

/**
 * @brief When sc_fq_dispatch() will next return a request, if nothing else
 * changes (no queueing, no share changes) until then.
 * @ingroup ch08
 * @param fq the queue
 * @param now the time
 * @return @p now if a request can go now; a later time if the bucket must
 *         refill first; UINT64_MAX if nothing is queued (or @p fq is NULL)
 */
uint64_t sc_fq_next_ready(const struct sc_fair_queue *fq, uint64_t now);

/** @brief One class's counters (sc_fq_class_stats()). @ingroup ch08 */
struct sc_fq_class_stats {
    unsigned shares;     /**< its shares now */
    uint64_t queued;     /**< requests waiting now */
    uint64_t in_flight;  /**< requests dispatched and not completed */
    uint64_t dispatched; /**< requests dispatched, ever */
    uint64_t completed;  /**< requests completed, ever */
    uint64_t bytes;      /**< bytes dispatched, ever */
    uint64_t cost;       /**< disk nanoseconds dispatched, ever */
    uint64_t vtime;      /**< its virtual time */
};

/**
 * @brief Read class @p id's counters.
 * @ingroup ch08
 * @retval 0 filled
 * @retval -EINVAL @p fq or @p out is NULL, or no class @p id
 */
int sc_fq_class_stats(const struct sc_fair_queue *fq, unsigned id, struct sc_fq_class_stats *out);

/** @brief The whole queue's state (sc_fq_stats()). @ingroup ch08 */
struct sc_fq_stats {
    int64_t tokens;          /**< the bucket's level at the time asked (below 0 after a
                                  request bigger than the burst) */
    int64_t burst;           /**< the bucket's capacity */
    uint64_t queued;         /**< requests waiting, all classes */
    uint64_t in_flight;      /**< requests dispatched and not completed */
    uint64_t in_flight_cost; /**< their cost, disk ns */
    uint64_t floor;          /**< the virtual time an idle class wakes up at, at least */
};

/**
 * @brief Read the queue's state at time @p now (changes nothing).
 * @ingroup ch08
 * @retval 0 filled
 * @retval -EINVAL @p fq or @p out is NULL
 */
int sc_fq_stats(const struct sc_fair_queue *fq, uint64_t now, struct sc_fq_stats *out);

#endif
