/*
 * bench_core.c — what the core's basic moves cost, next to C event libraries
 * doing the same thing in the same process run.
 *
 * Five measurements, each beside its peers:
 *
 *   core.ready_then         sc_then() on a ready future, in a chain: ns per then.
 *                           Peers: c.indirect_call (the floor: the continuation
 *                           called through a pointer, nothing else) and
 *                           libevent.event_active (a callback library's "next
 *                           step": the callback re-activates its event, one
 *                           event_base_loop(EVLOOP_NONBLOCK) per batch).
 *   core.unready_continuation
 *                           promise init + get_future + sc_then (allocates the
 *                           continuation) + set_value + the task running it on
 *                           the reactor: ns per full cycle.
 *   core.task_spawn_run     sc_task_schedule() of a pre-allocated task + the
 *                           reactor running it: ns per task.
 *                           Peers of both: libevent.event_active (one event
 *                           activated and dispatched per item), libuv.idle and
 *                           libuv.timer0 (see "libuv peers" below).
 *   core.task_spawn_run_4groups
 *                           the same, the tasks spread over 4 scheduling groups
 *                           (100/200/500/1000 shares), all busy at once. Peer:
 *                           core.task_spawn_run itself (one group), so the
 *                           ratio is what choosing among groups costs.
 *   core.timer_arm_cancel   sc_timer_arm_in() + sc_timer_cancel() with 1000
 *                           other timers armed: ns per pair. Peers:
 *                           libuv.timer_start_stop, libevent.evtimer_add_del,
 *                           each with its own 1000 background timers.
 *
 * Output, one line per (measurement, peer) on stdout:
 *
 *   BENCH name=<n> value=<v> unit=ns/op peer=<p> peer_value=<v> ratio=<r>
 *
 * ratio = peer_value / value (time units): above 1 means seacore is faster.
 * Notes (targets, redone batches) go to stderr, so stdout stays parseable.
 *
 * How it runs. Everything happens inside the app's main function on a real
 * shard (sc_run, SC_BACKEND_REAL), peers included, so they all see the same
 * caches, clock and preemption signal. Work is cut into batches of ~20 us;
 * the driver yields to the reactor before every batch, as a well-behaved
 * shard would, so a batch starts with a fresh task quota. A round gives each
 * implementation of a measurement ~25 ms of batches, one implementation after
 * the other (interleaved, so drift hits all alike); a calibration pass and a
 * warm-up round come first; the value is the median of 7 rounds.
 *
 * The quota tick. Every task-quota period (0.5 ms) a signal sets the shard's
 * preemption word. When it lands inside a synchronous batch, a signal handler
 * ran inside the timed region, and for core.ready_then every later then in
 * the chain was queued as a task instead of run (the designed behaviour, but
 * a different measurement: core.unready_continuation covers it). Such a batch
 * is redone — for every implementation, peers included, by the same rule.
 * Batches that span reactor turns (the seacore side of the unready and spawn
 * measurements) cannot be told apart and are kept: that errs against seacore.
 *
 * Honesty. Every batch checks its result (sums, counts, return codes) and a
 * wrong one fails the run. seacore's functions live in a separate library
 * (no LTO), so the compiler cannot see through them; the peers' callbacks are
 * reached through the libraries; the floor's pointer is hidden behind an asm
 * barrier so the call stays an indirect call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>
#include <uv.h>

#include "bench/bench_util.h"
#include "core/seacore.h"

/* ------------------------------------------------------------------ */
/* Settings and helpers                                                 */
/* ------------------------------------------------------------------ */

#define MAX_IMPLS  4
#ifndef ITEMS
/* live items per batch in the unready and spawn measurements (try -DITEMS=128) */
#define ITEMS 1024
#endif
#define BG_TIMERS       1000       /* background timers in the timer measurement */
#define DELAYS          1024       /* table of timer delays, shared by all three implementations */
#define MAX_OPS         (1u << 22) /* calibration stops doubling a batch here */
#define MAX_REDO_STREAK 50         /* after this many redone batches in a row, keep the next one */

struct settings {
    int rounds;        /* timed rounds; the value is their median */
    uint64_t round_ns; /* time each implementation spends per round */
    uint64_t batch_ns; /* calibration target for one synchronous batch */
};

