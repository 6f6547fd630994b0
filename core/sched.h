/**
 * @file sched.h
 * @brief Scheduling groups: named classes of work that share a shard's CPU
 * in proportion to their shares.
 *
 * Every task belongs to one group. Each group has its own FIFO task queue on
 * every shard; when several groups have work, the reactor runs the group
 * that has had the least CPU time for its shares (its *virtual runtime*),
 * for one task quota at most, then chooses again. Two busy groups with 100
 * and 300 shares thus get one and three quarters of the shard; a group with
 * nothing queued is not looked at, costs nothing, and earns no credit for
 * the time it sat idle.
 *
 * Groups are global: one created on any shard exists on every shard under
 * the same handle (the shares are global too; queues and statistics are per
 * shard). Every run starts with the group "main" (1000 shares), where the
 * app's main function runs.
 *
 * Inheritance. Code runs "in" a group: a task in its group's queue, a timer
 * callback in the group that armed the timer, a function sent with
 * sc_smp_submit_to() in the sender's group. What it starts inherits that
 * group: a continuation runs in the group that was current when it was
 * created (sc_then() and friends, loops, sc_spawn()), even if the future it
 * waits for is resolved by code of another group; sc_task_schedule() puts a
 * task in the current group. sc_sched_group_spawn() and
 * sc_with_sched_group() start work in a group of your choice.
 */
#ifndef SC_SCHED_H
#define SC_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/future.h"
#include "core/reactor.h"

/**
 * @defgroup ch07 Chapter 7: scheduling groups
 * @brief Groups with shares, share-proportional task selection, per-group statistics.
 *
 * The API of chapter 7 (see the page "7. Scheduling groups").
 */

/** @brief How many groups may exist at once, "main" included. @ingroup ch07 */
#define SC_SCHED_MAX_GROUPS 16
/** @brief Size of a group's name buffer, the terminating NUL included. @ingroup ch07 */
#define SC_SCHED_NAME_MAX 32
/** @brief The largest number of shares a group may have (the smallest is 1). @ingroup ch07 */
#define SC_SCHED_MAX_SHARES 1000
/** @brief The shares of the group "main". @ingroup ch07 */
#define SC_SCHED_MAIN_SHARES 1000

/**
 * @brief A handle on a scheduling group: small, passed by value, the same on
 * every shard.
 * @ingroup ch07
 */
struct sc_sched_group {
    uint32_t id; /**< index in the run's group table; 0 is "main" */
};

/** @brief The group "main": where the app's main function runs. @ingroup ch07 */
static inline struct sc_sched_group sc_sched_group_main(void)
{
    struct sc_sched_group g = {0};
    return g;
}

/**
 * @brief Create a group on every shard of the run.
 * @ingroup ch07
 *
 * Call it from any shard, at any time; the handle is valid on every shard as
 * soon as the call returns (pass it along in a message, or keep it in a
 * global set before the other shards use it). The group lives until
 * sc_sched_group_destroy() or the end of the run.
 *
 * @param name a unique name, at most ::SC_SCHED_NAME_MAX - 1 bytes
 * @param shares its weight, in [1, ::SC_SCHED_MAX_SHARES]
 * @param out the new group's handle (untouched on failure)
 * @retval 0 created
 * @retval -EINVAL @p name is NULL or empty, @p out is NULL, or @p shares is out of range
 * @retval -ENAMETOOLONG @p name is too long
 * @retval -EEXIST a group with that name exists
 * @retval -ENOSPC ::SC_SCHED_MAX_GROUPS groups exist already
 * @retval -ENODEV not called on a shard of a running app
 */
int sc_sched_group_create(const char *name, unsigned shares, struct sc_sched_group *out);

/**
 * @brief Find a group by name (for code that did not create it).
 * @ingroup ch07
 * @retval 0 found, handle in @p out
 * @retval -ENOENT no such group
 * @retval -EINVAL @p name or @p out is NULL
 * @retval -ENODEV not on a shard of a running app
 */
int sc_sched_group_find(const char *name, struct sc_sched_group *out);

/**
 * @brief Change a group's shares, on every shard. Takes effect from the next
 * CPU slice each shard accounts; past usage is not re-weighted.
 * @ingroup ch07
 * @retval 0 changed
 * @retval -EINVAL no such group, or @p shares out of range
 */
int sc_sched_group_set_shares(struct sc_sched_group g, unsigned shares);

