/*
 * test_thread.c — fibers (core/thread.h): results and errors, await on
 * ready, pending and failed futures, interleaving, sleep, nesting, other
 * shards, stack sizes and the guard page, the task quota, shutdown with
 * fibers still suspended, and determinism in the simulator. Every case runs
 * in both worlds.
 *
 * Most test bodies are themselves fibers: they read top to bottom, with
 * sc_await where a continuation chain would need a new function.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "core/sched.h"
#include "core/smp.h"
#include "core/thread.h"
#include "tests/harness.h"

static int backend_i;
#define WORLD t_backends[backend_i]

/* Run `body` as a fiber on shard 0 of a fresh run; the fiber's value is the
 * run's exit code. */
struct body {
    sc_thread_fn fn;
    struct sc_thread_attr attr;
};

static struct sc_future body_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct body *b = arg;
    T_CHECK(!sc_thread_running(), "an app's main function is not a fiber");
    return sc_thread_spawn(b->fn, NULL, 0, &b->attr);
}

static int run_cfg(struct sc_config *cfg, sc_thread_fn fn, struct sc_run_result *res)
{
    struct body b = {fn, {0}};
    tr_step("run a fiber test on the %s world (seed %llu, %u shards)", t_backend_names[backend_i],
            (unsigned long long)cfg->seed, cfg->smp);
    return sc_run_ex(cfg, body_main, &b, 0, NULL, res);
}

static int run_body(sc_thread_fn fn)
{
    struct sc_config cfg = t_config(WORLD);
    cfg.smp = 2;
    struct sc_run_result res;
    int rc = run_cfg(&cfg, fn, &res);
    T_CHECK(res.unhandled_errors == 0, "%llu failed future(s) left unhandled",
            (unsigned long long)res.unhandled_errors);
    return rc;
}

static uint64_t switches(void)
{
    struct sc_thread_stats st;
    sc_thread_stats(&st);
    return st.switches;
}

/* ---- results: values, errors, pending futures as results ---- */

static struct sc_future give(void *cap)
{
    T_CHECK(sc_thread_running(), "a fiber's function runs in a fiber");
    return sc_make_ready(*(intptr_t *)cap);
}

static struct sc_future fail_eio(void *cap)
{
    (void)cap;
    return sc_make_error(-EIO);
}

static struct sc_future give_later(void *cap)
{
    (void)cap;
    return sc_sleep(SC_US(10)); /* a pending future as the fiber's result */
}

static struct sc_future results_body(void *cap)
{
    (void)cap;
    intptr_t v = -1, x = 42;
    int err = sc_await(SC_THREAD_SPAWN(give, x, NULL), &v);
    tr_step("fiber returning 42 -> err %d value %ld", err, (long)v);
    T_CHECK(err == 0 && v == 42, "the fiber's value must come through");

    err = sc_await(sc_thread_spawn(fail_eio, NULL, 0, NULL), &v);
    tr_step("fiber failing with -EIO -> err %d", err);
    T_CHECK(err == -EIO, "the fiber's error must come through");

    v = -1;
    err = sc_await(sc_thread_spawn(give_later, NULL, 0, NULL), &v);
    tr_step("fiber returning a pending sleep -> err %d value %ld", err, (long)v);
    T_CHECK(err == 0 && v == 0, "a pending result is forwarded");
    return sc_make_ready(0);
}

START_TEST(results_and_errors)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(run_body(results_body) == 0, "results test failed");
}
END_TEST

/* A fiber's future consumed by an ordinary continuation, from main. */
static struct sc_future check_value(void *cap, intptr_t v, int err)
{
    (void)cap;
    tr_step("continuation on a fiber's future: err %d value %ld", err, (long)v);
    T_CHECK(err == 0 && v == 7, "value 7 expected");
    return sc_make_ready(0);
}

static struct sc_future then_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    intptr_t seven = 7;
    return sc_then_wrapped(SC_THREAD_SPAWN(give, seven, NULL), check_value, NULL, 0);
}

START_TEST(future_of_fiber_in_a_chain)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, then_main, NULL) == 0, "chain on a fiber's future failed");
}
END_TEST

/* ---- await: ready, failed, pending (promise, sleep), pending failure ---- */

static struct sc_promise later;

