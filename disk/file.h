/**
 * @file file.h
 * @brief Files for DMA: O_DIRECT reads and writes that bypass the page
 * cache, scheduled by the shard's I/O queue; plus the metadata calls
 * (open, stat, rename, ...) that never block a shard.
 *
 * Reads and writes go from the app's buffer straight to the device
 * (O_DIRECT), so their buffer, file offset and length must be multiples of
 * the file's alignment (sc_file_alignment(); 4096 is always safe). A
 * misaligned request fails at once with -EINVAL and nothing is submitted.
 * sc_dma_alloc() gives suitably aligned buffers. The bulk helpers
 * (sc_file_read_bulk(), sc_file_write_bulk()) take any offset and length and
 * do the alignment for you.
 *
 * Every read and write passes through the shard's I/O queue (disk/io.h):
 * it is charged to the scheduling group that issues it (core/sched.h), and
 * groups share the disk in proportion to their shares, as they share the CPU.
 *
 * Metadata calls and other blocking calls (open, fdatasync when the reactor
 * backend cannot do it, stat, truncate, fallocate, rename, unlink, readdir)
 * run on the shard's syscall thread in the real world; in the simulator
 * they act on the simulated disk (sim/simdisk.h) and complete at modelled
 * times.
 *
 * A filesystem that refuses O_DIRECT (tmpfs) is opened buffered, with one
 * log line saying so; the alignment rules still apply, so code stays
 * portable. `SC_FILE_BUFFERED` asks for that on purpose.
 *
 * A file belongs to the shard that opened it.
 */
#ifndef SC_FILE_H
#define SC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/future.h"

/** @brief Flags for sc_file_open(); combine with `|`. @ingroup ch08 */
enum sc_file_flags {
    SC_FILE_READ = 1 << 0,     /**< open for reading */
    SC_FILE_WRITE = 1 << 1,    /**< open for writing */
    SC_FILE_CREATE = 1 << 2,   /**< create if missing (mode 0644) */
    SC_FILE_EXCL = 1 << 3,     /**< with CREATE: fail with -EEXIST if it exists */
    SC_FILE_TRUNCATE = 1 << 4, /**< cut to length 0 */
    SC_FILE_BUFFERED = 1 << 5, /**< use the page cache (no O_DIRECT) */
};

/** @brief An open file. Opaque. @ingroup ch08 */
struct sc_file;

/** @brief What sc_file_stat() reports. @ingroup ch08 */
struct sc_file_stat {
    uint64_t size;       /**< bytes */
    uint64_t blocks;     /**< 512-byte blocks allocated */
    uint32_t mode;       /**< st_mode */
    uint64_t mtime_ns;   /**< modification time (real world: wall clock) */
    uint32_t alignment;  /**< DMA alignment of offsets, lengths and buffers */
};

/**
 * @brief Open @p path.
 * @ingroup ch08
 * @return a future of a `struct sc_file *`; -ENOENT, -EACCES, -EEXIST,
 *         -EISDIR, -EINVAL (no READ/WRITE flag, empty path), -ENOMEM, or
 *         another negative errno from the system
 */
struct sc_future sc_file_open(const char *path, unsigned flags);

/**
 * @brief Read @p len bytes at @p off into @p buf (all three aligned).
 * @ingroup ch08
 * @return a future of the bytes read (fewer at end of file, 0 past it);
 *         -EINVAL misaligned (nothing submitted); -EBADF not open for
 *         reading or closed; -EIO and other device errors
 */
struct sc_future sc_file_dma_read(struct sc_file *f, uint64_t off, void *buf, size_t len);

/**
 * @brief Write @p len bytes from @p buf at @p off (all three aligned).
 * The data is durable only after sc_file_flush().
 * @ingroup ch08
 * @return a future of the bytes written; -EINVAL misaligned; -EBADF;
 *         -ENOSPC; -EIO
 */
struct sc_future sc_file_dma_write(struct sc_file *f, uint64_t off, const void *buf, size_t len);