static const struct settings full_settings = {7, 25000000, 20000};
static const struct settings quick_settings = {3, 1000000, 20000};

/* The bench's own deterministic stream (splitmix64), so that all three
 * timer implementations get the very same delays. */
static uint64_t mix_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_core: check failed: %s\n", what);
    return -EPROTO;
}

/* Where every batch's result goes, so no work is dead. */
static volatile uint64_t sink;

/* ------------------------------------------------------------------ */
/* The peers' loops and the items all batches reuse                     */
/* ------------------------------------------------------------------ */

static struct event_base *ev_base;
static uv_loop_t uv_loop;
static bool uv_open;

static struct event *ev_chain; /* core.ready_then's libevent peer */
static struct event *ev_items[ITEMS];
static uv_idle_t uv_idles[ITEMS];
static uv_timer_t uv_timer0s[ITEMS];
static struct sc_promise promises[ITEMS];
static uint64_t item_count; /* what the items' callbacks add up */

/* ------------------------------------------------------------------ */
/* 1. core.ready_then                                                   */
/* ------------------------------------------------------------------ */

static struct sc_future step_add(void *cap, intptr_t v)
{
    return sc_make_ready(v + *(const intptr_t *)cap);
}

static const intptr_t one = 1;

static int64_t ready_then_batch(uint64_t ops)
{
    uint64_t t0 = now_ns();
    struct sc_future f = sc_make_ready(0);
    for (uint64_t i = 0; i < ops; i++)
        f = sc_then(f, step_add, &one, sizeof one);
    uint64_t t1 = now_ns();
    if (!sc_future_available(f)) {
        /* The quota tick landed and the rest of the chain was queued: the
         * driver sees the preemption word and redoes this batch. */
        sc_future_ignore(f);
        return (int64_t)(t1 - t0);
    }
    intptr_t v = 0;
    if (sc_future_get(f, &v) != 0 || v != (intptr_t)ops)
        return fail("ready_then: chain value");
    sink += (uint64_t)v;
    return (int64_t)(t1 - t0);
}

static int64_t indirect_call_batch(uint64_t ops)
{
    sc_then_fn fn = step_add;
    uint64_t t0 = now_ns();
    struct sc_future f = sc_make_ready(0);
    for (uint64_t i = 0; i < ops; i++) {
        __asm__ volatile("" : "+r"(fn)); /* the compiler may not inline the call */
        f = fn((void *)&one, f.value);
    }
    uint64_t t1 = now_ns();
    if (f.value != (intptr_t)ops)
        return fail("indirect_call: chain value");
    sink += (uint64_t)f.value;
    return (int64_t)(t1 - t0);
}

struct ev_chain_state {
    uint64_t left, value;
};
static struct ev_chain_state chain_state;

/* The next step of a callback chain in libevent: the callback activates the
 * event again, and the same event_base_loop() pass dispatches it. */
static void ev_chain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ev_chain_state *c = arg;
    c->value += 1;
    if (--c->left)
        event_active(ev_chain, 0, 0);
}

static int64_t ev_chain_batch(uint64_t ops)
{
    chain_state = (struct ev_chain_state){.left = ops, .value = 0};
    uint64_t t0 = now_ns();
    event_active(ev_chain, 0, 0);
    event_base_loop(ev_base, EVLOOP_NONBLOCK);
    uint64_t t1 = now_ns();
    if (chain_state.value != ops || chain_state.left != 0)
        return fail("libevent chain: steps run");
    sink += chain_state.value;
    return (int64_t)(t1 - t0);
}

/* ------------------------------------------------------------------ */
/* Async batches: the reactor must run before the batch is over          */
/* ------------------------------------------------------------------ */

struct stop_cap {
    uint64_t t0;
    uint64_t expect; /* what item_count must reach */
};

static struct sc_future stop_clock(void *cap, intptr_t v)
{
    (void)v;
    const struct stop_cap *c = cap;
    uint64_t t1 = now_ns();
    if (item_count != c->expect)
        return sc_make_error(fail("async batch: items run"));
    sink += item_count;
    return sc_make_ready((intptr_t)(t1 - c->t0));
}

/* ------------------------------------------------------------------ */
/* 2. core.unready_continuation                                         */
/* ------------------------------------------------------------------ */

struct count_cap {
    uint64_t *count;
};