static void set_later(void *arg)
{
    intptr_t what = (intptr_t)arg;
    if (what)
        sc_promise_set_value(&later, what);
    else
        sc_promise_set_error(&later, -ECONNRESET);
}

static struct sc_future await_body(void *cap)
{
    (void)cap;
    intptr_t v = 0;
    uint64_t sw = switches();
    int err = sc_await(sc_make_ready(5), &v);
    T_CHECK(err == 0 && v == 5, "await of a ready future gives its value");
    T_CHECK(switches() == sw, "await of a ready future must not switch");

    err = sc_await(sc_make_error(-ENOENT), &v);
    tr_step("await of a failed ready future -> %d", err);
    T_CHECK(err == -ENOENT, "the error comes back (and is handled)");
    T_CHECK(switches() == sw, "a failed ready future does not switch either");
    T_CHECK(sc_await(sc_make_ready(6), NULL) == 0, "value may be NULL");

    struct sc_timer t;
    sc_promise_init(&later);
    sc_timer_init(&t, set_later, (void *)(intptr_t)99);
    sc_timer_arm_in(&t, SC_US(50));
    err = sc_await(sc_promise_get_future(&later), &v);
    tr_step("await of a promise set by a timer -> err %d value %ld", err, (long)v);
    T_CHECK(err == 0 && v == 99, "the promise's value arrives");
    T_CHECK(switches() == sw + 2, "one wait is two switches (out and back in), saw %llu",
            (unsigned long long)(switches() - sw));

    sc_promise_init(&later);
    sc_timer_init(&t, set_later, NULL);
    sc_timer_arm_in(&t, SC_US(50));
    err = sc_await(sc_promise_get_future(&later), &v);
    tr_step("await of a promise failed by a timer -> %d", err);
    T_CHECK(err == -ECONNRESET, "the promise's error arrives");

    uint64_t t0 = sc_now();
    err = sc_await(sc_sleep(SC_MS(2)), NULL);
    uint64_t slept = sc_now() - t0;
    tr_step("sleep 2 ms in a fiber: err %d, %llu ns later", err, (unsigned long long)slept);
    T_CHECK(err == 0 && slept >= SC_MS(2), "sc_sleep in a fiber waits its time");

    err = sc_await(sc_with_timeout(sc_sleep(SC_SEC(10)), SC_MS(1)), NULL);
    T_CHECK(err == SC_ETIMEDOUT, "with_timeout inside a fiber times out");
    return sc_make_ready(0);
}

START_TEST(await_ready_pending_failed)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(run_body(await_body) == 0, "await test failed");
}
END_TEST

/* ---- many fibers interleave through the task queue, in FIFO order ---- */

#define NF    5
#define STEPS 4
static int order[NF * STEPS];
static int norder;

static struct sc_future stepper(void *cap)
{
    int id = *(int *)cap;
    for (int s = 0; s < STEPS; s++) {
        order[norder++] = id * 100 + s;
        T_CHECK(sc_await(sc_yield(), NULL) == 0, "yield");
    }
    return sc_make_ready(id);
}

static struct sc_future interleave_body(void *cap)
{
    (void)cap;
    struct sc_future fs[NF];
    norder = 0;
    for (int i = 0; i < NF; i++)
        fs[i] = SC_THREAD_SPAWN(stepper, i, NULL);
    T_CHECK(norder == 0, "spawned fibers start later, as tasks");
    T_CHECK(sc_await(sc_when_all(fs, NF), NULL) == 0, "when_all");
    for (int i = 0; i < NF; i++) {
        intptr_t v;
        T_CHECK(sc_future_get(fs[i], &v) == 0 && v == i, "fiber %d's value", i);
    }
    /* round robin: step s of every fiber before step s+1 of any */
    for (int k = 0; k < NF * STEPS; k++) {
        int want = (k % NF) * 100 + k / NF;
        tr_step("slot %d: %d (expected %d)", k, order[k], want);
        T_CHECK(order[k] == want, "fibers must take turns in FIFO order");
    }
    struct sc_thread_stats st;
    sc_thread_stats(&st);
    T_CHECK(st.spawned == NF + 1 && st.finished == NF && st.live == 1,
            "stats: spawned %llu finished %llu live %llu", (unsigned long long)st.spawned,
            (unsigned long long)st.finished, (unsigned long long)st.live);
    return sc_make_ready(0);
}

