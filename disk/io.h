/**
 * @file io.h
 * @brief The shard's I/O queue: what it knows about the disk, and what each
 * scheduling group got from it.
 *
 * Every read and write of a file (disk/file.h) enters the I/O queue of the
 * shard that issues it. The queue belongs to the shard (no locks) and holds
 * one class per scheduling group (core/sched.h): a group's I/O shares are its
 * CPU shares, so one knob says how important a kind of work is. The fair
 * queue (disk/fair_queue.h) picks which class goes next; a token bucket
 * built from the disk model lets only as much work reach the device as it
 * finishes within a short latency goal, so a latency-sensitive group's
 * request never waits behind a deep backlog in the kernel or the device.
 *
 * The disk model comes from `--io-properties-file` (written by
 * `seacore-iotune`); without one, the real world admits work without a
 * bucket (only a cap of requests in flight) and the simulator uses its
 * simulated disk's own model.
 */
#ifndef SC_DISK_IO_H
#define SC_DISK_IO_H

#include <stdint.h>

#include "core/sched.h"
#include "disk/fair_queue.h"

/** @brief What one scheduling group got from this shard's I/O queue. @ingroup ch08 */
struct sc_io_stats {
    uint32_t shares;    /**< its shares */
    uint64_t queued;    /**< requests waiting in the queue now */
    uint64_t in_flight; /**< requests at the device now */
    uint64_t reads;     /**< reads completed */
    uint64_t writes;    /**< writes completed */
    uint64_t errors;    /**< requests that failed */
    uint64_t bytes;     /**< bytes transferred */
    uint64_t queue_ns;  /**< total time requests waited in the queue */
    uint64_t p50_ns;    /**< latency (queue + device) median */
    uint64_t p99_ns;    /**< 99th percentile */
    uint64_t p999_ns;   /**< 99.9th percentile */
    uint64_t max_ns;    /**< the slowest request */
};

/**
 * @brief Fill @p out with group @p g's I/O on this shard since the start (or
 * since sc_io_stats_reset()). Percentiles come from a histogram with about
 * 3% resolution.
 * @ingroup ch08
 * @retval 0 filled (all zero if the group did no I/O)
 * @retval -EINVAL no such group, or @p out is NULL
 */
int sc_io_stats(struct sc_sched_group g, struct sc_io_stats *out);

/** @brief Zero this shard's I/O counters and histograms (not the queue). @ingroup ch08 */
void sc_io_stats_reset(void);

/**
 * @brief The disk model this shard's queue uses: the file's rates divided
 * by the number of shards (each shard has its own bucket over the same disk).
 * @ingroup ch08
 * @retval 0 filled
 * @retval -ENOENT no model: no token bucket (real world, no --io-properties-file)
 */
int sc_io_model(struct sc_disk_model *out);

/**
 * @brief Read a disk model file (the format `seacore-iotune` writes:
 * `read_iops: N`, `write_iops: N`, `read_bandwidth: N`, `write_bandwidth:
 * N` in bytes/s, optional `latency_goal_us: N`; `#` comments).
 * @ingroup ch08
 * @retval 0 parsed into @p out
 * @retval -ENOENT, -EACCES the file cannot be read
 * @retval -EINVAL malformed, or a rate missing or 0 (a message is logged
 *         with the line)
 */
int sc_io_model_load(const char *path, struct sc_disk_model *out);

#endif