static struct sc_future count_value(void *cap, intptr_t v)
{
    *((struct count_cap *)cap)->count += (uint64_t)v;
    return sc_make_ready(0);
}

/*
 * ops promises, each with a continuation (allocated: the future is not ready),
 * all set, then sc_yield(): its task is queued after the ops continuation
 * tasks, so when it has run they all have. The yield and the stop-the-clock
 * continuation are two more tasks per batch (~0.1 ns per item at 1024).
 */
static struct sc_future unready_batch(uint64_t ops)
{
    struct count_cap cc = {&item_count};
    item_count = 0;
    struct stop_cap stop = {.t0 = now_ns(), .expect = ops};
    for (uint64_t i = 0; i < ops; i++) {
        sc_promise_init(&promises[i]);
        struct sc_future f = sc_promise_get_future(&promises[i]);
        sc_future_ignore(SC_THEN(f, count_value, cc));
    }
    for (uint64_t i = 0; i < ops; i++)
        sc_promise_set_value(&promises[i], 1);
    return SC_THEN(sc_yield(), stop_clock, stop);
}

/* libevent: one event per item. event_assign() is the "attach a callback
 * and its argument" step (the analogue of sc_then on a pending future),
 * event_active() the "the value is here" step, then one loop pass. The
 * events themselves are allocated once, up front. */
static void ev_item_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(uint64_t *)arg += 1;
}

static int64_t ev_items_run(uint64_t ops, uint64_t t0)
{
    for (uint64_t i = 0; i < ops; i++)
        event_active(ev_items[i], 0, 0);
    event_base_loop(ev_base, EVLOOP_NONBLOCK);
    uint64_t t1 = now_ns();
    if (item_count != ops)
        return fail("libevent items: callbacks run");
    sink += item_count;
    return (int64_t)(t1 - t0);
}

static int64_t ev_assign_active_batch(uint64_t ops)
{
    item_count = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < ops; i++)
        event_assign(ev_items[i], ev_base, -1, 0, ev_item_cb, &item_count);
    return ev_items_run(ops, t0);
}

/*
 * libuv peers. libuv has no "run this callback soon" call: uv_async_send is
 * the cross-thread one (a write to an eventfd), so one-thread code schedules
 * through a handle. Two honest ways, both reported:
 *   libuv.idle    uv_idle_start() per item, the callback stops its handle:
 *                 a list insert and remove, run by the next uv_run() pass.
 *                 This is the cheapest, closest to a task queue.
 *   libuv.timer0  uv_timer_start(h, cb, 0, 0): the setTimeout(0) idiom; a
 *                 heap insert and remove per item.
 * Handles are initialised once, up front (uv_*_init links them into the loop
 * and would need a uv_close pass each), so the peers skip the "create" step
 * that seacore pays for in core.unready_continuation.
 */
static void on_uv_idle(uv_idle_t *h)
{
    *(uint64_t *)h->data += 1;
    uv_idle_stop(h);
}

static void on_uv_timer0(uv_timer_t *h)
{
    *(uint64_t *)h->data += 1;
}

static int64_t uv_run_items(uint64_t ops, uint64_t t0)
{
    uv_run(&uv_loop, UV_RUN_NOWAIT);
    uint64_t t1 = now_ns();
    if (item_count != ops)
        return fail("libuv items: callbacks run");
    sink += item_count;
    return (int64_t)(t1 - t0);
}

static int64_t uv_idle_batch(uint64_t ops)
{
    item_count = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        uv_idles[i].data = &item_count;
        uv_idle_start(&uv_idles[i], on_uv_idle);
    }
    return uv_run_items(ops, t0);
}

static int64_t uv_timer0_batch(uint64_t ops)
{
    item_count = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        uv_timer0s[i].data = &item_count;
        uv_timer_start(&uv_timer0s[i], on_uv_timer0, 0, 0);
    }
    return uv_run_items(ops, t0);
}

/* ------------------------------------------------------------------ */
/* 3. core.task_spawn_run                                               */
/* ------------------------------------------------------------------ */

struct spawn_item {
    struct sc_task task;
    uint64_t value;
};

static struct spawn_item spawn_items[ITEMS];
static uint64_t spawn_left;
static struct sc_promise spawn_done;

