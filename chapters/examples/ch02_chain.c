/*
 * ch02_chain.c — chapter 2: chaining continuations and capturing by value.
 *
 *   make build/bin/ch02_chain && build/bin/ch02_chain [--backend sim|real]
 *
 * Four short demonstrations, run one after the other:
 *   1. sc_then() on a ready future runs the continuation at once;
 *   2. on a pending future the captured state is copied, so changing the
 *      caller's variable afterwards changes nothing the continuation sees;
 *   3. a chain of continuations, one of which waits again (the chain flattens);
 *   4. ownership: a heap object handed down a chain and freed by its last
 *      step, and a reference-counted object shared by two chains.
 * Exit status 0 if everything happened as described, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/seacore.h"

static int failures;
static uint64_t t0; /* sc_now() when the app started (the real clock does not start at 0) */

static void expect(bool ok, const char *what)
{
    printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
    if (!ok)
        failures++;
}

/* ---- a pretend asynchronous source ------------------------------------- */

struct later_cap {
    intptr_t value;
};

static struct sc_future deliver(void *cap, intptr_t ignored)
{
    (void)ignored;
    const struct later_cap *c = cap;
    return sc_make_ready(c->value);
}

/* Stands in for a read from a disk or a socket: @p value arrives @p ms later.
 * `c` lives on this function's stack and is gone when fetch_later() returns,
 * long before deliver() runs: sc_then() keeps its own copy. */
static struct sc_future fetch_later(intptr_t value, unsigned ms)
{
    struct later_cap c = {.value = value};
    return SC_THEN(sc_sleep(SC_MS(ms)), deliver, c);
}

/* ---- 1. the ready fast path --------------------------------------------- */

struct add_cap {
    intptr_t n;
};

static struct sc_future add_n(void *cap, intptr_t value)
{
    const struct add_cap *c = cap;
    return sc_make_ready(value + c->n);
}

static struct sc_future ready_path(void)
{
    printf("1. sc_then() on a ready future\n");
    struct add_cap one = {.n = 1};
    struct sc_future f = SC_THEN(sc_make_ready(41), add_n, one);
    /* No task ran in between: if f is available, add_n() ran inside sc_then(). */
    printf("  sc_then() returned a future that is %s\n",
           sc_future_available(f)
               ? "already available: add_n() ran inside sc_then()"
               : "pending: add_n() was queued (quota spent, or --sim-defer-ready)");
    return f;
}

/* ---- 2. capture by value ------------------------------------------------ */

struct greet_cap {
    char who[16];
    int times;
};

static struct sc_future greet(void *cap, intptr_t value)
{
    const struct greet_cap *c = cap;
    printf("  continuation sees who=\"%s\" times=%d (value %ld)\n", c->who, c->times, (long)value);
    return sc_make_ready(strcmp(c->who, "first") == 0 && c->times == 3);
}

static struct sc_future capture_by_value(void *cap, intptr_t sum)
{
    (void)cap;
    printf("  41 + 1 = %ld\n", (long)sum);
    expect(sum == 42, "the continuation ran and its value became the result");
    printf("2. capture by value on a pending future\n");
    struct greet_cap g = {.who = "first", .times = 3};
    struct sc_future f = SC_THEN(fetch_later(7, 1), greet, g);
    /* sc_then() has copied g; these changes are to the caller's g only. */
    strcpy(g.who, "changed");
    g.times = 99;
    printf("  caller changed its copy to who=\"%s\" times=%d after sc_then()\n", g.who, g.times);
    return f;
}

/* ---- 3. a chain ---------------------------------------------------------- */

static struct sc_future twice(void *cap, intptr_t value)
{
    (void)cap;
    return sc_make_ready(2 * value);
}

/* A continuation that waits again: it returns a pending future, and the
 * future sc_then() gave out resolves when that one does. */
static struct sc_future add_later(void *cap, intptr_t value)
{
    const struct add_cap *c = cap;
    return fetch_later(value + c->n, 2);
}

static struct sc_future report_chain(void *cap, intptr_t value)
{
    (void)cap;
    printf("  (5 + 10) * 2 + 100 = %ld, at t=%.3f ms\n", (long)value,
           (double)(sc_now() - t0) / 1e6);
    return sc_make_ready(value == 130);
}