START_TEST(fibers_interleave_in_order)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(run_body(interleave_body) == 0, "interleaving test failed");
}
END_TEST

/* ---- nesting: a fiber spawns and awaits fibers, errors come up the tree ---- */

static struct sc_future nested(void *cap)
{
    int depth = *(int *)cap;
    if (depth == 0) {
        T_CHECK(sc_await(sc_sleep(SC_US(5)), NULL) == 0, "sleep at the bottom");
        return sc_make_error(-EPIPE);
    }
    int next = depth - 1;
    intptr_t v = 0;
    int err = sc_await(SC_THREAD_SPAWN(nested, next, NULL), &v);
    if (depth == 1) {
        T_CHECK(err == -EPIPE, "the bottom's error reaches its parent");
        return sc_make_ready(1);
    }
    T_CHECK(err == 0, "depth %d: err %d", depth, err);
    return sc_make_ready(v + 1);
}

static struct sc_future nested_body(void *cap)
{
    (void)cap;
    int depth = 20;
    intptr_t v = 0;
    int err = sc_await(SC_THREAD_SPAWN(nested, depth, NULL), &v);
    tr_step("20 nested fibers -> err %d value %ld", err, (long)v);
    T_CHECK(err == 0 && v == 20, "nested fibers add up");
    struct sc_thread_stats st;
    sc_thread_stats(&st);
    tr_step("stacks mapped %llu, cached %llu", (unsigned long long)st.stacks_mapped,
            (unsigned long long)st.stacks_cached);
    T_CHECK(st.stacks_cached > 0, "finished fibers leave stacks in the cache");
    /* the next spawns reuse them: no new mapping */
    uint64_t mapped = st.stacks_mapped;
    for (int i = 0; i < 10; i++) {
        intptr_t x = i;
        T_CHECK(sc_await(SC_THREAD_SPAWN(give, x, NULL), &v) == 0 && v == i, "reuse %d", i);
    }
    sc_thread_stats(&st);
    T_CHECK(st.stacks_mapped == mapped, "cached stacks are reused (%llu -> %llu)",
            (unsigned long long)mapped, (unsigned long long)st.stacks_mapped);
    return sc_make_ready(0);
}

START_TEST(nested_fibers)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(run_body(nested_body) == 0, "nested test failed");
}
END_TEST

/* ---- across shards: await submit_to; a fiber on the other shard ---- */

static struct sc_future shard_id_plus(void *cap)
{
    return sc_make_ready((intptr_t)sc_this_shard() + *(intptr_t *)cap);
}

static struct sc_future remote_fiber(void *cap)
{
    (void)cap;
    T_CHECK(sc_await(sc_sleep(SC_US(20)), NULL) == 0, "sleep on the remote shard");
    intptr_t v;
    intptr_t zero = 0;
    /* and back again: shard 1's fiber awaits a call to shard 0 */
    T_CHECK(sc_await(SC_SUBMIT_TO(0, shard_id_plus, zero), &v) == 0 && v == 0, "call home");
    return sc_make_ready((intptr_t)sc_this_shard() * 1000);
}

static struct sc_future spawn_remote(void *cap)
{
    (void)cap;
    return sc_thread_spawn(remote_fiber, NULL, 0, NULL);
}

static struct sc_future fail_remote(void *cap)
{
    (void)cap;
    return sc_make_error(-EXDEV);
}

static struct sc_future cross_body(void *cap)
{
    (void)cap;
    intptr_t v = 0, add = 100;
    int err = sc_await(SC_SUBMIT_TO(1, shard_id_plus, add), &v);
    tr_step("await submit_to(1) -> err %d value %ld", err, (long)v);
    T_CHECK(err == 0 && v == 101, "the other shard's answer");
    err = sc_await(sc_smp_submit_to(1, fail_remote, NULL, 0), &v);
    tr_step("await a failing submit_to(1) -> %d", err);
    T_CHECK(err == -EXDEV, "the other shard's error");
    err = sc_await(sc_smp_submit_to(1, spawn_remote, NULL, 0), &v);
    tr_step("await a fiber spawned on shard 1 -> err %d value %ld", err, (long)v);
    T_CHECK(err == 0 && v == 1000, "a fiber on shard 1 ran there");
    T_CHECK(sc_this_shard() == 0, "the awaiting fiber never moved");
    return sc_make_ready(0);
}

