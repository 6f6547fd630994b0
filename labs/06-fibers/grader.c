/*
 * grader.c — lab 06: the context switch and await (core/switch_x86_64.S,
 * core/fiber_switch.c).
 *
 * Every check runs its story as a fiber on shard 0 of a fresh run, in the
 * simulator and on the real machine:
 *
 *   - a fiber runs and returns a value; its future carries it out;
 *   - sc_await on a ready future returns at once, without a switch; on a
 *     pending one it suspends the fiber and returns the value, or the error,
 *     the future resolved with;
 *   - several fibers take turns in the order their wake-ups were queued;
 *   - the registers the ABI says a call preserves survive a switch, while
 *     other fibers run in between;
 *   - a fiber's stack is 16-byte aligned where the ABI wants it;
 *   - a fiber awaits a call to another shard;
 *   - a fiber that yields lets a timer and another task run.
 *
 * Each check tells its story with tr_step; a failing T_CHECK prints the last
 * steps. Nothing here is random.
 */
#include <stdio.h>
#include <string.h>

#include "core/loop.h"
#include "core/smp.h"
#include "core/thread.h"
#include "tests/harness.h"

static int world;

static struct sc_future body_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    sc_thread_fn fn = *(sc_thread_fn *)arg;
    return sc_thread_spawn(fn, NULL, 0, NULL);
}

/* Run fn as a fiber on shard 0 of a run with `smp` shards; the fiber's value
 * is the run's exit code. */
static int run_fiber(sc_thread_fn fn, unsigned smp)
{
    struct sc_config cfg = t_config(t_backends[world]);
    cfg.smp = smp;
    tr_step("run the story as a fiber, on the %s world (%u shard(s))", t_backend_names[world], smp);
    return sc_run(&cfg, body_main, &fn, 0, NULL);
}

static uint64_t switches(void)
{
    struct sc_thread_stats st;
    sc_thread_stats(&st);
    return st.switches;
}

/* ---- 1. a fiber returns a value ------------------------------------------ */

static struct sc_future returns_41(void *cap)
{
    (void)cap;
    return sc_make_ready(41);
}

static struct sc_future value_story(void *cap)
{
    (void)cap;
    T_CHECK(sc_thread_running(), "the story should run inside a fiber");
    intptr_t v = 0;
    int rc = sc_await(sc_thread_spawn(returns_41, NULL, 0, NULL), &v);
    tr_step("spawned a fiber returning 41; sc_await -> rc %d, value %ld", rc, (long)v);
    T_CHECK(rc == 0 && v == 41,
            "awaiting a fiber that returns 41 should give rc 0 and 41, not rc %d and %ld "
            "(a fiber's first switch must reach its function; awaiting a pending future must "
            "suspend and resume)",
            rc, (long)v);
    return sc_make_ready(0);
}

START_TEST(fiber_returns_a_value)
{
    tr_reset();
    world = _i;
    int rc = run_fiber(value_story, 1);
    T_CHECK(rc == 0, "the run's exit code should be 0, not %d", rc);
}
END_TEST

/* ---- 2. await: ready, pending, failed -------------------------------------- */

struct later {
    struct sc_promise p;
    intptr_t value;
    int err;
    struct sc_timer t;
};

static void later_fire(void *arg)
{
    struct later *l = arg;
    if (l->err)
        sc_promise_set_error(&l->p, l->err);
    else
        sc_promise_set_value(&l->p, l->value);
}

/* A future that a timer resolves 1 ms from now. */
static struct sc_future resolve_later(struct later *l, intptr_t value, int err)
{
    l->value = value;
    l->err = err;
    sc_promise_init(&l->p);
    sc_timer_init(&l->t, later_fire, l);
    sc_timer_arm_in(&l->t, SC_MS(1));
    return sc_promise_get_future(&l->p);
}

static struct sc_future await_story(void *cap)
{
    (void)cap;
    intptr_t v = 0;
    uint64_t s0 = switches();
    int rc = sc_await(sc_make_ready(7), &v);
    uint64_t s1 = switches();
    tr_step("sc_await(ready 7) -> rc %d, value %ld, %llu switch(es)", rc, (long)v,
            (unsigned long long)(s1 - s0));
    T_CHECK(rc == 0 && v == 7, "sc_await on a ready 7 should give 7 (rc %d, value %ld)", rc,
            (long)v);
    T_CHECK(s1 == s0, "sc_await on a ready future must not switch (it switched %llu times)",
            (unsigned long long)(s1 - s0));

