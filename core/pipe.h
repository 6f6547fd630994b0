/**
 * @file pipe.h
 * @brief Bounded producer/consumer queues, and pipes: a queue with a writer
 * end and a reader end, end-of-stream and broken-pipe.
 *
 * Items are one word (`uintptr_t`: an integer, or a pointer cast to one;
 * any value, 0 included). The buffer is bounded, which is how backpressure
 * works: a push into a full queue returns a pending future that resolves
 * once its item went in, so a producer that waits for each push before the
 * next can never run ahead of its consumer by more than the capacity.
 *
 * Order: items come out in the order they went in; pushers waiting on a full
 * queue go in in the order they came; poppers waiting on an empty queue are
 * served in the order they came. An item pushed while a popper waits goes
 * straight to it.
 *
 * **Queue shutdown**: sc_queue_abort() drops the buffered items and fails
 * every waiting pusher and popper, and every later push and pop, with an
 * error.
 *
 * **Pipe ends**: sc_pipe_close_writer() is the end of the stream. Writes
 * already waiting still go in; the reader reads everything, then
 * ::SC_EEOF — a failed future with that code, which is how a read says
 * "no more items" without reserving an item value. sc_pipe_close_reader()
 * says nobody will read: buffered items are dropped, waiting and later writes
 * fail with -EPIPE.
 *
 * **When the run ends** with pushers or poppers queued, they are dropped
 * silently (see waitq.h), and the buffer goes with the shard's pool even if
 * sc_queue_destroy() / sc_pipe_destroy() was not called. Items still in the
 * buffer are not looked at: if they are pointers that own memory, drain the
 * queue first.
 */
#ifndef SC_PIPE_H
#define SC_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/future.h"
#include "core/waitq.h"

/** @brief A bounded FIFO queue of words. Fields are private. @ingroup ch06 */
struct sc_queue {
    uintptr_t *buf;          /**< private: the ring of items */
    size_t cap;              /**< private: slots in the ring */
    size_t head;             /**< private: the oldest item's slot */
    size_t len;              /**< private: items in the ring */
    struct sc_waitq pushers; /**< private: pushes waiting for room (the queue is full) */
    struct sc_waitq poppers; /**< private: pops waiting for an item (the queue is empty) */
    int32_t push_err;        /**< private: the error every later push fails with */
    int32_t pop_err;         /**< private: the error every later pop fails with */
    uint32_t owner;          /**< private: the owning shard */
    bool eof;                /**< private: an empty queue answers pops with ::SC_EEOF */
    const char *err_file;    /**< private: where the queue was aborted */
    int err_line;            /**< private */
};

/** @brief The largest capacity a queue or pipe may have. @ingroup ch06 */
#define SC_QUEUE_MAX_CAPACITY ((size_t)1 << 24)

/**
 * @brief Prepare @p q to hold up to @p capacity items. Must be called on the
 * shard that will use the queue (the buffer comes from its pool).
 * @ingroup ch06
 * @retval 0 ready
 * @retval -EINVAL @p capacity is 0 or above ::SC_QUEUE_MAX_CAPACITY
 * @retval -ENOMEM no memory for the buffer
 * @retval -EPERM not called on a shard
 */
int sc_queue_init(struct sc_queue *q, size_t capacity);

/**
 * @brief Free the buffer. Waiters still queued fail with ::SC_EBROKEN first;
 * buffered items are dropped. @p q may be initialised again afterwards.
 * @ingroup ch06
 */
void sc_queue_destroy(struct sc_queue *q);

/**
 * @brief Push @p item, waiting for room if the queue is full.
 * @ingroup ch06
 * @return a ready future of 0 if it went in now (no allocation); else a
 *         pending future of 0 once it went in; the abort error; -ENOMEM
 *         (the item did not go in)
 */
struct sc_future sc_queue_push(struct sc_queue *q, uintptr_t item);

/**
 * @brief Pop the oldest item, waiting for one if the queue is empty.
 * @ingroup ch06
 * @return a future of the item (ready if one was there); the abort error;
 *         ::SC_EEOF for a pipe whose writer closed, once it is drained;
 *         -ENOMEM
 */
struct sc_future sc_queue_pop(struct sc_queue *q);

