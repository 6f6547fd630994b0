/*
 * log.h — a crash-proof append-only log on a DMA file: a record is
 * acknowledged only once it is durable.
 *
 * On disk, records are packed into 4096-byte blocks, never across a block
 * boundary (a record that does not fit in what is left of a block starts
 * the next one; the rest of the block stays zero):
 *
 *     [len u32][crc32c u32][seq u64][payload: len bytes]   (host byte order)
 *
 * `seq` counts from 1 with no gap. The checksum (CRC-32C, Castagnoli)
 * covers len, seq and the payload, so a record torn by a power cut, or
 * stale bytes that were never part of this log's history, do not pass.
 *
 * Appending copies the record into the in-memory tail and returns a future
 * that resolves with the record's seq when the record is durable: the
 * blocks holding it were written (sc_file_dma_write) and an sc_file_flush()
 * that began after the write completed has itself completed. Group commit:
 * one commit is in flight at a time; the records appended meanwhile wait and
 * go together in the next one (one write of the blocks from the first
 * unflushed one to the tail, one flush). A commit that fails (-EIO) is
 * retried, write and flush both, since after a failed fdatasync the data
 * must be written again; after 3 failures its records fail with -EIO. A
 * failed record may still be found after a crash: -EIO means "not known to
 * be durable", never "known to be lost".
 *
 * Opening recovers: the file is read from the start and records are
 * accepted while the checksum holds and seq is the next expected; the first
 * record that fails ends the log (a torn tail). Everything after that point
 * is cut off (the tail block rewritten with zeroes after the last good
 * record, the file truncated after it, and both flushed) before the first
 * new append, so that nothing stale can ever line up behind new records.
 *
 * A log belongs to the shard that opened it.
 */
#ifndef APPLOG_LOG_H
#define APPLOG_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/future.h"

#define APPLOG_BLOCK       4096u
#define APPLOG_HEADER      16u
#define APPLOG_MAX_PAYLOAD (APPLOG_BLOCK - APPLOG_HEADER)

struct applog;

/* Options. Both flags break the log on purpose: the crash sweep
 * (tests/sim/sim_applog.c) uses them to show it catches such a log. */
struct applog_opts {
    bool unsafe_ack_before_flush; /* acknowledge once written, before the flush */
    bool unsafe_skip_checksum;    /* recovery accepts a record whatever its checksum */
};

/* Called by recovery for each record found, in order. */
typedef void (*applog_record_fn)(void *arg, uint64_t seq, const void *data, uint32_t len);

/* Open (creating if missing) and recover the log at `path`; `fn` (may be
 * NULL) sees every record recovered. Value: struct applog *. Errors: those
 * of sc_file_open() and of the reads, writes and flush of recovery;
 * -ENOMEM. */
struct sc_future applog_open(const char *path, const struct applog_opts *opts, applog_record_fn fn,
                             void *arg);

/* Append len bytes (1..APPLOG_MAX_PAYLOAD) of data (copied at once). *seq
 * (may be NULL) gets the record's seq now. Value: the seq, once durable.
 * Errors: -EINVAL (bad length), -EBADF (closing), -ENOMEM, -EIO (not known
 * to be durable: see above). */
struct sc_future applog_append(struct applog *l, const void *data, uint32_t len, uint64_t *seq);

/* Wait for every append to be acknowledged or failed, close the file, free
 * the log. Value: 0, or the file's close error. */
struct sc_future applog_close(struct applog *l);

struct applog_stats {
    uint64_t recovered;      /* records found by recovery */
    uint64_t recovered_end;  /* the byte after the last of them */
    uint64_t cut_bytes;      /* bytes cut off after it */
    uint64_t appended;       /* records appended since open */
    uint64_t acked;          /* ...acknowledged as durable */
    uint64_t failed;         /* ...failed with an error */
    uint64_t commits;        /* write+flush rounds that succeeded */
    uint64_t retries;        /* rounds that failed and were tried again */
    uint64_t blocks_written; /* 4096-byte blocks written (rewrites of the tail count) */
    uint64_t next_seq;       /* the seq the next append gets */
};

void applog_stats(const struct applog *l, struct applog_stats *out);

/* CRC-32C (Castagnoli) of n bytes, continuing from crc (0 to start). */
uint32_t applog_crc32c(uint32_t crc, const void *data, size_t n);

#endif