START_TEST(cross_shard_await)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(run_body(cross_body) == 0, "cross-shard test failed");
}
END_TEST

/* ---- stack sizes, bad arguments, deep recursion ---- */

static struct sc_future stack_left_now(void *cap)
{
    (void)cap;
    return sc_make_ready((intptr_t)sc_thread_stack_left());
}

/* Uses about `depth` KiB of stack; returns a checksum that needs every frame. */
static uint64_t recurse(int depth)
{
    volatile unsigned char buf[1024];
    memset((unsigned char *)buf, depth & 0xff, sizeof buf);
    if (depth == 0)
        return buf[17];
    return recurse(depth - 1) + buf[depth % 1024];
}

static struct sc_future deep(void *cap)
{
    int depth = *(int *)cap;
    size_t before = sc_thread_stack_left();
    uint64_t sum = recurse(depth);
    uint64_t want = 0;
    for (int d = 0; d <= depth; d++)
        want += (uint64_t)(d & 0xff);
    T_CHECK(sum == want, "recursion checksum %llu, expected %llu", (unsigned long long)sum,
            (unsigned long long)want);
    return sc_make_ready((intptr_t)before);
}

static struct sc_future stack_body(void *cap)
{
    (void)cap;
    intptr_t left = 0;
    T_CHECK(sc_await(sc_thread_spawn(stack_left_now, NULL, 0, NULL), &left) == 0, "default");
    tr_step("default stack: %ld bytes left at the start", (long)left);
    T_CHECK(left > (intptr_t)SC_THREAD_STACK_DEFAULT - 8192 &&
                left < (intptr_t)SC_THREAD_STACK_DEFAULT,
            "the default stack is %u bytes", SC_THREAD_STACK_DEFAULT);

    struct sc_thread_attr big = {.stack_size = 4u << 20};
    T_CHECK(sc_await(sc_thread_spawn(stack_left_now, NULL, 0, &big), &left) == 0, "4 MiB");
    tr_step("4 MiB stack: %ld bytes left at the start", (long)left);
    T_CHECK(left > (4 << 20) - 8192 && left < (4 << 20), "a 4 MiB stack");

    struct sc_thread_attr odd = {.stack_size = SC_THREAD_STACK_MIN + 100};
    T_CHECK(sc_await(sc_thread_spawn(stack_left_now, NULL, 0, &odd), &left) == 0, "odd size");
    T_CHECK(left > (intptr_t)SC_THREAD_STACK_MIN && left < (intptr_t)SC_THREAD_STACK_MIN + 8192,
            "sizes round up to whole pages (%ld left)", (long)left);

    /* 2 MiB of frames fit in a 4 MiB stack (they would not fit the default) */
    int depth = 2048;
    T_CHECK(sc_await(SC_THREAD_SPAWN(deep, depth, &big), NULL) == 0, "deep recursion");

    struct sc_thread_attr tiny = {.stack_size = 4096}, huge = {.stack_size = (size_t)1 << 31};
    T_CHECK(sc_await(sc_thread_spawn(give, &left, sizeof left, &tiny), NULL) == -EINVAL,
            "a stack below the minimum is refused");
    T_CHECK(sc_await(sc_thread_spawn(give, &left, sizeof left, &huge), NULL) == -EINVAL,
            "a stack above the maximum is refused");
    T_CHECK(sc_await(sc_thread_spawn(NULL, NULL, 0, NULL), NULL) == -EINVAL, "no function");
    static char big_cap[SC_THREAD_STACK_DEFAULT];
    T_CHECK(sc_await(sc_thread_spawn(give, big_cap, sizeof big_cap, NULL), NULL) == -EINVAL,
            "a capture bigger than half the stack is refused");
    return sc_make_ready(0);
}

START_TEST(stack_sizes_and_recursion)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(run_body(stack_body) == 0, "stack test failed");
}
END_TEST

/* ---- running off the stack hits the guard page ---- */