/**
 * @brief Push without waiting.
 * @ingroup ch06
 * @retval 0 pushed
 * @retval -EAGAIN the queue is full
 * @retval other the abort error (or -EPIPE for a pipe whose reader closed)
 */
int sc_queue_try_push(struct sc_queue *q, uintptr_t item);

/**
 * @brief Pop without waiting.
 * @ingroup ch06
 * @retval 0 popped into @p *item
 * @retval -EAGAIN the queue is empty
 * @retval SC_EEOF the queue is empty and its pipe's writer closed
 * @retval other the abort error
 */
int sc_queue_try_pop(struct sc_queue *q, uintptr_t *item);

/** @cond INTERNAL */
void sc__queue_abort(struct sc_queue *q, int err, const char *file, int line);
/** @endcond */

/**
 * @brief Abort @p q: drop the buffered items; every waiting pusher and
 * popper, and every later push and pop, fails with @p err. Aborting again
 * changes nothing.
 * @ingroup ch06
 * @param q the queue
 * @param err a negative error code; 0 means ::SC_EBROKEN
 */
#define sc_queue_abort(q, err) sc__queue_abort((q), (err), __FILE__, __LINE__)

/** @brief Items in the buffer now. @ingroup ch06 */
size_t sc_queue_size(const struct sc_queue *q);

/** @brief The capacity given to sc_queue_init(). @ingroup ch06 */
size_t sc_queue_capacity(const struct sc_queue *q);

/** @brief Pushes waiting for room now. @ingroup ch06 */
size_t sc_queue_waiting_pushers(const struct sc_queue *q);

/** @brief Pops waiting for an item now. @ingroup ch06 */
size_t sc_queue_waiting_poppers(const struct sc_queue *q);

/**
 * @brief A pipe: a bounded queue with a writer end and a reader end. Fields are private.
 * @ingroup ch06
 */
struct sc_pipe {
    struct sc_queue q;  /**< private */
    bool writer_closed; /**< private */
    bool reader_closed; /**< private */
};

/**
 * @brief Prepare @p p to buffer up to @p capacity items, both ends open.
 * Must be called on the shard that will use it.
 * @ingroup ch06
 * @retval 0 ready
 * @retval -EINVAL @p capacity is 0 or above ::SC_QUEUE_MAX_CAPACITY
 * @retval -ENOMEM no memory for the buffer
 * @retval -EPERM not called on a shard
 */
int sc_pipe_init(struct sc_pipe *p, size_t capacity);

/**
 * @brief Free the buffer (as sc_queue_destroy()).
 * @ingroup ch06
 */
void sc_pipe_destroy(struct sc_pipe *p);

/**
 * @brief Write @p item, waiting while the pipe is full (backpressure).
 * @ingroup ch06
 * @return a future of 0 once the item is in the pipe; -EPIPE if the reader
 *         closed (before, or while this write waited); -EBADF after
 *         sc_pipe_close_writer(); -ENOMEM
 */
struct sc_future sc_pipe_write(struct sc_pipe *p, uintptr_t item);

/**
 * @brief Read the next item, waiting while the pipe is empty.
 * @ingroup ch06
 * @return a future of the item; ::SC_EEOF once the writer closed and every
 *         item was read; -EBADF after sc_pipe_close_reader() (also for a
 *         read waiting when it was called); -ENOMEM
 */
struct sc_future sc_pipe_read(struct sc_pipe *p);

/**
 * @brief Close the writer end: the end of the stream. Writes already waiting
 * still go in; once the reader has read everything, reads fail with
 * ::SC_EEOF (reads waiting now, on an empty pipe, fail with it at once).
 * @ingroup ch06
 * @retval 0 closed
 * @retval -EALREADY closed before
 */
int sc_pipe_close_writer(struct sc_pipe *p);

/**
 * @brief Close the reader end: nobody will read. Buffered items are dropped;
 * waiting and later writes fail with -EPIPE; waiting reads fail with -EBADF.
 * @ingroup ch06
 * @retval 0 closed
 * @retval -EALREADY closed before
 */
int sc_pipe_close_reader(struct sc_pipe *p);

/** @brief Items buffered in the pipe now. @ingroup ch06 */
size_t sc_pipe_size(const struct sc_pipe *p);

#endif