static void spawn_run(struct sc_task *t)
{
    item_count += SC_CONTAINER_OF(t, struct spawn_item, task)->value;
    if (--spawn_left == 0)
        sc_promise_set_value(&spawn_done, 0);
}

static struct sc_future spawn_batch(uint64_t ops)
{
    item_count = 0;
    spawn_left = ops;
    struct stop_cap stop = {.t0 = now_ns(), .expect = ops};
    sc_promise_init(&spawn_done);
    struct sc_future done = sc_promise_get_future(&spawn_done);
    for (uint64_t i = 0; i < ops; i++)
        sc_task_schedule(&spawn_items[i].task);
    return SC_THEN(done, stop_clock, stop);
}

/* The same tasks spread round-robin over SPREAD_GROUPS scheduling groups of
 * different shares, all active at once: what choosing among groups costs
 * (a pick per slice, a clock read per group switch). Its peer is the
 * one-group batch above, so the ratio is the groups' overhead. */
#define SPREAD_GROUPS 4
static struct sc_sched_group spread[SPREAD_GROUPS];

static int spread_setup(void)
{
    static const unsigned shares[SPREAD_GROUPS] = {100, 200, 500, 1000};
    static bool made;
    char name[16];
    for (int g = 0; g < SPREAD_GROUPS && !made; g++) {
        snprintf(name, sizeof name, "bench%d", g);
        int err = sc_sched_group_create(name, shares[g], &spread[g]);
        if (err)
            return err;
    }
    made = true;
    return 0;
}

static struct sc_future spawn_groups_batch(uint64_t ops)
{
    item_count = 0;
    spawn_left = ops;
    struct stop_cap stop = {.t0 = now_ns(), .expect = ops};
    sc_promise_init(&spawn_done);
    struct sc_future done = sc_promise_get_future(&spawn_done);
    for (uint64_t i = 0; i < ops; i++)
        sc_task_schedule_in(&spawn_items[i].task, spread[i % SPREAD_GROUPS]);
    return SC_THEN(done, stop_clock, stop);
}

/* libevent: the events are assigned already; only activate and dispatch. */
static int64_t ev_active_batch(uint64_t ops)
{
    item_count = 0;
    return ev_items_run(ops, now_ns());
}

/* ------------------------------------------------------------------ */
/* 4. core.timer_arm_cancel                                             */
/* ------------------------------------------------------------------ */

/*
 * Background and measured delays come from one distribution, 10 to 100 s, so
 * the measured timer lands at a random place among the 1000 others (not
 * always at the top, not always at the bottom), the same for all three.
 * Semantics differ slightly and are kept as each library defines them:
 * sc_timer_arm_in() reads CLOCK_MONOTONIC, evtimer_add() reads libevent's
 * clock (CLOCK_MONOTONIC_COARSE by default), uv_timer_start() uses the loop's
 * cached time (no clock read).
 */
static uint64_t delay_ns[DELAYS];
static uint64_t uv_delay_ms[DELAYS];
static struct timeval ev_delay_tv[DELAYS];

static struct sc_timer sc_bg[BG_TIMERS], sc_meas;
static uv_timer_t uv_bg[BG_TIMERS], uv_meas;
static struct event *ev_bg[BG_TIMERS], *ev_meas;
static uint64_t bg_fired;

static void on_sc_bg(void *arg)
{
    (void)arg;
    bg_fired++;
}

static void on_uv_bg(uv_timer_t *h)
{
    (void)h;
    bg_fired++;
}

static void on_ev_bg(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    bg_fired++;
}

static void make_delays(uint64_t *seed, uint64_t *ns, uint64_t *ms, struct timeval *tv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t d = 10000000000ull + mix_next(seed) % 90000000000ull;
        ns[i] = d;
        ms[i] = d / 1000000;
        tv[i].tv_sec = (time_t)(d / 1000000000ull);
        tv[i].tv_usec = (suseconds_t)(d % 1000000000ull / 1000);
    }
}