static char *guard_hi; /* the lowest usable byte of the overflowing fiber's stack */

/* The stack pointer of the code the fault interrupted. */
static char *fault_sp(void *uc)
{
#if defined(__x86_64__)
    return (char *)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (char *)((ucontext_t *)uc)->uc_mcontext.sp;
#else
    (void)uc;
    return NULL;
#endif
}

/*
 * Two ways to run into the guard page: a write into it (the fault address is
 * in the page: 42), or a signal (the real world's quota tick) arriving when
 * the stack is nearly full, whose frame the kernel cannot push (it forces a
 * SIGSEGV without an address; the interrupted stack pointer is just above
 * the guard: 45). Anything else is a fault somewhere else: 43.
 */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    char *a = si->si_addr, *sp = fault_sp(uc);
    long page = sysconf(_SC_PAGESIZE);
    if (a < guard_hi && a >= guard_hi - page)
        _exit(42);
    if (si->si_code == SI_KERNEL && sp >= guard_hi - page && sp < guard_hi + 65536)
        _exit(45);
    _exit(43);
}

static struct sc_future overflow(void *cap)
{
    (void)cap;
    guard_hi = (char *)__builtin_frame_address(0) - sc_thread_stack_left();
    /* far more than the stack holds */
    return sc_make_ready((intptr_t)recurse(1 << 20));
}

static struct sc_future overflow_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_thread_spawn(overflow, NULL, 0, NULL);
}

START_TEST(overflow_hits_the_guard_page)
{
    tr_reset();
    backend_i = _i;
    pid_t pid = fork();
    T_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        static char alt[65536];
        stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
        sigaltstack(&ss, NULL);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigaction(SIGSEGV, &sa, NULL);
        t_run(WORLD, overflow_main, NULL);
        _exit(44); /* the recursion finished: it did not overflow */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    tr_step("child status: exited %d code %d, signalled %d", WIFEXITED(status),
            WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status));
    T_CHECK(WIFEXITED(status) && (WEXITSTATUS(status) == 42 || WEXITSTATUS(status) == 45),
            "the overflow must fault at the guard page (42, 45); 43: elsewhere, 44: no fault");
}
END_TEST

/* ---- the quota: a busy fiber that yields lets other tasks and timers run ---- */

static bool other_ran, timer_ran;

static struct sc_future note_other(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    other_ran = true;
    return sc_make_ready(0);
}

static void note_timer(void *arg)
{
    (void)arg;
    timer_ran = true;
}

static struct sc_future busy(void *cap)
{
    (void)cap;
    uint64_t spins = 0;
    while (!(other_ran && timer_ran) && spins < 2000000000ull) {
        spins++;
        sc_thread_yield();
    }
    tr_step("busy fiber: %llu spins; other task ran %d, timer ran %d", (unsigned long long)spins,
            other_ran, timer_ran);
    return sc_make_ready(other_ran && timer_ran ? 0 : 1);
}

static struct sc_future quota_body(void *cap)
{
    (void)cap;
    static struct sc_timer t;
    other_ran = timer_ran = false;
    struct sc_reactor_stats before, after;
    sc_reactor_stats(&before);
    struct sc_future f = sc_thread_spawn(busy, NULL, 0, NULL);
    sc_future_discard(sc_spawn(note_other, NULL, 0)); /* queued behind the busy fiber */
    sc_timer_init(&t, note_timer, NULL);
    sc_timer_arm_in(&t, SC_MS(3));
    intptr_t v = -1;
    T_CHECK(sc_await(f, &v) == 0 && v == 0, "the busy fiber must see the others run");
    sc_reactor_stats(&after);
    T_CHECK(after.preemptions > before.preemptions, "the quota cut the batch short");
    return sc_make_ready(0);
}

START_TEST(yield_lets_others_run)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(run_body(quota_body) == 0, "quota test failed");
}
END_TEST

/* ---- shutdown with fibers still suspended ---- */

static struct sc_promise never; /* set by nobody */

static struct sc_future stuck(void *cap)
{
    (void)cap;
    struct sc_future held = sc_make_error(-ENOTCONN); /* never consumed */
    (void)held;
    sc_promise_init(&never);
    sc_await(sc_promise_get_future(&never), NULL);
    T_CHECK(0, "a fiber stuck at shutdown must never continue");
    return sc_make_ready(0);
}

