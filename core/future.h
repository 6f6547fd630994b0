/**
 * @file future.h
 * @brief Futures, promises and continuations: the value-or-error that may not
 * exist yet, and the code that runs when it does.
 *
 * A future holds one word (an `intptr_t`, or a pointer cast to one) or an
 * error (a negative errno or an ::sc_error code). It is a small struct passed
 * by value. Three kinds exist:
 *
 * - ready with a value (`sc_make_ready`): plain data, costs nothing;
 * - ready with an error (`sc_make_error`): the error is written in the shard's
 *   ledger with the file and line that made it, so that an error nobody
 *   handles is reported (when discarded, or at shutdown) with its origin;
 * - pending: it points at a shared state that a promise, a timer or a
 *   continuation will resolve later.
 *
 * Continuations take their captured state *by value*: `sc_then(f, fn, &cap,
 * sizeof cap)` runs `fn(&cap, value)` at once when `f` is ready (no
 * allocation, no task); otherwise it copies `cap` into one allocation from the
 * shard's pool and runs `fn` on the copy when `f` resolves.
 *
 * Every future is used exactly once: passed to `sc_then` (or another
 * consumer), returned, or discarded. Using a pending future or a failed future
 * twice is an assertion failure. A ready value future is plain data, so its
 * copies cannot be told apart; the rule holds for it all the same.
 *
 * All of this is single-shard: no locks, no atomics. A future belongs to the
 * shard that made it.
 */
#ifndef SC_FUTURE_H
#define SC_FUTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

/** @cond INTERNAL */
struct sc__fstate;
/** @endcond */

/**
 * @brief A value or an error, now or later.
 * @ingroup ch02
 *
 * Fields are private: use the functions below. `gen == 0` means ready.
 */
struct sc_future {
    union {
        intptr_t value;        /**< ready, no error: the value */
        uintptr_t ledger;      /**< ready, failed: the error's ledger entry */
        struct sc__fstate *st; /**< pending: the shared state */
    };
    int32_t err;  /**< ready: 0 or a negative error code */
    uint32_t gen; /**< 0 when ready; otherwise the generation of the shared state */
};

/**
 * @brief The other end of a future: whoever will produce the value.
 * @ingroup ch02
 *
 * A promise may be embedded anywhere and moved freely until
 * sc_promise_get_future() is called; the shared state it points at lives in
 * the shard's pool, so the promise and its future may die in either order.
 */
struct sc_promise {
    struct sc__fstate *st; /**< private: the shared state, once the future is taken */
    intptr_t value;        /**< private: an outcome set before the future was taken */
    int32_t err;           /**< private */
    int32_t phase;         /**< private */
};

/** @brief Continuation run by sc_then() with the value of a successful future. @ingroup ch02 */
typedef struct sc_future (*sc_then_fn)(void *cap, intptr_t value);
/** @brief Continuation run by sc_then_wrapped() with the value or the error. @ingroup ch02 */
typedef struct sc_future (*sc_wrapped_fn)(void *cap, intptr_t value, int err);
/** @brief Cleanup run by sc_finally() whatever the outcome. @ingroup ch02 */
typedef struct sc_future (*sc_finally_fn)(void *cap);
/** @brief Handler run by sc_handle_error() with the error. @ingroup ch02 */
typedef struct sc_future (*sc_error_fn)(void *cap, int err);

/**
 * @brief A future that already holds @p value. No allocation, no task.
 * @ingroup ch02
 */
static inline struct sc_future sc_make_ready(intptr_t value)
{
    struct sc_future f = {.value = value, .err = 0, .gen = 0};
    return f;
}

/** @brief A ready future holding a pointer. @ingroup ch02 */
#define sc_make_ready_ptr(p) sc_make_ready((intptr_t)(p))

/** @cond INTERNAL */
struct sc_future sc__make_error(int err, const char *file, int line);
void sc__promise_set_error(struct sc_promise *p, int err, const char *file, int line);
/** @endcond */

/**
 * @brief A ready future holding the error @p err, recorded with the file and
 * line of the call so that an unhandled error says where it was made.
 * @ingroup ch02
 * @param err a negative errno or ::sc_error code (0 is turned into -EINVAL)
 */
#define sc_make_error(err) sc__make_error((err), __FILE__, __LINE__)

/** @brief True when @p f holds a value or an error now. @ingroup ch02 */
bool sc_future_available(struct sc_future f);

/** @brief True when @p f is available and holds an error. @ingroup ch02 */
bool sc_future_failed(struct sc_future f);

/**
 * @brief Take the outcome out of an available future (this consumes it).
 * @ingroup ch02
 * @param f an available future (asserts otherwise)
 * @param value where the value goes on success; may be NULL
 * @return 0, or the future's negative error (which counts as handled)
 */
