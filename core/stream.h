/**
 * @file stream.h
 * @brief Byte streams: an input stream with a buffer you can look into, and
 * an output stream that batches small writes. Sockets (net/) and files
 * (disk/) are their sources and sinks.
 *
 * A stream sits on top of a *source* (something that can fill a buffer: a
 * socket, a file read with read-ahead, an in-memory transport) or a *sink*
 * (something that takes bytes: a socket, a file written behind). The stream
 * owns one buffer; the source or sink owns the device.
 *
 * Input: the stream reads from its source into its buffer and lets the app
 * look at the bytes in place (sc_istream_data()) and say how many it used
 * (sc_istream_consume()). Parsers work on the buffer directly: a request line
 * is never copied to be found. sc_istream_read_until() and
 * sc_istream_read_exactly() wait until the buffer holds what was asked.
 *
 * Output: small writes are copied into the buffer and cost no system call;
 * the buffer goes to the sink when it is full, on sc_ostream_flush(), or on
 * close. A write at least as large as the buffer is handed to the sink as it
 * is (after what is buffered), without a copy — its bytes must then stay
 * valid until its future resolves.
 *
 * A stream belongs to one shard. One read and one write may be outstanding at
 * a time (a second is an -EBUSY future). Errors of the source or sink are
 * sticky: once one is seen, every later call fails with it (bytes already
 * buffered are still given out first). Chapter 9 explains the design.
 */
#ifndef SC_STREAM_H
#define SC_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/future.h"

/**
 * @defgroup ch09 Chapter 9: the network API
 * @brief Streams, sockets, the posix stack and the simulated network.
 */

/**
 * @brief What a source does: fill buffers. Implemented by sockets, files,
 * the simulated network, and tests.
 * @ingroup ch09
 */
struct sc_source_ops {
    /**
     * Read at most @p len bytes into @p buf. The future's value is the
     * number of bytes read, 0 at end of stream, or an error. @p buf stays
     * valid until the future resolves.
     */
    struct sc_future (*read)(void *impl, char *buf, size_t len);
    /** Release the source; no read is outstanding. May be NULL. */
    void (*close)(void *impl);
};

/**
 * @brief What a sink does: take bytes. Implemented by sockets, files, the
 * simulated network, and tests.
 * @ingroup ch09
 */
struct sc_sink_ops {
    /**
     * Write all @p len bytes of @p buf; the future resolves (value 0) when the
     * sink no longer needs @p buf. A short write is the sink's business.
     */
    struct sc_future (*write)(void *impl, const char *buf, size_t len);
    /**
     * No more bytes will come (a socket's half-close, a file's final
     * flush). Resolves when that is done. May be NULL.
     */
    struct sc_future (*close)(void *impl);
};

/**
 * @brief A buffered input stream. Fields are private.
 * @ingroup ch09
 */
struct sc_istream {
    const struct sc_source_ops *ops; /**< private */
    void *impl;                      /**< private */
    char *buf;                       /**< private: the buffer */
    size_t cap;                      /**< private: its size */
    size_t start;                    /**< private: unread bytes are buf[start, end) */
    size_t end;                      /**< private: see start */
    bool eof;                        /**< private: the source said end of stream */
    bool busy;                       /**< private: a read is outstanding */
    bool closing;                    /**< private: closed while a read was outstanding */
    int err;                         /**< private: a sticky error from the source */
    uint64_t bytes_read;             /**< private: bytes taken from the source */
};

/**
 * @brief A buffered output stream. Fields are private.
 * @ingroup ch09
 */
struct sc_ostream {
    const struct sc_sink_ops *ops; /**< private */
    void *impl;                    /**< private */
    char *buf;                     /**< private: the batch being filled */
    size_t cap;                    /**< private: the size of each buffer */
    size_t len;                    /**< private: bytes in the batch */
    char *spare;                   /**< private: the other buffer: idle, or the batch the sink is
                                        writing (made on the first hand-over) */
    bool busy;                     /**< private: a write to the sink is outstanding */
    bool pending;                  /**< private: a write, flush or close future is not resolved */
    bool closed;                   /**< private */
    bool idle_wanted;              /**< private: @p idle waits for the sink's write to end */
    int err;                       /**< private: a sticky error from the sink */
    uint64_t bytes_written;        /**< private: bytes handed to the sink */
    uint64_t sink_writes;          /**< private: calls to the sink's write */
    struct sc_promise idle;        /**< private: resolved when the sink's write ends */
};

/**
 * @brief Set up @p is over a source.
 * @ingroup ch09
 * @param is the stream (the caller's memory)
 * @param ops what the source does (kept by pointer: it must outlive the stream)
 * @param impl the source's own pointer, passed to every call of @p ops
 * @param bufsize the buffer size, which is also the longest line
 *        sc_istream_read_until() can find (0: 8 KiB)
 * @retval 0 ready
 * @retval -EINVAL @p ops has no read
 * @retval -ENOMEM no buffer
 */
int sc_istream_init(struct sc_istream *is, const struct sc_source_ops *ops, void *impl,
                    size_t bufsize);