static struct sc_future stuck_remote(void *cap)
{
    (void)cap;
    sc_await(sc_sleep(SC_SEC(3600)), NULL);
    T_CHECK(0, "a fiber stuck at shutdown must never continue");
    return sc_make_ready(0);
}

static struct sc_future start_stuck_remote(void *cap)
{
    (void)cap;
    sc_future_ignore(sc_thread_spawn(stuck_remote, NULL, 0, NULL));
    return sc_make_ready(0);
}

static struct sc_future then_yield(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_yield();
}

static struct sc_future shutdown_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    sc_future_ignore(sc_thread_spawn(stuck, NULL, 0, NULL));
    struct sc_future f = sc_smp_submit_to(1, start_stuck_remote, NULL, 0);
    /* give both fibers time to reach their waits, then end the run */
    return sc_then(f, then_yield, NULL, 0);
}

START_TEST(shutdown_frees_suspended_fibers)
{
    tr_reset();
    backend_i = _i;
    struct sc_config cfg = t_config(WORLD);
    cfg.smp = 2;
    struct sc_run_result res;
    int rc = sc_run_ex(&cfg, shutdown_main, NULL, 0, NULL, &res);
    tr_step("run with two suspended fibers: exit %d, unhandled errors %llu", rc,
            (unsigned long long)res.unhandled_errors);
    T_CHECK(rc == 0, "the run ends normally");
    T_CHECK(res.unhandled_errors == 1, "the stuck fiber's unconsumed error is reported");
}
END_TEST

/* ---- await outside a fiber is a programming error ---- */

static struct sc_future await_in_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    sc_await(sc_make_ready(0), NULL);
    return sc_make_ready(0);
}

START_TEST(await_outside_a_fiber_asserts)
{
    backend_i = _i;
    t_run(WORLD, await_in_main, NULL);
}
END_TEST

/* ---- a fiber keeps its scheduling group, whoever wakes it ---- */

struct group_story {
    struct sc_sched_group g;
    struct sc_promise p;
};

static struct sc_future grandchild_fiber(void *cap)
{
    struct group_story *gs = *(struct group_story **)cap;
    T_CHECK(sc_sched_group_equal(sc_sched_group_current(), gs->g),
            "a fiber spawned without a group should inherit its spawner's (group %u), runs in %u",
            gs->g.id, sc_sched_group_current().id);
    return sc_make_ready(5);
}

static struct sc_future grouped_fiber(void *cap)
{
    struct group_story *gs = *(struct group_story **)cap;
    T_CHECK(sc_sched_group_equal(sc_sched_group_current(), gs->g),
            "a fiber spawned with attr.group should start in it (%u), runs in %u", gs->g.id,
            sc_sched_group_current().id);
    intptr_t v = 0;
    int rc = sc_await(sc_promise_get_future(&gs->p), &v);
    tr_step("the grouped fiber woke (value %ld) in group %u", (long)v, sc_sched_group_current().id);
    T_CHECK(rc == 0 && v == 3, "await: rc %d value %ld", rc, (long)v);
    T_CHECK(sc_sched_group_equal(sc_sched_group_current(), gs->g),
            "woken by code of group main, the fiber should still run in its group %u, not %u",
            gs->g.id, sc_sched_group_current().id);
    intptr_t w = 0;
    rc = sc_await(SC_THREAD_SPAWN(grandchild_fiber, gs, NULL), &w);
    T_CHECK(rc == 0 && w == 5, "grandchild: rc %d value %ld", rc, (long)w);
    return sc_make_ready(7);
}