static int timers_setup(void)
{
    static uint64_t bg_ns[BG_TIMERS], bg_ms[BG_TIMERS];
    static struct timeval bg_tv[BG_TIMERS];
    uint64_t seed = 42;
    make_delays(&seed, bg_ns, bg_ms, bg_tv, BG_TIMERS);
    make_delays(&seed, delay_ns, uv_delay_ms, ev_delay_tv, DELAYS);
    for (size_t i = 0; i < BG_TIMERS; i++) {
        sc_timer_init(&sc_bg[i], on_sc_bg, NULL);
        if (sc_timer_arm_in(&sc_bg[i], bg_ns[i]) != 0)
            return fail("timers: arm a background sc_timer");
        if (uv_timer_init(&uv_loop, &uv_bg[i]) != 0 ||
            uv_timer_start(&uv_bg[i], on_uv_bg, bg_ms[i], 0) != 0)
            return fail("timers: start a background uv_timer");
        ev_bg[i] = evtimer_new(ev_base, on_ev_bg, NULL);
        if (!ev_bg[i] || evtimer_add(ev_bg[i], &bg_tv[i]) != 0)
            return fail("timers: add a background libevent timer");
    }
    sc_timer_init(&sc_meas, on_sc_bg, NULL);
    ev_meas = evtimer_new(ev_base, on_ev_bg, NULL);
    if (!ev_meas || uv_timer_init(&uv_loop, &uv_meas) != 0)
        return fail("timers: make the measured timers");
    return 0;
}

static void timers_teardown(void)
{
    for (size_t i = 0; i < BG_TIMERS; i++) {
        sc_timer_cancel(&sc_bg[i]);
        uv_close((uv_handle_t *)&uv_bg[i], NULL);
        event_free(ev_bg[i]);
    }
    uv_close((uv_handle_t *)&uv_meas, NULL);
    event_free(ev_meas);
    if (bg_fired)
        fprintf(stderr, "# bench_core: %llu background timers fired (harmless)\n",
                (unsigned long long)bg_fired);
}

static int64_t sc_timer_batch(uint64_t ops)
{
    uint64_t ok = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        ok += sc_timer_arm_in(&sc_meas, delay_ns[i % DELAYS]) == 0;
        ok += sc_timer_cancel(&sc_meas);
    }
    uint64_t t1 = now_ns();
    if (ok != 2 * ops || sc_timer_count() != BG_TIMERS)
        return fail("sc_timer: arm/cancel results");
    sink += ok;
    return (int64_t)(t1 - t0);
}

static int64_t uv_timer_batch(uint64_t ops)
{
    uint64_t ok = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        ok += uv_timer_start(&uv_meas, on_uv_bg, uv_delay_ms[i % DELAYS], 0) == 0;
        ok += uv_timer_stop(&uv_meas) == 0;
    }
    uint64_t t1 = now_ns();
    if (ok != 2 * ops)
        return fail("uv_timer: start/stop results");
    sink += ok;
    return (int64_t)(t1 - t0);
}

static int64_t ev_timer_batch(uint64_t ops)
{
    uint64_t ok = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        ok += evtimer_add(ev_meas, &ev_delay_tv[i % DELAYS]) == 0;
        ok += evtimer_del(ev_meas) == 0;
    }
    uint64_t t1 = now_ns();
    if (ok != 2 * ops)
        return fail("libevent timer: add/del results");
    sink += ok;
    return (int64_t)(t1 - t0);
}

/* ------------------------------------------------------------------ */
/* The measurements                                                     */
/* ------------------------------------------------------------------ */

/* A synchronous batch runs start to finish in the calling task and returns
 * its elapsed ns (or a negative error); an async one needs the reactor to
 * run and returns a future of its elapsed ns. */
typedef int64_t (*sync_batch_fn)(uint64_t ops);
typedef struct sc_future (*async_batch_fn)(uint64_t ops);

struct impl {
    const char *peer; /* NULL: seacore itself (always impl[0]) */
    sync_batch_fn sync;
    async_batch_fn async;
    uint64_t ops;     /* per batch; calibration doubles it (sync batches only)... */
    uint64_t max_ops; /* ...up to this: ITEMS where the batch size is the item count */
    /* filled in by the run */
    uint64_t batches; /* per round */
    double per_op[MAX_ROUNDS];
};

struct measurement {
    const char *name;
    double target_ns; /* the target for seacore's value; 0: none */
    int (*setup)(void);
    void (*teardown)(void);
    struct impl impl[MAX_IMPLS];
};

/* impl[0] is seacore. Synchronous batches start at .ops and calibration may
 * double them up to .max_ops; where the batch size is the item count (ITEMS
 * pre-made events, handles, promises), it stays fixed. */