/**
 * @brief Wait until at least one unread byte is buffered (reading from the
 * source if none is).
 * @ingroup ch09
 * @return a future of the number of buffered bytes; 0 at end of stream; the
 *         source's error; -EBUSY if a read is already outstanding; -EBADF
 *         for a stream that is closed (or was never set up)
 */
struct sc_future sc_istream_read(struct sc_istream *is);

/**
 * @brief Wait until @p n bytes are buffered (@p n at most the buffer size).
 * @ingroup ch09
 * @return a future of @p n; of fewer (what is left) if the stream ends
 *         first; -EMSGSIZE if @p n exceeds the buffer; the source's error
 */
struct sc_future sc_istream_read_exactly(struct sc_istream *is, size_t n);

/**
 * @brief Wait until the buffer holds @p delim (one byte) within its first
 * @p max bytes.
 * @ingroup ch09
 * @return a future of the length up to and including the delimiter (the
 *         bytes are at sc_istream_data()); 0 at end of stream with nothing
 *         buffered; ::SC_EEOF if the stream ends inside a line (the partial
 *         line stays buffered); -EMSGSIZE if @p max bytes (or a full buffer)
 *         hold no delimiter — nothing is consumed, the caller may skip
 */
struct sc_future sc_istream_read_until(struct sc_istream *is, char delim, size_t max);

/**
 * @brief Discard @p n bytes, reading as many as needed from the source.
 * @ingroup ch09
 * @return a future of the count skipped (less only at end of stream); the
 *         source's error
 */
struct sc_future sc_istream_skip(struct sc_istream *is, uint64_t n);

/**
 * @brief The buffered bytes not yet consumed; @p len gets their count.
 * @ingroup ch09
 */
const char *sc_istream_data(const struct sc_istream *is, size_t *len);

/**
 * @brief Mark @p n buffered bytes as used (at most what sc_istream_data()
 * gives: more is clamped, with a log line). Not while a read is outstanding
 * (refused, with a log line): the buffer may move under it.
 * @ingroup ch09
 */
void sc_istream_consume(struct sc_istream *is, size_t n);

/** @brief True once the source said end of stream and every byte was consumed. @ingroup ch09 */
bool sc_istream_eof(const struct sc_istream *is);

/**
 * @brief Release the buffer and close the source. If a read is outstanding,
 * that happens when the source answers, and the read fails with
 * -ECONNABORTED; @p is must stay in place until then.
 * @ingroup ch09
 */
void sc_istream_close(struct sc_istream *is);

/**
 * @brief Set up @p os over a sink.
 * @ingroup ch09
 * @param os the stream (the caller's memory)
 * @param ops what the sink does (kept by pointer: it must outlive the stream)
 * @param impl the sink's own pointer, passed to every call of @p ops
 * @param bufsize the batch size (0: 8 KiB)
 * @retval 0 ready
 * @retval -EINVAL @p ops has no write
 * @retval -ENOMEM no buffer
 */
int sc_ostream_init(struct sc_ostream *os, const struct sc_sink_ops *ops, void *impl,
                    size_t bufsize);

/**
 * @brief Write @p len bytes.
 *
 * A write smaller than the batch is copied: into the batch if it fits;
 * otherwise the batch is filled to the brim, handed to the sink, and the
 * rest starts the next batch in the spare buffer. Such a write returns a
 * ready future, unless the sink is still writing the previous batch: then
 * it waits for it (the part that did not fit is copied aside, so @p p is
 * free as soon as the call returns either way). A write of at least the
 * batch size goes to the sink uncopied, after what is batched: keep @p p
 * valid until its future resolves.
 * @ingroup ch09
 * @return a future of 0 when the stream can take more; the sink's error
 *         (sticky: every later write fails with it too); -EPIPE after close;
 *         -EBUSY while another write, flush or close is outstanding;
 *         -EINVAL for NULL bytes; -EBADF for a stream never set up
 */
struct sc_future sc_ostream_write(struct sc_ostream *os, const void *p, size_t len);

/**
 * @brief sc_ostream_write() of a NUL-terminated string.
 * @ingroup ch09
 */
struct sc_future sc_ostream_write_str(struct sc_ostream *os, const char *s);

/**
 * @brief Send what is batched to the sink and wait for the sink to take it.
 * @ingroup ch09
 * @return a future of 0; the sink's error; -EPIPE after close; -EBUSY
 */
struct sc_future sc_ostream_flush(struct sc_ostream *os);

/**
 * @brief Flush, then close the sink (a socket's write side, a file). The
 * buffer is released when the future resolves.
 * @ingroup ch09
 * @return a future of 0; the sink's error (the stream is closed either way);
 *         -EPIPE if already closed; -EBUSY while a write or flush waits
 */
struct sc_future sc_ostream_close(struct sc_ostream *os);

/** @brief Bytes batched and not yet handed to the sink. @ingroup ch09 */
size_t sc_ostream_buffered(const struct sc_ostream *os);

#endif
