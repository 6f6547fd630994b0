/**
 * @file log.h
 * @brief Logging, error codes and always-on assertions.
 *
 * Every shard logs to stderr with its shard id in front, so interleaved output
 * from several shards stays readable. Assertions never compile away: in
 * seacore they document invariants (a future used twice, a promise set twice)
 * and a violated invariant is a bug worth stopping for.
 */
#ifndef SC_LOG_H
#define SC_LOG_H

#include <errno.h>
#include <stdarg.h>

/**
 * @defgroup ch02 Chapter 2: futures and continuations
 * @brief Futures, promises, continuations, loops and combinators.
 *
 * The API of chapter 2 (see the page "2. Futures and continuations").
 */

/**
 * @defgroup ch03 Chapter 3: the reactor
 * @brief Tasks, timers, preemption, the clock and randomness seams, the app runner.
 *
 * The API of chapter 3 (see the page "3. The reactor").
 */

/** @brief Log levels, from most to least severe. @ingroup ch03 */
enum sc_log_level {
    SC_LOG_ERROR = 0, /**< something failed and a user should know */
    SC_LOG_WARN = 1,  /**< something looks wrong but the program goes on */
    SC_LOG_INFO = 2,  /**< start-up, shutdown, summaries */
    SC_LOG_DEBUG = 3, /**< chatter for developers */
};

/**
 * @brief seacore's own error codes. They are negative like errno values and
 * chosen far away from them, so one `int err` can carry either.
 * @ingroup ch02
 */
enum sc_error {
    SC_EBROKEN_PROMISE = -10001, /**< a promise was abandoned without a value */
    SC_ETIMEDOUT = -10002,       /**< a wait with a deadline gave up (with_timeout, timed waits) */
    SC_ELAB_TODO = -10003,       /**< a lab region is still blank */
    SC_EEOF = -10020,            /**< end of stream: a pipe's writer closed and it is drained */
    SC_EGATE_CLOSED = -10021,    /**< sc_gate_enter() on a gate that is closing or closed */
    SC_EBROKEN = -10022,         /**< a semaphore, condition variable or queue was broken */
};

/**
 * @brief Write one log line to stderr: `[shard N] level: message`.
 * @ingroup ch03
 * @param level how severe; lines above the current verbosity are dropped
 * @param fmt printf-style format
 */
void sc_log(enum sc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * @brief Set the most verbose level that is still printed (default SC_LOG_INFO).
 * @ingroup ch03
 * @param level the new threshold
 */
void sc_log_set_level(enum sc_log_level level);

/**
 * @brief Text for an error code: errno values and seacore's own codes.
 * @ingroup ch02
 * @param err a negative error code (a positive one is read as its negation)
 * @return a static string, never NULL
 */
const char *sc_strerror(int err);

/** @cond INTERNAL */
_Noreturn void sc__assert_fail(const char *expr, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** @endcond */

/**
 * @brief Check an invariant; on failure print the expression, where, and a
 * message, then abort. Never compiled out.
 * @ingroup ch03
 */
#define SC_ASSERT(cond, ...)                                                                       \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0))                                                          \
            sc__assert_fail(#cond, __FILE__, __LINE__, __VA_ARGS__);                               \
    } while (0)

#endif
