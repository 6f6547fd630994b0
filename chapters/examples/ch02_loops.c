/*
 * ch02_loops.c — chapter 2: loops and combinators over futures.
 *
 *   make build/bin/ch02_loops && build/bin/ch02_loops [--backend sim|real]
 *
 * Five short demonstrations, run one after the other:
 *   1. sc_repeat() with a body that is always ready: a million iterations,
 *      no stack growth, and the loop yields whenever the task quota is spent;
 *   2. sc_do_until() with a body that waits: a small work queue drained;
 *   3. sc_parallel_for_each(): five "requests" of different lengths at once;
 *   4. sc_when_all() and sc_when_all_succeed() over a mix of outcomes;
 *   5. sc_map_reduce(): a sum of squares, some mapped values arriving later.
 * Exit status 0 if everything happened as described, 1 otherwise.
 */
#include <stdio.h>

#include "core/seacore.h"

static int failures;
static uint64_t t_start; /* sc_now() at the start of the current demonstration */

static void expect(bool ok, const char *what)
{
    printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
    if (!ok)
        failures++;
}

static double ms_since(uint64_t t)
{
    return (double)(sc_now() - t) / 1e6;
}

static uint64_t preemptions(void)
{
    struct sc_reactor_stats st;
    sc_reactor_stats(&st);
    return st.preemptions;
}

/* What the loops report back. The loops copy their captured state, so a
 * counter inside the capture would be invisible to us afterwards: the
 * captures hold a pointer to this, which the caller keeps alive. */
static struct {
    uint64_t count;
    uint64_t preemptions_before;
    int order[5];
    int finished;
} out;

/* ---- 1. repeat, always ready ------------------------------------------- */

struct count_cap {
    uint64_t i, n;
};

static struct sc_future count_body(void *cap)
{
    struct count_cap *c = cap;
    if (c->i == c->n)
        return sc_make_ready(SC_STOP);
    c->i++;
    out.count = c->i;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future repeat_demo(void)
{
    printf("1. sc_repeat(), a body that is always ready, 1000000 times\n");
    out.preemptions_before = preemptions();
    t_start = sc_now();
    struct count_cap c = {.i = 0, .n = 1000000};
    return sc_repeat(count_body, &c, sizeof c);
}

/* ---- 2. do_until, a body that waits ------------------------------------- */

struct queue_cap {
    int next, len;
};

static bool queue_empty(void *cap)
{
    const struct queue_cap *q = cap;
    return q->next == q->len;
}

static struct sc_future report_item(void *cap, intptr_t value)
{
    intptr_t item = *(const intptr_t *)cap;
    (void)value;
    printf("  item %ld done at t=%.3f ms\n", (long)item, ms_since(t_start));
    out.count++;
    return sc_make_ready(0);
}

/* One item of work: takes 1 ms, then reports. */
static struct sc_future process_next(void *cap)
{
    struct queue_cap *q = cap;
    intptr_t item = q->next++;
    return sc_then(sc_sleep(SC_MS(1)), report_item, &item, sizeof item);
}

static struct sc_future until_demo(void *cap, intptr_t value)
{
    (void)cap;
    uint64_t yields = preemptions() - out.preemptions_before;
    printf("  counted to %llu in %.3f ms; the loop gave way %llu times at the quota\n",
           (unsigned long long)out.count, ms_since(t_start), (unsigned long long)yields);
    expect(value == 0 && out.count == 1000000, "the loop stopped when the body said SC_STOP");
    if (sc_is_simulated())
        expect(yields > 0, "a loop that never waits still yields at the task quota");