    static struct later a, b;
    v = 0;
    rc = sc_await(resolve_later(&a, 99, 0), &v);
    uint64_t s2 = switches();
    tr_step("sc_await(a timer sets 99 in 1 ms) -> rc %d, value %ld, %llu switch(es)", rc, (long)v,
            (unsigned long long)(s2 - s1));
    T_CHECK(rc == 0 && v == 99, "awaiting a future resolved later with 99 gave rc %d, value %ld",
            rc, (long)v);
    T_CHECK(s2 - s1 == 2,
            "awaiting one pending future should leave the fiber once and enter it once (2 "
            "switches), not %llu",
            (unsigned long long)(s2 - s1));

    rc = sc_await(resolve_later(&b, 0, -EIO), &v);
    tr_step("sc_await(a timer fails it with -EIO in 1 ms) -> rc %d", rc);
    T_CHECK(rc == -EIO, "awaiting a future that fails with -EIO should return -EIO, not %d", rc);

    rc = sc_await(sc_make_error(-EPIPE), &v);
    tr_step("sc_await(failed -EPIPE) -> rc %d", rc);
    T_CHECK(rc == -EPIPE, "awaiting a failed future should return its error -EPIPE, not %d", rc);
    return sc_make_ready(0);
}

START_TEST(await_ready_pending_failed)
{
    tr_reset();
    world = _i;
    int rc = run_fiber(await_story, 1);
    T_CHECK(rc == 0, "the run's exit code should be 0, not %d", rc);
}
END_TEST

/* ---- 3. fibers take turns ---------------------------------------------------- */

static char order[64];

static struct sc_future turn_taker(void *cap)
{
    char name = *(char *)cap;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(order);
        if (n + 1 < sizeof order)
            order[n] = name;
        sc_await(sc_yield(), NULL);
    }
    return sc_make_ready(0);
}

static struct sc_future turns_story(void *cap)
{
    (void)cap;
    memset(order, 0, sizeof order);
    struct sc_future f[3];
    for (int i = 0; i < 3; i++) {
        char name = (char)('A' + i);
        f[i] = sc_thread_spawn(turn_taker, &name, 1, NULL);
    }
    for (int i = 0; i < 3; i++) {
        int rc = sc_await(f[i], NULL);
        T_CHECK(rc == 0, "fiber %c failed: %d", 'A' + i, rc);
    }
    tr_step("three fibers, each: note its name, await sc_yield(), three times -> %s", order);
    T_CHECK(strcmp(order, "ABCABCABC") == 0,
            "the fibers should take turns in the order they were woken (ABCABCABC), got %s", order);
    return sc_make_ready(0);
}

START_TEST(fibers_take_turns)
{
    tr_reset();
    world = _i;
    int rc = run_fiber(turns_story, 1);
    T_CHECK(rc == 0, "the run's exit code should be 0, not %d", rc);
}
END_TEST

/* ---- 4. callee-saved registers survive ------------------------------------------ */

static volatile uint64_t seed_in = 0x1234567;

/* Many values alive across sc_await: the compiler keeps them in the
 * registers a call preserves (rbx, rbp, r12-r15) or on the stack. */
static uint64_t busy_values(uint64_t k, bool wait)
{
    uint64_t a = seed_in * k, b = a ^ 0x9E3779B97F4A7C15ull, c = a + 17, d = b * 3, e = c ^ d,
             f = a * 5 + 1, g = b >> 3, h = c << 2, i = d + e, j = f ^ g;
    if (wait)
        sc_await(sc_yield(), NULL);
    else
        __asm__ volatile("" ::: "memory");
    return a + 3 * b + 5 * c + 7 * d + 11 * e + 13 * f + 17 * g + 19 * h + 23 * i + 29 * j;
}

static struct sc_future clobberer(void *cap)
{
    (void)cap;
    for (int k = 0; k < 20; k++) {
        /* fill callee-saved registers with garbage, then leave */
#if defined(__x86_64__)
        __asm__ volatile("movq $-1, %%rbx\n\tmovq $-2, %%r12\n\tmovq $-3, %%r13\n\t"
                         "movq $-4, %%r14\n\tmovq $-5, %%r15"
                         :
                         :
                         : "rbx", "r12", "r13", "r14", "r15");
#endif
        sc_await(sc_yield(), NULL);
    }
    return sc_make_ready(0);
}

static struct sc_future regs_story(void *cap)
{
    (void)cap;
    struct sc_future other = sc_thread_spawn(clobberer, NULL, 0, NULL);
    int bad = 0;
    for (uint64_t k = 1; k <= 10; k++) {
        uint64_t want = busy_values(k, false), got = busy_values(k, true);
        if (want != got)
            bad++;
    }
    tr_step("10 computations with 10 live values across sc_await, while another fiber clobbers "
            "rbx and r12-r15: %d came out wrong",
            bad);
    T_CHECK(bad == 0,
            "%d of 10 results changed across a switch: the switch must save and restore rbx, rbp "
            "and r12-r15 (and the stack pointer)",
            bad);
    sc_await(other, NULL);
    return sc_make_ready(0);
}

