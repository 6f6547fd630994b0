/**
 * @file memory.h
 * @brief The per-shard allocator: each shard allocates from a memory region
 * of its own, with no locks and no atomics; memory freed on another shard
 * goes home in batches.
 *
 * On a shard, sc_malloc() and friends allocate from that shard's region:
 * small sizes from size classes (per-span free lists), large ones as runs of
 * 4 KiB pages. Freeing works from any thread: a pointer that belongs to
 * another shard is sent back to its owner, which frees it. Off a shard (or
 * in sanitizer builds) the calls go to the C library's allocator, so they
 * are always safe to use.
 *
 * Programs linked with seacore also get `malloc`, `free`, `calloc`,
 * `realloc`, `posix_memalign`, `aligned_alloc`, `memalign`, `valloc` and
 * `malloc_usable_size` served the same way on shard threads, unless the run
 * says `--malloc=system`. Sanitizer builds (`make SAN=asan|tsan`) leave the
 * C library's allocator in place, so the sanitizer sees every allocation.
 *
 * Options: `--memory SIZE` (all shards together; default: the machine's
 * memory less `--reserve-memory SIZE`, itself by default the larger of
 * 1.5 GiB and 7%; in the simulator 1 GiB per shard, whatever the host),
 * `--malloc seacore|system`, `--sim-alloc-fail-ppm N`.
 */
#ifndef SC_MEMORY_H
#define SC_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/**
 * @defgroup ch05 Chapter 5: per-shard memory
 * @brief The shard's allocator: regions, size classes, page spans, frees that go home.
 *
 * The API of chapter 5.
 */

/** @brief Number of small size classes (16 B to 16 KiB). @ingroup ch05 */
#define SC_MEMORY_CLASSES 36

/**
 * @brief Allocate @p size bytes on the calling shard (16-byte aligned).
 * @ingroup ch05
 * @return the memory, or NULL when the shard's budget (`--memory`) is spent
 *         (or a simulated failure was injected, `--sim-alloc-fail-ppm`).
 *         Off a shard: the C library's malloc().
 */
void *sc_malloc(size_t size);

/**
 * @brief Free memory from sc_malloc() (or from malloc(): both are accepted),
 * from any thread. Memory of another shard goes home to be freed there.
 * @ingroup ch05
 * @param p the memory, or NULL (nothing happens)
 */
void sc_free(void *p);

/**
 * @brief Allocate zeroed memory for @p n objects of @p size bytes.
 * @ingroup ch05
 * @return the memory, or NULL when out of memory or when n * size overflows
 */
void *sc_calloc(size_t n, size_t size);

/**
 * @brief Resize @p p to @p size bytes, keeping its contents (up to the
 * smaller size). The new memory belongs to the calling shard.
 * @ingroup ch05
 * @param p the memory (NULL: like sc_malloc())
 * @param size the new size (0: frees @p p and returns NULL)
 * @return the memory, or NULL when out of memory (then @p p is untouched)
 */
void *sc_realloc(void *p, size_t size);

/**
 * @brief Allocate @p size bytes aligned to @p align (a power of two, up to
 * 1 GiB): DMA buffers for disk I/O, say 512 B or 4 KiB.
 * @ingroup ch05
 * @return the memory, or NULL (out of memory, or @p align is not a power of
 *         two or is larger than 1 GiB; errno says EINVAL then)
 */
void *sc_aligned_alloc(size_t align, size_t size);

/**
 * @brief How many bytes the allocation at @p p can hold (at least what was
 * asked for).
 * @ingroup ch05
 * @return the usable size; 0 for NULL
 */
size_t sc_usable_size(void *p);

/** @brief One size class's counters. @ingroup ch05 */
struct sc_memory_class_stats {
    uint32_t size;           /**< object size in bytes */
    uint32_t span_pages;     /**< pages per span */
    uint64_t objects_in_use; /**< objects not yet freed (or freed elsewhere, not yet home) */
    uint64_t spans;          /**< spans the class holds */
};

/** @brief One shard's allocator counters. @ingroup ch05 */
struct sc_memory_stats {
    bool bypassed;                   /**< no shard allocator (sanitizer build, or none
                                          could be set up): the counters below are 0 */
    unsigned shard;                  /**< whose counters these are */
    uint64_t bytes_total;            /**< the shard's budget */
    uint64_t bytes_in_use;           /**< bytes in spans handed out (small spans and large) */
    uint64_t bytes_free;             /**< bytes_total - bytes_in_use (may be < 0: 0) */
    uint64_t bytes_mapped;           /**< address range used so far (the high-water mark) */
    uint64_t bytes_free_dirty;       /**< free pages still backed by memory */
    uint64_t bytes_released;         /**< free pages given back to the OS, in total */
    uint64_t small_objects;          /**< small objects in use */
    uint64_t small_bytes;            /**< ...and their bytes (class sizes) */
    uint64_t large_allocs;           /**< large allocations in use */
    uint64_t large_bytes;            /**< ...and their bytes (whole pages) */
    uint64_t foreign_frees_sent;     /**< frees of other shards' memory sent home */
    uint64_t foreign_frees_received; /**< frees of this shard's memory taken back */
    uint64_t alloc_failures;         /**< allocations refused: budget spent */
    uint64_t injected_failures;      /**< allocations refused by `--sim-alloc-fail-ppm` */
    struct sc_memory_class_stats classes[SC_MEMORY_CLASSES]; /**< per size class */
};

/**
 * @brief The calling shard's counters.
 * @ingroup ch05
 * @param out filled in (with `bypassed` set when the shard has no allocator)
 */
void sc_memory_stats(struct sc_memory_stats *out);

/**
 * @brief Shard @p shard's counters, read from outside a run (between runs,
 * or after one: the state of each shard's memory persists in the process).
 * During a run, call sc_memory_stats() on the shard itself instead.
 * @ingroup ch05
 * @retval 0 filled in
 * @retval -EINVAL @p shard is out of range
 */
int sc_memory_stats_of(unsigned shard, struct sc_memory_stats *out);

/**
 * @brief Print @p st on one line (and its busiest size classes on a second)
 * to @p f.
 * @ingroup ch05
 */
void sc_memory_stats_print(FILE *f, const struct sc_memory_stats *st);

#endif