static struct measurement measurements[] = {
    {
        .name = "core.ready_then",
        .target_ns = 2.0,
        .impl =
            {
                {.sync = ready_then_batch, .ops = 256, .max_ops = MAX_OPS},
                {.peer = "c.indirect_call",
                 .sync = indirect_call_batch,
                 .ops = 256,
                 .max_ops = MAX_OPS},
                {.peer = "libevent.event_active",
                 .sync = ev_chain_batch,
                 .ops = 64,
                 .max_ops = MAX_OPS},
            },
    },
    {
        .name = "core.unready_continuation",
        .target_ns = 10.0,
        .impl =
            {
                {.async = unready_batch, .ops = ITEMS, .max_ops = ITEMS},
                {.peer = "libevent.event_active",
                 .sync = ev_assign_active_batch,
                 .ops = ITEMS,
                 .max_ops = ITEMS},
                {.peer = "libuv.idle", .sync = uv_idle_batch, .ops = ITEMS, .max_ops = ITEMS},
                {.peer = "libuv.timer0", .sync = uv_timer0_batch, .ops = ITEMS, .max_ops = ITEMS},
            },
    },
    {
        .name = "core.task_spawn_run",
        .impl =
            {
                {.async = spawn_batch, .ops = ITEMS, .max_ops = ITEMS},
                {.peer = "libevent.event_active",
                 .sync = ev_active_batch,
                 .ops = ITEMS,
                 .max_ops = ITEMS},
                {.peer = "libuv.idle", .sync = uv_idle_batch, .ops = ITEMS, .max_ops = ITEMS},
                {.peer = "libuv.timer0", .sync = uv_timer0_batch, .ops = ITEMS, .max_ops = ITEMS},
            },
    },
    {
        .name = "core.task_spawn_run_4groups",
        .setup = spread_setup,
        .impl =
            {
                {.async = spawn_groups_batch, .ops = ITEMS, .max_ops = ITEMS},
                {.peer = "core.task_spawn_run",
                 .async = spawn_batch,
                 .ops = ITEMS,
                 .max_ops = ITEMS},
            },
    },
    {
        .name = "core.timer_arm_cancel",
        .setup = timers_setup,
        .teardown = timers_teardown,
        .impl =
            {
                {.sync = sc_timer_batch, .ops = 64, .max_ops = MAX_OPS},
                {.peer = "libuv.timer_start_stop",
                 .sync = uv_timer_batch,
                 .ops = 64,
                 .max_ops = MAX_OPS},
                {.peer = "libevent.evtimer_add_del",
                 .sync = ev_timer_batch,
                 .ops = 64,
                 .max_ops = MAX_OPS},
            },
    },
};

#define N_MEASUREMENTS (sizeof measurements / sizeof measurements[0])

static size_t impl_count(const struct measurement *m)
{
    size_t n = 0;
    while (n < MAX_IMPLS && (m->impl[n].sync || m->impl[n].async))
        n++;
    return n;
}

/* ratio = peer_value / value: the time units make > 1 mean seacore is faster. */
static void report(const struct measurement *m, int rounds)
{
    double value = median(m->impl[0].per_op, rounds);
    size_t n = impl_count(m);
    for (size_t i = 1; i < n; i++) {
        double pv = median(m->impl[i].per_op, rounds);
        printf("BENCH name=%s value=%.2f unit=ns/op peer=%s peer_value=%.2f ratio=%.2f\n", m->name,
               value, m->impl[i].peer, pv, value > 0 ? pv / value : 0.0);
    }
    if (n == 1)
        printf("BENCH name=%s value=%.2f unit=ns/op\n", m->name, value);
    fflush(stdout);
}

/* Say on stderr whether the targets were reached (never asserted). */
static void note_targets(int rounds)
{
    for (size_t k = 0; k < N_MEASUREMENTS; k++) {
        const struct measurement *m = &measurements[k];
        double value = median(m->impl[0].per_op, rounds);
        if (m->target_ns > 0)
            fprintf(stderr, "# target %s <= %.0f ns: %s (%.2f ns)\n", m->name, m->target_ns,
                    value <= m->target_ns ? "reached" : "NOT reached", value);
        for (size_t i = 1; i < impl_count(m); i++) {
            if (strncmp(m->impl[i].peer, "c.", 2) == 0)
                continue; /* the floor is not a competitor */
            double r = median(m->impl[i].per_op, rounds) / value;
            fprintf(stderr, "# target %s >= 3x faster than %s: %s (%.2fx)\n", m->name,
                    m->impl[i].peer, r >= 3.0 ? "reached" : "NOT reached", r);
        }
    }
}