START_TEST(callee_saved_registers_survive)
{
    tr_reset();
    world = _i;
    int rc = run_fiber(regs_story, 1);
    T_CHECK(rc == 0, "the run's exit code should be 0, not %d", rc);
}
END_TEST

/* ---- 5. stack alignment --------------------------------------------------------- */

static __attribute__((noinline)) uintptr_t aligned_local(void)
{
    _Alignas(16) volatile char buf[16];
    buf[0] = 1;
    return (uintptr_t)buf;
}

static struct sc_future align_story(void *cap)
{
    (void)cap;
    uintptr_t at = aligned_local();
    char text[64];
    volatile double x = 1.5;
    snprintf(text, sizeof text, "%.2f %.2f", x, x * 2);
    tr_step("a 16-aligned local at %#lx; printf of doubles: %s", (unsigned long)at, text);
    T_CHECK((at & 15) == 0,
            "a local declared _Alignas(16) sits at %#lx: the fiber's stack is not 16-byte "
            "aligned at calls",
            (unsigned long)at);
    T_CHECK(strcmp(text, "1.50 3.00") == 0, "printf of doubles in a fiber gave '%s'", text);
    sc_await(sc_yield(), NULL);
    at = aligned_local();
    T_CHECK((at & 15) == 0, "after a switch, a 16-aligned local sits at %#lx", (unsigned long)at);
    return sc_make_ready(0);
}

START_TEST(stack_is_aligned)
{
    tr_reset();
    world = _i;
    int rc = run_fiber(align_story, 1);
    T_CHECK(rc == 0, "the run's exit code should be 0, not %d", rc);
}
END_TEST

/* ---- 6. awaiting another shard ------------------------------------------------ */

static struct sc_future on_shard_1(void *cap)
{
    intptr_t x = *(intptr_t *)cap;
    return sc_make_ready(x * 10 + (intptr_t)sc_this_shard());
}

static struct sc_future cross_story(void *cap)
{
    (void)cap;
    intptr_t sum = 0;
    for (intptr_t x = 1; x <= 5; x++) {
        intptr_t v = 0;
        int rc = sc_await(sc_smp_submit_to(1, on_shard_1, &x, sizeof x), &v);
        T_CHECK(rc == 0 && v == x * 10 + 1, "submit_to(shard 1, %ld*10 + shard) gave rc %d, %ld",
                (long)x, rc, (long)v);
        sum += v;
    }
    tr_step("5 calls to shard 1, each awaited: sum %ld", (long)sum);
    T_CHECK(sum == 155, "the five answers should add up to 155, not %ld", (long)sum);
    return sc_make_ready(0);
}

START_TEST(await_another_shard)
{
    tr_reset();
    world = _i;
    int rc = run_fiber(cross_story, 2);
    T_CHECK(rc == 0, "the run's exit code should be 0, not %d", rc);
}
END_TEST

/* ---- 7. a yielding fiber lets others run ------------------------------------- */

static volatile bool timer_fired;

static void set_flag(void *arg)
{
    (void)arg;
    timer_fired = true;
}

static struct sc_future yield_story(void *cap)
{
    (void)cap;
    static struct sc_timer t;
    timer_fired = false;
    sc_timer_init(&t, set_flag, NULL);
    sc_timer_arm_in(&t, SC_MS(2));
    uint64_t spins = 0;
    while (!timer_fired && spins < 2000000000ull) {
        spins++;
        sc_thread_yield(); /* switches out only when the quota is spent */
    }
    tr_step("a fiber spun with sc_thread_yield() until a 2 ms timer fired: %llu spins, fired %d",
            (unsigned long long)spins, (int)timer_fired);
    T_CHECK(timer_fired,
            "the timer never fired while the fiber spun: sc_thread_yield must leave the fiber "
            "when the quota is spent, so the reactor runs");
    return sc_make_ready(0);
}

START_TEST(yield_lets_the_reactor_run)
{
    tr_reset();
    world = _i;
    int rc = run_fiber(yield_story, 1);
    T_CHECK(rc == 0, "the run's exit code should be 0, not %d", rc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lab 06: the context switch and await");
    TCase *tc = tcase_create("fibers");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, fiber_returns_a_value, 0, 2);
    tcase_add_loop_test(tc, await_ready_pending_failed, 0, 2);
    tcase_add_loop_test(tc, fibers_take_turns, 0, 2);
    tcase_add_loop_test(tc, callee_saved_registers_survive, 0, 2);
    tcase_add_loop_test(tc, stack_is_aligned, 0, 2);
    tcase_add_loop_test(tc, await_another_shard, 0, 2);
    tcase_add_loop_test(tc, yield_lets_the_reactor_run, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
