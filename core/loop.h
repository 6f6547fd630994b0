/**
 * @file loop.h
 * @brief Loops and combinators over futures: repeat, do_until, keep_doing,
 * parallel_for_each, when_all, map_reduce, sleep, with_timeout, yield.
 *
 * Every loop here checks sc_need_preempt() between iterations: when the task
 * quota is spent it continues in a fresh task, so a loop whose body is always
 * ready cannot starve timers or other tasks. Loops start on the caller's
 * captured state and copy it into one pool allocation only if they must wait
 * or yield; from then on the body sees the copy (capture by value).
 */
#ifndef SC_LOOP_H
#define SC_LOOP_H

#include "core/future.h"

/** @brief Values a sc_repeat() body returns. @ingroup ch02 */
enum sc_loop_action {
    SC_CONTINUE = 0, /**< run the body again */
    SC_STOP = 1,     /**< stop; the loop's future resolves with 0 */
};

/** @brief Loop body: returns a future of ::SC_CONTINUE or ::SC_STOP (or an error). @ingroup ch02 */
typedef struct sc_future (*sc_repeat_fn)(void *cap);
/** @brief Loop condition: true to stop. @ingroup ch02 */
typedef bool (*sc_stop_fn)(void *cap);
/** @brief Body of an indexed loop or a mapper: works on item @p i. @ingroup ch02 */
typedef struct sc_future (*sc_index_fn)(void *cap, size_t i);
/**
 * @brief Reducer: folds one mapped @p value into @p acc and returns the new accumulator.
 * @ingroup ch02
 */
typedef intptr_t (*sc_reduce_fn)(void *cap, intptr_t acc, intptr_t value);

/**
 * @brief Run @p body until it yields ::SC_STOP or fails.
 * @ingroup ch02
 * @return future of 0 when stopped; the body's error if it failed; -ENOMEM
 */
struct sc_future sc_repeat(sc_repeat_fn body, const void *cap, size_t cap_size);

/**
 * @brief `while (!stop(cap)) await body(cap)`: @p stop is checked before each
 * iteration.
 * @ingroup ch02
 * @return future of 0; the body's error if it failed; -ENOMEM
 */
struct sc_future sc_do_until(sc_stop_fn stop, sc_repeat_fn body, const void *cap, size_t cap_size);

/**
 * @brief Run @p body forever (its value is ignored) until it fails.
 * @ingroup ch02
 * @return a future that only ever resolves with the body's error (or -ENOMEM)
 */
struct sc_future sc_keep_doing(sc_repeat_fn body, const void *cap, size_t cap_size);

/**
 * @brief Start @p fn for every i in [0, n) without waiting between them, then
 * wait for all. Starting yields at the task quota too.
 * @ingroup ch02
 * @return future of 0 when all succeeded; otherwise the first error (later
 *         errors are released silently); -ENOMEM
 */
struct sc_future sc_parallel_for_each(size_t n, sc_index_fn fn, const void *cap, size_t cap_size);

/**
 * @brief Wait until every future in @p fs is available.
 * @ingroup ch02
 *
 * When the returned future resolves (with 0), each `fs[i]` has been replaced
 * by an available future holding that outcome; the caller consumes them with
 * sc_future_get() (an error left unconsumed is reported as unhandled). The
 * array must stay alive until then.
 * @return future of 0; -ENOMEM (then @p fs is untouched)
 */
struct sc_future sc_when_all(struct sc_future *fs, size_t n);

/**
 * @brief Wait for every future in @p fs; resolve with the first error, or 0.
 * Consumes all of them (their values are dropped, later errors released).
 * @ingroup ch02
 */
struct sc_future sc_when_all_succeed(struct sc_future *fs, size_t n);

/**
 * @brief Map every i in [0, n) with @p map (concurrently), fold the values
 * with @p reduce as they arrive, starting from @p init.
 * @ingroup ch02
 * @return future of the final accumulator; the first error; -ENOMEM
 */
struct sc_future sc_map_reduce(size_t n, sc_index_fn map, sc_reduce_fn reduce, intptr_t init,
                               const void *cap, size_t cap_size);

/**
 * @brief A future that resolves with 0 after @p ns nanoseconds of the shard's
 * clock (virtual in the simulator).
 * @ingroup ch02
 */
struct sc_future sc_sleep(uint64_t ns);

/**
 * @brief Wait for @p f at most @p ns nanoseconds.
 * @ingroup ch02
 *
 * If @p f is not available by then, the result fails with ::SC_ETIMEDOUT; @p f
 * keeps running and its late outcome is dropped (a late error silently).
 */
struct sc_future sc_with_timeout(struct sc_future f, uint64_t ns);

/**
 * @brief A future that resolves with 0 after every task queued so far in the
 * current scheduling group had its turn (other groups run by their shares).
 * @ingroup ch02
 */
struct sc_future sc_yield(void);

/**
 * @brief Run @p fn(cap, 0) as a new task (later, not now); return its future.
 * @ingroup ch02
 */
struct sc_future sc_spawn(sc_then_fn fn, const void *cap, size_t cap_size);

/** @brief Nanoseconds in a microsecond, millisecond, second (helpers for sc_sleep()). @ingroup ch02
 */
#define SC_US(x) ((uint64_t)(x)*1000ull)
/** @brief Milliseconds to nanoseconds. @ingroup ch02 */
#define SC_MS(x) ((uint64_t)(x)*1000000ull)
/** @brief Seconds to nanoseconds. @ingroup ch02 */
#define SC_SEC(x) ((uint64_t)(x)*1000000000ull)

#endif