static struct sc_future chain(void *cap, intptr_t copied_ok)
{
    (void)cap;
    expect(copied_ok, "the continuation saw the state as it was when sc_then() was called");
    printf("3. a chain: fetch 5, add 10, double, add 100 after another wait\n");
    struct add_cap ten = {.n = 10}, hundred = {.n = 100};
    struct sc_future f = fetch_later(5, 1);
    f = SC_THEN(f, add_n, ten);
    f = sc_then(f, twice, NULL, 0);
    f = SC_THEN(f, add_later, hundred);
    return sc_then(f, report_chain, NULL, 0);
}

/* ---- 4. ownership ------------------------------------------------------- */

static int live_objects; /* heap objects made by this file and not yet freed */

struct request {
    int id;
    char reply[32];
};

/* The capture holds a pointer: the pointer is copied, the request is not. */
struct own_cap {
    struct request *req;
};

static struct sc_future answer(void *cap, intptr_t value)
{
    const struct own_cap *c = cap;
    snprintf(c->req->reply, sizeof c->req->reply, "reply to #%d: %ld", c->req->id, (long)value);
    return sc_make_ready(value);
}

/* The last step owns the request: it uses it one more time and frees it. */
static struct sc_future send_and_free(void *cap, intptr_t value)
{
    const struct own_cap *c = cap;
    printf("  last step sends \"%s\" and frees the request\n", c->req->reply);
    free(c->req);
    live_objects--;
    return sc_make_ready(value);
}

/* A buffer two chains share: each holds one reference; the last one frees it.
 * One shard, one thread: a plain int is enough, no atomics. */
struct shared_buf {
    int refs;
    char text[32];
};

struct ref_cap {
    struct shared_buf *buf;
    const char *who;
};

static struct sc_future drop_ref(void *cap, intptr_t value)
{
    const struct ref_cap *c = cap;
    printf("  %s reads \"%s\" and drops its reference (%d left)\n", c->who, c->buf->text,
           c->buf->refs - 1);
    if (--c->buf->refs == 0) {
        printf("  %s was the last holder: it frees the buffer\n", c->who);
        free(c->buf);
        live_objects--;
    }
    return sc_make_ready(value);
}

static struct sc_future ownership(void *cap, intptr_t chain_ok)
{
    (void)cap;
    expect(chain_ok, "every step ran in order, including the one that waited again");
    printf("4. ownership: passed down a chain, then shared by reference count\n");

    struct own_cap oc = {.req = malloc(sizeof(struct request))};
    if (!oc.req)
        return sc_make_error(-ENOMEM);
    live_objects++;
    oc.req->id = 17;
    struct sc_future f = fetch_later(4200, 1);
    f = SC_THEN(f, answer, oc);
    f = SC_THEN(f, send_and_free, oc);

    struct shared_buf *buf = malloc(sizeof *buf);
    if (!buf) {
        sc_future_ignore(f);
        return sc_make_error(-ENOMEM);
    }
    live_objects++;
    buf->refs = 2;
    snprintf(buf->text, sizeof buf->text, "shared data");
    struct ref_cap a = {.buf = buf, .who = "chain A (2 ms)"};
    struct ref_cap b = {.buf = buf, .who = "chain B (1 ms)"};
    /* A static array: sc_when_all_succeed() needs it only during the call,
     * but it is a good habit for arrays of futures (sc_when_all keeps it). */
    static struct sc_future both[3];
    both[0] = f;
    both[1] = SC_THEN(sc_sleep(SC_MS(2)), drop_ref, a);
    both[2] = SC_THEN(sc_sleep(SC_MS(1)), drop_ref, b);
    return sc_when_all_succeed(both, 3);
}

static struct sc_future finish(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    expect(live_objects == 0, "every heap object was freed exactly once, by its last owner");
    printf("ch02_chain: %s\n", failures ? "SOMETHING WENT WRONG" : "all as described");
    return sc_make_ready(failures ? 1 : 0);
}

static struct sc_future chain_main(void *arg, int argc, char **argv)
{
    (void)arg;
    (void)argc;
    (void)argv;
    t0 = sc_now();
    struct sc_future f = ready_path();
    f = sc_then(f, capture_by_value, NULL, 0);
    f = sc_then(f, chain, NULL, 0);
    f = sc_then(f, ownership, NULL, 0);
    return sc_then(f, finish, NULL, 0);
}

int main(int argc, char **argv)
{
    return sc_app_run(argc, argv, chain_main);
}