/* ------------------------------------------------------------------ */
/* The driver: a loop of "yield, run one batch, account for it"          */
/* ------------------------------------------------------------------ */

enum { ROUND_CALIBRATE = -1, ROUND_WARMUP = 0 };

struct driver {
    const struct settings *set;
    size_t m, i;       /* current measurement and implementation */
    int round;         /* ROUND_CALIBRATE, ROUND_WARMUP, then 1..rounds */
    bool set_up;       /* the current measurement's setup ran */
    unsigned cal_hits; /* calibration: batches at the current size that met the target */
    uint64_t batches;  /* batches kept in the current (round, impl) */
    uint64_t acc_ns, acc_ops;
    unsigned redo_streak;
    uint64_t redone, kept;
};

/* Move to the next implementation, round, measurement. False when done. */
static bool advance(struct driver *d)
{
    struct measurement *m = &measurements[d->m];
    d->batches = d->acc_ns = d->acc_ops = 0;
    d->cal_hits = 0;
    if (++d->i < impl_count(m))
        return true;
    d->i = 0;
    if (++d->round <= d->set->rounds)
        return true;
    report(m, d->set->rounds);
    if (m->teardown)
        m->teardown();
    d->set_up = false;
    d->round = ROUND_CALIBRATE;
    return ++d->m < N_MEASUREMENTS;
}

/* Calibration: double a synchronous batch until it takes batch_ns; then
 * one more batch of that size estimates how many batches fill a round. */
static void calibrate(struct driver *d, struct impl *im, uint64_t ns)
{
    if (im->sync && ns < d->set->batch_ns && im->ops < im->max_ops) {
        im->ops *= 2;
        d->cal_hits = 0;
        return;
    }
    if (++d->cal_hits < 2)
        return;
    uint64_t b = d->set->round_ns / (ns ? ns : 1);
    im->batches = b ? b : 1;
    advance(d);
}

static struct sc_future account(struct driver *d, int64_t ns, bool ticked)
{
    struct impl *im = &measurements[d->m].impl[d->i];
    if (ticked && d->redo_streak < MAX_REDO_STREAK) {
        d->redo_streak++;
        d->redone++;
        return sc_make_ready(SC_CONTINUE);
    }
    d->redo_streak = 0;
    d->kept++;
    if (d->round == ROUND_CALIBRATE) {
        calibrate(d, im, (uint64_t)ns);
        return sc_make_ready(SC_CONTINUE);
    }
    d->acc_ns += (uint64_t)ns;
    d->acc_ops += im->ops;
    if (++d->batches < im->batches)
        return sc_make_ready(SC_CONTINUE);
    if (d->round > ROUND_WARMUP)
        im->per_op[d->round - 1] = (double)d->acc_ns / (double)d->acc_ops;
    return sc_make_ready(advance(d) ? SC_CONTINUE : SC_STOP);
}

static struct sc_future account_async(void *cap, intptr_t ns)
{
    return account(*(struct driver **)cap, (int64_t)ns, false);
}

static struct sc_future run_batch(void *cap, intptr_t unused)
{
    (void)unused;
    struct driver *d = *(struct driver **)cap;
    struct measurement *m = &measurements[d->m];
    if (!d->set_up) {
        int err = m->setup ? m->setup() : 0;
        if (err)
            return sc_make_error(err);
        d->set_up = true;
    }
    struct impl *im = &m->impl[d->i];
    if (im->async)
        return SC_THEN(im->async(im->ops), account_async, d);
    int64_t ns = im->sync(im->ops);
    /* Read the preemption word in the same task, before anything can clear
     * it: set means the quota tick's signal landed in (or just before) the
     * timed region. */
    bool ticked = sc_need_preempt();
    if (ns < 0)
        return sc_make_error((int)ns);
    return account(d, ns, ticked);
}

static struct sc_future drive(void *cap)
{
    struct driver *d = *(struct driver **)cap;
    return SC_THEN(sc_yield(), run_batch, d);
}