/**
 * @brief Read @p len bytes at any offset into @p buf (any alignment), in
 * aligned pieces through a bounce buffer when needed.
 * @ingroup ch08
 * @return a future of the bytes read (fewer only at end of file); errors as
 *         sc_file_dma_read()
 */
struct sc_future sc_file_read_bulk(struct sc_file *f, uint64_t off, void *buf, size_t len);

/**
 * @brief Write @p len bytes at any offset from @p buf (any alignment).
 * Unaligned edges are read, patched and written back (read-modify-write), so
 * two bulk writes to the same block must not run at once.
 * @ingroup ch08
 * @return a future of @p len; errors as sc_file_dma_write()
 */
struct sc_future sc_file_write_bulk(struct sc_file *f, uint64_t off, const void *buf, size_t len);

/**
 * @brief Make every completed write durable (fdatasync).
 * @ingroup ch08
 * @return a future of 0; -EIO (the data may be lost; the file stays usable)
 */
struct sc_future sc_file_flush(struct sc_file *f);

/** @brief Set the file's length. @ingroup ch08 @return a future of 0 or -errno */
struct sc_future sc_file_truncate(struct sc_file *f, uint64_t len);

/**
 * @brief Reserve disk space for [@p off, @p off + @p len) (fallocate).
 * @ingroup ch08
 * @return a future of 0; -ENOSPC; -EOPNOTSUPP where the filesystem cannot
 */
struct sc_future sc_file_allocate(struct sc_file *f, uint64_t off, uint64_t len);

/**
 * @brief Fill @p st (which must stay valid until the future resolves).
 * @ingroup ch08
 * @return a future of 0 or -errno
 */
struct sc_future sc_file_stat(struct sc_file *f, struct sc_file_stat *st);

/** @brief The file's size. @ingroup ch08 @return a future of the size in bytes, or -errno */
struct sc_future sc_file_size(struct sc_file *f);

/**
 * @brief Close: waits for the file's reads and writes in flight, then
 * closes. Later calls on @p f are not allowed (it is freed).
 * @ingroup ch08
 * @return a future of 0 or -errno
 */
struct sc_future sc_file_close(struct sc_file *f);

/** @brief The DMA alignment of @p f (offsets, lengths, buffers). @ingroup ch08 */
uint32_t sc_file_alignment(const struct sc_file *f);

/** @brief True if @p f was opened with O_DIRECT (false: buffered). @ingroup ch08 */
bool sc_file_is_direct(const struct sc_file *f);

/** @brief Remove the file @p path. @ingroup ch08 @return a future of 0 or -errno */
struct sc_future sc_file_remove(const char *path);

/** @brief Rename @p from to @p to (replacing it). @ingroup ch08 @return a future of 0 or -errno */
struct sc_future sc_file_rename(const char *from, const char *to);

/**
 * @brief Make a durable directory entry change (fsync on a directory): call
 * after creating, renaming or removing files in @p dir for them to survive a
 * crash.
 * @ingroup ch08
 * @return a future of 0 or -errno
 */
struct sc_future sc_file_sync_dir(const char *dir);

/** @brief One directory listing: names, NUL-separated. Free with sc_dir_list_free(). @ingroup ch08 */
struct sc_dir_list {
    size_t count;  /**< number of names */
    char **names;  /**< sorted by strcmp, without "." and ".." */
};

/**
 * @brief List directory @p dir.
 * @ingroup ch08
 * @return a future of a `struct sc_dir_list *`; -ENOENT, -ENOTDIR, -EACCES
 */
struct sc_future sc_file_list_directory(const char *dir);

/** @brief Free a listing. @ingroup ch08 */
void sc_dir_list_free(struct sc_dir_list *l);

/**
 * @brief A buffer aligned for DMA (4096), from the shard's allocator.
 * @ingroup ch08
 * @return the buffer, or NULL (out of memory, or @p len is 0)
 */
void *sc_dma_alloc(size_t len);

/** @brief Free a buffer from sc_dma_alloc(). @ingroup ch08 */
void sc_dma_free(void *p);

#endif