/**
 * @brief Destroy a group, freeing its slot (and name) for a later create.
 * @ingroup ch07
 *
 * The group must be idle: nothing of it queued, running, or waiting to run
 * (a pending continuation, an armed timer) on any shard. The calling shard
 * checks itself; other shards must be done with it already, for example
 * after an sc_smp_invoke_on_all() that drained their work. A task that
 * still reaches the group afterwards runs, with the group's last shares, and
 * is counted in the statistics of whatever group reuses the slot.
 *
 * @retval 0 destroyed
 * @retval -EINVAL no such group, or @p g is "main"
 * @retval -EBUSY the group has queued tasks on this shard, or is running now
 */
int sc_sched_group_destroy(struct sc_sched_group g);

/** @brief The group of the code running now on this shard. @ingroup ch07 */
struct sc_sched_group sc_sched_group_current(void);

/** @brief True when @p a and @p b name the same group. @ingroup ch07 */
static inline bool sc_sched_group_equal(struct sc_sched_group a, struct sc_sched_group b)
{
    return a.id == b.id;
}

/** @brief One group's counters on one shard (sc_sched_group_stats()). @ingroup ch07 */
struct sc_sched_group_stats {
    char name[SC_SCHED_NAME_MAX]; /**< the group's name */
    unsigned shares;              /**< its shares now */
    uint64_t runtime_ns;   /**< CPU time its tasks used on this shard (virtual in the simulator) */
    uint64_t tasks_run;    /**< tasks of the group run on this shard */
    uint64_t tasks_queued; /**< tasks waiting in its queue now */
    uint64_t slices;       /**< times the reactor picked the group to run */
    uint64_t max_wait_ns;  /**< longest time it was runnable but not picked (queue delay) */
    uint64_t vruntime;     /**< its virtual runtime: ns of CPU scaled by 1000 / shares */
};

/**
 * @brief Read group @p g's counters on the calling shard.
 * @ingroup ch07
 *
 * CPU time is measured per slice (the clock is read when the reactor
 * switches groups or ends a batch of tasks), so it includes the reactor's
 * own small cost of running the tasks. Timer callbacks and cross-shard
 * messages run outside any slice and are not counted.
 *
 * @retval 0 filled
 * @retval -EINVAL no such group, or @p out is NULL
 */
int sc_sched_group_stats(struct sc_sched_group g, struct sc_sched_group_stats *out);

/**
 * @brief Queue @p t in group @p g's task queue on this shard.
 * @ingroup ch07
 *
 * sc_task_schedule() uses the current group; use this when a task must keep
 * the group it was created in, whoever wakes it: record
 * sc_sched_group_current() when the work starts, and wake the task with
 * sc_task_schedule_in(t, recorded). (A fiber does this, for example.) The
 * task's `group` field is set by both calls; do not write it yourself.
 *
 * @retval 0 queued
 * @retval -EINVAL no such group; @p t is not queued and will not run
 */
int sc_task_schedule_in(struct sc_task *t, struct sc_sched_group g);

/**
 * @brief Run @p fn(@p cap, 0) as a new task in group @p g (later, not now).
 * Continuations attached to its future inherit the caller's group, not @p g.
 * @ingroup ch07
 * @return the future of @p fn's result; -EINVAL for no such group (then @p fn
 *         never runs); -ENOMEM
 */
struct sc_future sc_sched_group_spawn(struct sc_sched_group g, sc_then_fn fn, const void *cap,
                                      size_t cap_size);

/**
 * @brief Run @p fn(@p cap, 0) in group @p g: at once if the caller already
 * runs in @p g (and the task quota is not spent), else as a task of @p g.
 * @ingroup ch07
 * @return the future of @p fn's result; -EINVAL for no such group (then @p fn
 *         never runs); -ENOMEM
 */
struct sc_future sc_with_sched_group(struct sc_sched_group g, sc_then_fn fn, const void *cap,
                                     size_t cap_size);

/**
 * @brief Keep the CPU busy for @p ns nanoseconds: a model of CPU-heavy work
 * for tests and demos.
 * @ingroup ch07
 *
 * The real world spins on the clock; the simulator moves its virtual clock
 * forward by @p ns (the task "took" that long), so a test can give tasks
 * exact costs. Like any long computation, it ignores the task quota.
 */
void sc_sched_burn(uint64_t ns);

#endif