    printf("2. sc_do_until(), a body that waits: drain a queue of 4 items\n");
    out.count = 0;
    t_start = sc_now();
    struct queue_cap q = {.next = 0, .len = 4};
    return sc_do_until(queue_empty, process_next, &q, sizeof q);
}

/* ---- 3. parallel_for_each ---------------------------------------------- */

static const unsigned request_ms[5] = {50, 10, 40, 20, 30};

static struct sc_future request_done(void *cap, intptr_t value)
{
    size_t i = *(const size_t *)cap;
    printf("  request %zu (%u ms) done at t=%.3f ms\n", i, request_ms[i], ms_since(t_start));
    out.order[out.finished++] = (int)i;
    return sc_make_ready(value);
}

static struct sc_future start_request(void *cap, size_t i)
{
    (void)cap;
    return sc_then(sc_sleep(SC_MS(request_ms[i])), request_done, &i, sizeof i);
}

static struct sc_future parallel_demo(void *cap, intptr_t value)
{
    (void)cap;
    expect(value == 0 && out.count == 4, "the body ran until the condition said stop");
    printf("3. sc_parallel_for_each(): five requests of 50, 10, 40, 20, 30 ms\n");
    t_start = sc_now();
    return sc_parallel_for_each(5, start_request, NULL, 0);
}

/* ---- 4. when_all and when_all_succeed --------------------------------- */

static struct sc_future value_after(void *cap, intptr_t ignored)
{
    (void)ignored;
    return sc_make_ready(*(const intptr_t *)cap);
}

static struct sc_future fail_after(void *cap, intptr_t ignored)
{
    (void)ignored;
    return sc_make_error((int)*(const intptr_t *)cap);
}

/* Three outcomes: 10 after 3 ms, -EIO after 1 ms, 30 at once. */
static void make_three(struct sc_future fs[3])
{
    intptr_t ten = 10, eio = -EIO, thirty = 30;
    fs[0] = sc_then(sc_sleep(SC_MS(3)), value_after, &ten, sizeof ten);
    fs[1] = sc_then(sc_sleep(SC_MS(1)), fail_after, &eio, sizeof eio);
    fs[2] = sc_make_ready(thirty);
}

/* sc_when_all() writes the outcomes into the array when it resolves: the
 * array must live until then, so not on the stack of the function that
 * returns the future. */
static struct sc_future three[3];

static struct sc_future when_all_succeed_demo(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    intptr_t v[3];
    int err[3];
    for (int i = 0; i < 3; i++) {
        v[i] = 0;
        err[i] = sc_future_get(three[i], &v[i]);
        printf("  when_all: future %d -> %s %ld\n", i, err[i] ? "error" : "value",
               (long)(err[i] ? err[i] : v[i]));
    }
    expect(v[0] == 10 && err[1] == -EIO && v[2] == 30,
           "sc_when_all() waited for all three and kept each outcome");
    make_three(three);
    return sc_when_all_succeed(three, 3);
}

static struct sc_future when_all_demo(void *cap, intptr_t value)
{
    (void)cap;
    double took = ms_since(t_start);
    printf("  all five done after %.3f ms (one after another would take 150 ms)\n", took);
    int expected[5] = {1, 3, 4, 2, 0};
    bool in_order = value == 0 && out.finished == 5;
    for (int i = 0; in_order && i < 5; i++)
        in_order = out.order[i] == expected[i];
    expect(in_order, "they finished shortest first: they ran at the same time");
    expect(took < 150, "the whole took about as long as the longest, not the sum");

    printf("4. sc_when_all() and sc_when_all_succeed() over 10 (3 ms), -EIO (1 ms), 30\n");
    make_three(three);
    return sc_when_all(three, 3);
}

/* ---- 5. map_reduce ----------------------------------------------------- */

static struct sc_future square(void *cap, size_t i)
{
    (void)cap;
    intptr_t x = (intptr_t)i + 1;
    if (x % 2 == 0)
        return sc_make_ready(x * x); /* known at once */
    intptr_t sq = x * x;             /* odd ones "come from far away" */
    return sc_then(sc_sleep(SC_MS(x)), value_after, &sq, sizeof sq);
}

static intptr_t add(void *cap, intptr_t acc, intptr_t value)
{
    (void)cap;
    return acc + value;
}

static struct sc_future map_reduce_demo(void *cap, intptr_t value)
{
    (void)cap;
    /* The combined future failed: its value is not there, and the first
     * error is the whole answer. handle_error turned it into a number. */
    printf("  when_all_succeed -> %ld (%s)\n", (long)value, sc_strerror((int)value));
    expect(value == -EIO, "sc_when_all_succeed() failed with the first error");

    printf("5. sc_map_reduce(): 1^2 + 2^2 + ... + 10^2, odd squares arrive later\n");
    return sc_map_reduce(10, square, add, 0, NULL, 0);
}

static struct sc_future error_as_value(void *cap, int err)
{
    (void)cap;
    return sc_make_ready(err);
}

static struct sc_future finish(void *cap, intptr_t sum)
{
    (void)cap;
    printf("  sum = %ld\n", (long)sum);
    expect(sum == 385, "every mapped value was folded in exactly once");
    printf("ch02_loops: %s\n", failures ? "SOMETHING WENT WRONG" : "all as described");
    return sc_make_ready(failures ? 1 : 0);
}

static struct sc_future loops_main(void *arg, int argc, char **argv)
{
    (void)arg;
    (void)argc;
    (void)argv;
    struct sc_future f = repeat_demo();
    f = sc_then(f, until_demo, NULL, 0);
    f = sc_then(f, parallel_demo, NULL, 0);
    f = sc_then(f, when_all_demo, NULL, 0);
    f = sc_then(f, when_all_succeed_demo, NULL, 0);
    f = sc_handle_error(f, error_as_value, NULL, 0);
    f = sc_then(f, map_reduce_demo, NULL, 0);
    return sc_then(f, finish, NULL, 0);
}

int main(int argc, char **argv)
{
    return sc_app_run(argc, argv, loops_main);
}
