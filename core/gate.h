/**
 * @file gate.h
 * @brief Gates: count the operations in flight, and on shutdown refuse new
 * ones and wait for the old ones to finish.
 *
 * Every operation that must finish before a service goes away enters the
 * gate when it starts and leaves when it ends (sc_with_gate() does both).
 * sc_gate_close() refuses newcomers from then on, with ::SC_EGATE_CLOSED,
 * and returns a future that resolves once everybody inside has left: after
 * it, no operation of the service is running, and its memory may go.
 *
 * **When the run ends** before the gate emptied, the close future never
 * resolves: its continuation does not run, nothing is reported, and its
 * record is released with the shard's pool.
 */
#ifndef SC_GATE_H
#define SC_GATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/future.h"
#include "core/waitq.h"

/** @brief A gate. Fields are private. @ingroup ch06 */
struct sc_gate {
    uint64_t count;           /**< private: operations inside */
    struct sc_promise closer; /**< private: resolves the close future */
    uint32_t owner;           /**< private: the owning shard, or ::SC_NO_SHARD */
    bool closed;              /**< private: sc_gate_close() was called */
    bool draining;            /**< private: the close future waits for the last leave */
};

/**
 * @brief Prepare an open, empty gate. May be called off a shard.
 * @ingroup ch06
 */
void sc_gate_init(struct sc_gate *g);

/**
 * @brief Enter the gate (one more operation in flight).
 * @ingroup ch06
 * @retval 0 entered: call sc_gate_leave() when the operation ends
 * @retval SC_EGATE_CLOSED the gate is closing or closed; not entered
 * @retval -EOVERFLOW 2^64 - 1 operations are inside already
 */
int sc_gate_enter(struct sc_gate *g);

/**
 * @brief Leave the gate. The last one out of a closing gate resolves the
 * close future.
 * @ingroup ch06
 * @retval 0 left
 * @retval -EINVAL nobody is inside (a leave without an enter); nothing changed
 */
int sc_gate_leave(struct sc_gate *g);

/**
 * @brief Close the gate: refuse newcomers from now on, and wait for those
 * inside to leave.
 * @ingroup ch06
 * @return a future of 0 once the gate is empty (ready at once if it is);
 *         -EALREADY if the gate was closed before (a second close is a bug:
 *         it does not wait); -ENOMEM (then the gate stays open)
 */
struct sc_future sc_gate_close(struct sc_gate *g);

/** @brief True once sc_gate_close() was called. @ingroup ch06 */
bool sc_gate_is_closed(const struct sc_gate *g);

/** @brief Operations inside the gate now. @ingroup ch06 */
uint64_t sc_gate_count(const struct sc_gate *g);

/**
 * @brief Enter @p g, run @p fn(cap, 0), and leave when its future resolves,
 * whether it succeeds or fails.
 * @ingroup ch06
 *
 * @p fn runs inside this call on the caller's @p cap, like a ready sc_then().
 * @return @p fn's outcome; ::SC_EGATE_CLOSED (then @p fn never runs);
 *         -ENOMEM (then @p fn never runs and the gate was left)
 */
struct sc_future sc_with_gate(struct sc_gate *g, sc_then_fn fn, const void *cap, size_t cap_size);

/** @brief sc_with_gate() capturing @p capvar by value. @ingroup ch06 */
#define SC_WITH_GATE(g, fn, capvar) sc_with_gate((g), (fn), &(capvar), sizeof(capvar))

#endif