/* ------------------------------------------------------------------ */
/* Opening and closing the peers; the app's main function               */
/* ------------------------------------------------------------------ */

static int peers_open(void)
{
    ev_base = event_base_new();
    if (!ev_base)
        return fail("event_base_new");
    if (uv_loop_init(&uv_loop) != 0)
        return fail("uv_loop_init");
    uv_open = true;
    ev_chain = event_new(ev_base, -1, 0, ev_chain_cb, &chain_state);
    if (!ev_chain)
        return fail("event_new");
    for (size_t i = 0; i < ITEMS; i++) {
        ev_items[i] = event_new(ev_base, -1, 0, ev_item_cb, &item_count);
        if (!ev_items[i] || uv_idle_init(&uv_loop, &uv_idles[i]) != 0 ||
            uv_timer_init(&uv_loop, &uv_timer0s[i]) != 0)
            return fail("making the peers' items");
        spawn_items[i].task.run = spawn_run;
        spawn_items[i].value = 1;
    }
    return 0;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void peers_close(void)
{
    for (size_t i = 0; i < ITEMS; i++) {
        if (ev_items[i])
            event_free(ev_items[i]);
        ev_items[i] = NULL;
    }
    if (ev_chain)
        event_free(ev_chain);
    if (ev_base)
        event_base_free(ev_base);
    ev_chain = NULL;
    ev_base = NULL;
    if (uv_open) {
        uv_walk(&uv_loop, close_handle, NULL); /* every handle still open */
        uv_run(&uv_loop, UV_RUN_DEFAULT);      /* runs the close callbacks */
        if (uv_loop_close(&uv_loop) != 0)
            fprintf(stderr, "bench_core: uv_loop_close: handles left open\n");
        uv_open = false;
    }
}

static struct sc_future finish(void *cap)
{
    struct driver *d = *(struct driver **)cap;
    if (d->m == N_MEASUREMENTS) {
        note_targets(d->set->rounds);
        fprintf(stderr, "# bench_core: %llu batches kept, %llu redone (quota tick inside)\n",
                (unsigned long long)d->kept, (unsigned long long)d->redone);
    }
    peers_close();
    return sc_make_ready(0);
}

static struct sc_future bench_main(void *arg, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct driver *d = arg;
    int err = peers_open();
    if (err) {
        peers_close();
        return sc_make_error(err);
    }
    return SC_FINALLY(sc_repeat(drive, &d, sizeof d), finish, d);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_core [--quick] [--help]\n"
            "\n"
            "Microbenchmarks of seacore's core beside libevent and libuv doing the same\n"
            "in the same run, on a real shard. One line per measurement and peer:\n"
            "  BENCH name=<n> value=<ns> unit=ns/op peer=<p> peer_value=<ns> ratio=<r>\n"
            "ratio = peer_value / value: above 1 means seacore is faster.\n"
            "\n"
            "  core.ready_then            sc_then on a ready future (per then)\n"
            "  core.unready_continuation  promise + sc_then + set_value + task run (per item)\n"
            "  core.task_spawn_run        sc_task_schedule + the task running (per task)\n"
            "  core.task_spawn_run_4groups  the same over 4 busy scheduling groups\n"
            "  core.timer_arm_cancel      arm + cancel among 1000 armed timers (per pair)\n"
            "\n"
            "options:\n"
            "  --quick   short run (under 2 s), same lines, noisier numbers\n"
            "  --help    show this text\n");
}

int main(int argc, char **argv)
{
    const struct settings *set = &full_settings;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            set = &quick_settings;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bench_core: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }

    struct sc_config cfg;
    sc_config_default(&cfg);
    cfg.backend = SC_BACKEND_REAL;
    cfg.quiet = true;
    struct driver d = {.set = set, .round = ROUND_CALIBRATE};
    fprintf(stderr, "# bench_core: median of %d rounds of ~%llu ms per implementation\n",
            set->rounds, (unsigned long long)(set->round_ns / 1000000));
    int code = sc_run(&cfg, bench_main, &d, 0, NULL);
    libevent_global_shutdown();
    if (code == 0 && d.m != N_MEASUREMENTS) {
        fprintf(stderr, "bench_core: the run ended early\n");
        code = 1;
    }
    return code;
}