static struct sc_future group_body(void *cap)
{
    (void)cap;
    static struct group_story gs;
    struct group_story *gp = &gs;
    int rc = sc_sched_group_create("fibers", 200, &gs.g);
    T_CHECK(rc == 0, "creating a group: %d", rc);
    sc_promise_init(&gs.p);
    struct sc_thread_attr attr = {.group = &gs.g};
    struct sc_future child = SC_THREAD_SPAWN(grouped_fiber, gp, &attr);
    T_CHECK(sc_sched_group_equal(sc_sched_group_current(), sc_sched_group_main()),
            "the test body runs in main");
    sc_await(sc_sleep(SC_MS(1)), NULL);
    sc_promise_set_value(&gs.p, 3); /* woken from group main */
    intptr_t v = 0;
    rc = sc_await(child, &v);
    T_CHECK(rc == 0 && v == 7, "the grouped fiber's result: rc %d value %ld", rc, (long)v);
    struct sc_sched_group bogus = {SC_SCHED_MAX_GROUPS + 3};
    struct sc_thread_attr bad = {.group = &bogus};
    rc = sc_await(SC_THREAD_SPAWN(grandchild_fiber, gp, &bad), NULL);
    T_CHECK(rc == -EINVAL, "spawning into a group that does not exist: %d, expected -EINVAL", rc);
    return sc_make_ready(0);
}

START_TEST(fibers_keep_their_group)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(run_body(group_body) == 0, "the run failed");
}
END_TEST

/* ---- the simulator: same seed, same run ---- */

#define DET_FIBERS 12
static uint64_t det_log;

static struct sc_future det_worker(void *cap)
{
    int id = *(int *)cap;
    for (int i = 0; i < 6; i++) {
        int r = (int)sc_random_below(4);
        intptr_t v = 0;
        if (r == 0)
            sc_await(sc_sleep(SC_US(sc_random_below(50))), NULL);
        else if (r == 1)
            sc_await(sc_yield(), NULL);
        else if (r == 2)
            sc_await(SC_SUBMIT_TO(1, shard_id_plus, v), &v);
        else
            sc_thread_yield();
        det_log = det_log * 31 + (uint64_t)(id * 16 + i) + (uint64_t)v;
    }
    return sc_make_ready(id);
}

static struct sc_future det_body(void *cap)
{
    (void)cap;
    struct sc_future fs[DET_FIBERS];
    for (int i = 0; i < DET_FIBERS; i++)
        fs[i] = SC_THREAD_SPAWN(det_worker, i, NULL);
    return sc_when_all_succeed(fs, DET_FIBERS);
}

START_TEST(same_seed_same_trace)
{
    tr_reset();
    backend_i = 0;
    uint64_t hashes[3], logs[3];
    uint64_t seeds[3] = {5, 5, 6};
    for (int k = 0; k < 3; k++) {
        struct sc_config cfg = t_config(SC_BACKEND_SIM);
        cfg.smp = 2;
        cfg.seed = seeds[k];
        cfg.sim_defer_ready_pct = cfg.sim_shuffle_pct = cfg.sim_preempt_pct = 20;
        struct sc_run_result res;
        det_log = 0;
        T_CHECK(run_cfg(&cfg, det_body, &res) == 0, "the run must succeed");
        hashes[k] = res.trace_hash;
        logs[k] = det_log;
        tr_step("seed %llu: trace %016llx log %016llx", (unsigned long long)seeds[k],
                (unsigned long long)hashes[k], (unsigned long long)logs[k]);
    }
    T_CHECK(hashes[0] == hashes[1] && logs[0] == logs[1], "same seed, same trace and order");
    T_CHECK(hashes[0] != hashes[2], "another seed, another trace");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("thread");
    TCase *tc = tcase_create("fibers");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, results_and_errors, 0, 2);
    tcase_add_loop_test(tc, future_of_fiber_in_a_chain, 0, 2);
    tcase_add_loop_test(tc, await_ready_pending_failed, 0, 2);
    tcase_add_loop_test(tc, fibers_interleave_in_order, 0, 2);
    tcase_add_loop_test(tc, nested_fibers, 0, 2);
    tcase_add_loop_test(tc, cross_shard_await, 0, 2);
    tcase_add_loop_test(tc, stack_sizes_and_recursion, 0, 2);
    tcase_add_loop_test(tc, overflow_hits_the_guard_page, 0, 2);
    tcase_add_loop_test(tc, yield_lets_others_run, 0, 2);
    tcase_add_loop_test(tc, shutdown_frees_suspended_fibers, 0, 2);
    tcase_add_loop_test_raise_signal(tc, await_outside_a_fiber_asserts, SIGABRT, 0, 2);
    tcase_add_loop_test(tc, fibers_keep_their_group, 0, 2);
    tcase_add_test(tc, same_seed_same_trace);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
