/**
 * @file simdisk.h
 * @brief The simulated disk's controls for tests: an empty disk, a power cut
 * at a chosen virtual time, a reboot that keeps only what the device would
 * have kept, a capacity limit, and counters.
 *
 * In the simulator, the file API (disk/file.h) acts on one in-memory disk
 * that every shard of the run shares. It lives in the process, not in the
 * run: files written in one sc_run() are still there in the next. So a test
 * can run an app, cut the power in the middle of it, reboot the disk, and
 * run the app's recovery on what survived.
 *
 * Each file has two images. The *volatile* image is what reads see: every
 * completed write is in it. The *durable* image is what is on the medium:
 * a write reaches it only when an sc_file_flush() that began after the write
 * completed has itself completed (or when the device's cache, holding more
 * than 32 MiB of one file's unflushed writes, writes the oldest back on its
 * own). Between the two, the device remembers every write it was handed
 * since the last flush, sector by sector (512 bytes).
 *
 * A power cut (sc_sim_disk_crash_at()) freezes what the device has: from
 * that virtual time on, nothing reaches the durable image and no directory
 * change is recorded. The app keeps running and may even see its writes
 * and flushes succeed, as an app whose acknowledgements nobody receives.
 *
 * A reboot (sc_sim_disk_reboot()) makes every file what the device holds
 * after the power came back:
 *   - its durable image;
 *   - plus what came back of each unflushed write (completed, or still in
 *     flight when the power went): a seeded fate per write says lost,
 *     whole, or torn (then a seeded coin per 512-byte sector). Where several
 *     writes came back on the same sector, a seeded pick says which landed
 *     last: writes need not land in the order they were issued. A sector is
 *     never half old, half new: it is the unit the device writes
 *     atomically;
 *   - a file grows to the end of the last sector that came back with data;
 *     an unflushed truncate or allocate takes effect or not, by a seeded
 *     coin.
 * Directory entries (create, rename, remove) are durable after
 * sc_file_sync_dir() on their directory. For a directory whose entries
 * changed since its last sync, a seeded coin decides whether all of the
 * changes made it (as a journalling filesystem commits them together) or
 * none did: a file created and never synced may vanish, a rename may be
 * undone, a removed file may come back. Directories themselves are
 * implicit: one exists once a file was created under it, and stays.
 *
 * Other behaviour of the simulated disk:
 *   - DMA alignment is 4096 (offsets, lengths, buffers; checked again in the
 *     backend), the size most SSDs prefer and the one the real world
 *     needs, so code tested here runs there; the sector, the unit of a torn
 *     write, is 512 bytes, so a 4 KiB write can tear into 8 pieces;
 *   - timing: a request holds one of 4 channels for its latency (70 us to
 *     read, 30 us to write, +-20% seeded jitter, one in 256 four times
 *     slower) and the shared bus for its bytes (2 GB/s read, 1 GB/s
 *     write); a flush takes 100 us plus its unflushed bytes at 2 GB/s;
 *     metadata calls take about 20 us;
 *   - faults: `--sim-disk-eio-ppm N` fails that many reads, writes and
 *     flushes per million with -EIO (a failed write changes nothing; after
 *     a failed flush the writes stay unflushed); a full disk
 *     (sc_sim_disk_set_capacity()) fails writes, truncates and allocations
 *     that would grow a file past it with -ENOSPC;
 *   - sc_file_allocate() grows the file to the end of the range, as
 *     posix_fallocate() does.
 *
 * Randomness comes from a stream per shard derived from the run's seed
 * (and, for a reboot, from the last run's seed and the number of reboots),
 * so the same seed gives the same disk, the same faults and the same trace
 * hash. None of these calls may be made from inside a run except
 * sc_sim_disk_crash_at(), sc_sim_disk_set_capacity() and sc_sim_disk_stats().
 */
#ifndef SC_SIMDISK_H
#define SC_SIMDISK_H

#include <stdint.h>

/** @brief Counters of the simulated disk since the last reset. @ingroup ch08 */
struct sc_sim_disk_stats {
    uint64_t reads;         /**< reads completed without error */
    uint64_t writes;        /**< writes completed without error */
    uint64_t flushes;       /**< flushes completed without error */
    uint64_t bytes_read;    /**< bytes read */
    uint64_t bytes_written; /**< bytes written */
    uint64_t eio;           /**< requests failed with -EIO on purpose */
    uint64_t enospc;        /**< requests failed with -ENOSPC */
    uint64_t files;         /**< files that exist now (names, the app's view) */
    uint64_t used_bytes;    /**< space the files hold (4 KiB units) */
    uint64_t capacity;      /**< the limit (UINT64_MAX: none) */
    uint64_t reboots;       /**< sc_sim_disk_reboot() calls */
    uint64_t crashes;       /**< reboots after a power cut that happened in a run */
    uint64_t sectors_new;   /**< reboots: sectors that came back with unflushed data */
    uint64_t sectors_old;   /**< reboots: sectors unflushed writes covered that came back old */
    uint64_t writes_whole;  /**< reboots: unflushed writes that came back entirely */
    uint64_t writes_torn;   /**< reboots: unflushed writes that came back in part */
    uint64_t writes_lost;   /**< reboots: unflushed writes of which nothing came back */
    uint64_t entries_lost;  /**< reboots: directories whose unsynced changes were lost */
};

/**
 * @brief Empty the disk: no files, no capacity limit, no power cut planned,
 * counters zeroed. Call it outside a run (each case of a sweep starts so).
 * @ingroup ch08
 * @retval 0 done
 * @retval -EBUSY a run is using the disk
 */
int sc_sim_disk_reset(void);

/**
 * @brief Cut the power at virtual time @p t of the current run (or of the
 * next one, when called outside a run): from then on nothing reaches the
 * durable image, until sc_sim_disk_reboot(). A time already past cuts it
 * now. A later call moves the cut.
 * @ingroup ch08
 */
void sc_sim_disk_crash_at(uint64_t t);

/**
 * @brief Bring the disk back as the device holds it after a power cut
 * (the planned one, or one at the end of the last run if none was planned):
 * see the file comment for what survives. Clears the planned cut.
 * @ingroup ch08
 * @retval 0 done
 * @retval -EBUSY called inside a run
 * @retval -ENOMEM out of memory (the disk may be left partly rebooted)
 */
int sc_sim_disk_reboot(void);

/**
 * @brief Limit the space all files may hold together to @p bytes
 * (UINT64_MAX: no limit, the default). Requests that would grow past it
 * fail with -ENOSPC; files already bigger keep their data.
 * @ingroup ch08
 */
void sc_sim_disk_set_capacity(uint64_t bytes);

/** @brief Copy the disk's counters into @p out. @ingroup ch08 */
void sc_sim_disk_stats(struct sc_sim_disk_stats *out);

#endif