int sc_future_get(struct sc_future f, intptr_t *value);

/**
 * @brief Drop a future on purpose. If it fails (now or later) the error is
 * reported on stderr with where it was made, then released.
 * @ingroup ch02
 */
void sc_future_discard(struct sc_future f);

/**
 * @brief Drop a future on purpose and ignore its error, if any, silently.
 * @ingroup ch02
 */
void sc_future_ignore(struct sc_future f);

/**
 * @brief Run @p fn with the value of @p f when it is available.
 * @ingroup ch02
 *
 * If @p f is ready and the shard's task quota is not spent, @p fn runs at once
 * on the caller's @p cap (no copy, no allocation) and its future is returned.
 * Otherwise @p cap is copied into one pool allocation and @p fn runs later on
 * that copy, as a task. If @p f fails, @p fn never runs and the error passes
 * to the returned future.
 *
 * @param f the future to wait for (consumed)
 * @param fn the continuation; its returned future becomes the result
 * @param cap captured state, copied by value; may be NULL when @p cap_size is 0
 * @param cap_size bytes of captured state
 * @return the future of @p fn's result; -ENOMEM if the continuation could not
 *         be allocated (then @p fn never runs)
 */
struct sc_future sc_then(struct sc_future f, sc_then_fn fn, const void *cap, size_t cap_size);

/**
 * @brief Like sc_then(), but @p fn also runs when @p f fails, and receives the
 * error (which then counts as handled).
 * @ingroup ch02
 * @return the future of @p fn's result; -ENOMEM if it could not be allocated
 */
struct sc_future sc_then_wrapped(struct sc_future f, sc_wrapped_fn fn, const void *cap,
                                 size_t cap_size);

/**
 * @brief Run @p fn after @p f whatever its outcome, wait for @p fn's future,
 * then pass on @p f's outcome.
 * @ingroup ch02
 *
 * If @p fn's future fails and @p f had succeeded, the result is @p fn's error.
 * If both fail, @p f's error wins and @p fn's error is reported and released.
 * @return a future of @p f's outcome; -ENOMEM if it could not be allocated
 */
struct sc_future sc_finally(struct sc_future f, sc_finally_fn fn, const void *cap, size_t cap_size);

/**
 * @brief If @p f fails, run @p fn with the error (now handled); its future
 * becomes the result. A successful @p f passes through untouched.
 * @ingroup ch02
 * @return the resulting future; -ENOMEM if it could not be allocated
 */
struct sc_future sc_handle_error(struct sc_future f, sc_error_fn fn, const void *cap,
                                 size_t cap_size);

/** @brief sc_then() capturing the variable @p capvar by value. @ingroup ch02 */
#define SC_THEN(f, fn, capvar) sc_then((f), (fn), &(capvar), sizeof(capvar))
/** @brief sc_then_wrapped() capturing @p capvar by value. @ingroup ch02 */
#define SC_THEN_WRAPPED(f, fn, capvar) sc_then_wrapped((f), (fn), &(capvar), sizeof(capvar))
/** @brief sc_finally() capturing @p capvar by value. @ingroup ch02 */
#define SC_FINALLY(f, fn, capvar) sc_finally((f), (fn), &(capvar), sizeof(capvar))
/** @brief sc_handle_error() capturing @p capvar by value. @ingroup ch02 */
#define SC_HANDLE_ERROR(f, fn, capvar) sc_handle_error((f), (fn), &(capvar), sizeof(capvar))

/**
 * @brief Prepare a promise. Cheap; allocates nothing until sc_promise_get_future().
 * @ingroup ch02
 */
void sc_promise_init(struct sc_promise *p);

/**
 * @brief The future this promise will resolve. Call at most once.
 * @ingroup ch02
 * @return a pending future; a failed one (-ENOMEM) if the shared state could
 *         not be allocated, in which case setting the promise does nothing
 */
struct sc_future sc_promise_get_future(struct sc_promise *p);

/**
 * @brief Resolve the promise's future with @p value. Continuations waiting on
 * it are scheduled as tasks, never run inside this call.
 * @ingroup ch02
 */
void sc_promise_set_value(struct sc_promise *p, intptr_t value);

/**
 * @brief Resolve the promise's future with an error (recorded with the caller's file and line).
 * @ingroup ch02
 */
#define sc_promise_set_error(p, err) sc__promise_set_error((p), (err), __FILE__, __LINE__)

/**
 * @brief Give up on a promise: if its future was taken and not yet resolved,
 * it fails with ::SC_EBROKEN_PROMISE. Safe to call on a resolved promise.
 * @ingroup ch02
 */
void sc_promise_abandon(struct sc_promise *p);

#endif
