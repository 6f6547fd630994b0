/**
 * @file file_stream.h
 * @brief Streams over DMA files: an input stream that reads ahead and an
 * output stream that writes behind, both in large aligned blocks.
 *
 * The streams of core/stream.h work on any source or sink; these make a file
 * one. Reading keeps several block reads in flight ahead of the reader, so a
 * sequential scan runs at the disk's speed rather than at one request's
 * latency; writing collects bytes into aligned blocks and keeps several
 * block writes in flight behind the writer. Closing the output stream writes
 * the last partial block (padded), cuts the file to the exact length and
 * makes everything durable (fdatasync): only then is the data safe.
 */
#ifndef SC_FILE_STREAM_H
#define SC_FILE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/stream.h"
#include "disk/file.h"

/** @brief Options for sc_file_input_stream(). Zero means the default. @ingroup ch08 */
struct sc_file_input_opts {
    size_t block_size;   /**< bytes per read (default 128 KiB; a multiple of the alignment) */
    unsigned read_ahead; /**< reads kept in flight (default 4) */
    uint64_t offset;     /**< where to start (any value) */
    uint64_t length;     /**< bytes to read at most (0: to the end of the file) */
};

/**
 * @brief Make @p out an input stream over @p f. The file must stay open
 * until the stream is closed (sc_istream_close() does not close the file).
 * @ingroup ch08
 * @param f the file (open for reading)
 * @param opts options, or NULL for the defaults
 * @param out the stream to set up
 * @retval 0 ready
 * @retval -EINVAL a block size that is not a multiple of the alignment, or
 *         read_ahead above 64
 * @retval -ENOMEM no memory for the buffers
 * A file not open for reading gives -EBADF on the first read.
 */
int sc_file_input_stream(struct sc_file *f, const struct sc_file_input_opts *opts,
                         struct sc_istream *out);

/** @brief Options for sc_file_output_stream(). Zero means the default. @ingroup ch08 */
struct sc_file_output_opts {
    size_t block_size;     /**< bytes per write (default 128 KiB; a multiple of the alignment) */
    unsigned write_behind; /**< writes kept in flight (default 4) */
    uint64_t offset;       /**< where to start (aligned) */
};

/**
 * @brief Make @p out an output stream over @p f, writing from @p opts->offset.
 * Closing the stream writes the tail, truncates the file to the end of what
 * was written, and flushes it (it does not close the file).
 * @ingroup ch08
 * @param f the file (open for writing)
 * @param opts options, or NULL for the defaults
 * @param out the stream to set up
 * @retval 0 ready
 * @retval -EINVAL a bad block size, write_behind above 64, or an unaligned offset
 * @retval -ENOMEM no memory for the buffers
 * A file not open for writing gives -EBADF on the first block written.
 */
int sc_file_output_stream(struct sc_file *f, const struct sc_file_output_opts *opts,
                          struct sc_ostream *out);

#endif
